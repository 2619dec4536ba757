//! HTTP: `session.fetch` (the token only for the page's origin and `allowedOrigins`, the
//! fast path when the token is fresh, one retry after a 401 when the machine allows it), and
//! the POSTs to the auth server (timeout, no redirects, no cache, a capped body read).

use std::cell::Cell;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCache, RequestCredentials, RequestInit, RequestRedirect, Response};

use crate::core::config::Mode;
use crate::core::error::Error;
use crate::core::machine::{Answer, Input, Reply};
use crate::core::policy::{self, clamp_delay};
use crate::core::token::{jwt_payload, JwtTimes, SessionResponse, TokenResponse, TokenSet};

use super::callbacks::promise;
use super::driver::Driver;
use super::events::to_js;

/// Largest auth server reply read: a token response is a few KB.
const MAX_REPLY_BYTES: usize = 256 * 1024;

#[wasm_bindgen]
extern "C" {
    /// The global `Request` class, constructed from whatever the app passed to fetch.
    #[wasm_bindgen(js_name = Request)]
    type AnyRequest;
    #[wasm_bindgen(catch, constructor, js_class = "Request")]
    fn new(input: &JsValue, init: &JsValue) -> Result<AnyRequest, JsValue>;
    /// The page's own `fetch`, looked up when called (an app may wrap it).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> Promise;
    /// A promise, for `then` with a plain function (js-sys's `then` takes Rust closures).
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_call(this: &Thenable, on_fulfilled: &JsValue) -> Promise;
}

/// An auth server's answer, before interpretation.
pub struct Raw {
    /// HTTP status.
    pub status: u16,
    /// The body parsed as JSON, if it was JSON and not too large.
    pub body: Option<JsValue>,
    /// The `Date` header (epoch ms).
    pub date: Option<f64>,
}

impl Raw {
    /// The body as a JSON object, if it is one.
    fn object(&self) -> Option<&JsValue> {
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

    /// The token response in a 2xx body, with the access token's JWT times.
    pub fn token_response(&self) -> Option<(TokenResponse, Option<JwtTimes>)> {
        token_response(self.object()?)
    }
}

/// Reads a token response object with serde, and `exp`/`iat` of its access token if that
/// is a JWT.
pub fn token_response(value: &JsValue) -> Option<(TokenResponse, Option<JwtTimes>)> {
    let response: TokenResponse = serde_wasm_bindgen::from_value(value.clone()).ok()?;
    let jwt = match &response.access_token {
        crate::core::Field::Valid(t) => claims(t).and_then(|c| serde_wasm_bindgen::from_value(c).ok()),
        _ => None,
    };
    Some((response, jwt))
}

/// The claims of a JWT (its payload, a JSON object), or `None` for anything else.
pub fn claims(token: &str) -> Option<JsValue> {
    let bytes = jwt_payload(token)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let value = js_sys::JSON::parse(text).ok()?;
    (value.is_object() && !js_sys::Array::is_array(&value)).then_some(value)
}

/// The body of a POST.
pub enum Body<'a> {
    /// `application/x-www-form-urlencoded` fields; empty values are left out.
    Form(&'a [(&'a str, &'a str)]),
    /// A JSON text.
    Json(&'a str),
}

/// POSTs `body` to an auth server URL (see [`call`]).
pub async fn post(url: &str, body: Body<'_>, timeout_ms: f64) -> Result<Raw, Error> {
    call(url, Some(body), None, false, timeout_ms).await
}

/// A request to the auth server or the session endpoint: GET without a `body`, else POST;
/// `csrf` is a header (name, value) to add; `cookies` sends and accepts cookies on any origin
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
    let body = match read_capped(&response).await {
        Ok(bytes) => bytes.and_then(|b| js_sys::JSON::parse(std::str::from_utf8(&b).ok()?).ok()),
        Err(_) => return Err(failed(JsValue::UNDEFINED)),
    };
    Ok(Raw { status, body, date })
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

/// The refresh grant (RFC 6749 §6), as the machine's [`Reply`].
pub async fn refresh(d: &Driver, refresh_token: &str) -> Reply {
    let client_id = d.config.client_id.as_deref().unwrap_or_default();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
    // With an issuer, the token endpoint may still have to be discovered: a failure to is
    // one more transient failure, retried with backoff.
    let provider = match super::oidc::provider(d).await {
        Ok(p) => p,
        Err(Error::Timeout) => return Reply::Timeout,
        Err(_) => return Reply::Network,
    };
    match post(&provider.token, Body::Form(&form), d.config.request_timeout_ms).await {
        Err(Error::Timeout) => Reply::Timeout,
        Err(_) => Reply::Network,
        Ok(raw) if raw.ok() => match raw.token_response() {
            Some((response, jwt)) => Reply::Tokens { response, jwt, date: raw.date },
            None => Reply::Garbled,
        },
        Ok(raw) => Reply::Status { status: raw.status, oauth_error: raw.oauth_error() },
    }
}

/// Revocation (RFC 7009); `None` when it worked.
pub async fn revoke(d: &Driver, token: &str) -> Option<Error> {
    let provider = match super::oidc::provider(d).await {
        Ok(p) => p,
        Err(e) => return Some(e),
    };
    let url = provider.revocation.as_deref()?;
    let client_id = d.config.client_id.as_deref().unwrap_or_default();
    let form = [("token", token), ("client_id", client_id)];
    match post(url, Body::Form(&form), d.config.request_timeout_ms).await {
        Ok(raw) if raw.ok() => None,
        Ok(_) => Some(Error::Network),
        Err(e) => Some(e),
    }
}

/// A cookie session's body, validated (`{ csrfToken, expiresAt, user }`).
pub fn session_tokens(raw: &Raw) -> Result<TokenSet, Error> {
    let body = raw.object().ok_or(Error::TokenResponse("(body)", "is not a JSON object"))?;
    let response: SessionResponse = serde_wasm_bindgen::from_value(body.clone()).unwrap_or_default();
    let user = Reflect::get(body, &"user".into()).ok().filter(|u| !u.is_undefined() && !u.is_null());
    let user = user.and_then(|u| js_sys::JSON::stringify(&u).ok()).and_then(|u| u.as_string());
    TokenSet::from_session(response, user, js_sys::Date::now(), raw.date)
}

/// A session endpoint's answer, as the machine's [`Reply`].
fn session_reply(answer: Result<Raw, Error>) -> Reply {
    match answer {
        Err(Error::Timeout) => Reply::Timeout,
        Err(_) => Reply::Network,
        Ok(raw) if raw.ok() => session_tokens(&raw).map_or(Reply::Garbled, Reply::Session),
        Ok(raw) => Reply::Status { status: raw.status, oauth_error: raw.oauth_error() },
    }
}

/// `{sessionUrl}{path}`.
fn session_url(d: &Driver, path: &str) -> String {
    let base = d.endpoints.session_url.as_deref().unwrap_or_default().trim_end_matches('/');
    format!("{base}{path}")
}

/// Cookie mode: `GET {sessionUrl}`.
pub async fn read_session(d: &Driver) -> Reply {
    session_reply(call(&session_url(d, ""), None, None, true, d.config.request_timeout_ms).await)
}

/// Cookie mode: `POST {sessionUrl}/refresh` under the CSRF token: extends the session.
pub async fn extend_session(d: &Driver, csrf: &str) -> Reply {
    let header = Some((d.config.csrf_header.as_str(), csrf));
    let url = session_url(d, "/refresh");
    session_reply(call(&url, Some(Body::Json("{}")), header, true, d.config.request_timeout_ms).await)
}

/// Cookie mode: `POST {sessionUrl}/logout` under the CSRF token; `None` when it worked.
pub async fn end_session(d: &Driver, csrf: &str) -> Option<Error> {
    let header = Some((d.config.csrf_header.as_str(), csrf));
    match call(&session_url(d, "/logout"), Some(Body::Json("{}")), header, true, d.config.request_timeout_ms).await {
        Ok(raw) if raw.ok() || raw.status == 401 => None,
        Ok(_) => Some(Error::Network),
        Err(e) => Some(e),
    }
}

fn bearer(token: &str) -> String {
    let mut header = String::with_capacity(7 + token.len());
    header.push_str("Bearer ");
    header.push_str(token);
    header
}

fn set_bearer(request: &web_sys::Request, token: &str) -> Result<(), JsValue> {
    request.headers().set("authorization", &bearer(token))
}

/// `session.fetch(input, init)`: a drop-in for `window.fetch`.
pub fn fetch(d: &Rc<Driver>, input: &JsValue, init: &JsValue) -> Promise {
    // `new Request` parses and refuses exactly as fetch does (a TypeError).
    let request: web_sys::Request = match AnyRequest::new(input, init) {
        Ok(r) => r.unchecked_into(),
        Err(e) => return Promise::reject(&e),
    };
    if !policy::url_in_origins(&request.url(), &d.endpoints.token_origins) {
        return global_fetch(&request);
    }
    if d.config.mode == Mode::Cookie {
        return promise(with_cookie(d.clone(), request));
    }
    // The fast path: a fresh token needs a deadline check, the header, and a handler that
    // passes any answer but a 401 straight through. No Rust future is involved.
    let bearer = d.machine().token_now(js_sys::Date::now()).map(|(token, seq)| (bearer(token), seq));
    let Some((bearer, seq)) = bearer else { return promise(with_token(d.clone(), request)) };
    let retry = match spare(&request) {
        Ok(retry) => retry,
        Err(e) => return Promise::reject(&e),
    };
    if let Err(e) = request.headers().set("authorization", &bearer) {
        return Promise::reject(&e);
    }
    let handler: JsValue = d.on_response().bind2(&JsValue::UNDEFINED, &retry, &JsValue::from_f64(seq as f64)).into();
    global_fetch(&request).unchecked_into::<Thenable>().then_call(&handler)
}

/// An unsent copy of `request` for a retry after a 401: a body can be read once. A request
/// without a body (GET, HEAD) is sent again as it is.
fn spare(request: &web_sys::Request) -> Result<web_sys::Request, JsValue> {
    match request.body() {
        None => Ok(Clone::clone(request)),
        Some(_) => request.clone(),
    }
}

/// The fast path's response handler, `(retry, seq, response)`: the response itself unless
/// it is a 401, then a promise of the retry (if the machine allows one).
pub fn on_response(d: &Rc<Driver>, retry: JsValue, seq: JsValue, response: JsValue) -> JsValue {
    if response.unchecked_ref::<Response>().status() != 401 {
        return response;
    }
    let Ok(retry) = retry.dyn_into::<web_sys::Request>() else { return response };
    let seq = seq.as_f64().filter(|s| s.is_finite() && *s >= 0.0).map_or(0, |s| s as u64);
    promise(after_401(d.clone(), retry, seq, response)).into()
}

/// The slow path: the machine decides (wait for a refresh, send without a token, fail).
async fn with_token(d: Rc<Driver>, request: web_sys::Request) -> Result<JsValue, JsValue> {
    let (token, seq) = match d.clone().ask(|ticket| Input::TokenWanted { ticket }).await {
        Answer::Token { token, seq } => (token, seq),
        Answer::Failed(e) => return Err(to_js(&e)),
        Answer::NoToken | Answer::Done => return JsFuture::from(global_fetch(&request)).await,
    };
    let retry = spare(&request)?;
    set_bearer(&request, &token)?;
    let response = JsFuture::from(global_fetch(&request)).await?;
    if response.unchecked_ref::<Response>().status() != 401 {
        return Ok(response);
    }
    after_401(d, retry, seq, response).await
}

/// Cookie mode: the session cookie goes with the request (credentials `include`, so that
/// `allowedOrigins` get it too), and the CSRF token on unsafe methods. A 401 ends the session
/// in every tab; a 403 naming a CSRF failure re-reads the session once and retries once.
async fn with_cookie(d: Rc<Driver>, request: web_sys::Request) -> Result<JsValue, JsValue> {
    let init = RequestInit::new();
    init.set_credentials(RequestCredentials::Include);
    let request = web_sys::Request::new_with_request_and_init(&request, &init)?;
    let unsafe_method = !matches!(request.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let csrf = match d.clone().ask(|ticket| Input::TokenWanted { ticket }).await {
        Answer::Token { token, seq } => Some((token, seq)),
        Answer::Failed(e) => return Err(to_js(&e)),
        Answer::NoToken | Answer::Done => None,
    };
    let retry = spare(&request)?;
    let header = d.config.csrf_header.clone();
    let header = header.as_str();
    if let (true, Some((csrf, _))) = (unsafe_method, &csrf) {
        request.headers().set(header, csrf)?;
    }
    let response = JsFuture::from(global_fetch(&request)).await?;
    let status = response.unchecked_ref::<Response>().status();
    let Some((_, seq)) = csrf else { return Ok(response) };
    match status {
        401 => {
            d.ask(|ticket| Input::Unauthorized { ticket, seq }).await;
            Ok(response)
        }
        403 if unsafe_method && names_csrf(&response).await => {
            match d.ask(|ticket| Input::CsrfRejected { ticket }).await {
                Answer::Token { token, .. } => {
                    retry.headers().set(header, &token)?;
                    JsFuture::from(global_fetch(&retry)).await
                }
                _ => Ok(response),
            }
        }
        _ => Ok(response),
    }
}

/// Does this 403 say the CSRF token was refused? A JSON body whose `error` mentions "csrf".
/// Read from a copy: the app gets the response untouched.
async fn names_csrf(response: &JsValue) -> bool {
    let Ok(copy) = response.unchecked_ref::<Response>().clone() else { return false };
    let Ok(json) = copy.json() else { return false };
    let Ok(body) = JsFuture::from(json).await else { return false };
    let error = Reflect::get(&body, &"error".into()).ok().and_then(|e| e.as_string());
    error.is_some_and(|e| e.to_ascii_lowercase().contains("csrf"))
}

/// After a 401 on the token of counter `seq`: retry once with another token if the machine
/// has (or gets) one, else the 401 goes to the app.
async fn after_401(d: Rc<Driver>, retry: web_sys::Request, seq: u64, response: JsValue) -> Result<JsValue, JsValue> {
    match d.ask(|ticket| Input::Unauthorized { ticket, seq }).await {
        Answer::Token { token, seq: newer } if newer != seq => {
            set_bearer(&retry, &token)?;
            JsFuture::from(global_fetch(&retry)).await
        }
        _ => Ok(response),
    }
}
