//! The Rust API's OpenID Connect sign-in (the `oidc` cargo feature): redirect, popup and the
//! callback, and [`RedirectOptions`].

use std::future::Future;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::core::error::Error;
use crate::core::machine::{Answer, Authorization, Input};
use crate::core::oidc::{LoginOptions, Params, Pending, RawLoginOptions};
use crate::core::Field;

use super::client::{json_text, Session};
use super::driver::Driver;
use super::oidc;
use super::resolve::page_url;

/// Options of [`Session::login_with_redirect`] and [`Session::login_with_popup`], built with
/// its methods; checked by the call (errors `invalid_argument` name the JS option).
///
/// ```
/// # fn main() -> Result<(), wasm_session::Error> {
/// let options = wasm_session::RedirectOptions::new()
///     .app_state(&"/orders/42")?
///     .prompt("login")
///     .extra_param("ui_locales", "fr");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct RedirectOptions {
    pub(crate) raw: RawLoginOptions,
    /// JSON text (`Invalid`: the JS value was not JSON data).
    pub(crate) app_state: Field<String>,
    /// `loginWithPopup`'s timeout (`Invalid`: not a number).
    pub(crate) timeout_ms: Field<f64>,
}

/// How long `login_with_popup` waits for the popup by default.
const POPUP_TIMEOUT_MS: f64 = 120_000.0;

impl RedirectOptions {
    /// No options: the provider's defaults, no app state.
    pub fn new() -> RedirectOptions {
        RedirectOptions::default()
    }

    /// Any serde data (at most 64 KB of JSON), handed back by
    /// [`Session::handle_redirect_callback`] (e.g. the page to return to).
    pub fn app_state(mut self, state: &impl Serialize) -> Result<RedirectOptions, Error> {
        self.app_state = Field::Valid(json_text(state, "loginWithRedirect(options.appState)")?);
        Ok(self)
    }

    /// OpenID Connect `prompt`: `"login"`, `"none"`, `"consent"`, `"select_account"`.
    pub fn prompt(mut self, prompt: &str) -> RedirectOptions {
        self.raw.prompt = Field::Valid(prompt.into());
        self
    }

    /// Prefills the provider's login form.
    pub fn login_hint(mut self, hint: &str) -> RedirectOptions {
        self.raw.login_hint = Field::Valid(hint.into());
        self
    }

    /// One more authorization request parameter (e.g. `ui_locales`); it cannot replace the
    /// SDK's own.
    pub fn extra_param(mut self, name: &str, value: &str) -> RedirectOptions {
        let mut params = match std::mem::take(&mut self.raw.extra_params) {
            Field::Valid(p) => p,
            Field::Absent | Field::Invalid => Params::default(),
        };
        params.0.push((name.into(), value.into()));
        self.raw.extra_params = Field::Valid(params);
        self
    }

    /// `login_with_popup`: give up (`timeout`, the popup closed) after this long; default
    /// 120000 (2 min), 1000 to 3600000.
    pub fn timeout_ms(mut self, ms: f64) -> RedirectOptions {
        self.timeout_ms = Field::Valid(ms);
        self
    }

    /// The options checked: the request's options, the app state's JSON, the popup's timeout.
    fn checked(self, popup: bool) -> Result<(LoginOptions, Option<String>, f64), Error> {
        let state_arg = match popup {
            true => "loginWithPopup(options.appState)",
            false => "loginWithRedirect(options.appState)",
        };
        let app_state = match self.app_state {
            Field::Absent => None,
            Field::Valid(s) if s.len() <= 65_536 => Some(s),
            Field::Valid(_) | Field::Invalid => {
                return Err(Error::InvalidArgument(state_arg, "must be JSON data of at most 64 KB"))
            }
        };
        let timeout_ms = match self.timeout_ms {
            Field::Absent => POPUP_TIMEOUT_MS,
            Field::Valid(ms) if (1_000.0..=3_600_000.0).contains(&ms) => ms,
            Field::Valid(_) | Field::Invalid => {
                return Err(Error::InvalidArgument(
                    "loginWithPopup(options.timeoutMs)",
                    "must be a number of milliseconds from 1000 to 3600000",
                ))
            }
        };
        Ok((self.raw.validate()?, app_state, timeout_ms))
    }
}

/// A new login transaction and its challenge, for the session's sign-in. With DPoP, a new
/// key whose thumbprint goes as `dpop_jkt`, so that the code is bound to it too: for a
/// `popup` (the key stays in this page until the code comes back), and for a redirect when
/// the key can wait in IndexedDB for the page that comes back (`session` and `local`
/// modes; in `memory` mode nothing is written: the code is not bound, the tokens are).
async fn new_login(d: &Driver, app_state: Option<String>, popup: bool) -> Result<(Pending, String), Error> {
    let sign_in =
        d.sign_in.as_ref().ok_or(Error::Config("issuer".into(), "is required to sign in with OpenID Connect"))?;
    let (mut login, challenge) = sign_in.new_login(app_state).await?;
    if let Some(keys) = d.dpop.as_ref().filter(|k| popup || k.stored()) {
        login.dpop_jkt = Some(keys.new_sign_in(!popup).await?);
    }
    Ok((login, challenge))
}

/// The app state of a handled sign-in, as JSON text.
fn app_state_of(answer: Answer) -> Result<Option<String>, Error> {
    match answer {
        Answer::AppState(a) => Ok(a),
        Answer::Failed(e) => Err(e),
        Answer::Token { .. } | Answer::NoToken | Answer::Done => Ok(None),
    }
}

/// JSON text read into `S`; `None` if it does not fit.
fn parse<S: DeserializeOwned>(json: Option<String>) -> Option<S> {
    serde_wasm_bindgen::from_value(js_sys::JSON::parse(&json?).ok()?).ok()
}

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
    /// [`Session::handle_redirect_callback`]. Resolves as the page navigates away.
    ///
    /// ```no_run
    /// # async fn run(session: wasm_session::Session) -> Result<(), wasm_session::Error> {
    /// session.login_with_redirect(wasm_session::RedirectOptions::new().app_state(&"/orders")?).await?;
    /// # Ok(()) }
    /// ```
    pub fn login_with_redirect(&self, options: RedirectOptions) -> impl Future<Output = Result<(), Error>> + 'static {
        let started = self.signs_in("loginWithRedirect").and_then(|d| Ok((d, options.checked(false)?)));
        async move {
            let (d, (options, app_state, _)) = started?;
            let (login, challenge) = new_login(&d, app_state, false).await?;
            let auth = Authorization { ticket: 0, login, challenge, options, popup: None };
            match d.kept().ask(|ticket| Input::Authorize(Authorization { ticket, ..auth })).await {
                Answer::Failed(e) => Err(e),
                Answer::Token { .. } | Answer::NoToken | Answer::Done | Answer::AppState(_) => Ok(()),
            }
        }
    }

    /// Signs in with the OpenID Provider in a popup window, this page staying as it is. Call
    /// it in a click handler (popup blockers allow windows opened there: the window opens at
    /// the call, before the future is polled). The provider redirects the popup to
    /// `redirect_uri`, whose page hands its URL back to this one (see the README); then the
    /// same checks as [`Session::handle_redirect_callback`], and every tab is signed in.
    /// Resolves to the app state. Errors with `popup_blocked`, `popup_closed`, `timeout`, or
    /// the errors of the callback.
    pub fn login_with_popup<S: DeserializeOwned>(
        &self,
        options: RedirectOptions,
    ) -> impl Future<Output = Result<Option<S>, Error>> + 'static {
        let popup = self.login_with_popup_json(options);
        async move { popup.await.map(parse) }
    }

    /// [`Session::login_with_popup`], the app state as JSON text.
    pub(crate) fn login_with_popup_json(
        &self,
        options: RedirectOptions,
    ) -> impl Future<Output = Result<Option<String>, Error>> + 'static {
        let started = self.signs_in("loginWithPopup").and_then(|d| {
            let options = options.checked(true)?;
            // Opened now, in the click: after an `await` the browser would block it.
            match d.open_popup() {
                true => Ok((d, options)),
                false => Err(Error::PopupBlocked),
            }
        });
        async move {
            let (d, (options, app_state, timeout_ms)) = started?;
            let (login, challenge) = match new_login(&d, app_state, true).await {
                Ok(l) => l,
                Err(e) => {
                    // Nothing will be sent there: the blank window must not stay open.
                    d.close_popup();
                    return Err(e);
                }
            };
            let auth = Authorization { ticket: 0, login, challenge, options, popup: Some(timeout_ms) };
            app_state_of(d.kept().ask(|ticket| Input::Authorize(Authorization { ticket, ..auth })).await)
        }
    }

    /// On the page the provider redirects back to (`url`, or the page's own when `None`):
    /// checks `state`, exchanges the code with the PKCE verifier, checks the ID token's
    /// claims, signs in (every tab adopts the session) and removes the callback's parameters
    /// from the address bar. Resolves to the app state given to the sign-in, read into `S`
    /// (`None` if there was none or it does not fit `S`). Errors with `invalid_state`,
    /// `oauth_error`, `login_failed` or `invalid_id_token`. Calls for the same URL (a
    /// component mounted twice) share one exchange and one answer.
    pub fn handle_redirect_callback<S: DeserializeOwned>(
        &self,
        url: Option<&str>,
    ) -> impl Future<Output = Result<Option<S>, Error>> + 'static {
        let handled = self.handle_redirect_callback_json(Ok(url.map(str::to_string)));
        async move { handled.await.map(parse) }
    }

    /// [`Session::handle_redirect_callback`], the app state as JSON text. The login in
    /// progress is read at the call: a second call for the same URL finds the same one.
    pub(crate) fn handle_redirect_callback_json(
        &self,
        url: Result<Option<String>, Error>,
    ) -> impl Future<Output = Result<Option<String>, Error>> + 'static {
        let started = self.signs_in("handleRedirectCallback").and_then(|d| {
            let url = match url? {
                Some(url) => url,
                None => page_url()?,
            };
            let (url, params) = oidc::callback_params(&url)?;
            let login = d.sign_in.as_ref().map_or(Ok(None), |s| s.read_login());
            Ok((d, url, params, login))
        });
        async move {
            let (d, url, params, login) = started?;
            // DPoP: the key the page that left made for this sign-in (see `new_login`).
            if let Some(keys) = &d.dpop {
                keys.resume_sign_in().await?;
            }
            app_state_of(d.kept().ask(|ticket| Input::Callback { ticket, url, params, login }).await)
        }
    }
}
