//! [`Config`]: the options of `new Session(config)`. Each option is written once, in the
//! `options!` table below: its JS name, its meaning (the README's words), its kind (the type
//! read, the bounds) and what it is when left out ([`Kind`] says what these can be). From
//! that table come the object serde reads ([`RawConfig`], one [`Field`] per option), the
//! entries validation reads ([`opt`]), the known keys ([`OPTIONS`]) and the unknown-key
//! message; [`TABLE`] lists the options for `tests/options.rs`, which holds the validation,
//! the README's option table and the TypeScript config types against it. The rules between
//! options live in [`Config::from_raw`]. URL resolution against the page happens in the
//! browser driver, with the transport rule from here ([`check_transport`]).

use super::error::Error;
use super::Field;

#[macro_use]
mod kinds;
mod oidc;

mod transport;
mod typed;

pub use kinds::{Flag, IfAbsent, Kind, List, Millis, OneOf, Opt, OptionKind, Row, Text};
pub use transport::{check_transport, is_loopback};
pub use typed::SessionConfig;
use IfAbsent::{Derived, Required, Unset, Value};

/// Where the session is kept between page loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageMode {
    /// Nothing is written anywhere; other open tabs share the session over BroadcastChannel.
    Memory,
    /// `sessionStorage`: survives reloads of this tab.
    Session,
    /// `localStorage`: survives restarts, shared by all tabs.
    Local,
}

impl StorageMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Memory => "memory",
            StorageMode::Session => "session",
            StorageMode::Local => "local",
        }
    }
}

/// What kind of session: tokens held in the browser, or a server session behind a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// OAuth 2.0 tokens in the browser (`tokenUrl`).
    Token,
    /// An HttpOnly session cookie and a CSRF token (`sessionUrl`); no token in JS.
    Cookie,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Token => "token",
            Mode::Cookie => "cookie",
        }
    }
}

const SECOND_MS: f64 = 1_000.0;
const MINUTE_MS: f64 = 60_000.0;
const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: f64 = 86_400_000.0;

options! {
    /// `"cookie"`: a server session behind an HttpOnly cookie; see [Cookie mode](#cookie-mode).
    mode: OneOf { values: &["token", "cookie"], default: "token" },
    /// Token endpoint for the refresh grant. Relative URLs resolve against the page. https, or
    /// http to localhost only.
    tokenUrl: Text { default: Required("") },
    /// Sent as `client_id` with refresh and revocation requests.
    clientId: Text { default: Unset },
    /// RFC 7009 revocation endpoint. `logout()` revokes the refresh token there.
    revokeUrl: Text { default: Unset },
    /// Where tokens live between page loads. `memory` writes nothing anywhere. If the requested
    /// storage is blocked, the session falls back to memory and emits an `error` event
    /// (`code: "storage"`).
    storage: OneOf { values: &["memory", "session", "local"], default: "memory" },
    /// Separates sessions sharing one origin: storage key, channel and lock names. 1–64 of
    /// `A-Z a-z 0-9 - _ .`
    namespace: Text { default: Value("default") },
    /// Origins (scheme, host, port; no path) besides the page's own that receive the token.
    allowedOrigins: List {},
    /// Refresh this long before expiry, but never more than a quarter of the token's lifetime
    /// (a 30 s token is refreshed at 22.5 s).
    refreshLeadMs: Millis { min: 0.0, max: DAY_MS, default: Value(60.0 * SECOND_MS) },
    /// Timeout of each request to the auth server.
    requestTimeoutMs: Millis { min: 100.0, max: 10.0 * MINUTE_MS, default: Value(10.0 * SECOND_MS) },
    /// First retry delay after a failed refresh; doubles per failure, with jitter (×0.5–1).
    retryBaseMs: Millis { min: 10.0, max: HOUR_MS, default: Value(SECOND_MS) },
    /// Longest retry delay; at least `retryBaseMs`.
    retryMaxMs: Millis { min: 10.0, max: DAY_MS, default: Value(30.0 * SECOND_MS) },
    /// Longest wait for another tab's refresh before taking over (a tab frozen or closed
    /// mid-refresh).
    lockTimeoutMs: Millis { min: 100.0, max: 10.0 * MINUTE_MS, default: Value(15.0 * SECOND_MS) },
    /// How long a new tab waits for open tabs to share their session (memory and session
    /// storage).
    restoreTimeoutMs: Millis { min: 0.0, max: MINUTE_MS, default: Value(300.0) },
    /// Coordinate with other tabs of the same namespace.
    crossTab: Flag { default: true },
    /// The session endpoint: `GET` restores, `POST …/refresh` extends, `POST …/logout` ends.
    /// Cookie mode takes no `tokenUrl`, `revokeUrl`, `clientId` or `storage`; `refreshLeadMs`
    /// is how long before the server's `expiresAt` the session is extended.
    sessionUrl: Text { default: Required("in cookie mode") },
    /// Cookie mode: the header that carries the CSRF token on POST, PUT, PATCH and DELETE.
    csrfHeader: Text { default: Value("X-CSRF-Token") },
    /// Without user activity (pointer, key, touch, a tab regaining focus) in **any** tab for
    /// this long, the session ends in every tab with reason `idle` and is revoked. Refreshes
    /// wait for activity meanwhile.
    idleTimeoutMs: Millis { min: 10.0 * SECOND_MS, max: 30.0 * DAY_MS, default: Unset },
    /// This long before the idle logout, an `idle_warning` event `{ logoutAt }`; activity in
    /// any tab then emits `active`. Shorter than `idleTimeoutMs`.
    idleWarningMs: Millis { min: SECOND_MS, max: 30.0 * DAY_MS, default: Unset },
    /// Absolute lifetime from sign-in, the same in every tab and across reloads; then the
    /// session ends with reason `absolute`.
    maxSessionMs: Millis { min: 10.0 * SECOND_MS, max: 366.0 * DAY_MS, default: Unset },
    /// OpenID Connect: the provider's issuer URL, exactly as its discovery document spells it.
    /// `{issuer}/.well-known/openid-configuration` gives the endpoints (fetched at first need);
    /// its `issuer` must be equal. Makes `tokenUrl` optional and lets the issuer's origin
    /// receive the token (userinfo) without `allowedOrigins`. See
    /// [Sign in with OpenID Connect](#sign-in-with-openid-connect).
    issuer: Text { default: Unset },
    /// OpenID Connect without discovery: the authorization endpoint (then `tokenUrl` is
    /// required, and `revokeUrl`, `endSessionUrl` are taken as given).
    authorizationUrl: Text { default: Unset },
    /// RP-initiated logout endpoint, if discovery does not give one.
    endSessionUrl: Text { default: Derived("discovered") },
    /// Where the provider sends the browser back (register it at the provider).
    redirectUri: Text { default: Derived("this page, without query or fragment") },
    /// The scope asked for; `offline_access` asks for a refresh token.
    scope: Text { default: Value("openid offline_access") },
    /// Where the provider sends the browser after `logout()` (register it there).
    postLogoutRedirectUri: Text { default: Unset },
    /// Bind the tokens to a private key that never leaves the browser (DPoP, RFC 9449): a
    /// token copied out of the page is refused without it. Token mode only. See [DPoP](#dpop).
    dpop: Flag { default: false },
}

/// OpenID Connect sign-in (authorization code + PKCE). URLs as given.
#[derive(Clone, Debug, PartialEq)]
pub struct Oidc {
    /// The provider's issuer: its discovery document, and the `iss` the ID token must carry.
    pub issuer: Option<String>,
    /// The authorization endpoint, when given directly (then there is no discovery).
    pub authorization_url: Option<String>,
    /// RP-initiated logout, when given directly.
    pub end_session_url: Option<String>,
    /// Where the provider sends the browser back (default: the page, without query).
    pub redirect_uri: Option<String>,
    /// The scope asked for.
    pub scope: String,
    /// Where the provider sends the browser after logout.
    pub post_logout_redirect_uri: Option<String>,
}

impl Oidc {
    /// The discovery document is fetched when an issuer is given without endpoints.
    pub fn discovers(&self) -> bool {
        self.issuer.is_some() && self.authorization_url.is_none()
    }
}

/// Where the session lives and is renewed: the mode, carrying the endpoints of that mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Server {
    /// `mode: "token"`: OAuth 2.0 tokens in the browser.
    OAuth {
        /// The token endpoint for the refresh grant (empty until discovery finds it).
        token_url: String,
        /// RFC 7009 revocation endpoint; logout revokes the refresh token there.
        revoke_url: Option<String>,
    },
    /// `mode: "cookie"`: an HttpOnly session cookie; JavaScript holds only a CSRF token.
    Cookie {
        /// The session endpoint (`GET` restores, `/refresh` extends, `/logout` ends).
        session_url: String,
        /// The header that carries the CSRF token on unsafe methods.
        csrf_header: String,
    },
}

/// Validated options (their meanings, bounds and defaults: [`TABLE`]). URLs are as given;
/// the driver resolves them against the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The mode and its endpoints.
    pub server: Server,
    /// Sent as `client_id` with refresh and revocation requests.
    pub client_id: Option<String>,
    /// Where tokens are kept.
    pub storage: StorageMode,
    /// Separates sessions sharing one origin (storage keys, channel and lock names).
    pub namespace: String,
    /// Origins besides the page's own that may receive the access token.
    pub allowed_origins: Vec<String>,
    /// Refresh this long before expiry (capped at a quarter of the token's lifetime).
    pub refresh_lead_ms: f64,
    /// Give up on an auth server request after this long.
    pub request_timeout_ms: f64,
    /// First retry delay after a failed refresh; doubles per failure.
    pub retry_base_ms: f64,
    /// Longest retry delay.
    pub retry_max_ms: f64,
    /// Longest wait for another tab's refresh lock before taking it over.
    pub lock_timeout_ms: f64,
    /// How long a new tab waits for open tabs to share their session at start-up.
    pub restore_timeout_ms: f64,
    /// Coordinate with other tabs (BroadcastChannel, Web Locks).
    pub cross_tab: bool,
    /// No user activity in any tab for this long ends the session (reason `idle`).
    pub idle_timeout_ms: Option<f64>,
    /// This long before the idle logout, an `idle_warning` event.
    pub idle_warning_ms: Option<f64>,
    /// The session ends this long after login whatever happens (reason `absolute`).
    pub max_session_ms: Option<f64>,
    /// OpenID Connect sign-in, when `issuer` or `authorizationUrl` is given.
    pub oidc: Option<Oidc>,
    /// DPoP (RFC 9449): tokens bound to a key of this browser, proofs on every request.
    pub dpop: bool,
}

impl Config {
    /// Logout revokes: a revocation URL is given, or discovery may find one, or the server
    /// session of cookie mode.
    pub fn revokes(&self) -> bool {
        let revoke_url = matches!(self.server, Server::OAuth { revoke_url: Some(_), .. });
        revoke_url || self.mode() == Mode::Cookie || self.oidc.as_ref().is_some_and(Oidc::discovers)
    }

    /// Tokens in the browser, or a cookie session.
    pub fn mode(&self) -> Mode {
        match self.server {
            Server::OAuth { .. } => Mode::Token,
            Server::Cookie { .. } => Mode::Cookie,
        }
    }

    /// A token-mode config with this token endpoint (and the defaults otherwise).
    pub fn with_token_url(token_url: &str) -> Config {
        Config { server: Server::OAuth { token_url: token_url.into(), revoke_url: None }, ..Config::default() }
    }
}

impl Default for Config {
    /// The table's defaults, with an empty token URL (for tests and the simulation). The
    /// two enums are tied to the table by a test (`defaults_are_the_tables`).
    fn default() -> Self {
        Config {
            server: Server::OAuth { token_url: String::new(), revoke_url: None },
            client_id: None,
            storage: StorageMode::Memory,
            namespace: const { opt::namespace.kind.default.value() }.into(),
            allowed_origins: Vec::new(),
            refresh_lead_ms: const { opt::refreshLeadMs.kind.default.value() },
            request_timeout_ms: const { opt::requestTimeoutMs.kind.default.value() },
            retry_base_ms: const { opt::retryBaseMs.kind.default.value() },
            retry_max_ms: const { opt::retryMaxMs.kind.default.value() },
            lock_timeout_ms: const { opt::lockTimeoutMs.kind.default.value() },
            restore_timeout_ms: const { opt::restoreTimeoutMs.kind.default.value() },
            cross_tab: opt::crossTab.kind.default,
            idle_timeout_ms: None,
            idle_warning_ms: None,
            max_session_ms: None,
            oidc: None,
            dpop: opt::dpop.kind.default,
        }
    }
}

fn err(field: &str, why: &'static str) -> Error {
    Error::Config(field.to_string(), why)
}

/// A string option: the string given, if any. (Inlined down to the name, so that the
/// table's entries, defaults and all, are not copied into the browser build.)
#[inline(always)]
fn text(field: Field<String>, o: Opt<Text>) -> Result<Option<String>, Error> {
    checked_text(field, o.name)
}

fn checked_text(field: Field<String>, name: &str) -> Result<Option<String>, Error> {
    match field {
        Field::Absent => Ok(None),
        Field::Valid(s) if s.trim().is_empty() => Err(err(name, "must not be empty")),
        Field::Valid(s) if s.len() > 2048 => Err(err(name, "is longer than 2048 characters")),
        Field::Valid(s) => Ok(Some(s)),
        Field::Invalid => Err(err(name, "must be a string")),
    }
}

fn flag(field: Field<bool>, name: &str, default: bool) -> Result<bool, Error> {
    match field {
        Field::Absent => Ok(default),
        Field::Valid(b) => Ok(b),
        Field::Invalid => Err(err(name, "must be a boolean")),
    }
}

/// A number of milliseconds: the number given, if any, within the option's bounds.
#[inline(always)]
fn millis(field: Field<f64>, o: Opt<Millis>) -> Result<Option<f64>, Error> {
    checked_millis(field, o.name, o.kind.min, o.kind.max)
}

fn checked_millis(field: Field<f64>, name: &str, min: f64, max: f64) -> Result<Option<f64>, Error> {
    match field {
        Field::Absent => Ok(None),
        Field::Valid(n) if !n.is_finite() => Err(err(name, "must be a finite number of milliseconds")),
        Field::Valid(n) if n < min || n > max => Err(err(name, "is out of range (see the README for limits)")),
        Field::Valid(n) => Ok(Some(n)),
        Field::Invalid => Err(err(name, "must be a number of milliseconds")),
    }
}

impl Config {
    /// Validates a config object: `keys` are its own keys (unknown ones are refused, naming
    /// the key: serde-wasm-bindgen only looks up declared fields), `raw` its fields. Each
    /// option is checked against its entry in the table; then the rules between options.
    pub fn from_raw(keys: &[String], raw: RawConfig) -> Result<Config, Error> {
        if let Some(unknown) = keys.iter().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(err(unknown, UNKNOWN));
        }
        let d = Config::default();
        let mode = match raw.mode {
            Field::Absent => d.mode(),
            Field::Valid(s) if s == "token" => Mode::Token,
            Field::Valid(s) if s == "cookie" => Mode::Cookie,
            _ => return Err(err(opt::mode.name, "must be \"token\" or \"cookie\"")),
        };
        let storage = match raw.storage {
            Field::Absent => d.storage,
            Field::Valid(s) if s == "memory" => StorageMode::Memory,
            Field::Valid(s) if s == "session" => StorageMode::Session,
            Field::Valid(s) if s == "local" => StorageMode::Local,
            _ => return Err(err(opt::storage.name, "must be \"memory\", \"session\" or \"local\"")),
        };
        let cross_tab = flag(raw.crossTab, opt::crossTab.name, d.cross_tab)?;
        let dpop = flag(raw.dpop, opt::dpop.name, d.dpop)?;
        if dpop && mode == Mode::Cookie {
            return Err(err(opt::dpop.name, "does not apply with mode: \"cookie\" (the cookie is the session)"));
        }
        if dpop && !cfg!(feature = "dpop") {
            return Err(err(
                opt::dpop.name,
                "needs DPoP: import from \"wasm-session/oidc\" (the crate's `dpop` feature)",
            ));
        }
        let retry_base_ms = millis(raw.retryBaseMs, opt::retryBaseMs)?.unwrap_or(d.retry_base_ms);
        let retry_max_ms = millis(raw.retryMaxMs, opt::retryMaxMs)?.unwrap_or(d.retry_max_ms);
        if retry_max_ms < retry_base_ms {
            return Err(err(opt::retryMaxMs.name, "must be at least retryBaseMs"));
        }
        let namespace = text(raw.namespace, opt::namespace)?.unwrap_or(d.namespace);
        let ns_ok =
            namespace.len() <= 64 && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ns_ok {
            return Err(err(opt::namespace.name, "must be 1-64 characters of letters, digits, '-', '_' or '.'"));
        }
        let allowed_origins = match raw.allowedOrigins {
            Field::Absent => d.allowed_origins,
            Field::Valid(list) if list.iter().all(|o| !o.is_empty()) => list,
            _ => return Err(err(opt::allowedOrigins.name, "must be an array of origin strings")),
        };
        let idle_timeout_ms = millis(raw.idleTimeoutMs, opt::idleTimeoutMs)?;
        let idle_warning_ms = millis(raw.idleWarningMs, opt::idleWarningMs)?;
        match (idle_timeout_ms, idle_warning_ms) {
            (None, Some(_)) => return Err(err(opt::idleWarningMs.name, "needs idleTimeoutMs")),
            (Some(t), Some(w)) if w >= t => {
                return Err(err(opt::idleWarningMs.name, "must be shorter than idleTimeoutMs"))
            }
            _ => {}
        }
        let max_session_ms = millis(raw.maxSessionMs, opt::maxSessionMs)?;
        let csrf_header = text(raw.csrfHeader, opt::csrfHeader)?;
        let csrf_header = csrf_header.unwrap_or_else(|| const { opt::csrfHeader.kind.default.value() }.into());
        let header_ok = csrf_header.len() <= 64 && csrf_header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !header_ok {
            return Err(err(opt::csrfHeader.name, "must be a header name of letters, digits and '-'"));
        }
        let client_id = text(raw.clientId, opt::clientId)?;
        let oidc = oidc::options(
            raw.issuer,
            raw.authorizationUrl,
            raw.endSessionUrl,
            raw.redirectUri,
            raw.scope,
            raw.postLogoutRedirectUri,
        )?;
        if oidc.is_some() && client_id.is_none() {
            return Err(err(opt::clientId.name, "is required with issuer or authorizationUrl"));
        }
        let token_url = text(raw.tokenUrl, opt::tokenUrl)?;
        let session_url = text(raw.sessionUrl, opt::sessionUrl)?;
        let revoke_url = text(raw.revokeUrl, opt::revokeUrl)?;
        let server = match mode {
            Mode::Token if session_url.is_some() => {
                return Err(err(opt::sessionUrl.name, "applies only with mode: \"cookie\""))
            }
            Mode::Token => {
                let token_url = match token_url {
                    Some(url) => url,
                    None if oidc.as_ref().is_some_and(Oidc::discovers) => String::new(),
                    None => {
                        return Err(err(
                            opt::tokenUrl.name,
                            "is required (your OAuth 2.0 token endpoint), or issuer for OpenID Connect",
                        ))
                    }
                };
                Server::OAuth { token_url, revoke_url }
            }
            Mode::Cookie if oidc.is_some() => {
                return Err(err(opt::issuer.name, "does not apply with mode: \"cookie\" (the server signs in)"))
            }
            Mode::Cookie if token_url.is_some() => {
                return Err(err(opt::tokenUrl.name, "does not apply with mode: \"cookie\" (use sessionUrl)"))
            }
            Mode::Cookie if storage != StorageMode::Memory => {
                return Err(err(
                    opt::storage.name,
                    "must be \"memory\" with mode: \"cookie\" (the cookie is the session)",
                ))
            }
            Mode::Cookie => match session_url {
                Some(session_url) => Server::Cookie { session_url, csrf_header },
                None => {
                    return Err(err(opt::sessionUrl.name, "is required with mode: \"cookie\" (your session endpoint)"))
                }
            },
        };
        Ok(Config {
            server,
            client_id,
            storage,
            namespace,
            allowed_origins,
            refresh_lead_ms: millis(raw.refreshLeadMs, opt::refreshLeadMs)?.unwrap_or(d.refresh_lead_ms),
            request_timeout_ms: millis(raw.requestTimeoutMs, opt::requestTimeoutMs)?.unwrap_or(d.request_timeout_ms),
            retry_base_ms,
            retry_max_ms,
            lock_timeout_ms: millis(raw.lockTimeoutMs, opt::lockTimeoutMs)?.unwrap_or(d.lock_timeout_ms),
            restore_timeout_ms: millis(raw.restoreTimeoutMs, opt::restoreTimeoutMs)?.unwrap_or(d.restore_timeout_ms),
            cross_tab,
            idle_timeout_ms,
            idle_warning_ms,
            max_session_ms,
            oidc,
            dpop,
        })
    }
}

#[cfg(test)]
mod tests;
