//! The model OpenID Provider and the pages of a sign-in: discovery (which may fail), the
//! authorization endpoint (codes bound to the PKCE challenge and the nonce, or the user
//! cancelling), the code exchange (a code is good once: a second exchange is refused and
//! revokes what the first issued, as RFC 6749 §4.1.2 asks), and the browser's side of it: the
//! page that leaves for the provider, the page that comes back with the callback (keeping
//! sessionStorage), a component that handles the callback twice, a callback URL loaded again
//! later, and the popup that hands its callback to the opener or is closed by the user.

use std::collections::BTreeMap;

use wasm_session::core::config::Oidc;
use wasm_session::core::error::Error;
use wasm_session::core::machine::{Authorization, Input, Reply};
use wasm_session::core::oidc::{Audience, IdClaims, LoginOptions, Pending, Provider, PENDING_VERSION};
use wasm_session::core::token::TokenResponse;
use wasm_session::core::Field;

use crate::app::Call;
use crate::auth_server::response;
use crate::invariants::Fact;
use crate::setup::Setup;
use crate::world::{Act, Ev, World};

pub const ISSUER: &str = "https://id.example";
const REDIRECT_URI: &str = "https://app.example/callback";
/// The sim's stand-in for S256: the provider checks the verifier against it.
fn challenge_of(verifier: &str) -> String {
    format!("S256:{verifier}")
}

/// An authorization code the provider issued.
#[derive(Debug)]
pub struct Code {
    challenge: String,
    nonce: String,
    /// The family its exchange issued, once exchanged.
    family: Option<u64>,
}

#[derive(Default)]
pub struct ProviderModel {
    pub codes: BTreeMap<String, Code>,
    /// Discovery requests to fail before any random fault, in order.
    pub fail_discovery: usize,
    pub exchanges: u64,
    /// The last callback URL the authorization endpoint sent a browser to.
    pub last_callback: Option<String>,
}

/// Signs in with OpenID Connect (discovery, redirect or popup, code and PKCE) instead of
/// handing the tokens to the tab.
pub fn oidc_mode(s: &mut Setup) {
    s.config.client_id = Some("spa".into());
    s.config.oidc = Some(Oidc {
        issuer: Some(ISSUER.into()),
        authorization_url: None,
        end_session_url: None,
        redirect_uri: Some(REDIRECT_URI.into()),
        scope: "openid offline_access".into(),
        post_logout_redirect_uri: None,
    });
    s.oidc = true;
}

impl World {
    /// The user signs in in tab `t`: by redirect, or (one time in three) in a popup.
    pub fn oidc_login(&mut self, t: usize) {
        let popup = self.rng.chance(1.0 / 3.0);
        self.sign_in_with(t, popup);
    }

    /// `loginWithPopup` (`popup`) or `loginWithRedirect` in tab `t`.
    pub fn sign_in_with(&mut self, t: usize, popup: bool) {
        self.stats.logins += 1;
        self.last_activity = self.now;
        let n = self.serial();
        let login = Pending {
            v: PENDING_VERSION,
            state: format!("state{n:0>24}"),
            nonce: format!("nonce{n:0>24}"),
            verifier: format!("verifier{n:0>48}"),
            redirect_uri: REDIRECT_URI.into(),
            app_state: Some(format!("{{\"n\":{n}}}")),
            dpop_jkt: None,
        };
        let challenge = challenge_of(&login.verifier);
        let popup = popup.then_some(POPUP_TIMEOUT_MS);
        let call = if popup.is_some() {
            Call::Popup { since: self.now, app_state: login.app_state.clone() }
        } else {
            Call::Authorize { since: self.now }
        };
        let options = LoginOptions::default();
        self.call(t, call, |ticket| Input::Authorize(Authorization { ticket, login, challenge, options, popup }));
    }

    /// Discovery: the provider's endpoints, or a failure (a fault, or one forced).
    pub fn discover(&mut self, t: usize) {
        let fails = if self.provider.fail_discovery > 0 {
            self.provider.fail_discovery -= 1;
            true
        } else {
            self.rng.chance(self.setup.fault_rate)
        };
        let result = if fails {
            Err(Error::Network)
        } else {
            Ok(Provider {
                authorization: Some(format!("{ISSUER}/auth")),
                token: format!("{ISSUER}/token"),
                revocation: Some(format!("{ISSUER}/revoke")),
                end_session: None,
            })
        };
        let d = self.rng.range(2.0, 50.0);
        self.at(d, Ev::Input(t, Input::Discovered(result)));
    }

    /// The provider's authorization endpoint: a code for this challenge and nonce, or (the
    /// user cancels) an error, sent back to the redirect URI.
    fn authorize(&mut self, params: &[(String, String)]) -> String {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let state = get("state");
        if self.rng.chance(self.setup.fault_rate) {
            return format!("{REDIRECT_URI}?error=access_denied&state={state}");
        }
        let code = format!("code{}", self.serial());
        let entry = Code { challenge: get("code_challenge"), nonce: get("nonce"), family: None };
        self.provider.codes.insert(code.clone(), entry);
        let url = format!("{REDIRECT_URI}?code={code}&state={state}&iss={ISSUER}");
        self.provider.last_callback = Some(url.clone());
        url
    }

    /// `Effect::Navigate`: the page keeps the login in sessionStorage and leaves for the
    /// provider; the browser tab comes back with the callback a little later.
    pub fn navigate(&mut self, t: usize, ticket: u32, params: Vec<(String, String)>, login: Option<Pending>) {
        self.tabs[t].oidc_login = login;
        self.deliver(t, Input::Navigated { ticket, error: None });
        let back = self.authorize(&params);
        let kept = self.tabs[t].oidc_login.clone();
        self.close(t);
        let d = self.rng.range(50.0, 3_000.0);
        self.at(d, Ev::Act(Act::Return { url: back, kept: kept.map(Box::new) }));
    }

    /// `Effect::NavigatePopup`: the user signs in in the popup, or closes it.
    pub fn navigate_popup(&mut self, t: usize, params: Vec<(String, String)>) {
        let d = self.rng.range(50.0, 3_000.0);
        if self.rng.chance(self.setup.fault_rate) {
            self.at(d, Ev::Input(t, Input::PopupClosed));
            return;
        }
        let url = self.authorize(&params);
        let params = query(&url);
        self.at(d, Ev::Input(t, Input::PopupCallback { url, params }));
    }

    /// The browser tab loads the callback URL: a new page, with the sessionStorage of the one
    /// that left (`kept`). The app handles the callback, sometimes twice (a component mounted
    /// twice); sometimes the user loads the same URL again later.
    pub fn callback_page(&mut self, url: String, kept: Option<Pending>) {
        let t = self.open_tab();
        self.tabs[t].oidc_login = kept.clone();
        self.handle_callback(t, &url);
        if self.rng.chance(0.3) {
            self.handle_callback(t, &url);
        }
        if self.rng.chance(0.1) {
            let d = self.rng.range(500.0, 5_000.0);
            self.at(d, Ev::Act(Act::Return { url, kept: None }));
        }
        let d = self.rng.range(0.0, self.setup.fetch_every_ms);
        self.at(d, Ev::Act(Act::Fetch(t)));
    }

    /// `handleRedirectCallback(url)` in tab `t`.
    pub fn handle_callback(&mut self, t: usize, url: &str) {
        let app_state = self.tabs[t].oidc_login.as_ref().and_then(|l| l.app_state.clone());
        let login = Ok(self.tabs[t].oidc_login.clone());
        let params = query(url);
        let url = url.to_string();
        let call = Call::Callback { since: self.now, app_state };
        self.call(t, call, |ticket| Input::Callback { ticket, url, params, login });
    }

    /// `Effect::ExchangeCode`: the token endpoint's authorization code grant.
    pub fn exchange(&mut self, t: usize, id: u32, form: &[(String, String)]) {
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let (code, verifier) = (get("code"), get("code_verifier"));
        self.provider.exchanges += 1;
        self.stats.code_exchanges += 1;
        let refused = Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) };
        let (reply, claims) = match self.provider.codes.get(&code).map(|c| (c.family, c.challenge.clone())) {
            _ if self.rng.chance(self.setup.fault_rate / 2.0) => {
                (Reply::Status { status: 503, oauth_error: None }, None)
            }
            None => (refused, None),
            Some((Some(family), _)) => {
                // A code exchanged twice: refused, and what it issued is revoked.
                self.facts.push(Fact::CodeExchangedAgain { tab: t, code: code.clone() });
                self.server.revoked.insert(family);
                (refused, None)
            }
            Some((None, challenge)) if challenge != challenge_of(&verifier) => (refused, None),
            Some((None, _)) => {
                let family = self.serial();
                let nonce = self.provider.codes.get(&code).map(|c| c.nonce.clone()).unwrap_or_default();
                if let Some(c) = self.provider.codes.get_mut(&code) {
                    c.family = Some(family);
                }
                let (at, rt) = self.issue(family);
                self.dpop_sign_in(t, family);
                let r = TokenResponse {
                    id_token: Field::Valid(format!("id-{family}")),
                    ..response(&at, Some(&rt), self.setup.ttl_s)
                };
                let wall_s = self.now_true_wall() / 1000.0;
                let claims = IdClaims {
                    iss: Field::Valid(ISSUER.into()),
                    aud: Field::Valid(Audience(vec!["spa".into()])),
                    nonce: Field::Valid(nonce),
                    exp: Field::Valid(wall_s + 300.0),
                    iat: Field::Valid(wall_s),
                    ..IdClaims::default()
                };
                (Reply::Tokens { response: r, jwt: None, date: Some(self.now_true_wall()) }, Some(Ok(claims)))
            }
        };
        let d = self.rng.range(5.0, 60.0);
        self.at(d, Ev::Input(t, Input::CodeReply { id, reply, id_claims: claims }));
    }

    /// The server's clock (true time, without the tabs' clock steps).
    fn now_true_wall(&self) -> f64 {
        crate::world::EPOCH + self.now
    }
}

/// How long the sim's popups may take.
pub const POPUP_TIMEOUT_MS: f64 = 10_000.0;

/// The query parameters of a URL the model builds (no escaping needed).
fn query(url: &str) -> Vec<(String, String)> {
    let Some((_, q)) = url.split_once('?') else { return Vec::new() };
    q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
