//! [`Flight`]: one result that any number of callers can await (an in-flight refresh, the
//! start-up restore). Plain `std::task`, so it runs and is tested on the host too.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    result: Option<T>,
    wakers: Vec<Waker>,
}

/// A shared, single-assignment result. Cloning shares it.
pub struct Flight<T: Clone>(Rc<RefCell<Slot<T>>>);

impl<T: Clone> Clone for Flight<T> {
    fn clone(&self) -> Self {
        Flight(self.0.clone())
    }
}

impl<T: Clone> Default for Flight<T> {
    fn default() -> Self {
        Flight(Rc::new(RefCell::new(Slot { result: None, wakers: Vec::new() })))
    }
}

impl<T: Clone> Flight<T> {
    /// A flight that has not landed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the result and wakes every waiter. Later calls are ignored: the first one wins.
    pub fn complete(&self, value: T) {
        let wakers = {
            let mut slot = self.0.borrow_mut();
            if slot.result.is_some() {
                return;
            }
            slot.result = Some(value);
            std::mem::take(&mut slot.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// The result, if it has landed.
    pub fn peek(&self) -> Option<T> {
        self.0.borrow().result.clone()
    }

    /// A future resolving to the result.
    pub fn wait(&self) -> Wait<T> {
        Wait(self.clone())
    }
}

/// Future returned by [`Flight::wait`].
pub struct Wait<T: Clone>(Flight<T>);

impl<T: Clone> Future for Wait<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = (self.0).0.borrow_mut();
        match &slot.result {
            Some(v) => Poll::Ready(v.clone()),
            None => {
                if !slot.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    slot.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// Runs a future to completion on the browser's microtask queue. Every task goes through
/// this one boxed type, so the executor is compiled once rather than per future.
#[cfg(target_arch = "wasm32")]
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    let boxed: Pin<Box<dyn Future<Output = ()>>> = Box::pin(f);
    wasm_bindgen_futures::spawn_local(boxed);
}

/// A JS promise for a future; boxed for the same reason as [`spawn`].
#[cfg(target_arch = "wasm32")]
pub fn promise(
    f: impl Future<Output = Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>> + 'static,
) -> js_sys::Promise {
    let boxed: Pin<Box<dyn Future<Output = Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue>>>> = Box::pin(f);
    wasm_bindgen_futures::future_to_promise(boxed)
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn all_waiters_get_the_first_result() {
        let f: Flight<u32> = Flight::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = f.wait();
        let mut b = f.wait();
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        f.complete(7);
        f.complete(8);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "one waker, registered once");
        assert_eq!(Pin::new(&mut a).poll(&mut cx), Poll::Ready(7));
        assert_eq!(Pin::new(&mut b).poll(&mut cx), Poll::Ready(7));
        assert_eq!(f.peek(), Some(7));
    }
}
