//! A validated [`Config`]'s URLs resolved against the page, once, at construction: the
//! session's [`Endpoints`] (auth server, sign-in, the origins that may receive the token,
//! DPoP keys). Shared by the Rust API and the JS class.

use std::cell::RefCell;

use crate::core::config::{check_transport, Config, Mode, Server, StorageMode};
use crate::core::error::Error;
use crate::core::oidc::Provider;
use crate::core::policy;

use super::auth::{AuthServer, CookieSession, OAuth};
use super::dpop;
use super::driver::Endpoints;
#[cfg(feature = "oidc")]
use super::oidc::SignIn;

fn config_error(field: &str, why: &'static str) -> Error {
    Error::Config(field.into(), why)
}

/// The page's URL, the base of relative endpoint URLs.
pub fn page_url() -> Result<String, Error> {
    let window = web_sys::window().ok_or(config_error("(environment)", "needs a browser window"))?;
    window.location().href().map_err(|_| config_error("(environment)", "cannot read the page URL"))
}

/// Resolves an endpoint against the page and checks its transport.
pub fn endpoint(field: &str, raw: &str, base: &str) -> Result<String, Error> {
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

/// The session's endpoints for `config`, resolved against the page.
pub fn endpoints(config: &Config) -> Result<Endpoints, Error> {
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
    let stored = config.storage != StorageMode::Memory;
    let dpop =
        if config.dpop && config.mode() == Mode::Token { dpop::for_session(&config.namespace, stored) } else { None };
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
    Ok(Endpoints {
        auth,
        #[cfg(feature = "oidc")]
        sign_in,
        token_origins,
        dpop,
    })
}
