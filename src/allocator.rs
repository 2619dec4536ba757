//! The wasm build's memory allocator: power-of-two size classes with a free list each,
//! carved from `memory.grow`. About 1 KB of code instead of dlmalloc's 7 KB.
//!
//! The SDK's allocations are small and recurring (strings, token sets, futures), so freed
//! blocks are reused by the next allocation of the same class and memory stays flat (the
//! benchmark runs 10,000 refresh cycles without growth). Blocks are never split or merged.
//! wasm32 in the browser is single-threaded, which is what makes the `Sync` below sound.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::null_mut;

/// Smallest block: 8 bytes (room for the free-list link). Classes go up to 2^31.
const MIN_SHIFT: u32 = 3;
const CLASSES: usize = 29;
const PAGE: usize = 65_536;

/// Free lists per class, and the unused tail of the last page obtained.
pub struct Allocator {
    free: UnsafeCell<[*mut u8; CLASSES]>,
    tail: UnsafeCell<(usize, usize)>,
}

// SAFETY: wasm32-unknown-unknown without threads has exactly one thread.
unsafe impl Sync for Allocator {}

impl Allocator {
    /// An empty allocator.
    pub const fn new() -> Self {
        Allocator { free: UnsafeCell::new([null_mut(); CLASSES]), tail: UnsafeCell::new((0, 0)) }
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of a layout: the smallest power of two that holds size and alignment.
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let c = (shift - MIN_SHIFT) as usize;
    (c < CLASSES).then_some(c)
}

/// Fresh, block-aligned memory for a block of `size` bytes (a power of two). Blocks up to
/// a page are naturally aligned; larger ones are page-aligned, which covers every
/// alignment Rust asks for.
unsafe fn carve(tail: &mut (usize, usize), size: usize) -> *mut u8 {
    let align = size.min(PAGE);
    let start = (tail.0 + align - 1) & !(align - 1);
    if tail.0 == 0 || start + size > tail.1 {
        let pages = size.div_ceil(PAGE);
        let grown = core::arch::wasm32::memory_grow(0, pages);
        if grown == usize::MAX {
            return null_mut();
        }
        let base = grown * PAGE;
        // Keep the old tail if the new pages follow it; otherwise start over at `base`.
        if tail.1 != base || tail.0 == 0 {
            *tail = (base, base);
        }
        tail.1 = base + pages * PAGE;
        return carve(tail, size);
    }
    tail.0 = start + size;
    start as *mut u8
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `get_mut`, not indexing: a bounds-check panic would link `core::fmt`.
        let Some((c, slot)) = class(layout).and_then(|c| Some((c, (*self.free.get()).get_mut(c)?))) else {
            return null_mut();
        };
        let head = *slot;
        if !head.is_null() {
            *slot = *(head as *mut *mut u8);
            return head;
        }
        carve(&mut *self.tail.get(), 1 << (c as u32 + MIN_SHIFT))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(slot) = class(layout).and_then(|c| (*self.free.get()).get_mut(c)) {
            *(ptr as *mut *mut u8) = *slot;
            *slot = ptr;
        }
    }
}
