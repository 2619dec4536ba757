//! The `#[wasm_bindgen]` surface: the `Session` class, config reading (serde, then the
//! page's URL for relative endpoints), and the TypeScript types of config, events and token
//! responses.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;

use crate::core::config::{check_transport, Config, Mode, RawConfig, Server};
use crate::core::error::Error;
use crate::core::events::EVENT_NAMES;
use crate::core::machine::{Answer, Input};
use crate::core::oidc::Provider;
use crate::core::policy;
use crate::core::token::TokenSet;

use super::auth::{self, AuthServer, CookieSession, OAuth};
use super::callbacks::{self, promise};
use super::dpop;
use super::driver::{Driver, Endpoints};
use super::events::to_js;
use super::fetch;
#[cfg(feature = "oidc")]
use super::oidc::{self, SignIn};

/// Without OpenID Connect, a session holds tokens or a cookie session (`session_oidc.rs`
/// adds the provider's configs).
#[cfg(not(feature = "oidc"))]
#[wasm_bindgen(typescript_custom_section)]
const TS_CONFIG: &'static str = r#"
/** Options of `new Session(config)`. */
export type SessionConfig = TokenSessionConfig | CookieSessionConfig;
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Where the session is kept between page loads. */
export type StorageMode = "memory" | "session" | "local";

/** Options shared by both kinds of session. */
interface CommonConfig {
  /** Sent as `client_id` with refresh and revocation requests. */
  clientId?: string;
  /** RFC 7009 revocation endpoint; `logout()` revokes the refresh token there. */
  revokeUrl?: string;
  /** Default `"memory"`: nothing is written to any storage. */
  storage?: StorageMode;
  /** Separates sessions sharing one origin. Default `"default"`. */
  namespace?: string;
  /** Origins besides the page's own that may receive the access token, e.g. `["https://api.example.com"]`. Default `[]`. */
  allowedOrigins?: string[];
  /** Refresh this long before expiry (capped at a quarter of the token lifetime). Default 60000. */
  refreshLeadMs?: number;
  /** Timeout of each auth server request. Default 10000. */
  requestTimeoutMs?: number;
  /** First retry delay after a failed refresh; doubles per failure, with jitter. Default 1000. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 30000. */
  retryMaxMs?: number;
  /** Longest wait for another tab's refresh lock before taking it over. Default 15000. */
  lockTimeoutMs?: number;
  /** Longest wait for open tabs to share their session at start-up. Default 300. */
  restoreTimeoutMs?: number;
  /** Coordinate with other tabs of the same namespace. Default true. */
  crossTab?: boolean;
  /** No user activity (pointer, key, touch, focus) in any tab for this long ends the session everywhere (reason `"idle"`). */
  idleTimeoutMs?: number;
  /** This long before the idle logout, an `idle_warning` event. Needs `idleTimeoutMs`. */
  idleWarningMs?: number;
  /** The session ends this long after login, in every tab and across reloads (reason `"absolute"`). */
  maxSessionMs?: number;
}

/** Tokens held in the browser (the default). Only `tokenUrl` is required. */
export interface TokenSessionConfig extends CommonConfig {
  /** Default `"token"`: tokens held in the browser. */
  mode?: "token";
  /** OAuth 2.0 token endpoint for the refresh grant (RFC 6749 §6). Relative URLs resolve against the page. */
  tokenUrl: string;
}

/** A server session: an HttpOnly cookie and a CSRF token; no token in JS. */
export interface CookieSessionConfig extends Omit<CommonConfig, "clientId" | "revokeUrl" | "storage" | "dpop"> {
  mode: "cookie";
  /** `GET` restores the session, `POST {sessionUrl}/refresh` extends it, `POST {sessionUrl}/logout` ends it. */
  sessionUrl: string;
  /** The header carrying the CSRF token on unsafe methods. Default `"X-CSRF-Token"`. */
  csrfHeader?: string;
  storage?: "memory";
}

/** Options of `logout()`. */
export interface LogoutOptions {
  /** OpenID Connect: where the provider sends the browser after its logout (overrides `postLogoutRedirectUri`). */
  returnTo?: string;
}

/** An OAuth 2.0 token response (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type?: string;
  /** Seconds. Required unless the access token is a JWT with `exp`. */
  expires_in?: number | string;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
}

/** Stable error codes (`error.code`). */
export type SessionErrorCode =
  | "invalid_config" | "invalid_argument" | "invalid_token_response" | "login_failed"
  | "not_authenticated" | "refresh_rejected" | "refresh_failed" | "network" | "timeout"
  | "storage" | "disposed" | "invalid_state" | "oauth_error" | "invalid_discovery" | "invalid_id_token"
  | "popup_blocked" | "popup_closed" | "dpop";

/** Errors thrown, rejected or reported by wasm-session. Messages never contain tokens. */
export interface SessionError extends Error {
  name: "SessionError";
  code: SessionErrorCode;
  /** HTTP status, for `login_failed`. */
  status?: number;
  /** `oauth_error`: the provider's `error`, e.g. `"access_denied"` or `"login_required"`. */
  error?: string;
  /** `oauth_error`: the provider's `error_description`, if it sent one. */
  errorDescription?: string | null;
}

/** Why a session ended. */
export type LogoutReason = "user" | "other_tab" | "refresh_rejected" | "expired" | "idle" | "absolute";

/** Event payloads by event name. */
export interface SessionEventMap {
  login: { type: "login"; expiresAt: number };
  refresh: { type: "refresh"; expiresAt: number };
  logout: { type: "logout"; reason: LogoutReason };
  expired: { type: "expired"; expiresAt: number };
  error: { type: "error"; error: SessionError };
  /** No activity for a while: the session ends at `logoutAt` unless there is some. */
  idle_warning: { type: "idle_warning"; logoutAt: number };
  /** Activity (in any tab) after an `idle_warning`: the idle logout is off. */
  active: { type: "active" };
}

/** JWT claims (decoded, not verified: verification is the server's job). */
export type Claims = Record<string, unknown>;

export interface Session {
  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof SessionEventMap>(name: K, callback: (event: SessionEventMap[K]) => void): () => void;
}
"#;

/// A session: tokens, silent refresh, authorized fetch, and every tab of the app in step.
#[wasm_bindgen]
pub struct Session {
    driver: Rc<Driver>,
}

fn config_error(field: &str, why: &'static str) -> Error {
    Error::Config(field.into(), why)
}

/// The page's URL, the base of relative endpoint URLs.
pub(super) fn page_url() -> Result<String, Error> {
    let window = web_sys::window().ok_or(config_error("(environment)", "needs a browser window"))?;
    window.location().href().map_err(|_| config_error("(environment)", "cannot read the page URL"))
}

/// Resolves an endpoint against the page and checks its transport.
fn endpoint(field: &str, raw: &str, base: &str) -> Result<String, Error> {
    let url = web_sys::Url::new_with_base(raw, base).map_err(|_| config_error(field, "is not a valid URL"))?;
    if !url.username().is_empty() || !url.password().is_empty() {
        return Err(config_error(field, "must not contain credentials"));
    }
    check_transport(field, &url.protocol(), &url.hostname())?;
    Ok(url.href())
}

/// An entry of `allowedOrigins`: an origin alone (scheme, host, port).
fn allowed_origin(raw: &str) -> Result<String, Error> {
    let bad = || {
        config_error(
            "allowedOrigins",
            "must list origins like \"https://api.example.com\" (scheme, host, port; no path)",
        )
    };
    let url = web_sys::Url::new(raw).map_err(|_| bad())?;
    let bare = url.pathname() == "/" && url.search().is_empty() && url.hash().is_empty();
    let credentials = !url.username().is_empty() || !url.password().is_empty();
    if !bare || credentials || url.origin() == "null" {
        return Err(bad());
    }
    check_transport("allowedOrigins", &url.protocol(), &url.hostname())?;
    Ok(url.origin())
}

fn read_config(raw: &JsValue) -> Result<(Config, Endpoints), Error> {
    if !raw.is_object() || Array::is_array(raw) || raw.is_function() {
        return Err(config_error("(config)", "must be an object like { tokenUrl: \"/auth/token\" }"));
    }
    // serde-wasm-bindgen looks up declared fields only: unknown keys are found here.
    let keys: Vec<String> = Object::keys(raw.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()).collect();
    let fields: RawConfig =
        serde_wasm_bindgen::from_value(raw.clone()).map_err(|_| config_error("(config)", "must be a plain object"))?;
    let config = Config::from_raw(&keys, fields)?;
    let base = page_url()?;
    let page = web_sys::Url::new(&base).map_err(|_| config_error("(environment)", "cannot read the page URL"))?;
    let mut token_origins = Vec::new();
    if policy::may_carry_token(&page.origin(), &page.protocol(), &page.hostname(), &page.origin(), &[]) {
        token_origins.push(page.origin());
    }
    for o in &config.allowed_origins {
        token_origins.push(allowed_origin(o)?);
    }
    let oidc = config.oidc.as_ref();
    let issuer = oidc.and_then(|o| o.issuer.as_deref());
    if let Some(issuer) = issuer {
        // The issuer's own endpoints (userinfo) get the token without being listed.
        let url = web_sys::Url::new(issuer).map_err(|_| config_error("issuer", "must be an absolute URL"))?;
        check_transport("issuer", &url.protocol(), &url.hostname())?;
        if !url.search().is_empty() || !url.hash().is_empty() || !url.username().is_empty() {
            return Err(config_error("issuer", "must have no query, fragment or credentials"));
        }
        token_origins.push(url.origin());
    }
    let resolve = |field: &str, raw: Option<&String>| raw.map(|u| endpoint(field, u, &base)).transpose();
    #[cfg(feature = "oidc")]
    let sign_in = {
        // The default redirect URI is the page itself, without query or fragment.
        let here = format!("{}{}", page.origin(), page.pathname());
        let redirect_uri = resolve("redirectUri", oidc.and_then(|o| o.redirect_uri.as_ref()))?.unwrap_or(here);
        let post_logout_redirect_uri =
            resolve("postLogoutRedirectUri", oidc.and_then(|o| o.post_logout_redirect_uri.as_ref()))?;
        oidc.map(|o| SignIn::new(o.clone(), redirect_uri, post_logout_redirect_uri, &config.namespace))
    };
    let stored = config.storage != crate::core::config::StorageMode::Memory;
    let dpop = if config.dpop && config.mode() == Mode::Token { dpop::for_session(&config.namespace, stored) } else { None };
    let auth = match &config.server {
        Server::OAuth { token_url, revoke_url } => AuthServer::OAuth(OAuth {
            dpop: dpop.clone(),
            client_id: config.client_id.clone().unwrap_or_default(),
            configured: Provider {
                authorization: resolve("authorizationUrl", oidc.and_then(|o| o.authorization_url.as_ref()))?,
                token: match token_url.is_empty() {
                    true => String::new(), // to be discovered
                    false => endpoint("tokenUrl", token_url, &base)?,
                },
                revocation: resolve("revokeUrl", revoke_url.as_ref())?,
                end_session: resolve("endSessionUrl", oidc.and_then(|o| o.end_session_url.as_ref()))?,
            },
            discover_from: oidc.filter(|o| o.discovers()).and(issuer).map(str::to_string),
            timeout_ms: config.request_timeout_ms,
            found: RefCell::default(),
        }),
        Server::Cookie { session_url, csrf_header } => AuthServer::Cookie(CookieSession {
            url: endpoint("sessionUrl", session_url, &base)?,
            csrf_header: csrf_header.clone(),
            timeout_ms: config.request_timeout_ms,
        }),
    };
    Ok((
        config,
        Endpoints {
            auth,
            #[cfg(feature = "oidc")]
            sign_in,
            token_origins,
            dpop,
        },
    ))
}

/// The keys of an options object, refusing any not in `known` (naming it).
pub(super) fn option_keys(value: &JsValue, arg: &'static str, known: &[&str], list: &'static str) -> Result<(), Error> {
    if !value.is_object() || Array::is_array(value) || value.is_function() {
        return Err(Error::InvalidArgument(arg, "must be an options object"));
    }
    let keys = Object::keys(value.unchecked_ref::<Object>());
    if keys.iter().any(|k| k.as_string().is_none_or(|k| !known.contains(&k.as_str()))) {
        return Err(Error::InvalidArgument(arg, list));
    }
    Ok(())
}

/// `logout(options)`: `returnTo`, resolved against the page.
fn logout_options(value: &JsValue) -> Result<Option<String>, Error> {
    option_keys(value, "logout(options)", &["returnTo"], "takes only returnTo")?;
    let to = js_sys::Reflect::get(value, &"returnTo".into()).unwrap_or(JsValue::UNDEFINED);
    if to.is_undefined() {
        return Ok(None);
    }
    let bad = Error::InvalidArgument("logout(options.returnTo)", "must be an http(s) URL string");
    let to = to.as_string().ok_or(bad.clone())?;
    endpoint("returnTo", &to, &page_url()?).map(Some).map_err(|_| bad)
}

fn nullable<T: Into<JsValue>>(v: Option<T>) -> JsValue {
    v.map_or(JsValue::NULL, Into::into)
}

pub(super) fn reject(e: Error) -> Promise {
    Promise::reject(&to_js(&e))
}

/// The answer to a call that resolves to nothing.
pub(super) fn done(answer: Answer) -> Result<JsValue, JsValue> {
    match answer {
        Answer::Failed(e) => Err(to_js(&e)),
        _ => Ok(JsValue::UNDEFINED),
    }
}

#[wasm_bindgen]
impl Session {
    /// Creates a session. Throws a `SessionError` (`code: "invalid_config"`) naming the field
    /// when the config is wrong. Restores a stored session, or asks open tabs for theirs.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue) -> Result<Session, JsValue> {
        let (config, endpoints) = read_config(&config)?;
        Ok(Session { driver: Driver::start(config, endpoints) })
    }

    pub(super) fn live(&self) -> Result<&Rc<Driver>, Error> {
        if self.driver.machine().is_disposed() {
            Err(Error::Disposed)
        } else {
            Ok(&self.driver)
        }
    }

    /// Takes a standard OAuth 2.0 token response (e.g. from your own login flow). Throws a
    /// `SessionError` (`invalid_token_response`) naming the bad field; the session is
    /// unchanged then. Emits `login` (or `refresh` if already signed in).
    #[wasm_bindgen(js_name = setTokens)]
    pub fn set_tokens(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TokenResponse")] response: JsValue,
    ) -> Result<(), JsValue> {
        let d = self.live()?;
        let not_object = Error::InvalidArgument("setTokens(response)", "must be a token response object");
        let (response, jwt) =
            response.is_object().then(|| auth::token_response(&response)).flatten().ok_or(not_object)?;
        let tokens = TokenSet::from_response(response, jwt, js_sys::Date::now(), None, None)?;
        d.input(Input::SignIn { tokens, ticket: None });
        Ok(())
    }

    /// POSTs `body` as JSON to `url` and takes the token response it returns. Rejects with
    /// `login_failed` (with `status`) when the server refuses.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn login(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] body: JsValue,
    ) -> Promise {
        let d = match self.live() {
            Ok(d) => d.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            let url = url.as_string().ok_or(Error::InvalidArgument("login(url)", "must be a string"))?;
            let url = endpoint("tokenUrl", &url, &page_url()?)
                .map_err(|_| Error::InvalidArgument("login(url)", "must be an https (or localhost) URL"))?;
            let json = js_sys::JSON::stringify(&body)
                .ok()
                .and_then(|j| j.as_string())
                .ok_or(Error::InvalidArgument("login(body)", "must be JSON-serializable"))?;
            let tokens = d.auth.login(&url, &json, &d.kept()).await?;
            d.input(Input::SignIn { tokens, ticket: None });
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A drop-in for `window.fetch`: same arguments, same `Response`. Adds the bearer token
    /// for the page's origin and `allowedOrigins` only, refreshes first when the token is
    /// (nearly) expired, and after a 401 refreshes once per token and retries once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RequestInit")] init: Option<JsValue>,
    ) -> Promise {
        let d = match self.live() {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let fresh = || d.machine().token_now(js_sys::Date::now()).map(|(token, seq)| (fetch::bearer(token), seq));
        d.fetch.send(&input, &init.unwrap_or(JsValue::UNDEFINED), fresh)
    }

    /// The access token, refreshed first if needed; `null` when signed out and in cookie
    /// mode. For apps that use axios, ky or their own client.
    #[wasm_bindgen(js_name = getAccessToken, unchecked_return_type = "Promise<string | null>")]
    pub fn get_access_token(&self) -> Promise {
        self.with_token("")
    }

    /// `"Bearer <token>"`, refreshed first if needed; `null` when signed out.
    #[wasm_bindgen(js_name = authHeader, unchecked_return_type = "Promise<string | null>")]
    pub fn auth_header(&self) -> Promise {
        self.with_token("Bearer ")
    }

    /// The headers that authorize a `method` request to `url` for another HTTP client
    /// (axios, ky): `{ Authorization }` (`Bearer`), or with DPoP `{ Authorization, DPoP }`
    /// (`DPoP` and a proof for that method, URL and token). The token is refreshed first if
    /// needed. Resolves to `{}` when signed out; rejects with `invalid_argument` for a URL
    /// outside the page's origin and `allowedOrigins` (the token goes nowhere else).
    #[wasm_bindgen(js_name = authHeaders, unchecked_return_type = "Promise<{ Authorization?: string; DPoP?: string }>")]
    pub fn auth_headers(&self, method: String, url: String) -> Promise {
        let d = match self.live() {
            Ok(d) => d.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            let url = web_sys::Url::new_with_base(&url, &page_url()?)
                .map_err(|_| Error::InvalidArgument("authHeaders(url)", "is not a URL"))?
                .href();
            if !d.fetch.carries_token(&url) {
                return Err(Error::InvalidArgument(
                    "authHeaders(url)",
                    "is not the page's origin or in allowedOrigins",
                )
                .into());
            }
            let headers = Object::new();
            let token = match d.kept().ask(|ticket| Input::TokenWanted { ticket }).await {
                Answer::Token { token, .. } => token,
                Answer::Failed(e) => return Err(to_js(&e)),
                Answer::NoToken | Answer::Done | Answer::AppState(_) => return Ok(headers.into()),
            };
            let set = |k: &str, v: &str| js_sys::Reflect::set(&headers, &k.into(), &v.into());
            match &d.dpop {
                None => {
                    set("Authorization", &fetch::bearer(&token))?;
                }
                Some(keys) => {
                    let method = method.to_ascii_uppercase();
                    let proof = keys.header(&d.kept(), None, &method, &url, Some(&token)).await?;
                    set("Authorization", &format!("DPoP {token}"))?;
                    if let Some(proof) = proof {
                        set("DPoP", &proof)?;
                    }
                }
            }
            Ok(headers.into())
        })
    }

    fn with_token(&self, prefix: &'static str) -> Promise {
        let d = match self.live() {
            Ok(d) => d.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            if d.config.mode() == Mode::Cookie {
                return Ok(JsValue::NULL);
            }
            match d.kept().ask(|ticket| Input::TokenWanted { ticket }).await {
                Answer::Token { token, .. } => Ok(JsValue::from_str(&(prefix.to_string() + &token))),
                Answer::Failed(e) => Err(to_js(&e)),
                Answer::NoToken | Answer::Done | Answer::AppState(_) => Ok(JsValue::NULL),
            }
        })
    }

    /// Refreshes now (joining a refresh already under way, in this tab or another).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        let d = match self.live() {
            Ok(d) => d.clone(),
            Err(e) => return reject(e),
        };
        promise(async move { done(d.kept().ask(|ticket| Input::Refresh { ticket }).await) })
    }

    /// Ends the session in every tab: clears memory and storage, emits `logout` (reason
    /// `user` here, `other_tab` elsewhere) and revokes the refresh token when `revokeUrl` is
    /// set (or discovered). Resolves once revocation was attempted; a failed revocation is an
    /// `error` event. With OpenID Connect and an end-session endpoint, then sends this tab
    /// to the provider to end its session too (`returnTo` overrides `postLogoutRedirectUri`).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LogoutOptions")] options: Option<JsValue>,
    ) -> Promise {
        let d = match self.live() {
            Ok(d) => d.clone(),
            Err(e) => return reject(e),
        };
        let return_to = match options.filter(|o| !o.is_undefined() && !o.is_null()).map(|o| logout_options(&o)) {
            Some(Ok(to)) => to,
            Some(Err(e)) => return reject(e),
            None => None,
        };
        promise(async move {
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
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Subscribes to `login`, `refresh`, `logout`, `expired` or `error`; returns the
    /// unsubscribe function.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: JsValue, callback: JsValue) -> Result<Function, JsValue> {
        let d = self.live()?;
        let name = name.as_string().and_then(|n| EVENT_NAMES.iter().find(|e| **e == n).copied()).ok_or(
            Error::InvalidArgument(
                "on(name)",
                "must be one of login, refresh, logout, expired, error, idle_warning, active",
            ),
        )?;
        let callback: Function =
            callback.dyn_into().map_err(|_| Error::InvalidArgument("on(callback)", "must be a function"))?;
        let id = d.events.add(name, callback);
        let weak = Rc::downgrade(d);
        let off = callbacks::callback(move |_| {
            if let Some(d) = weak.upgrade() {
                d.events.remove(id);
            }
        });
        Ok(off.into_js_value().unchecked_into())
    }

    /// Stops everything this session started: timers, page listeners, the cross-tab
    /// channel and all subscriptions. Tokens stay where they are stored. Later calls reject
    /// with `disposed`.
    pub fn dispose(&self) {
        if !self.driver.machine().is_disposed() {
            self.driver.dispose();
        }
    }

    /// True while there is a session (its access token may be due for refresh).
    #[wasm_bindgen(getter = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        self.driver.machine().tokens().is_some()
    }

    /// The current access token if it has not expired, else `null`. Does not refresh.
    /// Always `null` in cookie mode, where there is no token.
    #[wasm_bindgen(getter = accessToken, unchecked_return_type = "string | null")]
    pub fn access_token(&self) -> JsValue {
        nullable(self.driver.machine().access_token(js_sys::Date::now()))
    }

    /// Cookie mode: the session's CSRF token, for requests the app sends without
    /// `session.fetch` (put it in the `csrfHeader` of unsafe requests); `null` otherwise.
    #[wasm_bindgen(getter = csrfToken, unchecked_return_type = "string | null")]
    pub fn csrf_token(&self) -> JsValue {
        nullable(self.driver.machine().csrf_token())
    }

    /// When the access token expires, in epoch milliseconds; `null` when signed out.
    #[wasm_bindgen(getter = expiresAt, unchecked_return_type = "number | null")]
    pub fn expires_at(&self) -> JsValue {
        nullable(self.driver.machine().tokens().map(|t| t.expires_at))
    }

    /// Milliseconds until the access token expires (0 once expired); `null` when signed out.
    #[wasm_bindgen(getter = expiresIn, unchecked_return_type = "number | null")]
    pub fn expires_in(&self) -> JsValue {
        let now = js_sys::Date::now();
        nullable(self.driver.machine().tokens().map(|t| (t.expires_at - now).max(0.0)))
    }

    /// When the next refresh is due, in epoch milliseconds (after any backoff); `null` when
    /// signed out or when there is no refresh token.
    #[wasm_bindgen(getter = refreshAt, unchecked_return_type = "number | null")]
    pub fn refresh_at(&self) -> JsValue {
        nullable(self.driver.machine().refresh_at())
    }

    /// The decoded claims of a JWT access token; `null` for opaque tokens, in cookie mode or
    /// when signed out.
    #[wasm_bindgen(getter, unchecked_return_type = "Claims | null")]
    pub fn claims(&self) -> JsValue {
        self.driver.machine().held_access_token().and_then(auth::claims).unwrap_or(JsValue::NULL)
    }

    /// The decoded claims of the OpenID Connect ID token, if one was received.
    #[wasm_bindgen(getter = idClaims, unchecked_return_type = "Claims | null")]
    pub fn id_claims(&self) -> JsValue {
        let m = self.driver.machine();
        m.tokens().and_then(|t| t.id_token.as_deref()).and_then(auth::claims).unwrap_or(JsValue::NULL)
    }

    /// Cookie mode: the signed-in user, as the session endpoint described it; `null` otherwise.
    #[wasm_bindgen(getter, unchecked_return_type = "unknown")]
    pub fn user(&self) -> JsValue {
        let m = self.driver.machine();
        let user = m.tokens().and_then(|t| t.user.as_deref()).and_then(|u| js_sys::JSON::parse(u).ok());
        user.unwrap_or(JsValue::NULL)
    }

    /// With `idleTimeoutMs`: when the idle logout comes unless there is activity (epoch ms);
    /// `null` otherwise or when signed out.
    #[wasm_bindgen(getter = idleAt, unchecked_return_type = "number | null")]
    pub fn idle_at(&self) -> JsValue {
        nullable(self.driver.machine().idle_logout_at())
    }

    /// With `maxSessionMs`: when the session ends whatever happens (epoch ms); `null`
    /// otherwise or when signed out.
    #[wasm_bindgen(getter = sessionEndsAt, unchecked_return_type = "number | null")]
    pub fn session_ends_at(&self) -> JsValue {
        nullable(self.driver.machine().session_ends_at())
    }

    /// `"token"` or `"cookie"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"token\" | \"cookie\"")]
    pub fn mode(&self) -> String {
        match self.driver.config.mode() {
            Mode::Token => "token".into(),
            Mode::Cookie => "cookie".into(),
        }
    }

    /// The storage mode in use (`memory` if the requested storage was unavailable).
    #[wasm_bindgen(getter, unchecked_return_type = "StorageMode")]
    pub fn storage(&self) -> String {
        self.driver.store.mode().as_str().to_string()
    }

    /// The namespace.
    #[wasm_bindgen(getter)]
    pub fn namespace(&self) -> String {
        self.driver.config.namespace.clone()
    }

    /// Resolves once start-up restore is done (from storage, or from another open tab), to
    /// whether there is a session.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<boolean>")]
    pub fn ready(&self) -> Promise {
        self.driver.ready()
    }
}
