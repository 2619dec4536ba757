//! The page's `window`, and URLs as the browser parses them. Browser only.
//!
//! One optional binding to the global `window` instead of `web_sys::window()`, which looks
//! up the global object four ways and then checks it with `instanceof`: the same answer
//! for a page, for about 0.4 KB less in every user's download.

use crate::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = window)]
    static WINDOW: Option<web_sys::Window>;
}

/// The page's `window`; `None` where there is none (a worker, a server).
pub fn window() -> Option<web_sys::Window> {
    WINDOW.with(Clone::clone)
}

/// A URL as the browser's `URL` class parses it (the fields the security rules need).
pub struct Url {
    /// The normalized URL.
    pub href: String,
    /// Scheme, host and port; `"null"` for opaque origins.
    pub origin: String,
    /// The scheme with its colon, e.g. `"https:"`.
    pub protocol: String,
    /// The host without port.
    pub hostname: String,
    /// True if it carries a user name or password.
    pub credentials: bool,
    /// True if it is an origin alone: path `/`, no query, no fragment.
    pub bare: bool,
}

// One call for every field: a binding per getter costs bytes in every user's download.
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    fn ws_url(raw: &str, base: Option<&str>) -> JsValue;
}

impl Url {
    /// Parses `raw`, relative to `base` if given; `None` if it is not a valid URL.
    pub fn parse(raw: &str, base: Option<&str>) -> Option<Url> {
        let parts = ws_url(raw, base);
        if parts.is_null() {
            return None;
        }
        let at = |i| js_sys::Reflect::get_u32(&parts, i).unwrap_or_default();
        let text = |i| at(i).as_string().unwrap_or_default();
        Some(Url {
            href: text(0),
            origin: text(1),
            protocol: text(2),
            hostname: text(3),
            credentials: at(4).as_bool() == Some(true),
            bare: at(5).as_bool() == Some(true),
        })
    }
}
