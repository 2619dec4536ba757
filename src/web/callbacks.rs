//! Everything Rust hands to JavaScript to run later: callbacks, DOM event listeners and
//! futures. wasm-bindgen generates glue per closure signature and per future type, so they
//! all go through the two shapes here: one closure type, and boxed futures.

use std::future::Future;
use std::pin::Pin;

use js_sys::Promise;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// The one closure type handed to JS: a value in, a value out.
pub type Callback = Closure<dyn FnMut(JsValue) -> JsValue>;

/// A callback that ignores its return value.
pub fn callback(mut f: impl FnMut(JsValue) + 'static) -> Callback {
    Closure::new(move |v| {
        f(v);
        JsValue::UNDEFINED
    })
}

type Task = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// A promise for `f`'s result.
pub fn promise(f: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    wasm_bindgen_futures::future_to_promise(Box::pin(f) as Task)
}

/// Runs `f` on the microtask queue.
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    let task = Box::pin(async move {
        f.await;
        Ok(JsValue::UNDEFINED)
    }) as Task;
    wasm_bindgen_futures::spawn_local(async move {
        let _ = task.await;
    });
}

/// A DOM event listener, removed when dropped.
pub struct Listener {
    target: web_sys::EventTarget,
    name: &'static str,
    callback: Callback,
}

impl Listener {
    /// Adds `callback` for `name` events on `target`.
    pub fn new(
        target: &web_sys::EventTarget,
        name: &'static str,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Option<Self> {
        let callback = self::callback(callback);
        target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref()).ok()?;
        Some(Listener { target: target.clone(), name, callback })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(self.name, self.callback.as_ref().unchecked_ref());
    }
}
