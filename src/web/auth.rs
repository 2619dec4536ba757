//! The auth server's calls, each turning a raw reply ([`Raw`]) into what the machine reads:
//! the refresh grant (RFC 6749 §6) and revocation (RFC 7009) at OAuth 2.0 endpoints
//! (OpenID Connect's discovered at first need), the code exchange, `login()`, and cookie
//! mode's session endpoint (read, extend, end). The answers to the machine's effects go to
//! the session's sink.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use wasm_bindgen::JsValue;

#[cfg(feature = "oidc")]
use crate::core::config::check_transport;
use crate::core::error::Error;
use crate::core::machine::{Credential, Input, Reply, Ticket};
use crate::core::oidc::Provider;
#[cfg(feature = "oidc")]
use crate::core::oidc::{discovery_url, Discovery, IdClaims};
use crate::core::policy;
use crate::core::token::{jwt_payload, JwtTimes, SessionResponse, TokenResponse, TokenSet};
use crate::core::Field;

use super::callbacks::spawn;
use super::dpop::{KeyPair, Keys};
use super::http::{call, Body, Raw};
use super::sink::Kept;

/// Where a session's requests go: OAuth 2.0 endpoints, or a cookie session's endpoint.
pub enum AuthServer {
    /// Tokens in the browser.
    OAuth(OAuth),
    /// Cookie mode.
    Cookie(CookieSession),
}

/// OAuth 2.0 (and OpenID Connect) endpoints.
pub struct OAuth {
    /// Sent as `client_id`.
    pub client_id: String,
    /// The endpoints as configured.
    pub configured: Provider,
    /// The issuer whose discovery document gives the endpoints the config leaves out.
    pub discover_from: Option<String>,
    /// Give up on a request after this long (`requestTimeoutMs`).
    pub timeout_ms: f64,
    /// The endpoints once known.
    pub found: RefCell<Option<Rc<Provider>>>,
    /// DPoP: the session's keys, when `dpop: true`.
    pub dpop: Option<Keys>,
}

/// Cookie mode: the session endpoint (`GET` reads, `POST /refresh` extends, `POST /logout`
/// ends), under the CSRF token in `csrf_header`.
pub struct CookieSession {
    /// `sessionUrl`, absolute.
    pub url: String,
    /// The header carrying the CSRF token.
    pub csrf_header: String,
    /// Give up on a request after this long (`requestTimeoutMs`).
    pub timeout_ms: f64,
}

impl AuthServer {
    /// Carries out [`crate::core::machine::Effect::Refresh`] `id`: the refresh grant with a
    /// refresh token (cookie mode: extends the session under the CSRF token). The answer
    /// goes to `kept` as [`Input::RefreshReply`].
    pub fn refresh(self: &Rc<Self>, id: u32, credential: Credential, kept: Kept) {
        let server = self.clone();
        spawn(async move {
            let reply = match &*server {
                AuthServer::OAuth(o) => o.refresh(credential.secret(), &kept).await,
                AuthServer::Cookie(c) => c.extend(credential.secret()).await,
            };
            kept.send(Input::RefreshReply { id, reply });
        });
    }

    /// Carries out [`crate::core::machine::Effect::Revoke`]: revokes a token (cookie mode:
    /// ends the server session under the CSRF token). The outcome goes to `kept` as
    /// [`Input::RevokeReply`].
    pub fn revoke(self: &Rc<Self>, ticket: Option<Ticket>, credential: Credential, kept: Kept) {
        let server = self.clone();
        spawn(async move {
            let error = match &*server {
                AuthServer::OAuth(o) => o.revoke(credential.secret(), &kept).await,
                AuthServer::Cookie(c) => c.end(credential.secret()).await,
            };
            kept.send(Input::RevokeReply { ticket, error });
        });
    }

    #[cfg(feature = "oidc")]
    /// Carries out [`crate::core::machine::Effect::Discover`]: the provider's endpoints
    /// (found once per session) go to `kept` as [`Input::Discovered`].
    pub fn discover(self: &Rc<Self>, kept: Kept) {
        let server = self.clone();
        spawn(async move {
            let result = match server.oauth() {
                Some(o) => o.provider().await.map(|p| (*p).clone()),
                None => Err(Error::Config("issuer".into(), "is required to sign in with OpenID Connect")),
            };
            kept.send(Input::Discovered(result));
        });
    }

    #[cfg(feature = "oidc")]
    /// Carries out [`crate::core::machine::Effect::ExchangeCode`] `id`: POSTs `form` to the
    /// token endpoint `url`; the reply, with its ID token's claims, goes to `kept` as
    /// [`Input::CodeReply`].
    pub fn exchange_code(self: &Rc<Self>, id: u32, url: String, form: Vec<(String, String)>, kept: Kept) {
        let server = self.clone();
        spawn(async move {
            let Some(o) = server.oauth() else { return };
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            // The code is bound to the key made for this sign-in (`dpop_jkt`).
            let key = o.dpop.as_ref().and_then(|k| k.signing_in());
            let reply = token_reply(o.send(&kept, key, &url, Body::Form(&form), false).await);
            let id_claims = match &reply {
                Reply::Tokens { response, .. } => response.id_token.clone().valid().map(|t| id_claims(&t)),
                _ => None,
            };
            kept.send(Input::CodeReply { id, reply, id_claims });
        });
    }

    /// Carries out [`crate::core::machine::Effect::ReadSession`] (cookie mode): the answer
    /// goes to `kept` as [`Input::SessionRead`].
    pub fn read_session(self: &Rc<Self>, kept: Kept) {
        let server = self.clone();
        spawn(async move {
            let reply = match &*server {
                AuthServer::Cookie(c) => c.read().await,
                AuthServer::OAuth(_) => Reply::Network, // no session endpoint to read
            };
            kept.send(Input::SessionRead { reply });
        });
    }

    /// `login()`: POSTs the JSON text `json` to `url` (cookie mode: with cookies, and the
    /// server sets the session cookie) and reads the sign-in's reply. With DPoP, signed with
    /// a new key (adopted when the machine signs the tokens in) and the tokens must be bound.
    pub async fn login(&self, url: &str, json: &str, kept: &Kept) -> Result<TokenSet, Error> {
        let raw = match self {
            AuthServer::OAuth(o) => {
                let key = match &o.dpop {
                    Some(keys) => {
                        keys.new_sign_in(false).await?;
                        keys.signing_in()
                    }
                    None => None,
                };
                o.send(kept, key, url, Body::Json(json), true).await?
            }
            AuthServer::Cookie(c) => call(url, Some(Body::Json(json)), None, true, c.timeout_ms).await?,
        };
        let dpop = self.oauth().is_some_and(|o| o.dpop.is_some());
        if dpop && raw.ok() {
            let token_type = raw.object().and_then(|b| Reflect::get(b, &"token_type".into()).ok()?.as_string());
            if !policy::dpop_bound(token_type.as_deref()) {
                return Err(Error::Dpop(crate::core::machine::DPOP_UNBOUND));
            }
        }
        signed_in(&raw, matches!(self, AuthServer::Cookie(_)))
    }

    /// The OAuth 2.0 endpoints, unless in cookie mode.
    pub fn oauth(&self) -> Option<&OAuth> {
        match self {
            AuthServer::OAuth(o) => Some(o),
            AuthServer::Cookie(_) => None,
        }
    }
}

/// A discovered endpoint: absolute, and https (or http to this machine).
#[cfg(feature = "oidc")]
fn discovered(field: &'static str, raw: &str) -> Result<String, Error> {
    let url = web_sys::Url::new(raw).map_err(|_| Error::Discovery(field, "is not an absolute URL"))?;
    check_transport(field, &url.protocol(), &url.hostname())
        .map_err(|_| Error::Discovery(field, "must be an https URL (or http to localhost)"))?;
    Ok(url.href())
}

impl OAuth {
    /// The provider's endpoints, discovered once per session (a failed discovery is tried
    /// again by the next call that needs it).
    pub async fn provider(&self) -> Result<Rc<Provider>, Error> {
        if let Some(p) = self.found.borrow().clone() {
            return Ok(p);
        }
        let p = self.configured.clone();
        #[cfg(feature = "oidc")]
        let p = match &self.discover_from {
            Some(issuer) => discover(issuer, p, self.timeout_ms).await?,
            None => p,
        };
        let p = Rc::new(p);
        *self.found.borrow_mut() = Some(p.clone());
        Ok(p)
    }

    /// POSTs `body` to `url`, with DPoP a proof from `key` (the current key if `None`),
    /// and reports the answer's `DPoP-Nonce` and `Date` first. `retry_nonce`: a
    /// `use_dpop_nonce` answer is retried here once with the new nonce (the machine retries
    /// the refresh and the code exchange itself).
    async fn send(
        &self,
        kept: &Kept,
        key: Option<KeyPair>,
        url: &str,
        body: Body<'_>,
        retry_nonce: bool,
    ) -> Result<Raw, Error> {
        let mut tries = if retry_nonce { 2 } else { 1 };
        loop {
            tries -= 1;
            let proof = match &self.dpop {
                Some(keys) => keys.header(kept, key.clone(), "POST", url, None).await?,
                None => None,
            };
            let header = proof.as_deref().map(|p| ("DPoP", p));
            let raw = call(url, Some(body), header, false, self.timeout_ms).await?;
            let Some(keys) = &self.dpop else { return Ok(raw) };
            keys.server_date(js_sys::Date::now(), raw.date);
            keys.note_nonce(kept, url, raw.dpop_nonce.clone());
            let use_nonce = policy::classify(raw.status, raw.oauth_error().as_deref()) == policy::Failure::UseNonce;
            if !use_nonce || tries == 0 {
                return Ok(raw);
            }
        }
    }

    /// The refresh grant. With an issuer, the token endpoint may still have to be
    /// discovered: a failure to is one more transient failure, retried with backoff.
    async fn refresh(&self, refresh_token: &str, kept: &Kept) -> Reply {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return token_reply(Err(e)),
        };
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &self.client_id)];
        token_reply(self.send(kept, None, &provider.token, Body::Form(&form), false).await)
    }

    /// Revocation; `None` when it worked (or there is no revocation endpoint).
    async fn revoke(&self, token: &str, kept: &Kept) -> Option<Error> {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Some(e),
        };
        let url = provider.revocation.as_deref()?;
        let form = [("token", token), ("client_id", &self.client_id)];
        match self.send(kept, None, url, Body::Form(&form), true).await {
            Ok(raw) if raw.ok() => None,
            Ok(_) => Some(Error::Network),
            Err(e) => Some(e),
        }
    }
}

/// `p` with the endpoints it leaves out taken from `issuer`'s discovery document (OpenID
/// Connect Discovery 1.0), checked against the issuer.
#[cfg(feature = "oidc")]
async fn discover(issuer: &str, mut p: Provider, timeout_ms: f64) -> Result<Provider, Error> {
    let raw = call(&discovery_url(issuer), None, None, false, timeout_ms).await?;
    let body = raw.body.filter(|b| raw.status == 200 && b.is_object() && !Array::is_array(b));
    let body = body.ok_or(Error::Discovery("(document)", "is not a JSON object (HTTP status other than 200?)"))?;
    let doc: Discovery = serde_wasm_bindgen::from_value(body)
        .map_err(|_| Error::Discovery("(document)", "is not a discovery document"))?;
    let urls = doc.validate(issuer)?;
    p.authorization = Some(discovered("authorization_endpoint", &urls.authorization)?);
    if p.token.is_empty() {
        p.token = discovered("token_endpoint", &urls.token)?;
    }
    if p.revocation.is_none() {
        p.revocation = urls.revocation.as_deref().map(|u| discovered("revocation_endpoint", u)).transpose()?;
    }
    if p.end_session.is_none() {
        p.end_session = urls.end_session.as_deref().map(|u| discovered("end_session_endpoint", u)).transpose()?;
    }
    Ok(p)
}

impl CookieSession {
    /// `{sessionUrl}{path}`.
    fn at(&self, path: &str) -> String {
        let base = self.url.trim_end_matches('/');
        format!("{base}{path}")
    }

    /// `GET {sessionUrl}`.
    async fn read(&self) -> Reply {
        session_reply(call(&self.at(""), None, None, true, self.timeout_ms).await)
    }

    /// `POST {sessionUrl}/refresh` under the CSRF token: extends the session.
    async fn extend(&self, csrf: &str) -> Reply {
        let header = Some((self.csrf_header.as_str(), csrf));
        session_reply(call(&self.at("/refresh"), Some(Body::Json("{}")), header, true, self.timeout_ms).await)
    }

    /// `POST {sessionUrl}/logout` under the CSRF token; `None` when the session is over.
    async fn end(&self, csrf: &str) -> Option<Error> {
        let header = Some((self.csrf_header.as_str(), csrf));
        match call(&self.at("/logout"), Some(Body::Json("{}")), header, true, self.timeout_ms).await {
            Ok(raw) if policy::session_ended(raw.status) => None,
            Ok(_) => Some(Error::Network),
            Err(e) => Some(e),
        }
    }
}

/// Reads a token response object with serde, and `exp`/`iat` of its access token if that
/// is a JWT.
pub fn token_response(value: &JsValue) -> Option<(TokenResponse, Option<JwtTimes>)> {
    let response: TokenResponse = serde_wasm_bindgen::from_value(value.clone()).ok()?;
    let jwt = match &response.access_token {
        Field::Valid(t) => claims(t).and_then(|c| serde_wasm_bindgen::from_value(c).ok()),
        _ => None,
    };
    Some((response, jwt))
}

/// The claims of a JWT (its payload, a JSON object), or `None` for anything else.
pub fn claims(token: &str) -> Option<JsValue> {
    let bytes = jwt_payload(token)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let value = js_sys::JSON::parse(text).ok()?;
    (value.is_object() && !Array::is_array(&value)).then_some(value)
}

/// The claims of an ID token, as the core checks them.
#[cfg(feature = "oidc")]
fn id_claims(token: &str) -> Result<IdClaims, Error> {
    let claims = claims(token).ok_or(Error::IdToken("id_token", "is not a JWT"))?;
    serde_wasm_bindgen::from_value(claims).map_err(|_| Error::IdToken("id_token", "has unreadable claims"))
}

/// A sign-in's reply (`login()`) as the session's tokens: a cookie
/// session's body in cookie mode, else a token response ([`TokenSet::from_sign_in`]).
fn signed_in(raw: &Raw, cookie: bool) -> Result<TokenSet, Error> {
    let now = js_sys::Date::now();
    if cookie && raw.ok() {
        return session_tokens(raw, now);
    }
    TokenSet::from_sign_in(raw.status, raw.oauth_error(), raw.object().and_then(token_response), now, raw.date)
}

/// A token endpoint's answer to the refresh grant, as the machine's [`Reply`].
fn token_reply(answer: Result<Raw, Error>) -> Reply {
    match answer {
        Err(Error::Timeout) => Reply::Timeout,
        Err(_) => Reply::Network,
        Ok(raw) if raw.ok() => match raw.object().and_then(token_response) {
            Some((response, jwt)) => Reply::Tokens { response, jwt, date: raw.date },
            None => Reply::Garbled,
        },
        Ok(raw) => Reply::Status { status: raw.status, oauth_error: raw.oauth_error() },
    }
}

/// A cookie session's body, validated (`{ csrfToken, expiresAt, user }`), that arrived at
/// `now`.
fn session_tokens(raw: &Raw, now: f64) -> Result<TokenSet, Error> {
    let body = raw.object().ok_or(Error::TokenResponse("(body)", "is not a JSON object"))?;
    let response: SessionResponse = serde_wasm_bindgen::from_value(body.clone()).unwrap_or_default();
    let user = Reflect::get(body, &"user".into()).ok().filter(|u| !u.is_undefined() && !u.is_null());
    let user = user.and_then(|u| js_sys::JSON::stringify(&u).ok()).and_then(|u| u.as_string());
    TokenSet::from_session(response, user, now, raw.date)
}

/// A session endpoint's answer, as the machine's [`Reply`].
fn session_reply(answer: Result<Raw, Error>) -> Reply {
    match answer {
        Err(Error::Timeout) => Reply::Timeout,
        Err(_) => Reply::Network,
        Ok(raw) if raw.ok() => session_tokens(&raw, js_sys::Date::now()).map_or(Reply::Garbled, Reply::Session),
        Ok(raw) => Reply::Status { status: raw.status, oauth_error: raw.oauth_error() },
    }
}
