//! The sign-in popup: a window opened in the app's click (so that popup blockers allow it),
//! sent to the provider when the sign-in machine says so, and watched until the redirect page
//! hands back its callback URL (a `message` from the popup, of this origin) or the user closes
//! it. Dropping the handle closes the window and stops watching.

use gloo_timers::callback::Interval;
use wasm_bindgen::{JsCast, JsValue};

use crate::core::error::Error;
use crate::core::machine::Input;

use super::callbacks::Listener;
use super::oidc;
use super::sink::Sink;

/// The `type` of the message the redirect page posts to its opener.
pub const CALLBACK_MESSAGE: &str = "wasm-session:callback";

/// How often the window is looked at, to notice that the user closed it.
const WATCH_MS: u32 = 500;

/// An open sign-in popup.
pub struct Popup {
    window: web_sys::Window,
    _message: Option<Listener>,
    _watch: Interval,
}

impl Popup {
    /// Opens the popup (blank until the provider's URL is known); `None` when the browser
    /// blocked it. What it hands back, and its closing, go to `sink`.
    pub fn open(sink: &Sink) -> Option<Popup> {
        let page = web_sys::window()?;
        let features = "popup,width=500,height=650";
        let window = page.open_with_url_and_target_and_features("", "wasm-session-signin", features).ok()??;
        let origin = page.location().origin().ok()?;
        let (from, to) = (window.clone(), sink.clone());
        let message = Listener::new(&page, "message", move |e: JsValue| {
            let Ok(e) = e.dyn_into::<web_sys::MessageEvent>() else { return };
            let from_popup = e.source().is_some_and(|s| js_sys::Object::is(&s, &from));
            if e.origin() != origin || !from_popup {
                return;
            }
            let data = e.data();
            let field = |name: &str| js_sys::Reflect::get(&data, &name.into()).ok().and_then(|v| v.as_string());
            if field("type").as_deref() != Some(CALLBACK_MESSAGE) {
                return;
            }
            if let Some(Ok((url, params))) = field("url").map(|u| oidc::callback_params(&u)) {
                to.send(Input::PopupCallback { url, params });
            }
        });
        let (watched, to) = (window.clone(), sink.clone());
        let mut reported = false;
        let watch = Interval::new(WATCH_MS, move || {
            if !reported && watched.closed().unwrap_or(true) {
                reported = true;
                to.send(Input::PopupClosed);
            }
        });
        Some(Popup { window, _message: message, _watch: watch })
    }

    /// Carries out `Effect::NavigatePopup`: sends the window to `href`.
    pub fn navigate(&self, href: &str) -> Result<(), Error> {
        self.window.location().set_href(href).map_err(|_| Error::PopupClosed)
    }
}

impl Drop for Popup {
    fn drop(&mut self) {
        let _ = self.window.close();
    }
}
