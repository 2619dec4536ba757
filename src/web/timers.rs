//! Deadlines, not single timers: the one timer armed for the machine's next deadline
//! (gloo-timers, cancelled when replaced or dropped), and the page events after which the
//! deadlines are re-checked, because background tabs and sleeping laptops delay timers.

use gloo_timers::callback::Timeout;
use wasm_bindgen::JsValue;

use crate::core::machine::Input;
use crate::core::policy::clamp_delay;

use super::callbacks::Listener;
use super::sink::Sink;

/// The timer for the next deadline.
#[derive(Default)]
pub struct Deadline(Option<Timeout>);

impl Deadline {
    /// Arms the timer for `at` (epoch ms), replacing the pending one; `None` cancels. When
    /// it fires, [`Input::Tick`] goes to `sink`.
    pub fn arm(&mut self, at: Option<f64>, sink: &Sink) {
        self.0 = at.map(|at| {
            let delay = clamp_delay(at - js_sys::Date::now());
            let sink = sink.clone();
            Timeout::new(delay, move || sink.send(Input::Tick))
        });
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
pub fn page_listeners(sink: &Sink) -> Vec<Listener> {
    let Some(window) = web_sys::window() else { return Vec::new() };
    let on = |input: fn() -> Option<Input>| {
        let sink = sink.clone();
        move |_e: JsValue| {
            if let Some(input) = input() {
                sink.send(input);
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
