//! The transport to the auth server: a GET or POST with a timeout, no redirects, no cache,
//! and a capped body read, giving the reply as it came ([`Raw`]). What a reply means is the
//! auth server calls' business (`auth`).

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCache, RequestCredentials, RequestInit, RequestRedirect, Response};

use crate::core::error::Error;
use crate::core::policy::clamp_delay;

/// Largest auth server reply read: a token response is a few KB.
const MAX_REPLY_BYTES: usize = 256 * 1024;

#[wasm_bindgen]
extern "C" {
    /// The page's own `fetch`, looked up when called (an app may wrap it).
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch(request: &web_sys::Request) -> Promise;
}

/// An auth server's answer, before interpretation.
pub struct Raw {
    /// HTTP status.
    pub status: u16,
    /// The body parsed as JSON, if it was JSON and not too large.
    pub body: Option<JsValue>,
    /// The `Date` header (epoch ms).
    pub date: Option<f64>,
    /// DPoP: the `DPoP-Nonce` header.
    pub dpop_nonce: Option<String>,
}

impl Raw {
    /// The body as a JSON object, if it is one.
    pub fn object(&self) -> Option<&JsValue> {
        self.body.as_ref().filter(|b| b.is_object() && !js_sys::Array::is_array(b))
    }

    /// The RFC 6749 §5.2 `error` of the body.
    pub fn oauth_error(&self) -> Option<String> {
        let error = Reflect::get(self.object()?, &"error".into()).ok()?.as_string()?;
        (error.len() <= 128).then_some(error)
    }

    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The body of a POST; `Copy`, as it only borrows its fields (a nonce retry sends it again).
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// `application/x-www-form-urlencoded` fields; empty values are left out.
    Form(&'a [(&'a str, &'a str)]),
    /// A JSON text.
    Json(&'a str),
}

/// A request to the auth server or the session endpoint: GET without a `body`, else POST;
/// `csrf` is a header (name, value) to add (the CSRF token, or a DPoP proof); `cookies` sends and accepts cookies on any origin
/// (else only on the page's). Gives up after `timeout_ms` (reading the body included), never
/// follows redirects, never caches, reads at most [`MAX_REPLY_BYTES`].
pub async fn call(
    url: &str,
    body: Option<Body<'_>>,
    csrf: Option<(&str, &str)>,
    cookies: bool,
    timeout_ms: f64,
) -> Result<Raw, Error> {
    let abort = web_sys::AbortController::new().map_err(|_| Error::Network)?;
    let late = Rc::new(Cell::new(false));
    let _timeout = {
        let (abort, late) = (abort.clone(), late.clone());
        Timeout::new(clamp_delay(timeout_ms), move || {
            late.set(true);
            abort.abort();
        })
    };
    let headers = web_sys::Headers::new().map_err(|_| Error::Network)?;
    let _ = headers.set("accept", "application/json");
    if let Some((name, value)) = csrf {
        let _ = headers.set(name, value);
    }
    let init = RequestInit::new();
    let Some(body) = body else {
        init.set_method("GET");
        return send(url, &init, &headers, cookies, &abort, &late).await;
    };
    let body: JsValue = match body {
        Body::Form(fields) => {
            let form = web_sys::UrlSearchParams::new().map_err(|_| Error::Network)?;
            for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
                form.append(k, v);
            }
            form.into()
        }
        Body::Json(text) => {
            let _ = headers.set("content-type", "application/json");
            text.into()
        }
    };
    init.set_method("POST");
    init.set_body(&body);
    send(url, &init, &headers, cookies, &abort, &late).await
}

async fn send(
    url: &str,
    init: &RequestInit,
    headers: &web_sys::Headers,
    cookies: bool,
    abort: &web_sys::AbortController,
    late: &Cell<bool>,
) -> Result<Raw, Error> {
    init.set_headers(headers);
    init.set_credentials(if cookies { RequestCredentials::Include } else { RequestCredentials::SameOrigin });
    init.set_cache(RequestCache::NoStore);
    init.set_redirect(RequestRedirect::Error);
    init.set_signal(Some(&abort.signal()));
    let failed = |_| if late.get() { Error::Timeout } else { Error::Network };
    let request = web_sys::Request::new_with_str_and_init(url, init).map_err(|_| Error::Network)?;
    let response: Response = JsFuture::from(global_fetch(&request)).await.map_err(failed)?.unchecked_into();
    let status = response.status();
    let date = response.headers().get("date").ok().flatten().map(|d| js_sys::Date::parse(&d)).filter(|d| d.is_finite());
    let dpop_nonce = response.headers().get("dpop-nonce").ok().flatten();
    let body = match read_capped(&response).await {
        Ok(bytes) => bytes.and_then(|b| js_sys::JSON::parse(std::str::from_utf8(&b).ok()?).ok()),
        Err(_) => return Err(failed(JsValue::UNDEFINED)),
    };
    Ok(Raw { status, body, date, dpop_nonce })
}

/// The body, or `None` if it is larger than [`MAX_REPLY_BYTES`] (stopped reading there).
async fn read_capped(response: &Response) -> Result<Option<Vec<u8>>, JsValue> {
    let declared = response.headers().get("content-length").ok().flatten().and_then(|l| l.trim().parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_REPLY_BYTES) {
        return Ok(None);
    }
    let Some(stream) = response.body() else { return Ok(Some(Vec::new())) };
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await?;
        if Reflect::get(&chunk, &"done".into())?.as_bool() == Some(true) {
            return Ok(Some(out));
        }
        let Ok(bytes) = Reflect::get(&chunk, &"value".into())?.dyn_into::<Uint8Array>() else { return Ok(None) };
        let start = out.len();
        let len = bytes.length() as usize;
        if start + len > MAX_REPLY_BYTES {
            let _ = reader.cancel();
            return Ok(None);
        }
        out.resize(start + len, 0);
        bytes.copy_to(&mut out[start..]);
    }
}
