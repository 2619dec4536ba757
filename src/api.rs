//! The `#[wasm_bindgen]` surface: the `Session` class, config parsing against the page's
//! URL, and the TypeScript types of config, events and token responses.

use crate::prelude::*;

use alloc::rc::Rc;

use crate::flight::promise;
use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;

use crate::config::{self, Config, StorageMode};
use crate::error::Error;
use crate::events::{EventKind, LogoutReason};
use crate::page::Url;
use crate::policy;
use crate::session::{self, Endpoints, Inner, Source};
use crate::store::Store;
use crate::token::{self, TokenSet};
use crate::value::Value;
use crate::{http, refresh};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Where the session is kept between page loads. */
export type StorageMode = "memory" | "session" | "local";

/** Options of `new Session(config)`. Only `tokenUrl` is required. */
export interface SessionConfig {
  /** OAuth 2.0 token endpoint for the refresh grant (RFC 6749 §6). Relative URLs resolve against the page. */
  tokenUrl: string;
  /** Sent as `client_id` with refresh and revocation requests. */
  clientId?: string;
  /** RFC 7009 revocation endpoint; `logout()` revokes the refresh token there. */
  revokeUrl?: string;
  /** Default `"memory"`: nothing is written to any storage. */
  storage?: StorageMode;
  /** Separates sessions sharing one origin. Default `"default"`. */
  namespace?: string;
  /** Origins besides the page's own that may receive the access token, e.g. `["https://api.example.com"]`. */
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
  /** How long a new tab waits for open tabs to share their session. Default 300. */
  restoreTimeoutMs?: number;
  /** Coordinate with other tabs of the same namespace. Default true. */
  crossTab?: boolean;
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
  | "storage" | "disposed";

/** Errors thrown, rejected or reported by wasm-session. Messages never contain tokens. */
export interface SessionError extends Error {
  name: "SessionError";
  code: SessionErrorCode;
  /** HTTP status, for `login_failed`. */
  status?: number;
}

/** Why a session ended. */
export type LogoutReason = "user" | "other_tab" | "refresh_rejected" | "expired";

/** Event payloads by event name. */
export interface SessionEventMap {
  login: { type: "login"; expiresAt: number };
  refresh: { type: "refresh"; expiresAt: number };
  logout: { type: "logout"; reason: LogoutReason };
  expired: { type: "expired"; expiresAt: number };
  error: { type: "error"; error: SessionError };
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
    inner: Rc<Inner>,
}

/// The page's URL, the base of relative endpoint URLs.
fn page_url() -> Result<String, Error> {
    let window = crate::page::window().ok_or(Error::Config("(environment)".into(), "needs a browser window"))?;
    window.location().href().map_err(|_| Error::Config("(environment)".into(), "cannot read the page URL"))
}

/// Resolves an endpoint against the page and checks its transport.
fn endpoint(field: &'static str, raw: &str, base: &str) -> Result<String, Error> {
    let url = Url::parse(raw, Some(base)).ok_or_else(|| Error::Config(field.into(), "is not a valid URL"))?;
    if url.credentials {
        return Err(Error::Config(field.into(), "must not contain credentials"));
    }
    config::check_transport(field, &url.protocol, &url.hostname)?;
    Ok(url.href)
}

fn origin(raw: &str) -> Result<String, Error> {
    let bad = || {
        Error::Config(
            "allowedOrigins".into(),
            "must list origins like \"https://api.example.com\" (scheme, host, port; no path)",
        )
    };
    let url = Url::parse(raw, None).ok_or_else(bad)?;
    if !url.bare || url.credentials || url.origin == "null" {
        return Err(bad());
    }
    config::check_transport("allowedOrigins", &url.protocol, &url.hostname)?;
    Ok(url.origin)
}

fn parse_config(raw: &JsValue) -> Result<(Config, Endpoints), Error> {
    if !raw.is_object() || js_sys::Array::is_array(raw) || raw.is_function() {
        return Err(Error::Config("(config)".into(), "must be an object like { tokenUrl: \"/auth/token\" }"));
    }
    let mut keys = Vec::new();
    for key in Object::keys(raw.unchecked_ref::<Object>()) {
        keys.extend(key.as_string());
    }
    let config = Config::parse(&keys, &|k| Value::field(raw, k))?;
    let base = page_url()?;
    let page_origin = Url::parse(&base, None).map(|u| u.origin).unwrap_or_default();
    let mut allowed_origins = Vec::new();
    for o in &config.allowed_origins {
        allowed_origins.push(origin(o)?);
    }
    let endpoints = Endpoints {
        token_url: endpoint("tokenUrl", &config.token_url, &base)?,
        revoke_url: config.revoke_url.as_deref().map(|u| endpoint("revokeUrl", u, &base)).transpose()?,
        page_origin,
        allowed_origins,
    };
    Ok((config, endpoints))
}

fn nullable<T: Into<JsValue>>(v: Option<T>) -> JsValue {
    v.map_or(JsValue::NULL, Into::into)
}

fn claims_of(token: Option<&str>) -> JsValue {
    token.and_then(token::jwt_object).unwrap_or(JsValue::NULL)
}

fn reject(e: Error) -> Promise {
    Promise::reject(&e.to_js())
}

#[wasm_bindgen]
impl Session {
    /// Creates a session. Throws a `SessionError` (`code: "invalid_config"`) naming the field
    /// when the config is wrong. Restores a stored session, or asks open tabs for theirs.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "SessionConfig")] config: JsValue) -> Result<Session, JsValue> {
        let (config, endpoints) = parse_config(&config)?;
        let (store, early_error) = match Store::open(config.storage, &config.namespace) {
            Ok(store) => (store, None),
            Err(e) => (Store::memory(&config.namespace), Some(e)),
        };
        let inner = Inner::new(config, endpoints, store);
        session::start(&inner, early_error);
        Ok(Session { inner })
    }

    fn live(&self) -> Result<&Rc<Inner>, Error> {
        if self.inner.disposed.get() {
            Err(Error::Disposed)
        } else {
            Ok(&self.inner)
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
        let inner = self.live()?;
        if !response.is_object() {
            return Err(Error::InvalidArgument("setTokens(response)", "must be a token response object").into());
        }
        let tokens = TokenSet::from_response(&|k| Value::field(&response, k), inner.now(), None, None)?;
        session::install(inner, tokens, Source::Local);
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
        let inner = match self.live() {
            Ok(i) => i.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            let url = url.as_string().ok_or(Error::InvalidArgument("login(url)", "must be a string"))?;
            let base = page_url()?;
            let url = endpoint("tokenUrl", &url, &base)
                .map_err(|_| Error::InvalidArgument("login(url)", "must be an https (or localhost) URL"))?;
            let json = js_sys::JSON::stringify(&body)
                .map_err(|_| Error::InvalidArgument("login(body)", "must be JSON-serializable"))?;
            let reply =
                http::post(&url, &json.into(), Some("application/json"), inner.config.request_timeout_ms).await?;
            if !reply.ok() {
                return Err(Error::LoginFailed(reply.status, reply.oauth_error()).into());
            }
            let tokens = TokenSet::from_response(&|k| reply.field(k), inner.now(), reply.date, None)?;
            session::install(&inner, tokens, Source::Local);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// A drop-in for `window.fetch`: same arguments, same `Response`. Adds the bearer token
    /// for the page's origin and `allowedOrigins` only, refreshes first when the token is
    /// (nearly) expired, and after a 401 refreshes once and retries once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RequestInit")] init: Option<JsValue>,
    ) -> Promise {
        match self.live() {
            Ok(inner) => promise(http::fetch(inner.clone(), input, init.unwrap_or(JsValue::UNDEFINED))),
            Err(e) => reject(e),
        }
    }

    /// The access token, refreshed first if needed; `null` when signed out. For apps that
    /// use axios, ky or their own client.
    #[wasm_bindgen(js_name = getAccessToken, unchecked_return_type = "Promise<string | null>")]
    pub fn get_access_token(&self) -> Promise {
        self.with_token(false)
    }

    /// `"Bearer <token>"`, refreshed first if needed; `null` when signed out.
    #[wasm_bindgen(js_name = authHeader, unchecked_return_type = "Promise<string | null>")]
    pub fn auth_header(&self) -> Promise {
        self.with_token(true)
    }

    fn with_token(&self, header: bool) -> Promise {
        let inner = match self.live() {
            Ok(i) => i.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            let token = session::fresh_token(&inner).await?;
            Ok(nullable(token.map(|t| if header { String::from("Bearer ") + &t } else { t })))
        })
    }

    /// Refreshes now (joining a refresh already in flight, in this tab or another).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn refresh(&self) -> Promise {
        let inner = match self.live() {
            Ok(i) => i.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            inner.ready.wait().await;
            refresh::refresh(&inner).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Ends the session in every tab: clears memory and storage, cancels timers, emits
    /// `logout` (reason `user` here, `other_tab` elsewhere) and revokes the refresh token
    /// when `revokeUrl` is set. Resolves once revocation was attempted; a failed revocation
    /// is reported as an `error` event, never thrown.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> Promise {
        let inner = match self.live() {
            Ok(i) => i.clone(),
            Err(e) => return reject(e),
        };
        promise(async move {
            let held = session::end(&inner, LogoutReason::User, true);
            let token = held.and_then(|t| t.refresh_token.or(Some(t.access_token)));
            if let (Some(url), Some(token)) = (inner.endpoints.revoke_url.clone(), token) {
                let client_id = inner.config.client_id.as_deref().unwrap_or_default();
                let form = http::form(&[("token", &token), ("client_id", client_id)]);
                match http::post(&url, &form, None, inner.config.request_timeout_ms).await {
                    Ok(r) if r.ok() => {}
                    Ok(_) => inner.emit_error(&Error::Network),
                    Err(e) => inner.emit_error(&e),
                }
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Subscribes to `login`, `refresh`, `logout`, `expired` or `error`; returns the
    /// unsubscribe function.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, name: JsValue, callback: JsValue) -> Result<Function, JsValue> {
        let inner = self.live()?;
        let kind = name
            .as_string()
            .and_then(|n| EventKind::parse(&n))
            .ok_or(Error::InvalidArgument("on(name)", "must be one of login, refresh, logout, expired, error"))?;
        let callback: Function =
            callback.dyn_into().map_err(|_| Error::InvalidArgument("on(callback)", "must be a function"))?;
        let id = inner.events.add(kind, callback);
        let weak = Rc::downgrade(inner);
        let off = crate::callback::repeated(move |_| {
            if let Some(inner) = weak.upgrade() {
                inner.events.remove(id);
            }
        });
        Ok(off.into_js_value().unchecked_into())
    }

    /// Stops everything this session started: timers, page listeners, the cross-tab
    /// channel and all subscriptions. Tokens stay where they are stored. Later calls reject
    /// with `disposed`.
    pub fn dispose(&self) {
        session::dispose(&self.inner);
    }

    /// True while there is a session (its access token may be due for refresh).
    #[wasm_bindgen(getter = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        self.inner.state.borrow().tokens.is_some()
    }

    /// The current access token if it has not expired, else `null`. Does not refresh.
    #[wasm_bindgen(getter = accessToken, unchecked_return_type = "string | null")]
    pub fn access_token(&self) -> JsValue {
        let now = self.inner.now();
        nullable(self.inner.tokens().filter(|t| t.expires_at > now).map(|t| t.access_token))
    }

    /// When the access token expires, in epoch milliseconds; `null` when signed out.
    #[wasm_bindgen(getter = expiresAt, unchecked_return_type = "number | null")]
    pub fn expires_at(&self) -> JsValue {
        nullable(self.inner.tokens().map(|t| t.expires_at))
    }

    /// Milliseconds until the access token expires (0 once expired); `null` when signed out.
    #[wasm_bindgen(getter = expiresIn, unchecked_return_type = "number | null")]
    pub fn expires_in(&self) -> JsValue {
        let now = self.inner.now();
        nullable(self.inner.tokens().map(|t| (t.expires_at - now).max(0.0)))
    }

    /// When the next refresh is due, in epoch milliseconds (after any backoff); `null` when
    /// signed out or when there is no refresh token.
    #[wasm_bindgen(getter = refreshAt, unchecked_return_type = "number | null")]
    pub fn refresh_at(&self) -> JsValue {
        let st = self.inner.state.borrow();
        let at = st
            .tokens
            .as_ref()
            .filter(|t| t.refresh_token.is_some())
            .map(|t| policy::refresh_at(t, self.inner.config.refresh_lead_ms).max(st.retry.not_before));
        nullable(at)
    }

    /// The decoded claims of a JWT access token; `null` for opaque tokens or when signed out.
    #[wasm_bindgen(getter, unchecked_return_type = "Claims | null")]
    pub fn claims(&self) -> JsValue {
        claims_of(self.inner.tokens().as_ref().map(|t| t.access_token.as_str()))
    }

    /// The decoded claims of the OpenID Connect ID token, if one was received.
    #[wasm_bindgen(getter = idClaims, unchecked_return_type = "Claims | null")]
    pub fn id_claims(&self) -> JsValue {
        claims_of(self.inner.tokens().as_ref().and_then(|t| t.id_token.as_deref()))
    }

    // Getters return `JsValue` rather than `String`: the `String` return path adds a
    // reallocation routine to the binary.

    /// The storage mode in use (`memory` if the requested storage was unavailable).
    #[wasm_bindgen(getter, unchecked_return_type = "StorageMode")]
    pub fn storage(&self) -> JsValue {
        let mode: StorageMode = self.inner.store.mode();
        mode.as_str().into()
    }

    /// The namespace.
    #[wasm_bindgen(getter, unchecked_return_type = "string")]
    pub fn namespace(&self) -> JsValue {
        self.inner.config.namespace.as_str().into()
    }

    /// Resolves once start-up restore is done (from storage, or from another open tab), to
    /// whether there is a session.
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<boolean>")]
    pub fn ready(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.ready.wait().await;
            Ok(inner.state.borrow().tokens.is_some().into())
        })
    }
}
