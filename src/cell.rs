//! [`RefCell`]: `core::cell::RefCell` whose borrow conflicts trap at once. A conflict is a
//! bug that kills the module either way; core's version first builds a panic message, and
//! its formatting code (about 1 KB gzip) would ship to every user for it.

use core::cell::{Ref, RefMut};

/// A `RefCell` with the same `borrow`/`borrow_mut` API.
#[derive(Default)]
pub struct RefCell<T>(core::cell::RefCell<T>);

impl<T> RefCell<T> {
    /// A new cell.
    pub const fn new(value: T) -> Self {
        RefCell(core::cell::RefCell::new(value))
    }

    /// Shared access; traps if the value is mutably borrowed.
    pub fn borrow(&self) -> Ref<'_, T> {
        match self.0.try_borrow() {
            Ok(r) => r,
            Err(_) => conflict(),
        }
    }

    /// Exclusive access; traps if the value is borrowed.
    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        match self.0.try_borrow_mut() {
            Ok(r) => r,
            Err(_) => conflict(),
        }
    }
}

/// A borrow conflict is a bug in this crate, never a reaction to outside data: stop at once.
#[cold]
fn conflict() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Host builds (tests) only, where a panic is how a test sees the bug.
    #[cfg(not(target_arch = "wasm32"))]
    panic!("RefCell already borrowed");
}

// Host tests only: the panics here are the behaviour under test, on fixed values.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn borrows_like_core_refcell() {
        let c = RefCell::new(vec![1]);
        c.borrow_mut().push(2);
        let (a, b) = (c.borrow(), c.borrow());
        assert_eq!((a.len(), b.len()), (2, 2), "shared borrows coexist");
    }

    #[test]
    #[should_panic(expected = "already borrowed")]
    fn a_conflict_stops() {
        let c = RefCell::new(0);
        let _shared = c.borrow();
        *c.borrow_mut() += 1;
    }
}
