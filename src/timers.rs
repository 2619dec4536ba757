//! Deadlines, not single timers: one timer armed for the next absolute deadline, and the
//! page events (`visibilitychange`, `focus`, `online`, `pageshow`) that re-check it, because
//! background tabs and sleeping laptops delay timers. Browser only, except [`clamp_delay`].

/// A delay for `setTimeout`: browsers treat delays above `i32::MAX` ms (about 24.8 days) as 0
/// and fire at once, so clamp; NaN and negatives become 0.
pub fn clamp_delay(ms: f64) -> u32 {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= f64::from(i32::MAX) {
        i32::MAX as u32
    } else {
        ms as u32
    }
}

#[cfg(target_arch = "wasm32")]
pub use browser::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use crate::prelude::*;
    use alloc::rc::Rc;

    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use super::clamp_delay;
    use crate::callback::{self, Callback};
    use crate::events::{EventKind, LogoutReason};
    use crate::flight::Flight;
    use crate::policy::{self, Action};
    use crate::refresh;
    use crate::session::{self, Inner};

    /// When offline, look again after this long even if no `online` event comes.
    const OFFLINE_RECHECK_MS: f64 = 30_000.0;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = setTimeout)]
        fn set_timeout(callback: &JsValue, ms: u32) -> JsValue;
        #[wasm_bindgen(js_name = clearTimeout)]
        fn clear_timeout(id: &JsValue);
    }

    /// A pending `setTimeout`, cancelled when dropped.
    pub struct Timeout {
        id: JsValue,
        _callback: Callback,
    }

    impl Timeout {
        fn new(ms: u32, f: impl FnOnce() + 'static) -> Timeout {
            let callback = callback::once(move |_| f());
            Timeout { id: set_timeout(callback.as_ref(), ms), _callback: callback }
        }
    }

    impl Drop for Timeout {
        fn drop(&mut self) {
            clear_timeout(&self.id);
        }
    }

    /// A DOM event listener that is removed when dropped.
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
            let callback = callback::repeated(callback);
            target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref()).ok()?;
            Some(Listener { target: target.clone(), name, callback })
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = self.target.remove_event_listener_with_callback(self.name, self.callback.as_ref().unchecked_ref());
        }
    }

    /// The session's timer and page listeners.
    #[derive(Default)]
    pub struct Timers {
        deadline: Option<Timeout>,
        listeners: Vec<Option<Listener>>,
    }

    /// True unless the browser says it is offline.
    pub fn online() -> bool {
        crate::page::window().is_none_or(|w| w.navigator().on_line())
    }

    /// Completes `flight` after `ms` unless it has landed by then: the deadline of a wait.
    /// One closure type for every such timer. JS owns the callback: the call releases what it
    /// holds, and JS's garbage collector frees the rest.
    pub fn complete_after(ms: f64, flight: &Flight<()>) {
        let flight = flight.clone();
        set_timeout(&callback::once(move |_| flight.complete(())).into_js_value(), clamp_delay(ms));
    }

    /// Resolves after `ms`.
    pub fn sleep(ms: f64) -> crate::flight::Wait<()> {
        let done: Flight<()> = Flight::new();
        complete_after(ms, &done);
        done.wait()
    }

    /// Arms the timer for the next deadline, replacing (and so cancelling) the pending one.
    pub fn schedule(inner: &Rc<Inner>) {
        let at = {
            let st = inner.state.borrow();
            st.tokens
                .as_ref()
                .map(|t| policy::next_wakeup(t, inner.config.refresh_lead_ms, st.retry, st.expiry_announced))
        };
        let Some(at) = at.filter(|_| !inner.disposed.get()) else {
            cancel(inner);
            return;
        };
        let now = inner.now();
        let delay = if at <= now && !online() { OFFLINE_RECHECK_MS } else { at - now + 1.0 };
        let weak = Rc::downgrade(inner);
        let timeout = Timeout::new(clamp_delay(delay), move || {
            if let Some(inner) = weak.upgrade() {
                check(&inner);
            }
        });
        inner.timers.borrow_mut().deadline = Some(timeout);
    }

    /// Cancels the pending deadline.
    pub fn cancel(inner: &Inner) {
        inner.timers.borrow_mut().deadline.take();
    }

    /// Looks at the clock: announces expiry, starts a due refresh, re-arms the timer.
    pub fn check(inner: &Rc<Inner>) {
        if inner.disposed.get() {
            return;
        }
        let now = inner.now();
        let expired = {
            let mut st = inner.state.borrow_mut();
            let Some(t) = st.tokens.as_ref() else { return };
            let newly = now >= t.expires_at && !st.expiry_announced;
            let renewable = t.refresh_token.is_some();
            let at = t.expires_at;
            if newly {
                st.expiry_announced = true;
            }
            newly.then_some((at, renewable))
        };
        if let Some((at, renewable)) = expired {
            inner.emit(EventKind::Expired, &[("expiresAt", at.into())]);
            if !renewable {
                session::end(inner, LogoutReason::Expired, true);
                return;
            }
        }
        if inner.flight.borrow().is_some() {
            return; // the refresh in flight re-arms the timer when it lands
        }
        match inner.decide() {
            Some((Action::UseAndRefresh | Action::RefreshFirst, _)) if online() => {
                refresh::start(inner);
            }
            _ => schedule(inner),
        }
    }

    /// Listens for the page events after which deadlines must be re-checked.
    pub fn listen(inner: &Rc<Inner>) {
        let Some(window) = crate::page::window() else { return };
        let mut listeners = Vec::new();
        let recheck = |reset_backoff: bool| {
            let weak = Rc::downgrade(inner);
            move |_e: JsValue| {
                let Some(inner) = weak.upgrade() else { return };
                if reset_backoff {
                    // Back online: one prompt attempt instead of waiting out the backoff.
                    inner.state.borrow_mut().retry.not_before = 0.0;
                }
                // `hidden`, not `visibility_state()`: the enum's glue brings a panic path.
                let visible = crate::page::window().and_then(|w| w.document()).is_none_or(|d| !d.hidden());
                if visible || reset_backoff {
                    check(&inner);
                }
            }
        };
        if let Some(doc) = window.document() {
            listeners.push(Listener::new(&doc, "visibilitychange", recheck(false)));
        }
        listeners.push(Listener::new(&window, "focus", recheck(false)));
        listeners.push(Listener::new(&window, "pageshow", recheck(false)));
        listeners.push(Listener::new(&window, "online", recheck(true)));
        inner.timers.borrow_mut().listeners = listeners;
    }

    /// Removes the page listeners.
    pub fn unlisten(inner: &Inner) {
        inner.timers.borrow_mut().listeners.clear();
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn delays_are_clamped_to_what_set_timeout_accepts() {
        assert_eq!(clamp_delay(-5.0), 0);
        assert_eq!(clamp_delay(f64::NAN), 0);
        assert_eq!(clamp_delay(1500.7), 1500);
        assert_eq!(clamp_delay(30.0 * 86_400_000.0), i32::MAX as u32);
        assert_eq!(clamp_delay(f64::INFINITY), i32::MAX as u32);
    }
}
