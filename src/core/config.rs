//! [`Config`]: the options of `new Session(config)`, their defaults, and validation whose
//! errors name the field. serde reads the object ([`RawConfig`], one [`Field`] per option);
//! the rules live here. URL resolution against the page happens in the browser driver, with
//! the transport rule from here ([`check_transport`]).

use serde::Deserialize;

use super::error::Error;
use super::Field;

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

/// Every option name `new Session(config)` accepts.
pub const OPTIONS: [&str; 25] = [
    "mode",
    "tokenUrl",
    "clientId",
    "revokeUrl",
    "storage",
    "namespace",
    "allowedOrigins",
    "refreshLeadMs",
    "requestTimeoutMs",
    "retryBaseMs",
    "retryMaxMs",
    "lockTimeoutMs",
    "restoreTimeoutMs",
    "crossTab",
    "sessionUrl",
    "csrfHeader",
    "idleTimeoutMs",
    "idleWarningMs",
    "maxSessionMs",
    "issuer",
    "authorizationUrl",
    "endSessionUrl",
    "redirectUri",
    "scope",
    "postLogoutRedirectUri",
];

/// The unknown-key error text, listing the options.
const UNKNOWN: &str = "is not an option (options: mode, tokenUrl, clientId, revokeUrl, storage, namespace, \
allowedOrigins, refreshLeadMs, requestTimeoutMs, retryBaseMs, retryMaxMs, lockTimeoutMs, restoreTimeoutMs, crossTab, \
sessionUrl, csrfHeader, idleTimeoutMs, idleWarningMs, maxSessionMs, issuer, authorizationUrl, endSessionUrl, redirectUri, \
scope, postLogoutRedirectUri)";

/// The config object as serde reads it: every option, each of any type.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawConfig {
    pub mode: Field<String>,
    pub token_url: Field<String>,
    pub client_id: Field<String>,
    pub revoke_url: Field<String>,
    pub storage: Field<String>,
    pub namespace: Field<String>,
    pub allowed_origins: Field<Vec<String>>,
    pub refresh_lead_ms: Field<f64>,
    pub request_timeout_ms: Field<f64>,
    pub retry_base_ms: Field<f64>,
    pub retry_max_ms: Field<f64>,
    pub lock_timeout_ms: Field<f64>,
    pub restore_timeout_ms: Field<f64>,
    pub cross_tab: Field<bool>,
    pub session_url: Field<String>,
    pub csrf_header: Field<String>,
    pub idle_timeout_ms: Field<f64>,
    pub idle_warning_ms: Field<f64>,
    pub max_session_ms: Field<f64>,
    pub issuer: Field<String>,
    pub authorization_url: Field<String>,
    pub end_session_url: Field<String>,
    pub redirect_uri: Field<String>,
    pub scope: Field<String>,
    pub post_logout_redirect_uri: Field<String>,
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

/// Validated options. URLs are as given; the driver resolves them against the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Tokens in the browser, or a cookie session.
    pub mode: Mode,
    /// OAuth 2.0 token endpoint for the refresh grant (required in token mode).
    pub token_url: String,
    /// Sent as `client_id` with refresh and revocation requests.
    pub client_id: Option<String>,
    /// RFC 7009 revocation endpoint; logout revokes the refresh token there.
    pub revoke_url: Option<String>,
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
    /// Cookie mode: the session endpoint (`GET` restores, `/refresh` extends, `/logout` ends).
    pub session_url: Option<String>,
    /// Cookie mode: the header that carries the CSRF token on unsafe methods.
    pub csrf_header: String,
    /// No user activity in any tab for this long ends the session (reason `idle`).
    pub idle_timeout_ms: Option<f64>,
    /// This long before the idle logout, an `idle_warning` event.
    pub idle_warning_ms: Option<f64>,
    /// The session ends this long after login whatever happens (reason `absolute`).
    pub max_session_ms: Option<f64>,
    /// OpenID Connect sign-in, when `issuer` or `authorizationUrl` is given.
    pub oidc: Option<Oidc>,
}

impl Config {
    /// Logout revokes: a revocation URL is given, or discovery may find one, or the server
    /// session of cookie mode.
    pub fn revokes(&self) -> bool {
        self.revoke_url.is_some() || self.mode == Mode::Cookie || self.oidc.as_ref().is_some_and(Oidc::discovers)
    }
}

impl Default for Config {
    /// The defaults, with an empty token URL (for tests and the simulation).
    fn default() -> Self {
        Config {
            mode: Mode::Token,
            token_url: String::new(),
            client_id: None,
            revoke_url: None,
            storage: StorageMode::Memory,
            namespace: "default".into(),
            allowed_origins: Vec::new(),
            refresh_lead_ms: 60_000.0,
            request_timeout_ms: 10_000.0,
            retry_base_ms: 1_000.0,
            retry_max_ms: 30_000.0,
            lock_timeout_ms: 15_000.0,
            restore_timeout_ms: 300.0,
            cross_tab: true,
            session_url: None,
            csrf_header: "X-CSRF-Token".into(),
            idle_timeout_ms: None,
            idle_warning_ms: None,
            max_session_ms: None,
            oidc: None,
        }
    }
}

const DAY_MS: f64 = 86_400_000.0;

fn err(field: &str, why: &'static str) -> Error {
    Error::Config(field.to_string(), why)
}

fn string(field: Field<String>, name: &str) -> Result<Option<String>, Error> {
    match field {
        Field::Absent => Ok(None),
        Field::Valid(s) if s.trim().is_empty() => Err(err(name, "must not be empty")),
        Field::Valid(s) if s.len() > 2048 => Err(err(name, "is longer than 2048 characters")),
        Field::Valid(s) => Ok(Some(s)),
        Field::Invalid => Err(err(name, "must be a string")),
    }
}

fn optional_millis(field: Field<f64>, name: &str, min: f64, max: f64) -> Result<Option<f64>, Error> {
    match field {
        Field::Absent => Ok(None),
        f => millis(f, name, 0.0, min, max).map(Some),
    }
}

fn millis(field: Field<f64>, name: &str, default: f64, min: f64, max: f64) -> Result<f64, Error> {
    match field {
        Field::Absent => Ok(default),
        Field::Valid(n) if !n.is_finite() => Err(err(name, "must be a finite number of milliseconds")),
        Field::Valid(n) if n < min || n > max => Err(err(name, "is out of range (see the README for limits)")),
        Field::Valid(n) => Ok(n),
        Field::Invalid => Err(err(name, "must be a number of milliseconds")),
    }
}

impl Config {
    /// Validates a config object: `keys` are its own keys (unknown ones are refused, naming
    /// the key: serde-wasm-bindgen only looks up declared fields), `raw` its fields.
    pub fn from_raw(keys: &[String], raw: RawConfig) -> Result<Config, Error> {
        if let Some(unknown) = keys.iter().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(err(unknown, UNKNOWN));
        }
        let d = Config::default();
        let mode = match raw.mode {
            Field::Absent => Mode::Token,
            Field::Valid(s) if s == "token" => Mode::Token,
            Field::Valid(s) if s == "cookie" => Mode::Cookie,
            _ => return Err(err("mode", "must be \"token\" or \"cookie\"")),
        };
        let storage = match raw.storage {
            Field::Absent => StorageMode::Memory,
            Field::Valid(s) if s == "memory" => StorageMode::Memory,
            Field::Valid(s) if s == "session" => StorageMode::Session,
            Field::Valid(s) if s == "local" => StorageMode::Local,
            _ => return Err(err("storage", "must be \"memory\", \"session\" or \"local\"")),
        };
        let cross_tab = match raw.cross_tab {
            Field::Absent => true,
            Field::Valid(b) => b,
            Field::Invalid => return Err(err("crossTab", "must be a boolean")),
        };
        let retry_base_ms = millis(raw.retry_base_ms, "retryBaseMs", d.retry_base_ms, 10.0, 3_600_000.0)?;
        let retry_max_ms = millis(raw.retry_max_ms, "retryMaxMs", d.retry_max_ms, 10.0, DAY_MS)?;
        if retry_max_ms < retry_base_ms {
            return Err(err("retryMaxMs", "must be at least retryBaseMs"));
        }
        let namespace = string(raw.namespace, "namespace")?.unwrap_or(d.namespace);
        let ns_ok =
            namespace.len() <= 64 && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ns_ok {
            return Err(err("namespace", "must be 1-64 characters of letters, digits, '-', '_' or '.'"));
        }
        let allowed_origins = match raw.allowed_origins {
            Field::Absent => Vec::new(),
            Field::Valid(list) if list.iter().all(|o| !o.is_empty()) => list,
            _ => return Err(err("allowedOrigins", "must be an array of origin strings")),
        };
        let idle_timeout_ms = optional_millis(raw.idle_timeout_ms, "idleTimeoutMs", 10_000.0, 30.0 * DAY_MS)?;
        let idle_warning_ms = optional_millis(raw.idle_warning_ms, "idleWarningMs", 1_000.0, 30.0 * DAY_MS)?;
        match (idle_timeout_ms, idle_warning_ms) {
            (None, Some(_)) => return Err(err("idleWarningMs", "needs idleTimeoutMs")),
            (Some(t), Some(w)) if w >= t => return Err(err("idleWarningMs", "must be shorter than idleTimeoutMs")),
            _ => {}
        }
        let max_session_ms = optional_millis(raw.max_session_ms, "maxSessionMs", 10_000.0, 366.0 * DAY_MS)?;
        let csrf_header = string(raw.csrf_header, "csrfHeader")?.unwrap_or(d.csrf_header);
        let header_ok = csrf_header.len() <= 64 && csrf_header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !header_ok {
            return Err(err("csrfHeader", "must be a header name of letters, digits and '-'"));
        }
        let client_id = string(raw.client_id, "clientId")?;
        let oidc = oidc(
            &raw.issuer,
            &raw.authorization_url,
            &raw.end_session_url,
            &raw.redirect_uri,
            &raw.scope,
            &raw.post_logout_redirect_uri,
        )?;
        if oidc.is_some() && client_id.is_none() {
            return Err(err("clientId", "is required with issuer or authorizationUrl"));
        }
        let token_url = string(raw.token_url, "tokenUrl")?;
        let session_url = string(raw.session_url, "sessionUrl")?;
        let token_url = match mode {
            Mode::Token if session_url.is_some() => {
                return Err(err("sessionUrl", "applies only with mode: \"cookie\""))
            }
            Mode::Token if oidc.as_ref().is_some_and(Oidc::discovers) => token_url.unwrap_or_default(),
            Mode::Token => token_url.ok_or_else(|| {
                err("tokenUrl", "is required (your OAuth 2.0 token endpoint), or issuer for OpenID Connect")
            })?,
            Mode::Cookie if oidc.is_some() => {
                return Err(err("issuer", "does not apply with mode: \"cookie\" (the server signs in)"))
            }
            Mode::Cookie if token_url.is_some() => {
                return Err(err("tokenUrl", "does not apply with mode: \"cookie\" (use sessionUrl)"))
            }
            Mode::Cookie if session_url.is_none() => {
                return Err(err("sessionUrl", "is required with mode: \"cookie\" (your session endpoint)"))
            }
            Mode::Cookie if storage != StorageMode::Memory => {
                return Err(err("storage", "must be \"memory\" with mode: \"cookie\" (the cookie is the session)"))
            }
            Mode::Cookie => String::new(),
        };
        Ok(Config {
            mode,
            token_url,
            client_id,
            revoke_url: string(raw.revoke_url, "revokeUrl")?,
            storage,
            namespace,
            allowed_origins,
            refresh_lead_ms: millis(raw.refresh_lead_ms, "refreshLeadMs", d.refresh_lead_ms, 0.0, DAY_MS)?,
            request_timeout_ms: millis(
                raw.request_timeout_ms,
                "requestTimeoutMs",
                d.request_timeout_ms,
                100.0,
                600_000.0,
            )?,
            retry_base_ms,
            retry_max_ms,
            lock_timeout_ms: millis(raw.lock_timeout_ms, "lockTimeoutMs", d.lock_timeout_ms, 100.0, 600_000.0)?,
            restore_timeout_ms: millis(
                raw.restore_timeout_ms,
                "restoreTimeoutMs",
                d.restore_timeout_ms,
                0.0,
                60_000.0,
            )?,
            cross_tab,
            session_url,
            csrf_header,
            idle_timeout_ms,
            idle_warning_ms,
            max_session_ms,
            oidc,
        })
    }
}

/// The OpenID Connect options: none of them, or a sign-in to set up.
fn oidc(
    issuer: &Field<String>,
    authorization_url: &Field<String>,
    end_session_url: &Field<String>,
    redirect_uri: &Field<String>,
    scope: &Field<String>,
    post_logout_redirect_uri: &Field<String>,
) -> Result<Option<Oidc>, Error> {
    let o = Oidc {
        issuer: string(issuer.clone(), "issuer")?,
        authorization_url: string(authorization_url.clone(), "authorizationUrl")?,
        end_session_url: string(end_session_url.clone(), "endSessionUrl")?,
        redirect_uri: string(redirect_uri.clone(), "redirectUri")?,
        scope: string(scope.clone(), "scope")?.unwrap_or_else(|| "openid offline_access".into()),
        post_logout_redirect_uri: string(post_logout_redirect_uri.clone(), "postLogoutRedirectUri")?,
    };
    if o.issuer.is_some() || o.authorization_url.is_some() {
        let scope_ok = o.scope.len() <= 1024 && o.scope.bytes().all(|b| b == b' ' || (b'!'..=b'~').contains(&b));
        if !scope_ok || o.scope.contains('"') || o.scope.contains('\\') {
            return Err(err("scope", "must be space-separated scope tokens (RFC 6749 §3.3)"));
        }
        return Ok(Some(o));
    }
    for (given, name) in [
        (&o.end_session_url, "endSessionUrl"),
        (&o.redirect_uri, "redirectUri"),
        (&o.post_logout_redirect_uri, "postLogoutRedirectUri"),
    ] {
        if given.is_some() {
            return Err(err(name, "needs issuer (or authorizationUrl) for OpenID Connect"));
        }
    }
    if !matches!(scope, Field::Absent) {
        return Err(err("scope", "needs issuer (or authorizationUrl) for OpenID Connect"));
    }
    Ok(None)
}

/// True for hosts that never leave the machine, where plain http is acceptable.
pub fn is_loopback(host: &str) -> bool {
    let mut parts = host.strip_prefix("127.").map(|rest| rest.split('.'));
    let ipv4_loopback = parts.as_mut().is_some_and(|parts| {
        let octets: Vec<&str> = parts.collect();
        octets.len() == 3 && octets.iter().all(|o| (1..=3).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_digit()))
    });
    matches!(host, "localhost" | "[::1]") || ipv4_loopback || host.ends_with(".localhost")
}

/// Tokens travel only over https, or plain http to this machine.
pub fn check_transport(field: &str, protocol: &str, host: &str) -> Result<(), Error> {
    match protocol {
        "https:" => Ok(()),
        "http:" if is_loopback(host) => Ok(()),
        "http:" => Err(err(field, "uses plain http to a host other than localhost; use https")),
        _ => Err(err(field, "must be an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(v: Value) -> Result<Config, Error> {
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        Config::from_raw(&keys, serde_json::from_value(v).unwrap())
    }

    fn field_of(r: Result<Config, Error>) -> String {
        match r.unwrap_err() {
            Error::Config(f, _) => f,
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn defaults_for_everything_but_the_token_url() {
        let c = parse(json!({ "tokenUrl": "/auth/token" })).unwrap();
        assert_eq!(c, Config { token_url: "/auth/token".into(), ..Config::default() });
    }

    #[test]
    fn every_option_is_read() {
        let c = parse(json!({
            "tokenUrl": "/t", "clientId": "spa", "revokeUrl": "/r", "storage": "local", "namespace": "app-2",
            "allowedOrigins": ["https://api.example.com"], "refreshLeadMs": 5, "requestTimeoutMs": 2000,
            "retryBaseMs": 50, "retryMaxMs": 500, "lockTimeoutMs": 3000, "restoreTimeoutMs": 0, "crossTab": false,
        }))
        .unwrap();
        assert_eq!(
            (c.storage, c.namespace.as_str(), c.client_id.as_deref()),
            (StorageMode::Local, "app-2", Some("spa"))
        );
        assert_eq!(c.allowed_origins, vec!["https://api.example.com".to_string()]);
        assert_eq!((c.refresh_lead_ms, c.request_timeout_ms), (5.0, 2000.0));
        assert_eq!(
            (c.retry_base_ms, c.retry_max_ms, c.lock_timeout_ms, c.restore_timeout_ms),
            (50.0, 500.0, 3000.0, 0.0)
        );
        assert!(!c.cross_tab);
    }

    #[test]
    fn errors_name_the_field() {
        for (config, field) in [
            (json!({}), "tokenUrl"),
            (json!({ "tokenUrl": 1 }), "tokenUrl"),
            (json!({ "tokenUrl": "  " }), "tokenUrl"),
            (json!({ "tokenUrl": "/t", "tokenurl": "/t" }), "tokenurl"),
            (json!({ "tokenUrl": "/t", "storage": "cookie" }), "storage"),
            (json!({ "tokenUrl": "/t", "namespace": "" }), "namespace"),
            (json!({ "tokenUrl": "/t", "namespace": "a b" }), "namespace"),
            (json!({ "tokenUrl": "/t", "allowedOrigins": "https://x" }), "allowedOrigins"),
            (json!({ "tokenUrl": "/t", "allowedOrigins": [1] }), "allowedOrigins"),
            (json!({ "tokenUrl": "/t", "allowedOrigins": [""] }), "allowedOrigins"),
            (json!({ "tokenUrl": "/t", "refreshLeadMs": "60" }), "refreshLeadMs"),
            (json!({ "tokenUrl": "/t", "requestTimeoutMs": -1 }), "requestTimeoutMs"),
            (json!({ "tokenUrl": "/t", "retryBaseMs": 900, "retryMaxMs": 100 }), "retryMaxMs"),
            (json!({ "tokenUrl": "/t", "crossTab": "yes" }), "crossTab"),
            (json!({ "tokenUrl": "/t", "clientId": {} }), "clientId"),
            (json!({ "tokenUrl": "/t", "mode": "session" }), "mode"),
            (json!({ "mode": "cookie" }), "sessionUrl"),
            (json!({ "mode": "cookie", "sessionUrl": "/s", "tokenUrl": "/t" }), "tokenUrl"),
            (json!({ "mode": "cookie", "sessionUrl": "/s", "storage": "local" }), "storage"),
            (json!({ "tokenUrl": "/t", "sessionUrl": "/s" }), "sessionUrl"),
            (json!({ "tokenUrl": "/t", "idleWarningMs": 5000 }), "idleWarningMs"),
            (json!({ "tokenUrl": "/t", "idleTimeoutMs": 60000, "idleWarningMs": 60000 }), "idleWarningMs"),
            (json!({ "tokenUrl": "/t", "idleTimeoutMs": 10 }), "idleTimeoutMs"),
            (json!({ "tokenUrl": "/t", "maxSessionMs": "8h" }), "maxSessionMs"),
            (json!({ "mode": "cookie", "sessionUrl": "/s", "csrfHeader": "X CSRF" }), "csrfHeader"),
            (json!({ "issuer": "https://id.example.com" }), "clientId"),
            (json!({ "issuer": 5, "clientId": "spa" }), "issuer"),
            (json!({ "authorizationUrl": "/authorize", "clientId": "spa" }), "tokenUrl"),
            (json!({ "tokenUrl": "/t", "redirectUri": "/cb" }), "redirectUri"),
            (json!({ "tokenUrl": "/t", "scope": "openid" }), "scope"),
            (json!({ "issuer": "https://id.example.com", "clientId": "spa", "scope": "openid \"x\"" }), "scope"),
            (
                json!({ "issuer": "https://id.example.com", "clientId": "spa", "postLogoutRedirectUri": [] }),
                "postLogoutRedirectUri",
            ),
            (
                json!({ "mode": "cookie", "sessionUrl": "/s", "issuer": "https://id.example.com", "clientId": "spa" }),
                "issuer",
            ),
        ] {
            assert_eq!(field_of(parse(config.clone())), field, "{config}");
        }
    }

    #[test]
    fn cookie_mode_and_timeouts_are_read() {
        let c = parse(json!({ "mode": "cookie", "sessionUrl": "/session", "idleTimeoutMs": 900000,
            "idleWarningMs": 60000, "maxSessionMs": 28800000 }))
        .unwrap();
        assert_eq!(
            (c.mode, c.session_url.as_deref(), c.csrf_header.as_str()),
            (Mode::Cookie, Some("/session"), "X-CSRF-Token")
        );
        assert_eq!(
            (c.idle_timeout_ms, c.idle_warning_ms, c.max_session_ms),
            (Some(900_000.0), Some(60_000.0), Some(28_800_000.0))
        );
    }

    #[test]
    fn openid_connect_is_read() {
        let c = parse(json!({ "issuer": "https://id.example.com", "clientId": "spa" })).unwrap();
        let o = c.oidc.clone().unwrap();
        assert_eq!(
            (c.token_url.as_str(), o.scope.as_str(), o.discovers(), c.revokes()),
            ("", "openid offline_access", true, true)
        );
        let c = parse(
            json!({ "authorizationUrl": "/authorize", "tokenUrl": "/token", "clientId": "spa", "scope": "openid" }),
        )
        .unwrap();
        let o = c.oidc.unwrap();
        assert_eq!((o.discovers(), o.scope.as_str(), c.revoke_url.is_some()), (false, "openid", false));
    }

    #[test]
    fn null_means_default() {
        assert_eq!(parse(json!({ "tokenUrl": "/t", "storage": null })).unwrap().storage, StorageMode::Memory);
    }

    #[test]
    fn transport_rules() {
        assert!(check_transport("tokenUrl", "https:", "auth.example.com").is_ok());
        for host in ["127.0.0.1", "localhost", "[::1]", "127.0.0.9", "127.255.255.255", "app.localhost"] {
            assert!(check_transport("tokenUrl", "http:", host).is_ok(), "{host}");
        }
        for host in [
            "example.com",
            "127.evil.com",
            "127.0.0.1.evil.com",
            "127.0.0",
            "127..0.1",
            "127.0.0.",
            "127.0.0.1234",
            "127.0.0.1.",
            "127",
            "1127.0.0.1",
        ] {
            assert!(check_transport("tokenUrl", "http:", host).is_err(), "{host}");
        }
        assert!(check_transport("tokenUrl", "ftp:", "localhost").is_err());
        assert!(check_transport("tokenUrl", "javascript:", "").is_err());
    }
}
