//! Rust callbacks handed to JavaScript (timers, listeners, promise reactions). Browser only.
//!
//! Every callback is made here, as one of two closure types. wasm-bindgen generates a set
//! of shims for each closure type it is given, a few hundred bytes in every user's download,
//! so `Closure::new` with a different closure at each call site adds up.

use crate::prelude::*;
use wasm_bindgen::prelude::*;

/// A JS function backed by Rust; dropping it makes the JS function throw if called. Always
/// `FnMut(JsValue)`, whatever JS calls it with: each signature costs an export, a shim and a
/// glue function.
pub type Callback = Closure<dyn FnMut(JsValue)>;

/// A callback JS may call any number of times. It gets the first argument JS passes.
pub fn repeated(f: impl FnMut(JsValue) + 'static) -> Callback {
    Closure::wrap(Box::new(f) as Box<dyn FnMut(JsValue)>)
}

/// A callback for one call (later calls throw). It gets the first argument JS passes.
pub fn once(f: impl FnOnce(JsValue) + 'static) -> Callback {
    let f: Box<dyn FnOnce(JsValue)> = Box::new(f);
    Closure::once(move |v: JsValue| f(v))
}
