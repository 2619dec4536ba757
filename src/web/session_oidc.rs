//! The `Session` class's OpenID Connect methods (the `oidc` cargo feature, the npm package's
//! `wasm-session/oidc` entry): `loginWithRedirect`, `loginWithPopup` and
//! `handleRedirectCallback`, their options, and the config types that name a provider.

use std::rc::Rc;

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::core::machine::{Answer, Authorization, Input};
use crate::core::oidc::{LoginOptions, RawLoginOptions};

use super::callbacks::promise;
use super::driver::Driver;
use super::events::to_js;
use super::oidc;
use super::session::{done, option_keys, page_url, reject, Session};

#[wasm_bindgen(typescript_custom_section)]
const TS_OIDC_TYPES: &'static str = r#"
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

/** Options of `new Session(config)`. */
export type SessionConfig = TokenSessionConfig | CookieSessionConfig | OidcSessionConfig | OidcEndpointsConfig;
"#;

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

/// A new login transaction and its challenge, for the session's sign-in. With DPoP, a new
/// key whose thumbprint goes as `dpop_jkt`, so that the code is bound to it too: for a
/// `popup` (the key stays in this page until the code comes back), and for a redirect when
/// the key can wait in IndexedDB for the page that comes back (`session` and `local`
/// modes; in `memory` mode nothing is written: the code is not bound, the tokens are).
async fn new_login(
    d: &Driver,
    app_state: Option<String>,
    popup: bool,
) -> Result<(crate::core::oidc::Pending, String), JsValue> {
    let sign_in =
        d.sign_in.as_ref().ok_or(Error::Config("issuer".into(), "is required to sign in with OpenID Connect"))?;
    let (mut login, challenge) = sign_in.new_login(app_state).await?;
    if let Some(keys) = d.dpop.as_ref().filter(|k| popup || k.stored()) {
        login.dpop_jkt = Some(keys.new_sign_in(!popup).await?);
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

#[wasm_bindgen]
impl Session {
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
            // DPoP: the key the page that left made for this sign-in (see `new_login`).
            if let Some(keys) = &d.dpop {
                keys.resume_sign_in().await?;
            }
            app_state_result(d.kept().ask(|ticket| Input::Callback { ticket, url, params, login }).await)
        })
    }
}
