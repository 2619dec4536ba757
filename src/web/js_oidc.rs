//! The `Session` class's OpenID Connect methods (the `oidc` cargo feature, the npm package's
//! `wasm-session/oidc` entry): `loginWithRedirect`, `loginWithPopup` and
//! `handleRedirectCallback` as translations to the Rust API (`client_oidc.rs`), their
//! options read from JS, and the config types that name a provider.

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;

use crate::core::error::Error;
use crate::core::oidc::RawLoginOptions;
use crate::core::Field;

use super::client_oidc::RedirectOptions;
use super::js::{option_keys, reject, settle, Session};

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

/// `loginWithRedirect(options)` / `loginWithPopup(options)` read from JS: the keys checked,
/// `appState` as JSON text, the rest read by serde (checked by the Rust API).
fn login_options(value: JsValue, popup: bool) -> Result<RedirectOptions, Error> {
    if value.is_undefined() || value.is_null() {
        return Ok(RedirectOptions::new());
    }
    let arg = match popup {
        true => "loginWithPopup(options)",
        false => "loginWithRedirect(options)",
    };
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
        true => Field::Absent,
        false => {
            js_sys::JSON::stringify(&app_state).ok().and_then(|s| s.as_string()).map_or(Field::Invalid, Field::Valid)
        }
    };
    let timeout = get("timeoutMs");
    let timeout_ms = match timeout.as_f64() {
        _ if timeout.is_undefined() => Field::Absent,
        Some(ms) => Field::Valid(ms),
        None => Field::Invalid,
    };
    let raw: RawLoginOptions =
        serde_wasm_bindgen::from_value(value).map_err(|_| Error::InvalidArgument(arg, "must be a plain object"))?;
    Ok(RedirectOptions { raw, app_state, timeout_ms })
}

/// `{ appState }` of a handled sign-in.
fn app_state_result(app_state: Option<String>) -> JsValue {
    let app_state = app_state.and_then(|a| js_sys::JSON::parse(&a).ok()).unwrap_or(JsValue::UNDEFINED);
    let result = Object::new();
    // Setting a property on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(&result, &"appState".into(), &app_state);
    result.into()
}

#[wasm_bindgen]
impl Session {
    /// Sends the browser to the OpenID Provider to sign in (authorization code with PKCE).
    /// The `state`, `nonce` and code verifier stay in this tab's `sessionStorage` until
    /// `handleRedirectCallback`. Resolves as the page navigates away.
    #[wasm_bindgen(js_name = loginWithRedirect, unchecked_return_type = "Promise<void>")]
    pub fn login_with_redirect(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "LoginWithRedirectOptions")] options: Option<JsValue>,
    ) -> Promise {
        match login_options(options.unwrap_or(JsValue::UNDEFINED), false) {
            Ok(options) => settle(self.inner().login_with_redirect(options), |_| JsValue::UNDEFINED),
            Err(e) => reject(e),
        }
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
        match login_options(options.unwrap_or(JsValue::UNDEFINED), true) {
            Ok(options) => settle(self.inner().login_with_popup_json(options), app_state_result),
            Err(e) => reject(e),
        }
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
        let url = match url.filter(|u| !u.is_undefined()) {
            None => Ok(None),
            Some(u) => {
                u.as_string().map(Some).ok_or(Error::InvalidArgument("handleRedirectCallback(url)", "must be a string"))
            }
        };
        settle(self.inner().handle_redirect_callback_json(url), app_state_result)
    }
}
