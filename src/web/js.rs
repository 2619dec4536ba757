//! The `#[wasm_bindgen]` surface (the `js` cargo feature): the `Session` class as a
//! translation of JS values to the Rust API ([`super::client::Session`]) and back, and the
//! TypeScript types of config, events and token responses. No behaviour lives here.

use std::future::Future;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;

use crate::core::config::{Config, Mode, RawConfig};
use crate::core::error::Error;
use crate::core::events::EVENT_NAMES;

use super::callbacks::{self, promise};
use super::client;
use super::events::{payload, to_js};
use super::resolve::{endpoint, page_url};

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
    inner: client::Session,
}

fn config_error(why: &'static str) -> Error {
    Error::Config("(config)".into(), why)
}

/// The config object, validated: its own keys (unknown ones are refused) and its fields.
fn read_config(raw: &JsValue) -> Result<Config, Error> {
    if !raw.is_object() || Array::is_array(raw) || raw.is_function() {
        return Err(config_error("must be an object like { tokenUrl: \"/auth/token\" }"));
    }
    // serde-wasm-bindgen looks up declared fields only: unknown keys are found here.
    let keys: Vec<String> = Object::keys(raw.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()).collect();
    let fields: RawConfig =
        serde_wasm_bindgen::from_value(raw.clone()).map_err(|_| config_error("must be a plain object"))?;
    Config::from_raw(&keys, fields)
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

/// A promise of a Rust API call's result, as `to_js` makes it a JS value.
pub(super) fn settle<T: 'static>(
    call: impl Future<Output = Result<T, Error>> + 'static,
    to_js: impl FnOnce(T) -> JsValue + 'static,
) -> Promise {
    promise(async move { call.await.map(to_js).map_err(|e| e.into()) })
}

fn undefined(_: ()) -> JsValue {
    JsValue::UNDEFINED
}

#[wasm_bindgen]
impl Session {
    /// Creates a session. Throws a `SessionError` (`code: "invalid_config"`) naming the field
    /// when the config is wrong. Restores a stored session, or asks open tabs for theirs.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue) -> Result<Session, JsValue> {
        Ok(Session { inner: client::Session::start(read_config(&config)?)? })
    }

    #[cfg(feature = "oidc")]
    pub(super) fn inner(&self) -> &client::Session {
        &self.inner
    }

    /// Takes a standard OAuth 2.0 token response (e.g. from your own login flow). Throws a
    /// `SessionError` (`invalid_token_response`) naming the bad field; the session is
    /// unchanged then. Emits `login` (or `refresh` if already signed in).
    #[wasm_bindgen(js_name = setTokens)]
    pub fn set_tokens(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TokenResponse")] response: JsValue,
    ) -> Result<(), JsValue> {
        Ok(self.inner.set_tokens_js(&response)?)
    }

    /// POSTs `body` as JSON to `url` and takes the token response it returns. Rejects with
    /// `login_failed` (with `status`) when the server refuses.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn login(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_param_type = "unknown")] body: JsValue,
    ) -> Promise {
        if let Err(e) = self.inner.live() {
            return reject(e);
        }
        let Some(url) = url.as_string() else {
            return reject(Error::InvalidArgument("login(url)", "must be a string"));
        };
        let json = js_sys::JSON::stringify(&body)
            .ok()
            .and_then(|j| j.as_string())
            .ok_or(Error::InvalidArgument("login(body)", "must be JSON-serializable"));
        settle(self.inner.login_json(&url, json), undefined)
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
        self.inner.fetch_js(&input, &init.unwrap_or(JsValue::UNDEFINED))
    }

    /// The access token, refreshed first if needed; `null` when signed out and in cookie
    /// mode. For apps that use axios, ky or their own client.
    #[wasm_bindgen(js_name = getAccessToken, unchecked_return_type = "Promise<string | null>")]
    pub fn get_access_token(&self) -> Promise {
        settle(self.inner.access_token(), nullable)
    }

    /// `"Bearer <token>"`, refreshed first if needed; `null` when signed out.
    #[wasm_bindgen(js_name = authHeader, unchecked_return_type = "Promise<string | null>")]
    pub fn auth_header(&self) -> Promise {
        settle(self.inner.access_token(), |t| nullable(t.map(|t| super::fetch::bearer(&t))))
    }

    /// The headers that authorize a `method` request to `url` for another HTTP client
    /// (axios, ky): `{ Authorization }` (`Bearer`), or with DPoP `{ Authorization, DPoP }`
    /// (`DPoP` and a proof for that method, URL and token). The token is refreshed first if
    /// needed. Resolves to `{}` when signed out; rejects with `invalid_argument` for a URL
    /// outside the page's origin and `allowedOrigins` (the token goes nowhere else).
    #[wasm_bindgen(js_name = authHeaders, unchecked_return_type = "Promise<{ Authorization?: string; DPoP?: string }>")]
    pub fn auth_headers(&self, method: String, url: String) -> Promise {
        settle(self.inner.auth_headers(&method, &url), |headers| {
            let object = Object::new();
            for (name, value) in headers {
                // Setting a property on a fresh plain object cannot fail.
                let _ = js_sys::Reflect::set(&object, &name.into(), &value.into());
            }
            object.into()
        })
    }

    /// Refreshes now (joining a refresh already under way, in this tab or another).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        settle(self.inner.refresh(), undefined)
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
        if let Err(e) = self.inner.live() {
            return reject(e);
        }
        let return_to = match options.filter(|o| !o.is_undefined() && !o.is_null()).map(|o| logout_options(&o)) {
            Some(Err(e)) => return reject(e),
            Some(Ok(to)) => to,
            None => None,
        };
        settle(self.inner.logout_to(Ok(return_to)), undefined)
    }

    /// Subscribes to `login`, `refresh`, `logout`, `expired` or `error`; returns the
    /// unsubscribe function.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: JsValue, callback: JsValue) -> Result<Function, JsValue> {
        let d = self.inner.live()?;
        let name = name.as_string().and_then(|n| EVENT_NAMES.iter().find(|e| **e == n).copied()).ok_or(
            Error::InvalidArgument(
                "on(name)",
                "must be one of login, refresh, logout, expired, error, idle_warning, active",
            ),
        )?;
        let callback: Function =
            callback.dyn_into().map_err(|_| Error::InvalidArgument("on(callback)", "must be a function"))?;
        let weak = Rc::downgrade(d);
        // One that throws does not stop the others: the exception is dropped here.
        let sub = self.inner.subscribe(move |event| {
            if event.name() == name {
                let _ = callback.call1(&JsValue::UNDEFINED, &payload(event));
            }
        });
        // Kept until `off()` (or dispose): JS may drop the function without calling it.
        let id = sub.into_id();
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
        self.inner.dispose();
    }

    /// True while there is a session (its access token may be due for refresh).
    #[wasm_bindgen(getter = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        self.inner.is_authenticated()
    }

    /// The current access token if it has not expired, else `null`. Does not refresh.
    /// Always `null` in cookie mode, where there is no token.
    #[wasm_bindgen(getter = accessToken, unchecked_return_type = "string | null")]
    pub fn access_token(&self) -> JsValue {
        nullable(self.inner.current_access_token())
    }

    /// Cookie mode: the session's CSRF token, for requests the app sends without
    /// `session.fetch` (put it in the `csrfHeader` of unsafe requests); `null` otherwise.
    #[wasm_bindgen(getter = csrfToken, unchecked_return_type = "string | null")]
    pub fn csrf_token(&self) -> JsValue {
        nullable(self.inner.csrf_token())
    }

    /// When the access token expires, in epoch milliseconds; `null` when signed out.
    #[wasm_bindgen(getter = expiresAt, unchecked_return_type = "number | null")]
    pub fn expires_at(&self) -> JsValue {
        nullable(self.inner.expires_at())
    }

    /// Milliseconds until the access token expires (0 once expired); `null` when signed out.
    #[wasm_bindgen(getter = expiresIn, unchecked_return_type = "number | null")]
    pub fn expires_in(&self) -> JsValue {
        nullable(self.inner.expires_in())
    }

    /// When the next refresh is due, in epoch milliseconds (after any backoff); `null` when
    /// signed out or when there is no refresh token.
    #[wasm_bindgen(getter = refreshAt, unchecked_return_type = "number | null")]
    pub fn refresh_at(&self) -> JsValue {
        nullable(self.inner.refresh_at())
    }

    /// The decoded claims of a JWT access token; `null` for opaque tokens, in cookie mode or
    /// when signed out.
    #[wasm_bindgen(getter, unchecked_return_type = "Claims | null")]
    pub fn claims(&self) -> JsValue {
        self.inner.claims_js().unwrap_or(JsValue::NULL)
    }

    /// The decoded claims of the OpenID Connect ID token, if one was received.
    #[wasm_bindgen(getter = idClaims, unchecked_return_type = "Claims | null")]
    pub fn id_claims(&self) -> JsValue {
        self.inner.id_claims_js().unwrap_or(JsValue::NULL)
    }

    /// Cookie mode: the signed-in user, as the session endpoint described it; `null` otherwise.
    #[wasm_bindgen(getter, unchecked_return_type = "unknown")]
    pub fn user(&self) -> JsValue {
        self.inner.user_js().unwrap_or(JsValue::NULL)
    }

    /// With `idleTimeoutMs`: when the idle logout comes unless there is activity (epoch ms);
    /// `null` otherwise or when signed out.
    #[wasm_bindgen(getter = idleAt, unchecked_return_type = "number | null")]
    pub fn idle_at(&self) -> JsValue {
        nullable(self.inner.idle_at())
    }

    /// With `maxSessionMs`: when the session ends whatever happens (epoch ms); `null`
    /// otherwise or when signed out.
    #[wasm_bindgen(getter = sessionEndsAt, unchecked_return_type = "number | null")]
    pub fn session_ends_at(&self) -> JsValue {
        nullable(self.inner.session_ends_at())
    }

    /// `"token"` or `"cookie"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"token\" | \"cookie\"")]
    pub fn mode(&self) -> String {
        match self.inner.mode() {
            Mode::Token => "token".into(),
            Mode::Cookie => "cookie".into(),
        }
    }

    /// The storage mode in use (`memory` if the requested storage was unavailable).
    #[wasm_bindgen(getter, unchecked_return_type = "StorageMode")]
    pub fn storage(&self) -> String {
        self.inner.storage().as_str().to_string()
    }

    /// The namespace.
    #[wasm_bindgen(getter)]
    pub fn namespace(&self) -> String {
        self.inner.namespace().to_string()
    }

    /// Resolves once start-up restore is done (from storage, or from another open tab), to
    /// whether there is a session.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<boolean>")]
    pub fn ready(&self) -> Promise {
        self.inner.ready_promise()
    }
}
