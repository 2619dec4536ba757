//! OpenID Connect in the browser: discovery, random secrets (`crypto.getRandomValues`), the
//! S256 challenge (`crypto.subtle`), the login transaction in `sessionStorage`, navigation to
//! the provider and back, and the code exchange. What is checked is decided in
//! [`crate::core::oidc`].

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::config::check_transport;
use crate::core::error::Error;
use crate::core::oidc::{self, Callback, Discovery, Expected, IdClaims, LoginOptions, Pending};
use crate::core::token::TokenSet;

use super::driver::Driver;
use super::http::{self, Body};

/// A provider's endpoints, absolute and checked: from the config, and from the discovery
/// document for those the config leaves out.
#[derive(Clone, Debug, Default)]
pub struct Provider {
    /// Where the browser goes to sign in (`None`: this session has no redirect sign-in).
    pub authorization: Option<String>,
    /// The token endpoint.
    pub token: String,
    /// RFC 7009 revocation.
    pub revocation: Option<String>,
    /// RP-initiated logout.
    pub end_session: Option<String>,
}

/// A discovered endpoint: absolute, and https (or http to this machine).
fn discovered(field: &'static str, raw: &str) -> Result<String, Error> {
    let url = web_sys::Url::new(raw).map_err(|_| Error::Discovery(field, "is not an absolute URL"))?;
    check_transport(field, &url.protocol(), &url.hostname())
        .map_err(|_| Error::Discovery(field, "must be an https URL (or http to localhost)"))?;
    Ok(url.href())
}

/// The provider's endpoints, discovered once per session (a failed discovery is tried
/// again by the next call that needs it).
pub async fn provider(d: &Driver) -> Result<Rc<Provider>, Error> {
    if let Some(p) = d.provider.borrow().clone() {
        return Ok(p);
    }
    let mut p = d.endpoints.configured.clone();
    if let (Some(issuer), true) = (&d.endpoints.issuer, d.config.oidc.as_ref().is_some_and(|o| o.discovers())) {
        let raw = http::call(&oidc::discovery_url(issuer), None, None, false, d.config.request_timeout_ms).await?;
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
    }
    let p = Rc::new(p);
    *d.provider.borrow_mut() = Some(p.clone());
    Ok(p)
}

/// `n` random bytes from `crypto.getRandomValues`, in base64url.
pub fn random(n: usize) -> Result<String, Error> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    let crypto = crypto.ok_or(Error::InvalidArgument("loginWithRedirect()", "needs crypto.getRandomValues"))?;
    let mut bytes = vec![0u8; n];
    crypto
        .get_random_values_with_u8_array(&mut bytes)
        .map_err(|_| Error::InvalidArgument("loginWithRedirect()", "needs crypto.getRandomValues"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub async fn challenge(verifier: &str) -> Result<String, Error> {
    let missing =
        Error::InvalidArgument("loginWithRedirect()", "needs crypto.subtle (a secure context: https or localhost)");
    let subtle = web_sys::window().and_then(|w| w.crypto().ok()).map(|c| c.subtle()).ok_or(missing.clone())?;
    let digest = subtle.digest_with_str_and_u8_array("SHA-256", verifier.as_bytes()).map_err(|_| missing.clone())?;
    let digest = JsFuture::from(digest).await.map_err(|_| missing)?;
    Ok(URL_SAFE_NO_PAD.encode(Uint8Array::new(&digest).to_vec()))
}

/// The key of this namespace's login in progress, in `sessionStorage`.
fn pending_key(d: &Driver) -> String {
    format!("wasm-session:{}:oidc", d.config.namespace)
}

fn session_storage() -> Result<web_sys::Storage, Error> {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    storage.ok_or(Error::Storage("sessionStorage is needed to sign in with a redirect, and this browser blocks it"))
}

/// The login in progress here, if any (a damaged one is an error naming it).
fn read_pending(d: &Driver) -> Result<Option<Pending>, Error> {
    let Some(text) = session_storage()?.get_item(&pending_key(d)).ok().flatten() else { return Ok(None) };
    let value =
        js_sys::JSON::parse(&text).map_err(|_| Error::InvalidState("the stored sign-in is not JSON; sign in again"))?;
    let pending: Pending = serde_wasm_bindgen::from_value(value)
        .map_err(|_| Error::InvalidState("the stored sign-in is malformed; sign in again"))?;
    pending.validate().map(Some)
}

fn page() -> Result<web_sys::Location, Error> {
    web_sys::window().map(|w| w.location()).ok_or(Error::InvalidArgument("(environment)", "needs a browser window"))
}

/// `loginWithRedirect`: keeps a new login transaction in `sessionStorage` and sends the
/// browser to the authorization endpoint.
pub async fn login_with_redirect(d: Rc<Driver>, options: LoginOptions, app_state: Option<String>) -> Result<(), Error> {
    let oidc = d
        .config
        .oidc
        .clone()
        .ok_or(Error::Config("issuer".into(), "is required for loginWithRedirect (or authorizationUrl)"))?;
    let provider = provider(&d).await?;
    let authorization = provider.authorization.as_deref().unwrap_or_default();
    let pending = Pending {
        v: oidc::PENDING_VERSION,
        state: random(32)?,
        nonce: random(32)?,
        verifier: random(32)?,
        redirect_uri: d.endpoints.redirect_uri.clone(),
        app_state,
    };
    let challenge = challenge(&pending.verifier).await?;
    let client = oidc::Client {
        id: d.config.client_id.as_deref().unwrap_or_default(),
        redirect_uri: &pending.redirect_uri,
        scope: &oidc.scope,
    };
    let params = oidc::authorize_params(&client, &pending, &challenge, &options);
    let url =
        web_sys::Url::new(authorization).map_err(|_| Error::Discovery("authorization_endpoint", "is not a URL"))?;
    for (k, v) in &params {
        url.search_params().append(k, v);
    }
    let text = serde_wasm_bindgen::to_value(&pending)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .and_then(|s| s.as_string())
        .ok_or(Error::Storage("the sign-in could not be recorded"))?;
    session_storage()?
        .set_item(&pending_key(&d), &text)
        .map_err(|_| Error::Storage("sessionStorage is full or blocked; the sign-in could not be recorded"))?;
    page()?.assign(&url.href()).map_err(|_| Error::InvalidArgument("loginWithRedirect()", "could not navigate"))
}

/// The query parameters of `url`.
fn query(url: &web_sys::Url) -> Vec<(String, String)> {
    let Ok(Some(entries)) = js_sys::try_iter(url.search_params().as_ref()) else { return Vec::new() };
    let pair = |e: JsValue| {
        let e: Array = e.dyn_into().ok()?;
        Some((e.get(0).as_string()?, e.get(1).as_string()?))
    };
    entries.filter_map(|e| e.ok().and_then(pair)).collect()
}

/// Removes the callback's parameters from the address bar, when `url` is the page's.
fn clean_address_bar(url: &web_sys::Url) {
    let Some(window) = web_sys::window() else { return };
    if window.location().href().ok().as_deref() != Some(url.href().as_str()) {
        return;
    }
    let params = url.search_params();
    for name in oidc::CALLBACK_PARAMS {
        params.delete(name);
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&history.state().unwrap_or(JsValue::NULL), "", Some(&url.href()));
    }
}

/// `handleRedirectCallback`: checks the callback against the login in progress, exchanges
/// the code, checks the ID token and installs the tokens. Resolves to the `appState` (JSON).
pub async fn handle_callback(d: Rc<Driver>, raw_url: String) -> Result<Option<String>, Error> {
    let oidc = d
        .config
        .oidc
        .clone()
        .ok_or(Error::Config("issuer".into(), "is required for handleRedirectCallback (or authorizationUrl)"))?;
    let base = page()?.href().unwrap_or_default();
    let url = web_sys::Url::new_with_base(&raw_url, &base)
        .map_err(|_| Error::InvalidArgument("handleRedirectCallback(url)", "is not a URL"))?;
    let params = query(&url);
    let pending = read_pending(&d);
    let checked = pending
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|p| oidc::check_callback(&params, p.as_ref(), oidc.issuer.as_deref()));
    let (discard, clean) = oidc::callback_disposal(&checked, pending.is_err());
    if discard {
        let _ = session_storage().map(|s| s.remove_item(&pending_key(&d)));
    }
    if clean {
        clean_address_bar(&url);
    }
    let Callback::Code(code) = checked?;
    let Ok(Some(pending)) = pending else { return Err(Error::InvalidState("no sign-in is in progress in this tab")) };
    let provider = provider(&d).await?;
    let client_id = d.config.client_id.as_deref().unwrap_or_default();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("client_id", client_id),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let raw = http::post(&provider.token, Body::Form(&form), d.config.request_timeout_ms).await?;
    if !raw.ok() {
        return Err(Error::LoginFailed(raw.status, raw.oauth_error()));
    }
    let (response, jwt) = raw.token_response().ok_or(Error::TokenResponse("(body)", "is not a JSON object"))?;
    let now = js_sys::Date::now();
    let tokens = TokenSet::from_response(response, jwt, now, raw.date, None)?;
    match tokens.id_token.as_deref() {
        Some(id_token) => {
            let claims = http::claims(id_token).ok_or(Error::IdToken("id_token", "is not a JWT"))?;
            let claims: IdClaims = serde_wasm_bindgen::from_value(claims)
                .map_err(|_| Error::IdToken("id_token", "has unreadable claims"))?;
            let expected = Expected {
                issuer: oidc.issuer.as_deref(),
                client_id,
                nonce: &pending.nonce,
                now: raw.date.unwrap_or(now),
            };
            oidc::check_id_claims(claims, &expected)?;
        }
        None if oidc::id_token_required(&oidc.scope) => {
            return Err(Error::IdToken("id_token", "is missing from the token response (scope has openid)"))
        }
        None => {}
    }
    d.input(crate::core::machine::Input::SignIn { tokens, ticket: None });
    Ok(pending.app_state)
}

/// After logout: the provider's end-session URL with `id_token_hint`, `client_id` and
/// `post_logout_redirect_uri`, if it has one.
pub async fn end_session_url(
    d: &Driver,
    id_token: Option<String>,
    return_to: Option<String>,
) -> Result<Option<String>, Error> {
    if d.config.oidc.is_none() {
        return Ok(None);
    }
    let provider = provider(d).await?;
    let Some(end) = provider.end_session.as_deref() else { return Ok(None) };
    let url = web_sys::Url::new(end).map_err(|_| Error::Discovery("end_session_endpoint", "is not a URL"))?;
    let params = url.search_params();
    if let Some(hint) = id_token {
        params.append("id_token_hint", &hint);
    }
    params.append("client_id", d.config.client_id.as_deref().unwrap_or_default());
    if let Some(to) = return_to.or_else(|| d.endpoints.post_logout_redirect_uri.clone()) {
        params.append("post_logout_redirect_uri", &to);
    }
    Ok(Some(url.href()))
}

/// Sends the browser to `url`.
pub fn navigate(url: &str) -> Result<(), Error> {
    page()?.assign(url).map_err(|_| Error::InvalidArgument("logout()", "could not navigate to the provider"))
}
