//! Sign-in with OpenID Connect: the order of its steps, decided here. The provider's
//! endpoints are found first (discovery, once, retried by the next call after a failure);
//! `loginWithRedirect` then sends the browser to the authorization endpoint; the callback is
//! checked against the login in progress, its code exchanged, the ID token's claims checked,
//! and the tokens signed in. The driver draws the secrets, fetches, stores and navigates.
//!
//! A callback is handled once: a second call for the same URL (a component mounted twice)
//! waits for the first one's answer instead of exchanging the code again.

use super::dpop::DPOP_UNBOUND;
use super::io::{Answer, Authorization, Effect, Out, Reply, Ticket};
use super::session::Source;
use super::Machine;
use crate::core::config::Config;
use crate::core::error::Error;
use crate::core::oidc::{self, Callback, Client, Expected, IdClaims, LoginOptions, Pending, Provider};
use crate::core::policy::{self, Failure};
use crate::core::token::TokenSet;

/// A callback being handled, or handled.
#[derive(Debug)]
struct Flow {
    /// The callback URL, as the app gave it.
    url: String,
    /// The callers waiting for its answer.
    waiting: Vec<Ticket>,
    step: Step,
}

#[derive(Debug)]
enum Step {
    /// Waiting for the provider's endpoints to exchange `code`.
    Discovering { code: String, pending: Pending },
    /// The code exchange `id` is under way; `again`: its endpoint and form, to send once
    /// more if the server asks for a DPoP nonce.
    Exchanging { id: u32, pending: Pending, again: Option<(String, Vec<(String, String)>)> },
    /// Handled: the app state (JSON), or why it failed.
    Done(Result<Option<String>, Error>),
}

/// A `loginWithRedirect` or `loginWithPopup` waiting for the provider's endpoints.
#[derive(Debug)]
struct Authorize {
    ticket: Ticket,
    pending: Pending,
    challenge: String,
    options: LoginOptions,
    popup: bool,
}

/// A sign-in in a popup window. Its login is kept here, not in storage: the callback comes
/// back to this tab from the popup. It ends with the callback, the window closing, or `until`.
#[derive(Debug)]
struct Popup {
    ticket: Ticket,
    login: Pending,
    until: f64,
}

/// What the top machine must do after a step of a sign-in.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Nothing more.
    Nothing,
    /// Sign in with these tokens, then answer the waiting callers with the app state.
    SignedIn { tokens: TokenSet, waiting: Vec<Ticket>, app_state: Option<String> },
}

/// The sign-ins under way.
#[derive(Debug)]
pub(super) struct SignIn {
    client_id: String,
    scope: String,
    /// DPoP: the tokens must come bound (`token_type: "DPoP"`).
    dpop: bool,
    issuer: Option<String>,
    /// The provider's endpoints, once known.
    provider: Option<Provider>,
    discovering: bool,
    authorizing: Vec<Authorize>,
    popup: Option<Popup>,
    flows: Vec<Flow>,
    next_id: u32,
}

impl SignIn {
    pub fn new(cfg: &Config) -> SignIn {
        let oidc = cfg.oidc.as_ref();
        SignIn {
            client_id: cfg.client_id.clone().unwrap_or_default(),
            dpop: cfg.dpop,
            scope: oidc.map(|o| o.scope.clone()).unwrap_or_default(),
            issuer: oidc.and_then(|o| o.issuer.clone()),
            provider: None,
            discovering: false,
            authorizing: Vec::new(),
            popup: None,
            flows: Vec::new(),
            next_id: 0,
        }
    }

    /// `loginWithRedirect`, or with `popup` (its timeout in ms) `loginWithPopup`: the
    /// authorization request for `pending`, once the endpoints are known.
    pub fn authorize(&mut self, now: f64, auth: Authorization, out: &mut Out) {
        let Authorization { ticket, login: pending, challenge, options, popup } = auth;
        if let Some(timeout_ms) = popup {
            // One popup at a time: a new one takes over the window of the last.
            if let Some(old) = self.popup.take() {
                self.authorizing.retain(|a| a.ticket != old.ticket);
                out.answer(old.ticket, Answer::Failed(Error::PopupClosed));
            }
            let until = now + timeout_ms.max(0.0);
            self.popup = Some(Popup { ticket, login: pending.clone(), until });
        }
        self.authorizing.push(Authorize { ticket, pending, challenge, options, popup: popup.is_some() });
        self.with_provider(out);
    }

    /// The popup handed back its callback URL.
    pub fn popup_callback(&mut self, url: String, params: &[(String, String)], out: &mut Out) {
        let Some(popup) = self.popup.take() else { return };
        out.push(Effect::ClosePopup);
        match oidc::check_callback(params, Some(&popup.login), self.issuer.as_deref()) {
            Ok(Callback::Code(code)) => {
                let step = Step::Discovering { code, pending: popup.login };
                self.flows.push(Flow { url, waiting: vec![popup.ticket], step });
                self.with_provider(out);
            }
            Err(e) => out.answer(popup.ticket, Answer::Failed(e)),
        }
    }

    /// The browser went to the provider (`error`: it could not), for caller `ticket`: a
    /// redirect is done; a popup that could not be sent there ends.
    pub fn navigated(&mut self, ticket: Ticket, error: Option<Error>, out: &mut Out) {
        match error {
            None => out.answer(ticket, Answer::Done),
            Some(e) => {
                if self.popup.as_ref().is_some_and(|p| p.ticket == ticket) {
                    self.popup = None;
                    out.push(Effect::ClosePopup);
                }
                out.answer(ticket, Answer::Failed(e));
            }
        }
    }

    /// The popup window was closed: a sign-in still waiting for its callback fails.
    pub fn popup_closed(&mut self, out: &mut Out) {
        self.end_popup(Error::PopupClosed, out);
    }

    /// When the popup's sign-in times out.
    pub fn popup_deadline(&self) -> Option<f64> {
        self.popup.as_ref().map(|p| p.until)
    }

    /// The popup's sign-in timed out.
    pub fn popup_timed_out(&mut self, out: &mut Out) {
        self.end_popup(Error::PopupTimeout, out);
        out.push(Effect::ClosePopup);
    }

    fn end_popup(&mut self, e: Error, out: &mut Out) {
        let Some(popup) = self.popup.take() else { return };
        self.authorizing.retain(|a| a.ticket != popup.ticket);
        out.answer(popup.ticket, Answer::Failed(e));
    }

    /// The wall clock stepped back by `step` ms: the popup keeps its time.
    pub fn shift(&mut self, step: f64) {
        if let Some(p) = self.popup.as_mut() {
            p.until -= step;
        }
    }

    /// `handleRedirectCallback(url)`: `params` are its query parameters, `pending` the login in
    /// progress as stored in this tab (or why it could not be read).
    pub fn callback(
        &mut self,
        ticket: Ticket,
        url: String,
        params: &[(String, String)],
        pending: Result<Option<Pending>, Error>,
        out: &mut Out,
    ) {
        if let Some(flow) = self.flows.iter_mut().find(|f| f.url == url) {
            match &flow.step {
                Step::Done(result) => answer(ticket, result, out),
                Step::Discovering { .. } | Step::Exchanging { .. } => flow.waiting.push(ticket),
            }
            return;
        }
        // Only the latest handled callback is remembered.
        self.flows.retain(|f| !matches!(f.step, Step::Done(_)));
        let damaged = pending.is_err();
        let checked = pending
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|p| oidc::check_callback(params, p.as_ref(), self.issuer.as_deref()));
        let (discard, clean) = oidc::callback_disposal(&checked, damaged);
        if discard {
            out.push(Effect::DiscardLogin);
        }
        if clean {
            out.push(Effect::CleanAddressBar { url: url.clone() });
        }
        let step = match (checked, pending) {
            (Ok(Callback::Code(code)), Ok(Some(pending))) => Step::Discovering { code, pending },
            (Ok(Callback::Code(_)), _) => Step::Done(Err(Error::InvalidState("no sign-in is in progress in this tab"))),
            (Err(e), _) => Step::Done(Err(e)),
        };
        let waiting = match &step {
            Step::Done(result) => {
                answer(ticket, result, out);
                Vec::new()
            }
            Step::Discovering { .. } | Step::Exchanging { .. } => vec![ticket],
        };
        self.flows.push(Flow { url, waiting, step });
        self.with_provider(out);
    }

    /// The provider's endpoints, or why they could not be found.
    pub fn discovered(&mut self, result: Result<Provider, Error>, out: &mut Out) {
        self.discovering = false;
        match result {
            Ok(provider) => {
                self.provider = Some(provider);
                self.with_provider(out);
            }
            Err(e) => {
                for a in std::mem::take(&mut self.authorizing) {
                    if a.popup {
                        self.popup = None;
                        out.push(Effect::ClosePopup);
                    }
                    out.answer(a.ticket, Answer::Failed(e.clone()));
                }
                for flow in &mut self.flows {
                    if let Step::Discovering { .. } = flow.step {
                        finish(flow, Err(e.clone()), out);
                    }
                }
            }
        }
    }

    /// Takes every step that waited for the endpoints, or asks for them.
    fn with_provider(&mut self, out: &mut Out) {
        let waits =
            !self.authorizing.is_empty() || self.flows.iter().any(|f| matches!(f.step, Step::Discovering { .. }));
        let Some(provider) = self.provider.as_ref() else {
            if waits && !self.discovering {
                self.discovering = true;
                out.push(Effect::Discover);
            }
            return;
        };
        for a in std::mem::take(&mut self.authorizing) {
            let Some(url) = provider.authorization.clone() else {
                let e = Error::Config("issuer".into(), "is required for loginWithRedirect (or authorizationUrl)");
                out.answer(a.ticket, Answer::Failed(e));
                continue;
            };
            let client = Client { id: &self.client_id, redirect_uri: &a.pending.redirect_uri, scope: &self.scope };
            let params = oidc::authorize_params(&client, &a.pending, &a.challenge, &a.options);
            if a.popup {
                out.push(Effect::NavigatePopup { ticket: a.ticket, url, params });
            } else {
                out.push(Effect::Navigate { ticket: a.ticket, url, params, login: Some(a.pending) });
            }
        }
        for flow in &mut self.flows {
            let Step::Discovering { code, pending } = &flow.step else { continue };
            self.next_id = self.next_id.wrapping_add(1);
            let form = vec![
                ("grant_type".to_string(), "authorization_code".to_string()),
                ("code".to_string(), code.clone()),
                ("redirect_uri".to_string(), pending.redirect_uri.clone()),
                ("client_id".to_string(), self.client_id.clone()),
                ("code_verifier".to_string(), pending.verifier.clone()),
            ];
            let again = Some((provider.token.clone(), form.clone()));
            out.push(Effect::ExchangeCode { id: self.next_id, url: provider.token.clone(), form });
            flow.step = Step::Exchanging { id: self.next_id, pending: pending.clone(), again };
        }
    }

    /// The token endpoint's answer to the code exchange `id`, with the ID token's claims
    /// as the driver read them (if the reply has an ID token).
    pub fn exchanged(
        &mut self,
        now: f64,
        id: u32,
        reply: Reply,
        id_claims: Option<Result<IdClaims, Error>>,
        out: &mut Out,
    ) -> Outcome {
        let Some(flow) = self.flows.iter_mut().find(|f| matches!(f.step, Step::Exchanging { id: i, .. } if i == id))
        else {
            return Outcome::Nothing;
        };
        let Step::Exchanging { pending, again, .. } = std::mem::replace(&mut flow.step, Step::Done(Ok(None))) else {
            return Outcome::Nothing;
        };
        // DPoP: the server wants its nonce in the proof (RFC 9449 §8): once more with it.
        let use_nonce = matches!(&reply, Reply::Status { status, oauth_error: Some(e) }
            if policy::classify(*status, Some(e)) == Failure::UseNonce);
        if let (true, Some((url, form))) = (use_nonce, again) {
            self.next_id = self.next_id.wrapping_add(1);
            out.push(Effect::ExchangeCode { id: self.next_id, url, form });
            flow.step = Step::Exchanging { id: self.next_id, pending, again: None };
            return Outcome::Nothing;
        }
        let expected =
            Expected { issuer: self.issuer.as_deref(), client_id: &self.client_id, nonce: &pending.nonce, now };
        match signed_in(now, reply, id_claims, expected, &self.scope, self.dpop) {
            Ok(tokens) => {
                flow.step = Step::Done(Ok(pending.app_state.clone()));
                Outcome::SignedIn { tokens, waiting: std::mem::take(&mut flow.waiting), app_state: pending.app_state }
            }
            Err(e) => {
                finish(flow, Err(e), out);
                Outcome::Nothing
            }
        }
    }
}

/// The tokens of a code exchange's reply, once the reply and its ID token are checked.
fn signed_in(
    now: f64,
    reply: Reply,
    id_claims: Option<Result<IdClaims, Error>>,
    mut expected: Expected,
    scope: &str,
    dpop: bool,
) -> Result<TokenSet, Error> {
    let tokens = match reply {
        Reply::Tokens { response, jwt, date } => {
            if dpop && !policy::dpop_bound(response.token_type.clone().valid().as_deref()) {
                return Err(Error::Dpop(DPOP_UNBOUND));
            }
            // The ID token's times are checked against the server's clock when it sent one.
            expected.now = date.unwrap_or(now);
            TokenSet::from_response(response, jwt, now, date, None)?
        }
        Reply::Status { status, oauth_error } => return Err(Error::LoginFailed(status, oauth_error)),
        Reply::Garbled | Reply::Session(_) => return Err(Error::TokenResponse("(body)", "is not a JSON object")),
        Reply::Network => return Err(Error::Network),
        Reply::Timeout => return Err(Error::Timeout),
    };
    match (tokens.id_token.as_ref(), id_claims) {
        (Some(_), Some(claims)) => oidc::check_id_claims(claims?, &expected)?,
        (Some(_), None) => return Err(Error::IdToken("id_token", "is not a JWT")),
        (None, _) if oidc::id_token_required(scope) => {
            return Err(Error::IdToken("id_token", "is missing from the token response (scope has openid)"))
        }
        (None, _) => {}
    }
    Ok(tokens)
}

/// Ends `flow` with `result` and answers its callers.
fn finish(flow: &mut Flow, result: Result<Option<String>, Error>, out: &mut Out) {
    for ticket in std::mem::take(&mut flow.waiting) {
        answer(ticket, &result, out);
    }
    flow.step = Step::Done(result);
}

fn answer(ticket: Ticket, result: &Result<Option<String>, Error>, out: &mut Out) {
    let answer = match result {
        Ok(app_state) => Answer::AppState(app_state.clone()),
        Err(e) => Answer::Failed(e.clone()),
    };
    out.answer(ticket, answer);
}

impl Machine {
    /// [`super::Input::CodeReply`]: the code exchange `id` answered. Signed in when the reply
    /// and the ID token pass their checks; the callers waiting for it get the app state.
    pub(super) fn code_reply(&mut self, now: f64, id: u32, reply: Reply, id_claims: Option<Result<IdClaims, Error>>) {
        let outcome = self.signin.exchanged(now, id, reply, id_claims, &mut self.out);
        if let Outcome::SignedIn { tokens, waiting, app_state } = outcome {
            self.dpop.signed_in(&mut self.out);
            let stamp = self.next_stamp(now);
            self.install(now, tokens, stamp, Source::SignIn, false);
            for ticket in waiting {
                self.out.answer(ticket, Answer::AppState(app_state.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests;
