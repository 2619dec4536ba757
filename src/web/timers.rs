//! Deadlines, not single timers: the one timer armed for the machine's next deadline
//! (gloo-timers, cancelled when replaced or dropped), and the page events after which the
//! deadlines are re-checked, because background tabs and sleeping laptops delay timers.

use std::rc::Weak;

use gloo_timers::callback::Timeout;
use wasm_bindgen::{JsCast, JsValue};

use crate::core::machine::Input;
use crate::core::policy::clamp_delay;

use super::callbacks::{self, Callback};
use super::driver::Driver;

/// The timer for the next deadline.
#[derive(Default)]
pub struct Deadline(Option<Timeout>);

impl Deadline {
    /// Arms the timer for `at` (epoch ms), replacing the pending one; `None` cancels.
    pub fn arm(&mut self, at: Option<f64>, driver: Weak<Driver>) {
        self.0 = at.map(|at| {
            let delay = clamp_delay(at - js_sys::Date::now());
            Timeout::new(delay, move || {
                if let Some(d) = driver.upgrade() {
                    d.input(Input::Tick);
                }
            })
        });
    }
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
        let callback = callbacks::callback(callback);
        target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref()).ok()?;
        Some(Listener { target: target.clone(), name, callback })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(self.name, self.callback.as_ref().unchecked_ref());
    }
}

/// A monotonic clock in ms (`performance.now()`): steps of the wall clock do not move it.
pub fn monotonic() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
}

/// `navigator.onLine` (true where unknown).
pub fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

fn visible() -> bool {
    web_sys::window().and_then(|w| w.document()).is_none_or(|d| !d.hidden())
}

/// Listens for the page events that make the machine look at the clock again: the tab
/// shown (`visibilitychange`, `focus`, `pageshow`) and the network back or gone.
pub fn page_listeners(driver: Weak<Driver>) -> Vec<Listener> {
    let Some(window) = web_sys::window() else { return Vec::new() };
    let on = |input: fn() -> Option<Input>| {
        let driver = driver.clone();
        move |_e: JsValue| {
            if let (Some(d), Some(input)) = (driver.upgrade(), input()) {
                d.input(input);
            }
        }
    };
    let mut listeners = Vec::new();
    if let Some(document) = window.document() {
        listeners.extend(Listener::new(&document, "visibilitychange", on(|| visible().then_some(Input::Wake))));
    }
    // A tab regaining focus is user activity, as are a pointer, a key, a touch.
    for name in ["focus", "pointerdown", "keydown", "touchstart"] {
        listeners.extend(Listener::new(&window, name, on(|| Some(Input::Activity))));
    }
    listeners.extend(Listener::new(&window, "pageshow", on(|| Some(Input::Wake))));
    listeners.extend(Listener::new(&window, "online", on(|| Some(Input::Online(true)))));
    listeners.extend(Listener::new(&window, "offline", on(|| Some(Input::Online(false)))));
    listeners
}
