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
use crate::core::machine::{Answer, Authorization, Input};
use crate::core::oidc::{LoginOptions, Provider, RawLoginOptions};
use crate::core::policy;
use crate::core::token::TokenSet;

use super::auth::{self, AuthServer, CookieSession, OAuth};
use super::callbacks::{self, promise};
use super::dpop::Keys;
use super::driver::{Driver, Endpoints};
use super::events::to_js;
use super::fetch;
use super::oidc::{self, SignIn};

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
  /** DPoP (RFC 9449): bind the tokens to a non-extractable key of this browser; proofs on every request. Token mode only. Default false. */
  dpop?: boolean;
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

/** OpenID Connect options shared by both ways to name the provider. */
interface OidcOptions extends CommonConfig {
  mode?: "token";
  /** Your app's client id at the provider (a public client, PKCE). */
  clientId: string;
  /** Where the provider sends the browser back; register it there. Default: this page, without query or fragment. */
  redirectUri?: string;
  /** Default `"openid offline_access"` (`offline_access` asks for a refresh token). */
  scope?: string;
  /** Where the provider sends the browser after `logout()`; register it there. */
  postLogoutRedirectUri?: string;
  /** The end-session endpoint, if the provider's discovery document does not give it. */
  endSessionUrl?: string;
}

/** OpenID Connect with discovery: `{issuer}/.well-known/openid-configuration` gives the endpoints. */
export interface OidcSessionConfig extends OidcOptions {
  /** The provider's issuer, exactly as its discovery document spells it. Its origin may receive the token (userinfo). */
  issuer: string;
  /** Overrides the discovered token endpoint. */
  tokenUrl?: string;
}

/** OpenID Connect with the endpoints given directly (no discovery). */
export interface OidcEndpointsConfig extends OidcOptions {
  authorizationUrl: string;
  tokenUrl: string;
  /** Checked against the ID token's `iss` when given. */
  issuer?: string;
}

/** Options of `new Session(config)`. */
export type SessionConfig = TokenSessionConfig | CookieSessionConfig | OidcSessionConfig | OidcEndpointsConfig;

/** Options of `loginWithRedirect()`. */
export interface LoginWithRedirectOptions {
  /** Any JSON data, handed back by `handleRedirectCallback()` (e.g. the page to return to). */
  appState?: unknown;
  /** OpenID Connect `prompt`: `"login"`, `"none"`, `"consent"`, `"select_account"`. */
  prompt?: string;
  /** Prefills the provider's login form. */
  loginHint?: string;
  /** More authorization request parameters (e.g. `{ ui_locales: "fr" }`); cannot replace the SDK's own. */
  extraParams?: Record<string, string>;
}

/** Options of `loginWithPopup()`. */
export interface LoginWithPopupOptions extends LoginWithRedirectOptions {
  /** Give up (reject with `timeout`, close the popup) after this long. Default 120000 (2 min); 1000 to 3600000. */
  timeoutMs?: number;
}

/** What `handleRedirectCallback()` and `loginWithPopup()` resolve to. */
export interface RedirectResult {
  /** The `appState` given to `loginWithRedirect()` or `loginWithPopup()`, if any. */
  appState?: unknown;
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
fn page_url() -> Result<String, Error> {
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
    // The default redirect URI is the page itself, without query or fragment.
    let here = format!("{}{}", page.origin(), page.pathname());
    let redirect_uri = resolve("redirectUri", oidc.and_then(|o| o.redirect_uri.as_ref()))?.unwrap_or(here);
    let post_logout_redirect_uri =
        resolve("postLogoutRedirectUri", oidc.and_then(|o| o.post_logout_redirect_uri.as_ref()))?;
    let stored = config.storage != crate::core::config::StorageMode::Memory;
    let dpop = (config.dpop && config.mode() == Mode::Token).then(|| Rc::new(Keys::new(&config.namespace, stored)));
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
    let sign_in = oidc.map(|o| SignIn::new(o.clone(), redirect_uri, post_logout_redirect_uri, &config.namespace));
    Ok((config, Endpoints { auth, sign_in, token_origins, dpop }))
}

/// The keys of an options object, refusing any not in `known` (naming it).
fn option_keys(value: &JsValue, arg: &'static str, known: &[&str], list: &'static str) -> Result<(), Error> {
    if !value.is_object() || Array::is_array(value) || value.is_function() {
        return Err(Error::InvalidArgument(arg, "must be an options object"));
    }
    let keys = Object::keys(value.unchecked_ref::<Object>());
    if keys.iter().any(|k| k.as_string().is_none_or(|k| !known.contains(&k.as_str()))) {
        return Err(Error::InvalidArgument(arg, list));
    }
    Ok(())
}

/// `loginWithRedirect(options)`: the serde-read options and `appState` as JSON text.
fn login_options(value: JsValue, popup: bool) -> Result<(LoginOptions, Option<String>, f64), Error> {
    let (arg, state_arg) = match popup {
        true => ("loginWithPopup(options)", "loginWithPopup(options.appState)"),
        false => ("loginWithRedirect(options)", "loginWithRedirect(options.appState)"),
    };
    if value.is_undefined() || value.is_null() {
        return Ok((LoginOptions::default(), None, POPUP_TIMEOUT_MS));
    }
    match popup {
        true => option_keys(
            &value,
            arg,
            &["appState", "prompt", "loginHint", "extraParams", "timeoutMs"],
            "takes only appState, prompt, loginHint, extraParams and timeoutMs",
        )?,
        false => option_keys(
            &value,
            arg,
            &["appState", "prompt", "loginHint", "extraParams"],
            "takes only appState, prompt, loginHint and extraParams",
        )?,
    }
    let get = |name: &str| js_sys::Reflect::get(&value, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let app_state = get("appState");
    let app_state = match app_state.is_undefined() {
        true => None,
        false => Some(
            js_sys::JSON::stringify(&app_state)
                .ok()
                .and_then(|s| s.as_string())
                .filter(|s| s.len() <= 65_536)
                .ok_or(Error::InvalidArgument(state_arg, "must be JSON data of at most 64 KB"))?,
        ),
    };
    let timeout = get("timeoutMs");
    let timeout_ms = match timeout.as_f64() {
        _ if timeout.is_undefined() => POPUP_TIMEOUT_MS,
        Some(ms) if (1_000.0..=3_600_000.0).contains(&ms) => ms,
        _ => {
            return Err(Error::InvalidArgument(
                "loginWithPopup(options.timeoutMs)",
                "must be a number of milliseconds from 1000 to 3600000",
            ))
        }
    };
    let raw: RawLoginOptions =
        serde_wasm_bindgen::from_value(value).map_err(|_| Error::InvalidArgument(arg, "must be a plain object"))?;
    Ok((raw.validate()?, app_state, timeout_ms))
}

/// How long `loginWithPopup` waits for the popup by default.
const POPUP_TIMEOUT_MS: f64 = 120_000.0;

/// A new login transaction and its challenge, for the session's sign-in. With DPoP and
/// `bind_code` (a popup: the key stays in this page until the code comes back), a new key
/// whose thumbprint goes as `dpop_jkt`, so that the code is bound to it too.
async fn new_login(
    d: &Driver,
    app_state: Option<String>,
    bind_code: bool,
) -> Result<(crate::core::oidc::Pending, String), JsValue> {
    let sign_in =
        d.sign_in.as_ref().ok_or(Error::Config("issuer".into(), "is required to sign in with OpenID Connect"))?;
    let (mut login, challenge) = sign_in.new_login(app_state).await?;
    if let (true, Some(keys)) = (bind_code, &d.dpop) {
        login.dpop_jkt = Some(keys.new_sign_in().await?);
    }
    Ok((login, challenge))
}

/// `{ appState }` of a handled sign-in.
fn app_state_result(answer: Answer) -> Result<JsValue, JsValue> {
    let app_state = match answer {
        Answer::AppState(a) => a.and_then(|a| js_sys::JSON::parse(&a).ok()).unwrap_or(JsValue::UNDEFINED),
        Answer::Failed(e) => return Err(to_js(&e)),
        Answer::Token { .. } | Answer::NoToken | Answer::Done => JsValue::UNDEFINED,
    };
    let result = Object::new();
    let _ = js_sys::Reflect::set(&result, &"appState".into(), &app_state);
    Ok(result.into())
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

fn reject(e: Error) -> Promise {
    Promise::reject(&to_js(&e))
}

/// The answer to a call that resolves to nothing.
fn done(answer: Answer) -> Result<JsValue, JsValue> {
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

    fn live(&self) -> Result<&Rc<Driver>, Error> {
        if self.driver.machine().is_disposed() {
            Err(Error::Disposed)
        } else {
            Ok(&self.driver)
        }
    }

    /// The live session, if it signs in with OpenID Connect (`method` names the call).
    fn signs_in(&self, method: &'static str) -> Result<Rc<Driver>, Error> {
        let d = self.live()?;
        if d.sign_in.is_none() || d.auth.oauth().is_none() {
            let why = match method {
                "loginWithPopup" => "is required for loginWithPopup (or authorizationUrl)",
                "handleRedirectCallback" => "is required for handleRedirectCallback (or authorizationUrl)",
                _ => "is required for loginWithRedirect (or authorizationUrl)",
            };
            return Err(Error::Config("issuer".into(), why));
        }
        Ok(d.clone())
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
            let (Some(sign_in), Some(server)) = (&d.sign_in, d.auth.oauth()) else { return Ok(JsValue::UNDEFINED) };
            let provider = server.provider().await?;
            if let Some(url) = oidc::end_session_url(sign_in, &provider, &server.client_id, id_token, return_to)? {
                oidc::navigate(&url)?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Sends the browser to the OpenID Provider to sign in (authorization code with PKCE).
    /// The `state`, `nonce` and code verifier stay in this tab's `sessionStorage` until
    /// `handleRedirectCallback`. Resolves as the page navigates away.
    #[wasm_bindgen(js_name = loginWithRedirect, unchecked_return_type = "Promise<void>")]
    pub fn login_with_redirect(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LoginWithRedirectOptions")] options: Option<JsValue>,
    ) -> Promise {
        let d = match self.signs_in("loginWithRedirect") {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let (options, app_state, _) = match login_options(options.unwrap_or(JsValue::UNDEFINED), false) {
            Ok(o) => o,
            Err(e) => return reject(e),
        };
        promise(async move {
            let (login, challenge) = new_login(&d, app_state, false).await?;
            let auth = Authorization { ticket: 0, login, challenge, options, popup: None };
            done(d.kept().ask(|ticket| Input::Authorize(Authorization { ticket, ..auth })).await)
        })
    }

    /// Signs in with the OpenID Provider in a popup window, this page staying as it is. Call
    /// it in a click handler (popup blockers allow windows opened there). The provider
    /// redirects the popup to `redirectUri`, whose page hands its URL back to this one (see
    /// the README); then the same checks as `handleRedirectCallback`, and every tab is signed
    /// in. Resolves to `{ appState }`. Rejects with `popup_blocked`, `popup_closed`, `timeout`
    /// (after `timeoutMs`, default 120 s), or the errors of `handleRedirectCallback`.
    #[wasm_bindgen(js_name = loginWithPopup, unchecked_return_type = "Promise<RedirectResult>")]
    pub fn login_with_popup(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LoginWithPopupOptions")] options: Option<JsValue>,
    ) -> Promise {
        let d = match self.signs_in("loginWithPopup") {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let (options, app_state, timeout_ms) = match login_options(options.unwrap_or(JsValue::UNDEFINED), true) {
            Ok(o) => o,
            Err(e) => return reject(e),
        };
        // Opened now, in the click: after an `await` the browser would block it.
        if !d.open_popup() {
            return reject(Error::PopupBlocked);
        }
        promise(async move {
            let (login, challenge) = match new_login(&d, app_state, true).await {
                Ok(l) => l,
                Err(e) => {
                    // Nothing will be sent there: the blank window must not stay open.
                    d.close_popup();
                    return Err(e);
                }
            };
            let auth = Authorization { ticket: 0, login, challenge, options, popup: Some(timeout_ms) };
            app_state_result(d.kept().ask(|ticket| Input::Authorize(Authorization { ticket, ..auth })).await)
        })
    }

    /// On the page the provider redirects back to: checks `state`, exchanges the code with
    /// the PKCE verifier, checks the ID token's claims, signs in (every tab adopts the
    /// session) and removes the callback's parameters from the address bar. Resolves to
    /// `{ appState }`. Rejects with `invalid_state`, `oauth_error` (with `error` and
    /// `errorDescription`), `login_failed` or `invalid_id_token`. Calls for the same URL
    /// (a component mounted twice) share one exchange and one answer.
    #[wasm_bindgen(js_name = handleRedirectCallback, unchecked_return_type = "Promise<RedirectResult>")]
    pub fn handle_redirect_callback(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "string")] url: Option<JsValue>,
    ) -> Promise {
        let d = match self.signs_in("handleRedirectCallback") {
            Ok(d) => d,
            Err(e) => return reject(e),
        };
        let url = match url.filter(|u| !u.is_undefined()) {
            None => page_url(),
            Some(u) => u.as_string().ok_or(Error::InvalidArgument("handleRedirectCallback(url)", "must be a string")),
        };
        let (url, params) = match url.and_then(|u| oidc::callback_params(&u)) {
            Ok(p) => p,
            Err(e) => return reject(e),
        };
        let login = d.sign_in.as_ref().map_or(Ok(None), |s| s.read_login());
        promise(async move {
            // DPoP: the key of this sign-in is made here, after the redirect (the page that
            // left could not keep a non-extractable key in memory mode): the code is not
            // bound (no `dpop_jkt`), the tokens are, by the exchange's proof.
            if let Some(keys) = &d.dpop {
                keys.new_sign_in().await?;
            }
            app_state_result(d.kept().ask(|ticket| Input::Callback { ticket, url, params, login }).await)
        })
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
