//! [`SessionConfig`]: the options of `new Session(config)` as a Rust struct (re-exported as
//! `wasm_session::Config`), validated by the same code as the JS object, so that a Rust
//! app gets the same rules and the same `invalid_config` errors naming the JS option.

use super::{Config, Mode, RawConfig, StorageMode};
use crate::core::error::Error;
use crate::core::Field;

/// A session's options, each `None` (or `false`) when left out; its meaning, bounds and
/// default are those of the JS option of the same name in camelCase (README, Options).
/// Validated by [`SessionConfig::validate`] (and so by `Session::new`); errors name the JS
/// option, e.g. `config.tokenUrl`.
///
/// ```
/// use wasm_session::Config;
/// let config = Config { token_url: Some("/auth/token".into()), ..Default::default() };
/// assert!(config.validate().is_ok());
/// let wrong = Config { retry_base_ms: Some(5.0), ..config };
/// assert_eq!(wrong.validate().unwrap_err().code(), "invalid_config");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionConfig {
    /// `Mode::Cookie`: a server session behind an HttpOnly cookie (`session_url`).
    pub mode: Option<Mode>,
    /// The OAuth 2.0 token endpoint for the refresh grant; relative to the page.
    pub token_url: Option<String>,
    /// Sent as `client_id`; required with `issuer` or `authorization_url`.
    pub client_id: Option<String>,
    /// RFC 7009 revocation endpoint; `logout` revokes the refresh token there.
    pub revoke_url: Option<String>,
    /// Where the session is kept between page loads (default memory).
    pub storage: Option<StorageMode>,
    /// Separates sessions sharing one origin (default `"default"`).
    pub namespace: Option<String>,
    /// Origins besides the page's own that receive the token, e.g. `https://api.example.com`.
    pub allowed_origins: Option<Vec<String>>,
    /// Refresh this long before expiry (default 60000).
    pub refresh_lead_ms: Option<f64>,
    /// Timeout of each auth server request (default 10000).
    pub request_timeout_ms: Option<f64>,
    /// First retry delay after a failed refresh (default 1000).
    pub retry_base_ms: Option<f64>,
    /// Longest retry delay (default 30000).
    pub retry_max_ms: Option<f64>,
    /// Longest wait for another tab's refresh lock (default 15000).
    pub lock_timeout_ms: Option<f64>,
    /// Longest wait for open tabs to share their session at start-up (default 300).
    pub restore_timeout_ms: Option<f64>,
    /// Coordinate with other tabs of the same namespace (default true).
    pub cross_tab: Option<bool>,
    /// Cookie mode: the session endpoint.
    pub session_url: Option<String>,
    /// Cookie mode: the header carrying the CSRF token (default `X-CSRF-Token`).
    pub csrf_header: Option<String>,
    /// No activity in any tab for this long ends the session (reason `idle`).
    pub idle_timeout_ms: Option<f64>,
    /// This long before the idle logout, an `IdleWarning` event.
    pub idle_warning_ms: Option<f64>,
    /// The session ends this long after sign-in (reason `absolute`).
    pub max_session_ms: Option<f64>,
    /// OpenID Connect: the provider's issuer (discovery).
    pub issuer: Option<String>,
    /// OpenID Connect without discovery: the authorization endpoint.
    pub authorization_url: Option<String>,
    /// OpenID Connect: the end-session endpoint, if discovery does not give one.
    pub end_session_url: Option<String>,
    /// OpenID Connect: where the provider sends the browser back (default: the page).
    pub redirect_uri: Option<String>,
    /// OpenID Connect: the scope (default `"openid offline_access"`).
    pub scope: Option<String>,
    /// OpenID Connect: where the provider sends the browser after logout.
    pub post_logout_redirect_uri: Option<String>,
    /// DPoP (RFC 9449): tokens bound to a key of this browser (the `dpop` feature).
    pub dpop: bool,
}

fn field<T>(value: Option<T>) -> Field<T> {
    value.map_or(Field::Absent, Field::Valid)
}

impl SessionConfig {
    /// The options as the JS object's reader gives them, for the one validation.
    pub fn to_raw(&self) -> RawConfig {
        let text = |v: &Option<String>| field(v.clone());
        RawConfig {
            mode: field(self.mode.map(|m| m.as_str().to_string())),
            tokenUrl: text(&self.token_url),
            clientId: text(&self.client_id),
            revokeUrl: text(&self.revoke_url),
            storage: field(self.storage.map(|s| s.as_str().to_string())),
            namespace: text(&self.namespace),
            allowedOrigins: field(self.allowed_origins.clone()),
            refreshLeadMs: field(self.refresh_lead_ms),
            requestTimeoutMs: field(self.request_timeout_ms),
            retryBaseMs: field(self.retry_base_ms),
            retryMaxMs: field(self.retry_max_ms),
            lockTimeoutMs: field(self.lock_timeout_ms),
            restoreTimeoutMs: field(self.restore_timeout_ms),
            crossTab: field(self.cross_tab),
            sessionUrl: text(&self.session_url),
            csrfHeader: text(&self.csrf_header),
            idleTimeoutMs: field(self.idle_timeout_ms),
            idleWarningMs: field(self.idle_warning_ms),
            maxSessionMs: field(self.max_session_ms),
            issuer: text(&self.issuer),
            authorizationUrl: text(&self.authorization_url),
            endSessionUrl: text(&self.end_session_url),
            redirectUri: text(&self.redirect_uri),
            scope: text(&self.scope),
            postLogoutRedirectUri: text(&self.post_logout_redirect_uri),
            dpop: match self.dpop {
                true => Field::Valid(true),
                false => Field::Absent,
            },
        }
    }

    /// Checks the options as `new Session(config)` checks the JS object (URLs are resolved
    /// against the page later, by `Session::new`).
    pub fn validate(&self) -> Result<Config, Error> {
        Config::from_raw(&[], self.to_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rust_config_is_checked_like_the_js_object() {
        let e = SessionConfig::default().validate().unwrap_err();
        assert_eq!(
            e,
            Error::Config(
                "tokenUrl".into(),
                "is required (your OAuth 2.0 token endpoint), or issuer for OpenID Connect"
            )
        );
        let ok =
            SessionConfig { token_url: Some("/t".into()), storage: Some(StorageMode::Local), ..Default::default() };
        let config = ok.validate().unwrap();
        assert_eq!(config.storage, StorageMode::Local);
        assert_eq!(
            config,
            Config::from_raw(&[], serde_json::from_str(r#"{"tokenUrl":"/t","storage":"local"}"#).unwrap()).unwrap()
        );
        let cookie = SessionConfig { mode: Some(Mode::Cookie), token_url: Some("/t".into()), ..Default::default() };
        assert_eq!(cookie.validate().unwrap_err().code(), "invalid_config");
        let oidc = SessionConfig { issuer: Some("https://id.example".into()), ..Default::default() };
        assert_eq!(
            oidc.validate().unwrap_err(),
            Error::Config("clientId".into(), "is required with issuer or authorizationUrl")
        );
        let blank = SessionConfig { namespace: Some(" ".into()), ..ok };
        assert_eq!(blank.validate().unwrap_err(), Error::Config("namespace".into(), "must not be empty"));
    }
}
