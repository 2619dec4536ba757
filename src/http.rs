//! HTTP: `session.fetch` (origin allowlist, bearer header, refresh-then-send, one retry after
//! a 401) and the POSTs to the auth server (with a timeout). Browser only, except the
//! origin rule.

use crate::prelude::*;

use crate::config;

/// May a request to `url_origin` (scheme `protocol`, host `host`) carry the token?
/// Only the page's own origin and listed origins, and never over plain http off this machine.
pub fn may_carry_token(url_origin: &str, protocol: &str, host: &str, page_origin: &str, allowed: &[String]) -> bool {
    let listed = url_origin == page_origin || allowed.iter().any(|o| o == url_origin);
    listed && config::check_transport("", protocol, host).is_ok()
}

#[cfg(target_arch = "wasm32")]
pub use browser::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use crate::prelude::*;
    use alloc::rc::Rc;

    use crate::flight::{settle, Map, Settle};
    use js_sys::Reflect;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use super::may_carry_token;
    use crate::error::Error;
    use crate::refresh;
    use crate::session::{self, Endpoints, Inner};
    use crate::timers::clamp_delay;
    use crate::value::Value;

    /// An auth server's answer.
    pub struct Reply {
        /// HTTP status.
        pub status: u16,
        /// The body parsed as JSON, or `undefined` if it was not JSON.
        pub body: JsValue,
        /// The `Date` header in epoch ms, if readable.
        pub date: Option<f64>,
    }

    impl Reply {
        /// 2xx.
        pub fn ok(&self) -> bool {
            (200..300).contains(&self.status)
        }

        /// One field of the JSON body.
        pub fn field(&self, key: &str) -> Value {
            Value::field(&self.body, key)
        }

        /// The RFC 6749 §5.2 `error` code, if the body has one.
        pub fn oauth_error(&self) -> Option<String> {
            match self.field("error") {
                Value::Str(s) if s.len() <= 128 => Some(s),
                _ => None,
            }
        }
    }

    // The request and its timeout are plain JS: one call across the boundary instead of a
    // dozen web-sys calls, each of which costs bytes in every user's download. What the
    // answer means is decided in Rust.
    #[wasm_bindgen(module = "/src/browser.js")]
    extern "C" {
        /// The POST itself: resolves to `[status, json, date]`, or to `true` after a timeout
        /// and `false` after a network error.
        fn ws_post(url: &str, body: &JsValue, content_type: Option<&str>, timeout_ms: u32) -> js_sys::Promise;
    }

    /// The fields of a form body for [`post`]; fields with an empty value are left out (an
    /// unset `client_id`).
    pub fn form(fields: &[(&str, &str)]) -> JsValue {
        let o = js_sys::Object::new();
        for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v));
        }
        o.into()
    }

    /// POSTs `body` (a string with `content_type`, or [`form`] fields, sent form-encoded,
    /// with `None`) to an auth server URL. Gives up after `timeout_ms`, never follows
    /// redirects, never caches.
    pub fn post(url: &str, body: &JsValue, content_type: Option<&str>, timeout_ms: f64) -> Map<Result<Reply, Error>> {
        settle(ws_post(url, body, content_type, clamp_delay(timeout_ms)).into()).map(Reply::read)
    }

    impl Reply {
        /// Reads `ws_post`'s answer.
        fn read(answer: Result<JsValue, JsValue>) -> Result<Reply, Error> {
            let answer = answer.unwrap_or_default();
            if let Some(late) = answer.as_bool() {
                return Err(if late { Error::Timeout } else { Error::Network });
            }
            let at = |i| Reflect::get_u32(&answer, i).unwrap_or_default();
            let status = at(0).as_f64().filter(|s| (100.0..600.0).contains(s)).ok_or(Error::Network)?;
            let date = at(2).as_f64().filter(|d| d.is_finite());
            Ok(Reply { status: status as u16, body: at(1), date })
        }
    }

    #[wasm_bindgen]
    extern "C" {
        /// The global `Request` class, constructed from whatever the app passed.
        #[wasm_bindgen(js_name = Request)]
        type AnyRequest;
        #[wasm_bindgen(catch, constructor, js_class = "Request")]
        fn new(input: &JsValue, init: &JsValue) -> Result<AnyRequest, JsValue>;
        /// The page's own `fetch`.
        #[wasm_bindgen(js_name = fetch)]
        fn global_fetch(request: &web_sys::Request) -> js_sys::Promise;
    }

    /// `new Request(input, init)`: the same parsing and errors as `fetch` itself.
    fn new_request(input: &JsValue, init: &JsValue) -> Result<web_sys::Request, JsValue> {
        Ok(AnyRequest::new(input, init)?.unchecked_into())
    }

    /// Sends with the page's `fetch`; resolves to its `Response` or its error.
    fn send(request: &web_sys::Request) -> Settle {
        settle(global_fetch(request).into())
    }

    fn allowed(endpoints: &Endpoints, url: &str) -> bool {
        crate::page::Url::parse(url, None).is_some_and(|u| {
            may_carry_token(&u.origin, &u.protocol, &u.hostname, &endpoints.page_origin, &endpoints.allowed_origins)
        })
    }

    fn set_bearer(request: &web_sys::Request, token: &str) -> Result<(), JsValue> {
        let mut value = String::with_capacity(token.len() + 7);
        value.push_str("Bearer ");
        value.push_str(token);
        request.headers().set("authorization", &value)
    }

    /// `session.fetch(input, init)`: a drop-in for `window.fetch`.
    pub async fn fetch(inner: Rc<Inner>, input: JsValue, init: JsValue) -> Result<JsValue, JsValue> {
        let request = new_request(&input, &init)?;
        let token = if allowed(&inner.endpoints, &request.url()) { session::fresh_token(&inner).await? } else { None };
        let Some(token) = token else { return send(&request).await };
        // Keep an unsent copy: a body can be read only once, and the retry needs it. GET and
        // HEAD have no body, so the request itself can be sent again.
        let method = request.method();
        let spare = if method == "GET" || method == "HEAD" { Clone::clone(&request) } else { request.clone()? };
        let generation = inner.generation();
        set_bearer(&request, &token)?;
        let response = send(&request).await?;
        if response.unchecked_ref::<web_sys::Response>().status() != 401 {
            return Ok(response);
        }
        // The server refused the token: refresh once (unless a newer token already arrived)
        // and retry once with the new one.
        if inner.generation() == generation && refresh::refresh(&inner).await.is_err() {
            return Ok(response);
        }
        let Some(token) = inner.tokens().map(|t| t.access_token).filter(|t| *t != token) else {
            return Ok(response);
        };
        set_bearer(&spare, &token)?;
        send(&spare).await
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn only_own_and_listed_origins_over_safe_transport() {
        let page = "https://app.example.com";
        let allowed = vec!["https://api.example.com".to_string(), "http://intranet.example".to_string()];
        let ok = |origin: &str, proto: &str, host: &str| may_carry_token(origin, proto, host, page, &allowed);
        assert!(ok("https://app.example.com", "https:", "app.example.com"));
        assert!(ok("https://api.example.com", "https:", "api.example.com"));
        assert!(!ok("https://evil.example.com", "https:", "evil.example.com"));
        assert!(!ok("https://api.example.com.evil.com", "https:", "api.example.com.evil.com"));
        assert!(!ok("http://intranet.example", "http:", "intranet.example"), "plain http off-machine");
        assert!(may_carry_token("http://127.0.0.1:8080", "http:", "127.0.0.1", "http://127.0.0.1:8080", &[]));
        assert!(
            !may_carry_token("http://127.0.0.1:9090", "http:", "127.0.0.1", "http://127.0.0.1:8080", &[]),
            "other port"
        );
    }
}
