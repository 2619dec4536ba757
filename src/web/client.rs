//! The Rust API: [`Session`], the library itself. The JS class (`js.rs`) is a translation of
//! JS values to these calls and back; every behaviour is here (or below it, in the driver
//! and the core).
//!
//! Methods whose first steps must happen at the call (reading the options, opening a popup
//! in a click, reading the sign-in in progress) are plain functions doing those steps and
//! returning a future for the rest; futures are `'static` (a `Session` is a cheap handle),
//! ready for `wasm_bindgen_futures::spawn_local`.

use std::future::Future;
use std::rc::{Rc, Weak};

use js_sys::Promise;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::config::{Config, Mode, SessionConfig, StorageMode};
use crate::core::error::Error;
use crate::core::events::Event;
use crate::core::machine::{Answer, Input};
use crate::core::token::TokenSet;

use super::auth;
use super::driver::Driver;
use super::events::{from_js, Subscriber};
use super::fetch;
#[cfg(feature = "oidc")]
use super::oidc;
use super::resolve::{self, page_url};

/// A session: tokens, silent refresh, authorized fetch, and every tab of the app in step.
///
/// A handle: clones share one session. It lives while a handle (or a request under way)
/// does; [`Session::dispose`] stops it at once.
///
/// ```no_run
/// use wasm_session::{Config, Event, Session};
/// # async fn run() -> Result<(), wasm_session::Error> {
/// let session = Session::new(Config { token_url: Some("/auth/token".into()), ..Default::default() })?;
/// let signed_in = std::rc::Rc::new(std::cell::Cell::new(false));
/// let seen = signed_in.clone();
/// let _sub = session.subscribe(move |event| match event {
///     Event::Login { .. } => seen.set(true),
///     Event::Logout { .. } => seen.set(false),
///     _ => {}
/// });
/// session.ready().await;
/// session.login("/auth/login", &[("username", "demo"), ("password", "demo")].into_iter().collect::<std::collections::HashMap<_, _>>()).await?;
/// let response = session.fetch_url("/api/me").await?;
/// assert!(response.ok());
/// session.logout().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    driver: Rc<Driver>,
}

/// A subscription made by [`Session::subscribe`]: dropping it unsubscribes.
///
/// ```no_run
/// # fn run(session: &wasm_session::Session) {
/// let sub = session.subscribe(|event| assert!(!event.name().is_empty()));
/// drop(sub); // unsubscribed
/// session.subscribe(|_| {}).forget(); // for the page's life
/// # }
/// ```
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    driver: Weak<Driver>,
    id: u32,
}

impl Subscription {
    /// Keeps the subscription for the session's life (a page-lifetime handler).
    pub fn forget(self) {
        std::mem::forget(self);
    }

    /// The subscriber's id, for an owner that removes it itself (the JS class's `off`).
    #[cfg(feature = "js")]
    pub(crate) fn into_id(self) -> u32 {
        let id = self.id;
        self.forget();
        id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(d) = self.driver.upgrade() {
            d.events.remove(self.id);
        }
    }
}

/// The headers that authorize a request for another HTTP client: `Authorization`, and with
/// DPoP `DPoP`. Empty when signed out.
pub type AuthHeaders = Vec<(&'static str, String)>;

/// `value` as JSON text (`arg` names it in the error).
pub(crate) fn json_text(value: &impl Serialize, arg: &'static str) -> Result<String, Error> {
    let bad = || Error::InvalidArgument(arg, "must be JSON-serializable");
    let value = value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|_| bad())?;
    js_sys::JSON::stringify(&value).ok().and_then(|j| j.as_string()).ok_or_else(bad)
}

/// A JS value read into `T`, if it fits.
fn read<T: DeserializeOwned>(value: JsValue) -> Option<T> {
    serde_wasm_bindgen::from_value(value).ok()
}

fn reject(e: Error) -> Promise {
    Promise::reject(&e.into())
}

/// The answer to a call that resolves to nothing.
fn done(answer: Answer) -> Result<(), Error> {
    match answer {
        Answer::Failed(e) => Err(e),
        Answer::Token { .. } | Answer::NoToken | Answer::Done | Answer::AppState(_) => Ok(()),
    }
}

impl Session {
    /// Creates a session from `config`, checked as the JS config is (errors with code
    /// `invalid_config` naming the option, e.g. `config.tokenUrl`). Restores a stored session,
    /// or asks open tabs for theirs ([`Session::ready`] says when that is done).
    pub fn new(config: SessionConfig) -> Result<Session, Error> {
        Session::start(config.validate()?)
    }

    /// A session from a validated config (the JS class validates the JS object itself).
    pub(crate) fn start(config: Config) -> Result<Session, Error> {
        let endpoints = resolve::endpoints(&config)?;
        Ok(Session { driver: Driver::start(config, endpoints) })
    }

    /// The driver, unless disposed.
    pub(crate) fn live(&self) -> Result<&Rc<Driver>, Error> {
        match self.driver.machine().is_disposed() {
            true => Err(Error::Disposed),
            false => Ok(&self.driver),
        }
    }

    /// Resolves once start-up restore is done (from storage, or from another open tab), to
    /// whether there is a session.
    pub fn ready(&self) -> impl Future<Output = bool> + 'static {
        let ready = JsFuture::from(self.ready_promise());
        async move { ready.await.ok().and_then(|v| v.as_bool()).unwrap_or(false) }
    }

    /// [`Session::ready`] as a JS promise.
    pub(crate) fn ready_promise(&self) -> Promise {
        self.driver.ready()
    }

    /// Takes a standard OAuth 2.0 token response (RFC 6749 §5.1: `access_token`,
    /// `expires_in`, `refresh_token`, ...), e.g. from your own login flow, as any serde value
    /// (a struct of yours, a `serde_json::Value`). Errors with `invalid_token_response`
    /// naming the bad field; the session is unchanged then. Emits `Login` (or `Refresh` if
    /// already signed in).
    pub fn set_tokens(&self, response: &impl Serialize) -> Result<(), Error> {
        let not_object = || Error::InvalidArgument("setTokens(response)", "must be a token response object");
        let value = response.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|_| not_object())?;
        self.set_tokens_js(&value)
    }

    /// [`Session::set_tokens`] with a JS value.
    pub(crate) fn set_tokens_js(&self, response: &JsValue) -> Result<(), Error> {
        let d = self.live()?;
        let not_object = Error::InvalidArgument("setTokens(response)", "must be a token response object");
        let (response, jwt) =
            response.is_object().then(|| auth::token_response(response)).flatten().ok_or(not_object)?;
        let tokens = TokenSet::from_response(response, jwt, js_sys::Date::now(), None, None)?;
        d.input(Input::SignIn { tokens, ticket: None });
        Ok(())
    }

    /// POSTs `body` as JSON to `url` (relative to the page) and takes the token response it
    /// returns (in cookie mode, the session it opens). Errors with `login_failed` (with
    /// [`Error::status`]) when the server refuses.
    pub fn login(&self, url: &str, body: &impl Serialize) -> impl Future<Output = Result<(), Error>> + 'static {
        self.login_json(url, json_text(body, "login(body)"))
    }

    /// [`Session::login`] with the body as JSON text already.
    pub(crate) fn login_json(
        &self,
        url: &str,
        json: Result<String, Error>,
    ) -> impl Future<Output = Result<(), Error>> + 'static {
        let d = self.live().cloned();
        let url = url.to_string();
        async move {
            let d = d?;
            let url = resolve::endpoint("tokenUrl", &url, &page_url()?)
                .map_err(|_| Error::InvalidArgument("login(url)", "must be an https (or localhost) URL"))?;
            let json = json?;
            let tokens = d.auth.login(&url, &json, &d.kept()).await?;
            d.input(Input::SignIn { tokens, ticket: None });
            Ok(())
        }
    }

    /// A drop-in for `window.fetch`: sends `request` with the bearer token for the page's
    /// origin and `allowedOrigins` only (other requests go as they are), refreshes first
    /// when the token is (nearly) expired, and after a 401 refreshes once per token and
    /// retries once. Errors with `network` when the request could not be sent, or with the
    /// session's error (e.g. `refresh_rejected`) when it had no token to give.
    pub fn fetch(&self, request: web_sys::Request) -> impl Future<Output = Result<web_sys::Response, Error>> + 'static {
        let sent = JsFuture::from(self.fetch_js(request.as_ref(), &JsValue::UNDEFINED));
        async move { sent.await.map(JsCast::unchecked_into).map_err(|e| from_js(&e)) }
    }

    /// [`Session::fetch`] of a `GET` to `url` (relative to the page).
    pub fn fetch_url(&self, url: &str) -> impl Future<Output = Result<web_sys::Response, Error>> + 'static {
        let sent = JsFuture::from(self.fetch_js(&JsValue::from_str(url), &JsValue::UNDEFINED));
        async move { sent.await.map(JsCast::unchecked_into).map_err(|e| from_js(&e)) }
    }

    /// `fetch(input, init)` with JS arguments, as a promise (the fast path runs no future).
    pub(crate) fn fetch_js(&self, input: &JsValue, init: &JsValue) -> Promise {
        let d = match self.live() {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let fresh = || d.machine().token_now(js_sys::Date::now()).map(|(token, seq)| (fetch::bearer(token), seq));
        d.fetch.send(input, init, fresh)
    }

    /// The access token, refreshed first if needed; `None` when signed out and in cookie
    /// mode. For other HTTP clients (see also [`Session::auth_headers`]).
    pub fn access_token(&self) -> impl Future<Output = Result<Option<String>, Error>> + 'static {
        let d = self.live().cloned();
        async move {
            let d = d?;
            if d.config.mode() == Mode::Cookie {
                return Ok(None);
            }
            match d.kept().ask(|ticket| Input::TokenWanted { ticket }).await {
                Answer::Token { token, .. } => Ok(Some(token)),
                Answer::Failed(e) => Err(e),
                Answer::NoToken | Answer::Done | Answer::AppState(_) => Ok(None),
            }
        }
    }

    /// The headers that authorize a `method` request to `url` for another HTTP client:
    /// `Authorization` (`Bearer`), or with DPoP `Authorization` (`DPoP`) and `DPoP` (a proof
    /// for that method, URL and token). The token is refreshed first if needed. Empty when
    /// signed out; `invalid_argument` for a URL outside the page's origin and
    /// `allowedOrigins` (the token goes nowhere else).
    pub fn auth_headers(&self, method: &str, url: &str) -> impl Future<Output = Result<AuthHeaders, Error>> + 'static {
        let d = self.live().cloned();
        let (method, url) = (method.to_ascii_uppercase(), url.to_string());
        async move {
            let d = d?;
            let url = web_sys::Url::new_with_base(&url, &page_url()?)
                .map_err(|_| Error::InvalidArgument("authHeaders(url)", "is not a URL"))?
                .href();
            if !d.fetch.carries_token(&url) {
                return Err(Error::InvalidArgument(
                    "authHeaders(url)",
                    "is not the page's origin or in allowedOrigins",
                ));
            }
            let token = match d.kept().ask(|ticket| Input::TokenWanted { ticket }).await {
                Answer::Token { token, .. } => token,
                Answer::Failed(e) => return Err(e),
                Answer::NoToken | Answer::Done | Answer::AppState(_) => return Ok(Vec::new()),
            };
            let Some(keys) = &d.dpop else { return Ok(vec![("Authorization", fetch::bearer(&token))]) };
            let proof = keys.header(&d.kept(), None, &method, &url, Some(&token)).await?;
            let mut headers = vec![("Authorization", format!("DPoP {token}"))];
            headers.extend(proof.map(|p| ("DPoP", p)));
            Ok(headers)
        }
    }

    /// Refreshes now (joining a refresh already under way, in this tab or another).
    pub fn refresh(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let d = self.live().cloned();
        async move { done(d?.kept().ask(|ticket| Input::Refresh { ticket }).await) }
    }

    /// Ends the session in every tab: clears memory and storage, emits `Logout` (reason
    /// `User` here, `OtherTab` elsewhere) and revokes the refresh token when `revoke_url` is
    /// set (or discovered). Resolves once revocation was attempted; a failed revocation is an
    /// `Error` event. With OpenID Connect and an end-session endpoint, then sends this tab to
    /// the provider to end its session too (to `post_logout_redirect_uri`).
    pub fn logout(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        self.logout_to(Ok(None))
    }

    /// [`Session::logout`], the provider then sending the browser to `url` (relative to the
    /// page) instead of `post_logout_redirect_uri`.
    pub fn logout_returning_to(&self, url: &str) -> impl Future<Output = Result<(), Error>> + 'static {
        let bad = Error::InvalidArgument("logout(options.returnTo)", "must be an http(s) URL string");
        let to = page_url().and_then(|base| resolve::endpoint("returnTo", url, &base)).map_err(|_| bad);
        self.logout_to(to.map(Some))
    }

    /// `logout`, with the checked `returnTo` (or why it is wrong).
    pub(crate) fn logout_to(
        &self,
        return_to: Result<Option<String>, Error>,
    ) -> impl Future<Output = Result<(), Error>> + 'static {
        let d = self.live().cloned();
        async move {
            let d = d?;
            let return_to = return_to?;
            let id_token = d.machine().tokens().and_then(|t| t.id_token.clone());
            done(d.kept().ask(|ticket| Input::Logout { ticket }).await)?;
            #[cfg(feature = "oidc")]
            if let (Some(sign_in), Some(server)) = (&d.sign_in, d.auth.oauth()) {
                // RP-initiated logout: the provider ends its session too.
                let provider = server.provider().await?;
                if let Some(url) = oidc::end_session_url(sign_in, &provider, &server.client_id, id_token, return_to)? {
                    oidc::navigate(&url)?;
                }
            }
            #[cfg(not(feature = "oidc"))]
            let _ = (id_token, return_to);
            Ok(())
        }
    }

    /// Calls `subscriber` with every event of this session (sign-in, refresh, logout,
    /// expiry, errors, idle warnings) until the [`Subscription`] is dropped. A subscriber
    /// may call the session; it must not panic (a panic in wasm ends the module).
    pub fn subscribe(&self, subscriber: impl Fn(&Event) + 'static) -> Subscription {
        let subscriber: Subscriber = Rc::new(subscriber);
        let id = self.driver.events.add(subscriber);
        Subscription { driver: Rc::downgrade(&self.driver), id }
    }

    /// Stops everything this session started: timers, page listeners, the cross-tab
    /// channel and all subscriptions. Tokens stay where they are stored. Later calls fail
    /// with `disposed`.
    pub fn dispose(&self) {
        if !self.driver.machine().is_disposed() {
            self.driver.dispose();
        }
    }

    /// True while there is a session (its access token may be due for refresh).
    pub fn is_authenticated(&self) -> bool {
        self.driver.machine().tokens().is_some()
    }

    /// The access token held now if it has not expired. Does not refresh (see
    /// [`Session::access_token`]). Always `None` in cookie mode, where there is no token.
    pub fn current_access_token(&self) -> Option<String> {
        self.driver.machine().access_token(js_sys::Date::now()).map(str::to_string)
    }

    /// Cookie mode: the session's CSRF token, for requests sent without
    /// [`Session::fetch`]; `None` otherwise.
    pub fn csrf_token(&self) -> Option<String> {
        self.driver.machine().csrf_token().map(str::to_string)
    }

    /// When the access token expires, in epoch milliseconds; `None` when signed out.
    pub fn expires_at(&self) -> Option<f64> {
        self.driver.machine().tokens().map(|t| t.expires_at)
    }

    /// Milliseconds until the access token expires (0 once expired); `None` when signed out.
    pub fn expires_in(&self) -> Option<f64> {
        let now = js_sys::Date::now();
        self.driver.machine().tokens().map(|t| (t.expires_at - now).max(0.0))
    }

    /// When the next refresh is due, in epoch milliseconds (after any backoff); `None` when
    /// signed out or when there is no refresh token.
    pub fn refresh_at(&self) -> Option<f64> {
        self.driver.machine().refresh_at()
    }

    /// The decoded claims of a JWT access token, read into `C` (e.g. a struct of the claims
    /// you use, or `serde_json::Value`); `None` for opaque tokens, in cookie mode, when
    /// signed out or when the claims do not fit `C`. Not verified: that is the server's job.
    pub fn claims<C: DeserializeOwned>(&self) -> Option<C> {
        read(self.claims_js()?)
    }

    /// The access token's claims as a JS object.
    pub(crate) fn claims_js(&self) -> Option<JsValue> {
        self.driver.machine().held_access_token().and_then(auth::claims)
    }

    /// The decoded claims of the OpenID Connect ID token, if one was received, read into `C`.
    pub fn id_claims<C: DeserializeOwned>(&self) -> Option<C> {
        read(self.id_claims_js()?)
    }

    /// The ID token's claims as a JS object.
    pub(crate) fn id_claims_js(&self) -> Option<JsValue> {
        let m = self.driver.machine();
        m.tokens().and_then(|t| t.id_token.as_deref()).and_then(auth::claims)
    }

    /// Cookie mode: the signed-in user, as the session endpoint described it, read into `U`.
    pub fn user<U: DeserializeOwned>(&self) -> Option<U> {
        read(self.user_js()?)
    }

    /// Cookie mode's user as a JS value.
    pub(crate) fn user_js(&self) -> Option<JsValue> {
        let m = self.driver.machine();
        m.tokens().and_then(|t| t.user.as_deref()).and_then(|u| js_sys::JSON::parse(u).ok())
    }

    /// With `idle_timeout_ms`: when the idle logout comes unless there is activity (epoch
    /// ms); `None` otherwise or when signed out.
    pub fn idle_at(&self) -> Option<f64> {
        self.driver.machine().idle_logout_at()
    }

    /// With `max_session_ms`: when the session ends whatever happens (epoch ms); `None`
    /// otherwise or when signed out.
    pub fn session_ends_at(&self) -> Option<f64> {
        self.driver.machine().session_ends_at()
    }

    /// Tokens in the browser, or a cookie session.
    pub fn mode(&self) -> Mode {
        self.driver.config.mode()
    }

    /// The storage in use (memory if the requested storage was unavailable).
    pub fn storage(&self) -> StorageMode {
        self.driver.store.mode()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.driver.config.namespace
    }
}
