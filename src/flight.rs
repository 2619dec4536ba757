//! [`Flight`]: one result that any number of callers can await (an in-flight refresh, the
//! start-up restore). Plain `std::task`, so it runs and is tested on the host too. In the
//! browser, also the executor: `spawn`, `promise` (a future as a JS promise) and `settle`
//! (a JS promise as a future).

use crate::prelude::*;

use crate::cell::RefCell;
use alloc::rc::Rc;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

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
            core::mem::take(&mut slot.wakers)
        };
        wake_all(wakers);
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
                register(&mut slot.wakers, cx);
                Poll::Pending
            }
        }
    }
}

/// Wakes every waiter. Not generic, so that it is compiled once for every `T`.
fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// Adds the task's waker once. Not generic, so that it is compiled once for every `T`.
fn register(wakers: &mut Vec<Waker>, cx: &Context<'_>) {
    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
        wakers.push(cx.waker().clone());
    }
}

#[cfg(target_arch = "wasm32")]
pub use executor::{promise, settle, spawn, Map, Settle};

/// A small single-threaded executor on the browser's microtask queue. It replaces
/// wasm-bindgen-futures, whose general executor costs about 0.5 KB gzip more in every user's
/// download. Every task goes through one boxed type, so this is compiled once.
#[cfg(target_arch = "wasm32")]
mod executor {
    use crate::cell::RefCell;
    use crate::prelude::*;
    use alloc::rc::Rc;
    use core::cell::Cell;
    use core::future::Future;
    use core::pin::Pin;
    use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

    use crate::callback::{self, Callback};
    use js_sys::{Function, Promise};
    use wasm_bindgen::prelude::*;

    use super::{Flight, Wait};

    type Boxed = Pin<Box<dyn Future<Output = ()>>>;

    struct Task {
        future: RefCell<Option<Boxed>>,
        queued: Cell<bool>,
    }

    /// A static that this (only) thread owns: wasm32 here has no threads, so `Sync` holds.
    struct Local<T>(T);
    // SAFETY: wasm32-unknown-unknown without the atomics feature runs on one thread.
    unsafe impl<T> Sync for Local<T> {}

    /// The JS callback that runs the ready tasks, made on first use.
    type Tick = Option<Callback>;

    static READY: Local<RefCell<Vec<Rc<Task>>>> = Local(RefCell::new(Vec::new()));
    static TICK: Local<RefCell<Tick>> = Local(RefCell::new(None));

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = queueMicrotask)]
        fn queue_microtask(f: &JsValue);
    }

    fn enqueue(task: Rc<Task>) {
        if task.queued.replace(true) {
            return;
        }
        let first = {
            let mut ready = READY.0.borrow_mut();
            ready.push(task);
            ready.len() == 1
        };
        if first {
            let mut tick = TICK.0.borrow_mut();
            queue_microtask(tick.get_or_insert_with(|| callback::repeated(|_| run_ready())).as_ref());
        }
    }

    fn run_ready() {
        // Tasks woken while these run go into a fresh list and a later microtask.
        let tasks = core::mem::take(&mut *READY.0.borrow_mut());
        for task in tasks {
            task.queued.set(false);
            let taken = task.future.borrow_mut().take();
            let Some(mut future) = taken else { continue };
            let waker = waker(&task);
            if future.as_mut().poll(&mut Context::from_waker(&waker)).is_pending() {
                *task.future.borrow_mut() = Some(future);
            }
        }
    }

    // A waker is an `Rc<Task>`. Wasm here is single-threaded (no atomics), so the `Send`
    // and `Sync` that `Waker` promises can never be exercised.
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);

    fn waker(task: &Rc<Task>) -> Waker {
        let raw = RawWaker::new(Rc::into_raw(task.clone()).cast(), &VTABLE);
        // SAFETY: the vtable keeps the Rc count balanced, see below.
        unsafe { Waker::from_raw(raw) }
    }

    // SAFETY (all four): `p` came from `Rc::into_raw` of an `Rc<Task>` that this waker owns.
    unsafe fn clone(p: *const ()) -> RawWaker {
        Rc::increment_strong_count(p.cast::<Task>());
        RawWaker::new(p, &VTABLE)
    }

    unsafe fn wake(p: *const ()) {
        enqueue(Rc::from_raw(p.cast::<Task>()));
    }

    unsafe fn wake_by_ref(p: *const ()) {
        Rc::increment_strong_count(p.cast::<Task>());
        enqueue(Rc::from_raw(p.cast::<Task>()));
    }

    unsafe fn drop(p: *const ()) {
        Rc::decrement_strong_count(p.cast::<Task>());
    }

    /// Runs a future to completion on the browser's microtask queue.
    pub fn spawn(f: impl Future<Output = ()> + 'static) {
        let future: Boxed = Box::pin(f);
        enqueue(Rc::new(Task { future: RefCell::new(Some(future)), queued: Cell::new(false) }));
    }

    /// A JS promise for a future.
    pub fn promise(f: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
        settled_by(Box::pin(f))
    }

    fn settled_by(f: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
        let mut ends: Option<(Function, Function)> = None;
        let promise = Promise::new(&mut |resolve, reject| ends = Some((resolve, reject)));
        if let Some((resolve, reject)) = ends {
            spawn(async move {
                let _ = match f.await {
                    Ok(v) => resolve.call1(&JsValue::UNDEFINED, &v),
                    Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
                };
            });
        }
        promise
    }

    /// Future returned by [`settle`]: a plain struct rather than an `async fn`, whose
    /// state machine would be inlined into every caller's.
    pub struct Settle {
        done: Wait<Result<JsValue, JsValue>>,
        // Both callbacks are one closure type (one shim in the binary). They live as long
        // as this future: our tasks always run to the end.
        _callbacks: [Callback; 2],
    }

    impl Future for Settle {
        type Output = Result<JsValue, JsValue>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            Pin::new(&mut self.done).poll(cx)
        }
    }

    impl Settle {
        /// The outcome read by `read`: a plain future again, where an `async` block would
        /// add a state machine.
        pub fn map<T>(self, read: fn(Result<JsValue, JsValue>) -> T) -> Map<T> {
            Map { settle: self, read }
        }
    }

    /// Future returned by [`Settle::map`].
    pub struct Map<T> {
        settle: Settle,
        read: fn(Result<JsValue, JsValue>) -> T,
    }

    impl<T> Future for Map<T> {
        type Output = T;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
            let read = self.read;
            Pin::new(&mut self.settle).poll(cx).map(read)
        }
    }

    /// Awaits a JS promise (or any value, as `await` does in JS).
    pub fn settle(promise: JsValue) -> Settle {
        let done: Flight<Result<JsValue, JsValue>> = Flight::new();
        let callback = |ok: bool| {
            let landed = done.clone();
            callback::once(move |v| landed.complete(if ok { Ok(v) } else { Err(v) }))
        };
        let callbacks = [callback(true), callback(false)];
        let _ = Promise::resolve(&promise).then2(&callbacks[0], &callbacks[1]);
        Settle { done: done.wait(), _callbacks: callbacks }
    }
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
