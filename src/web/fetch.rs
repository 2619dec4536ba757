//! `session.fetch`: a drop-in for `window.fetch` that adds the token for the page's origin
//! and `allowedOrigins` only. A fresh token takes the fast path (a header, and a handler that
//! passes any answer but a 401 straight through); otherwise the machine is asked for a
//! token. What a refused request leads to is decided by the machine and
//! [`crate::core::policy`] (`refusal`, `names_csrf`, `retry_after_401`).

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCredentials, RequestInit, Response};

use crate::core::machine::{Answer, Input};
use crate::core::policy::{self, Refusal};

use super::callbacks::promise;
use super::dpop::Keys;
use super::events::to_js;
use super::http::global_fetch;
use super::sink::{Kept, Sink};

#[wasm_bindgen]
extern "C" {
    /// The global `Request` class, constructed from whatever the app passed to fetch.
    #[wasm_bindgen(js_name = Request)]
    type AnyRequest;
    #[wasm_bindgen(catch, constructor, js_class = "Request")]
    fn new(input: &JsValue, init: &JsValue) -> Result<AnyRequest, JsValue>;
    /// A promise, for `then` with a plain function (js-sys's `then` takes Rust closures).
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_call(this: &Thenable, on_fulfilled: &JsValue) -> Promise;
}

/// `session.fetch` of one session.
pub struct Fetch {
    /// Serialized origins that may receive the token.
    origins: Vec<String>,
    /// Cookie mode: the header carrying the CSRF token; `None` in token mode.
    csrf_header: Option<String>,
    /// DPoP: the session's keys (every request then takes the slow path: proofs are signed
    /// asynchronously).
    dpop: Option<Keys>,
    sink: Sink,
    /// The fast path's response handler, made once. Owned by JS: a fetch may still be in
    /// flight when the session is dropped, and its handler must stay callable (it then
    /// passes the response through). One small closure per session.
    on_response: Function,
}

/// `"Bearer <token>"`.
pub fn bearer(token: &str) -> String {
    let mut header = String::with_capacity(7 + token.len());
    header.push_str("Bearer ");
    header.push_str(token);
    header
}

fn set_bearer(request: &web_sys::Request, token: &str) -> Result<(), JsValue> {
    request.headers().set("authorization", &bearer(token))
}

impl Fetch {
    /// `session.fetch` for the token `origins`, in cookie mode with `csrf_header`, asking
    /// the session through `sink`.
    pub fn new(origins: Vec<String>, csrf_header: Option<String>, dpop: Option<Keys>, sink: Sink) -> Fetch {
        let handler_sink = sink.clone();
        let on_response =
            Closure::<dyn FnMut(JsValue, JsValue, JsValue) -> JsValue>::new(move |retry, seq, response| {
                match handler_sink.keep() {
                    Some(kept) => on_response(kept, retry, seq, response),
                    None => response,
                }
            });
        Fetch { origins, csrf_header, dpop, sink, on_response: on_response.into_js_value().unchecked_into() }
    }

    /// Does the token go to the normalized absolute `url`?
    pub fn carries_token(&self, url: &str) -> bool {
        policy::url_in_origins(url, &self.origins)
    }

    /// `session.fetch(input, init)`. `fresh` gives the `Authorization` header of a token
    /// usable right now without asking the machine, and its set's counter.
    pub fn send(&self, input: &JsValue, init: &JsValue, fresh: impl FnOnce() -> Option<(String, u64)>) -> Promise {
        // `new Request` parses and refuses exactly as fetch does (a TypeError).
        let request: web_sys::Request = match AnyRequest::new(input, init) {
            Ok(r) => r.unchecked_into(),
            Err(e) => return Promise::reject(&e),
        };
        if !policy::url_in_origins(&request.url(), &self.origins) {
            return global_fetch(&request);
        }
        let Some(kept) = self.sink.keep() else { return global_fetch(&request) };
        if let Some(header) = &self.csrf_header {
            return promise(with_cookie(kept, header.clone(), request));
        }
        if self.dpop.is_some() {
            return promise(with_token(kept, request, self.dpop.clone()));
        }
        // The fast path: a fresh token needs a deadline check, the header, and a handler that
        // passes any answer but a 401 straight through. No Rust future is involved.
        let Some((bearer, seq)) = fresh() else { return promise(with_token(kept, request, None)) };
        let retry = match spare(&request) {
            Ok(retry) => retry,
            Err(e) => return Promise::reject(&e),
        };
        if let Err(e) = request.headers().set("authorization", &bearer) {
            return Promise::reject(&e);
        }
        let handler: JsValue =
            self.on_response.bind2(&JsValue::UNDEFINED, &retry, &JsValue::from_f64(seq as f64)).into();
        global_fetch(&request).unchecked_into::<Thenable>().then_call(&handler)
    }
}

/// An unsent copy of `request` for a retry: a body can be read once. A request without a
/// body (GET, HEAD) is sent again as it is.
fn spare(request: &web_sys::Request) -> Result<web_sys::Request, JsValue> {
    match request.body() {
        None => Ok(Clone::clone(request)),
        Some(_) => request.clone(),
    }
}

fn status(response: &JsValue) -> u16 {
    response.unchecked_ref::<Response>().status()
}

/// The fast path's response handler, `(retry, seq, response)`: the response itself unless
/// it refuses the token, then a promise of what follows.
fn on_response(kept: Kept, retry: JsValue, seq: JsValue, response: JsValue) -> JsValue {
    if policy::refusal(status(&response), false, false) != Refusal::Unauthorized {
        return response;
    }
    let Ok(retry) = retry.dyn_into::<web_sys::Request>() else { return response };
    let seq = seq.as_f64().filter(|s| s.is_finite() && *s >= 0.0).map_or(0, |s| s as u64);
    promise(after_401(kept, retry, seq, response, None)).into()
}

/// Puts `token` on `request`: `Bearer`, or with DPoP `DPoP` and a proof for this method,
/// URL and token (RFC 9449 §7).
async fn authorize(kept: &Kept, request: &web_sys::Request, token: &str, keys: Option<&Keys>) -> Result<(), JsValue> {
    let Some(keys) = keys else { return set_bearer(request, token) };
    let proof = keys.header(kept, None, &request.method(), &request.url(), Some(token)).await.map_err(|e| to_js(&e))?;
    request.headers().set("authorization", &format!("DPoP {token}"))?;
    match proof {
        Some(proof) => request.headers().set("dpop", &proof),
        None => Ok(()),
    }
}

/// Sends `request`; with DPoP, reports the answer's `DPoP-Nonce`, and when the resource
/// server asks for it (401, `WWW-Authenticate: DPoP error="use_dpop_nonce"`) sends `spare`
/// once more, signed with the nonce, whatever the method (its body is a copy). Returns the
/// answer and an unsent copy for a 401 retry.
async fn send(
    kept: &Kept,
    request: web_sys::Request,
    spare_copy: web_sys::Request,
    token: &str,
    keys: Option<&Keys>,
) -> Result<(JsValue, web_sys::Request), JsValue> {
    let response = JsFuture::from(global_fetch(&request)).await?;
    let Some(keys) = keys else { return Ok((response, spare_copy)) };
    let headers = response.unchecked_ref::<Response>().headers();
    keys.note_nonce(kept, &request.url(), headers.get("dpop-nonce").ok().flatten());
    let challenge = headers.get("www-authenticate").ok().flatten().unwrap_or_default();
    if status(&response) != 401 || !policy::asks_dpop_nonce(&challenge) {
        return Ok((response, spare_copy));
    }
    let next = spare(&spare_copy)?;
    authorize(kept, &spare_copy, token, Some(keys)).await?;
    let response = JsFuture::from(global_fetch(&spare_copy)).await?;
    let nonce = response.unchecked_ref::<Response>().headers().get("dpop-nonce").ok().flatten();
    keys.note_nonce(kept, &spare_copy.url(), nonce);
    Ok((response, next))
}

/// The slow path: the machine decides (wait for a refresh, send without a token, fail).
async fn with_token(kept: Kept, request: web_sys::Request, keys: Option<Keys>) -> Result<JsValue, JsValue> {
    let (token, seq) = match kept.ask(|ticket| Input::TokenWanted { ticket }).await {
        Answer::Token { token, seq } => (token, seq),
        Answer::Failed(e) => return Err(to_js(&e)),
        Answer::NoToken | Answer::Done | Answer::AppState(_) => return JsFuture::from(global_fetch(&request)).await,
    };
    let retry = spare(&request)?;
    authorize(&kept, &request, &token, keys.as_ref()).await?;
    let (response, retry) = send(&kept, request, retry, &token, keys.as_ref()).await?;
    if policy::refusal(status(&response), false, false) != Refusal::Unauthorized {
        return Ok(response);
    }
    after_401(kept, retry, seq, response, keys).await
}

/// After a 401 on the token of set `seq`: the machine may offer another token; the request
/// is retried once with it ([`policy::retry_after_401`]), else the 401 goes to the app.
async fn after_401(
    kept: Kept,
    retry: web_sys::Request,
    seq: u64,
    response: JsValue,
    keys: Option<Keys>,
) -> Result<JsValue, JsValue> {
    match kept.ask(|ticket| Input::Unauthorized { ticket, seq }).await {
        Answer::Token { token, seq: offered } if policy::retry_after_401(seq, offered) => {
            let spare_copy = spare(&retry)?;
            authorize(&kept, &retry, &token, keys.as_ref()).await?;
            Ok(send(&kept, retry, spare_copy, &token, keys.as_ref()).await?.0)
        }
        _ => Ok(response),
    }
}

/// Cookie mode: the session cookie goes with the request (credentials `include`, so that
/// `allowedOrigins` get it too), and the CSRF token in `header` on unsafe methods. A 401 ends
/// the session in every tab; a 403 naming a CSRF failure re-reads the session once and
/// retries once.
async fn with_cookie(kept: Kept, header: String, request: web_sys::Request) -> Result<JsValue, JsValue> {
    let init = RequestInit::new();
    init.set_credentials(RequestCredentials::Include);
    let request = web_sys::Request::new_with_request_and_init(&request, &init)?;
    let sends_csrf = policy::sends_csrf(&request.method());
    let csrf = match kept.ask(|ticket| Input::TokenWanted { ticket }).await {
        Answer::Token { token, seq } => Some((token, seq)),
        Answer::Failed(e) => return Err(to_js(&e)),
        Answer::NoToken | Answer::Done | Answer::AppState(_) => None,
    };
    let retry = spare(&request)?;
    if let (true, Some((csrf, _))) = (sends_csrf, &csrf) {
        request.headers().set(&header, csrf)?;
    }
    let response = JsFuture::from(global_fetch(&request)).await?;
    let Some((_, seq)) = csrf else { return Ok(response) };
    match policy::refusal(status(&response), true, sends_csrf) {
        Refusal::Unauthorized => {
            kept.ask(|ticket| Input::Unauthorized { ticket, seq }).await;
            Ok(response)
        }
        Refusal::Forbidden if policy::names_csrf(error_of(&response).await.as_deref()) => {
            match kept.ask(|ticket| Input::CsrfRejected { ticket }).await {
                Answer::Token { token, .. } => {
                    retry.headers().set(&header, &token)?;
                    JsFuture::from(global_fetch(&retry)).await
                }
                _ => Ok(response),
            }
        }
        Refusal::Forbidden | Refusal::None => Ok(response),
    }
}

/// The `error` of a response's JSON body, read from a copy: the app gets the response
/// untouched.
async fn error_of(response: &JsValue) -> Option<String> {
    let copy = response.unchecked_ref::<Response>().clone().ok()?;
    let body = JsFuture::from(copy.json().ok()?).await.ok()?;
    Reflect::get(&body, &"error".into()).ok()?.as_string()
}
