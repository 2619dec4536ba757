//! OpenID Connect in the browser: random secrets (`crypto.getRandomValues`), the S256
//! challenge (`crypto.subtle`), the login transaction in `sessionStorage`, navigation to the
//! provider and back. Discovery and the code exchange are auth server calls (`auth`); what
//! is checked is decided in [`crate::core::oidc`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::config::Oidc;
use crate::core::error::Error;
use crate::core::oidc::{self, Callback, Expected, IdClaims, LoginOptions, Pending};
use crate::core::token::TokenSet;

use super::auth::{self, OAuth};

/// What a sign-in with OpenID Connect needs besides the provider's endpoints.
pub struct SignIn {
    /// The config's OpenID Connect options.
    pub oidc: Oidc,
    /// Where the provider sends the browser back (absolute).
    pub redirect_uri: String,
    /// Where the provider sends the browser after logout (absolute).
    pub post_logout_redirect_uri: Option<String>,
    /// The key of this namespace's login in progress, in `sessionStorage`.
    pending_key: String,
}

impl SignIn {
    /// The sign-in of namespace `ns` (its login in progress is kept under its name).
    pub fn new(oidc: Oidc, redirect_uri: String, post_logout_redirect_uri: Option<String>, ns: &str) -> SignIn {
        SignIn { oidc, redirect_uri, post_logout_redirect_uri, pending_key: format!("wasm-session:{ns}:oidc") }
    }
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

fn session_storage() -> Result<web_sys::Storage, Error> {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    storage.ok_or(Error::Storage("sessionStorage is needed to sign in with a redirect, and this browser blocks it"))
}

/// The login in progress here, if any (a damaged one is an error naming it).
fn read_pending(key: &str) -> Result<Option<Pending>, Error> {
    let Some(text) = session_storage()?.get_item(key).ok().flatten() else { return Ok(None) };
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
pub async fn login_with_redirect(
    sign_in: &SignIn,
    server: &OAuth,
    options: LoginOptions,
    app_state: Option<String>,
) -> Result<(), Error> {
    let provider = server.provider().await?;
    let authorization = provider.authorization.as_deref().unwrap_or_default();
    let pending = Pending {
        v: oidc::PENDING_VERSION,
        state: random(32)?,
        nonce: random(32)?,
        verifier: random(32)?,
        redirect_uri: sign_in.redirect_uri.clone(),
        app_state,
    };
    let challenge = challenge(&pending.verifier).await?;
    let client =
        oidc::Client { id: &server.client_id, redirect_uri: &pending.redirect_uri, scope: &sign_in.oidc.scope };
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
        .set_item(&sign_in.pending_key, &text)
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
/// the code and checks the ID token. Gives the tokens to sign in with, and the `appState`
/// (JSON).
pub async fn handle_callback(
    sign_in: &SignIn,
    server: &OAuth,
    raw_url: String,
) -> Result<(TokenSet, Option<String>), Error> {
    let oidc = &sign_in.oidc;
    let base = page()?.href().unwrap_or_default();
    let url = web_sys::Url::new_with_base(&raw_url, &base)
        .map_err(|_| Error::InvalidArgument("handleRedirectCallback(url)", "is not a URL"))?;
    let params = query(&url);
    let pending = read_pending(&sign_in.pending_key);
    let checked = pending
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|p| oidc::check_callback(&params, p.as_ref(), oidc.issuer.as_deref()));
    let (discard, clean) = oidc::callback_disposal(&checked, pending.is_err());
    if discard {
        let _ = session_storage().map(|s| s.remove_item(&sign_in.pending_key));
    }
    if clean {
        clean_address_bar(&url);
    }
    let Callback::Code(code) = checked?;
    let Ok(Some(pending)) = pending else { return Err(Error::InvalidState("no sign-in is in progress in this tab")) };
    let (tokens, date) = server.exchange_code(&code, &pending.redirect_uri, &pending.verifier).await?;
    match tokens.id_token.as_deref() {
        Some(id_token) => {
            let claims = auth::claims(id_token).ok_or(Error::IdToken("id_token", "is not a JWT"))?;
            let claims: IdClaims = serde_wasm_bindgen::from_value(claims)
                .map_err(|_| Error::IdToken("id_token", "has unreadable claims"))?;
            let expected = Expected {
                issuer: oidc.issuer.as_deref(),
                client_id: &server.client_id,
                nonce: &pending.nonce,
                now: date.unwrap_or(tokens.issued_at),
            };
            oidc::check_id_claims(claims, &expected)?;
        }
        None if oidc::id_token_required(&oidc.scope) => {
            return Err(Error::IdToken("id_token", "is missing from the token response (scope has openid)"))
        }
        None => {}
    }
    Ok((tokens, pending.app_state))
}

/// After logout: the provider's end-session URL with `id_token_hint`, `client_id` and
/// `post_logout_redirect_uri`, if it has one.
pub async fn end_session_url(
    sign_in: &SignIn,
    server: &OAuth,
    id_token: Option<String>,
    return_to: Option<String>,
) -> Result<Option<String>, Error> {
    let provider = server.provider().await?;
    let Some(end) = provider.end_session.as_deref() else { return Ok(None) };
    let url = web_sys::Url::new(end).map_err(|_| Error::Discovery("end_session_endpoint", "is not a URL"))?;
    let params = url.search_params();
    if let Some(hint) = id_token {
        params.append("id_token_hint", &hint);
    }
    params.append("client_id", &server.client_id);
    if let Some(to) = return_to.or_else(|| sign_in.post_logout_redirect_uri.clone()) {
        params.append("post_logout_redirect_uri", &to);
    }
    Ok(Some(url.href()))
}

/// Sends the browser to `url`.
pub fn navigate(url: &str) -> Result<(), Error> {
    page()?.assign(url).map_err(|_| Error::InvalidArgument("logout()", "could not navigate to the provider"))
}
