//! OpenID Connect in the browser, carrying out the sign-in machine's effects: random secrets
//! (`crypto.getRandomValues`), the S256 challenge (`crypto.subtle`), the login transaction in
//! `sessionStorage`, navigation to the provider, the callback's parameters and the address
//! bar. The order of the steps and every check are the core's ([`crate::core::machine`],
//! [`crate::core::oidc`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::config::Oidc;
use crate::core::error::Error;
use crate::core::oidc::{self, Pending, Provider};

/// What a sign-in with OpenID Connect needs besides the provider's endpoints.
pub struct SignIn {
    /// The config's OpenID Connect options.
    pub oidc: Oidc,
    /// Where the provider sends the browser back (absolute).
    pub redirect_uri: String,
    /// Where the provider sends the browser after logout (absolute).
    pub post_logout_redirect_uri: Option<String>,
    /// The key of this namespace's login in progress, in `sessionStorage`.
    login_key: String,
}

impl SignIn {
    /// The sign-in of namespace `ns` (its login in progress is kept under its name).
    pub fn new(oidc: Oidc, redirect_uri: String, post_logout_redirect_uri: Option<String>, ns: &str) -> SignIn {
        SignIn { oidc, redirect_uri, post_logout_redirect_uri, login_key: format!("wasm-session:{ns}:oidc") }
    }

    /// A new login transaction carrying `app_state`, and its verifier's S256 challenge.
    pub async fn new_login(&self, app_state: Option<String>) -> Result<(Pending, String), Error> {
        let login = Pending {
            v: oidc::PENDING_VERSION,
            state: random(32)?,
            nonce: random(32)?,
            verifier: random(32)?,
            redirect_uri: self.redirect_uri.clone(),
            app_state,
            dpop_jkt: None,
        };
        let challenge = challenge(&login.verifier).await?;
        Ok((login, challenge))
    }

    /// The login in progress in this tab, if any (a damaged one is an error naming it).
    pub fn read_login(&self) -> Result<Option<Pending>, Error> {
        let Some(text) = session_storage()?.get_item(&self.login_key).ok().flatten() else { return Ok(None) };
        let value = js_sys::JSON::parse(&text)
            .map_err(|_| Error::InvalidState("the stored sign-in is not JSON; sign in again"))?;
        let login: Pending = serde_wasm_bindgen::from_value(value)
            .map_err(|_| Error::InvalidState("the stored sign-in is malformed; sign in again"))?;
        login.validate().map(Some)
    }

    /// Carries out `Effect::Navigate`: keeps `login` in `sessionStorage`, then sends the page
    /// to `url` with `params`.
    pub fn navigate(&self, url: &str, params: &[(String, String)], login: Option<&Pending>) -> Result<(), Error> {
        let href = with_query(url, params)?;
        if let Some(login) = login {
            let text = serde_wasm_bindgen::to_value(login)
                .ok()
                .and_then(|v| js_sys::JSON::stringify(&v).ok())
                .and_then(|s| s.as_string())
                .ok_or(Error::Storage("the sign-in could not be recorded"))?;
            session_storage()?
                .set_item(&self.login_key, &text)
                .map_err(|_| Error::Storage("sessionStorage is full or blocked; the sign-in could not be recorded"))?;
        }
        page()?.assign(&href).map_err(|_| Error::InvalidArgument("loginWithRedirect()", "could not navigate"))
    }

    /// Carries out `Effect::DiscardLogin`.
    pub fn discard_login(&self) {
        let _ = session_storage().map(|s| s.remove_item(&self.login_key));
    }
}

/// `url` with `params` added to its query.
pub fn with_query(url: &str, params: &[(String, String)]) -> Result<String, Error> {
    let url = web_sys::Url::new(url).map_err(|_| Error::Discovery("authorization_endpoint", "is not a URL"))?;
    for (k, v) in params {
        url.search_params().append(k, v);
    }
    Ok(url.href())
}

/// `n` random bytes from `crypto.getRandomValues`, in base64url.
pub fn random(n: usize) -> Result<String, Error> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    let missing = Error::InvalidArgument("signing in", "needs crypto.getRandomValues");
    let crypto = crypto.ok_or(missing.clone())?;
    let mut bytes = vec![0u8; n];
    crypto.get_random_values_with_u8_array(&mut bytes).map_err(|_| missing)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub async fn challenge(verifier: &str) -> Result<String, Error> {
    let missing = Error::InvalidArgument("signing in", "needs crypto.subtle (a secure context: https or localhost)");
    let subtle = web_sys::window().and_then(|w| w.crypto().ok()).map(|c| c.subtle()).ok_or(missing.clone())?;
    let digest = subtle.digest_with_str_and_u8_array("SHA-256", verifier.as_bytes()).map_err(|_| missing.clone())?;
    let digest = JsFuture::from(digest).await.map_err(|_| missing)?;
    Ok(URL_SAFE_NO_PAD.encode(Uint8Array::new(&digest).to_vec()))
}

fn session_storage() -> Result<web_sys::Storage, Error> {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    storage.ok_or(Error::Storage("sessionStorage is needed to sign in with a redirect, and this browser blocks it"))
}

fn page() -> Result<web_sys::Location, Error> {
    web_sys::window().map(|w| w.location()).ok_or(Error::InvalidArgument("(environment)", "needs a browser window"))
}

/// A callback URL (resolved against the page) and its query parameters.
pub fn callback_params(raw_url: &str) -> Result<(String, Vec<(String, String)>), Error> {
    let base = page()?.href().unwrap_or_default();
    let url = web_sys::Url::new_with_base(raw_url, &base)
        .map_err(|_| Error::InvalidArgument("handleRedirectCallback(url)", "is not a URL"))?;
    Ok((url.href(), query(&url)))
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

/// Carries out `Effect::CleanAddressBar`: removes the callback's parameters from the address
/// bar, when `url` is the page's.
pub fn clean_address_bar(url: &str) {
    let (Some(window), Ok(url)) = (web_sys::window(), web_sys::Url::new(url)) else { return };
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

/// After logout: the provider's end-session URL with `id_token_hint`, `client_id` and
/// `post_logout_redirect_uri`, if it has one.
pub fn end_session_url(
    sign_in: &SignIn,
    provider: &Provider,
    client_id: &str,
    id_token: Option<String>,
    return_to: Option<String>,
) -> Result<Option<String>, Error> {
    let Some(end) = provider.end_session.as_deref() else { return Ok(None) };
    let url = web_sys::Url::new(end).map_err(|_| Error::Discovery("end_session_endpoint", "is not a URL"))?;
    let params = url.search_params();
    if let Some(hint) = id_token {
        params.append("id_token_hint", &hint);
    }
    params.append("client_id", client_id);
    if let Some(to) = return_to.or_else(|| sign_in.post_logout_redirect_uri.clone()) {
        params.append("post_logout_redirect_uri", &to);
    }
    Ok(Some(url.href()))
}

/// Sends the browser to `url`.
pub fn navigate(url: &str) -> Result<(), Error> {
    page()?.assign(url).map_err(|_| Error::InvalidArgument("logout()", "could not navigate to the provider"))
}
