//! The sign-in steps, driven through the top machine as the driver drives it.

use super::super::{Boot, Effect, Input, Machine, Transport};
use super::*;
use crate::core::config::{Oidc, StorageMode};
use crate::core::events::Event;
use crate::core::oidc::{Audience, PENDING_VERSION};
use crate::core::store::Stored;
use crate::core::token::{Seconds, TokenResponse};
use crate::core::Field;

const ISSUER: &str = "https://id.example.com";
const NOW: f64 = 1_800_000_000_000.0;

fn machine() -> Machine {
    let cfg = Config {
        client_id: Some("spa".into()),
        oidc: Some(Oidc {
            issuer: Some(ISSUER.into()),
            authorization_url: None,
            end_session_url: None,
            redirect_uri: None,
            scope: "openid offline_access".into(),
            post_logout_redirect_uri: None,
        }),
        ..Config::default()
    };
    let mut m = Machine::new(cfg, "tab".into(), 1);
    let boot = Boot {
        stored: Stored::Empty,
        storage: StorageMode::Memory,
        storage_error: None,
        transport: Transport::None,
        locks: false,
        online: true,
    };
    m.handle(NOW, 0.0, Input::Start(boot));
    m
}

fn login() -> Pending {
    Pending {
        v: PENDING_VERSION,
        state: "s".repeat(43),
        nonce: "n".repeat(43),
        verifier: "v".repeat(43),
        redirect_uri: "https://app.example.com/cb".into(),
        app_state: Some("{\"to\":\"/inbox\"}".into()),
        dpop_jkt: None,
    }
}

fn provider() -> Provider {
    Provider {
        authorization: Some(format!("{ISSUER}/auth")),
        token: format!("{ISSUER}/token"),
        revocation: None,
        end_session: None,
    }
}

fn callback(ticket: Ticket, url: &str, state: &str, login: Option<Pending>) -> Input {
    let params = vec![("code".to_string(), "the-code".to_string()), ("state".to_string(), state.to_string())];
    Input::Callback { ticket, url: url.into(), params, login: Ok(login) }
}

fn tokens_reply() -> Reply {
    let response = TokenResponse {
        access_token: Field::Valid("at".into()),
        token_type: Field::Valid("Bearer".into()),
        expires_in: Field::Valid(Seconds(Some(300.0))),
        refresh_token: Field::Valid("rt".into()),
        id_token: Field::Valid("a.b.c".into()),
        ..TokenResponse::default()
    };
    Reply::Tokens { response, jwt: None, date: None }
}

fn claims(nonce: &str) -> Option<Result<IdClaims, Error>> {
    Some(Ok(IdClaims {
        iss: Field::Valid(ISSUER.into()),
        aud: Field::Valid(Audience(vec!["spa".into()])),
        nonce: Field::Valid(nonce.into()),
        exp: Field::Valid(NOW / 1000.0 + 300.0),
        iat: Field::Valid(NOW / 1000.0),
        ..IdClaims::default()
    }))
}

fn answers(effects: &[Effect]) -> Vec<(Ticket, Answer)> {
    effects.iter().filter_map(|e| if let Effect::Answer(t, a) = e { Some((*t, a.clone())) } else { None }).collect()
}

fn exchange_id(effects: &[Effect]) -> Option<u32> {
    effects.iter().find_map(|e| if let Effect::ExchangeCode { id, .. } = e { Some(*id) } else { None })
}

#[test]
fn the_authorization_request_waits_for_discovery_then_carries_pkce_state_and_nonce() {
    let mut m = machine();
    let fx = m.handle(
        NOW,
        1.0,
        Input::Authorize(Authorization {
            ticket: 1,
            login: login(),
            challenge: "ch".into(),
            options: LoginOptions::default(),
            popup: None,
        }),
    );
    assert!(fx.contains(&Effect::Discover), "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Navigate { .. })));
    let fx = m.handle(NOW, 2.0, Input::Discovered(Ok(provider())));
    let Some(Effect::Navigate { ticket: 1, url, params, login: Some(kept) }) =
        fx.iter().find(|e| matches!(e, Effect::Navigate { .. }))
    else {
        panic!("no navigation: {fx:?}")
    };
    assert_eq!(url, &format!("{ISSUER}/auth"));
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("state"), Some(kept.state.as_str()));
    assert_eq!(get("nonce"), Some(kept.nonce.as_str()));
    assert_eq!((get("code_challenge"), get("code_challenge_method")), (Some("ch"), Some("S256")));
    assert_eq!(get("client_id"), Some("spa"));
    // Known endpoints are not discovered again.
    let fx = m.handle(
        NOW,
        3.0,
        Input::Authorize(Authorization {
            ticket: 2,
            login: login(),
            challenge: "ch".into(),
            options: LoginOptions::default(),
            popup: None,
        }),
    );
    assert!(!fx.contains(&Effect::Discover) && fx.iter().any(|e| matches!(e, Effect::Navigate { ticket: 2, .. })));
}

#[test]
fn a_failed_discovery_fails_the_caller_and_the_next_call_discovers_again() {
    let mut m = machine();
    m.handle(
        NOW,
        1.0,
        Input::Authorize(Authorization {
            ticket: 1,
            login: login(),
            challenge: "ch".into(),
            options: LoginOptions::default(),
            popup: None,
        }),
    );
    let e = Error::Discovery("issuer", "is missing");
    let fx = m.handle(NOW, 2.0, Input::Discovered(Err(e.clone())));
    assert_eq!(answers(&fx), vec![(1, Answer::Failed(e))]);
    let fx = m.handle(NOW, 3.0, callback(2, "https://app.example.com/cb?code=x", &"s".repeat(43), Some(login())));
    assert!(fx.contains(&Effect::Discover), "{fx:?}");
}

#[test]
fn a_callback_handled_twice_exchanges_its_code_once_and_answers_both() {
    let mut m = machine();
    let url = "https://app.example.com/cb?code=the-code&state=s";
    let fx = m.handle(NOW, 1.0, callback(1, url, &"s".repeat(43), Some(login())));
    assert!(fx.contains(&Effect::DiscardLogin) && fx.contains(&Effect::Discover), "{fx:?}");
    // The second call (React StrictMode) finds the login already used up.
    let fx = m.handle(NOW, 2.0, callback(2, url, &"s".repeat(43), None));
    assert!(fx.is_empty() || answers(&fx).is_empty(), "{fx:?}");
    let fx = m.handle(NOW, 3.0, Input::Discovered(Ok(provider())));
    let id = exchange_id(&fx).expect("one exchange");
    let fx = m.handle(NOW, 4.0, Input::CodeReply { id, reply: tokens_reply(), id_claims: claims(&"n".repeat(43)) });
    assert!(fx.iter().any(|e| matches!(e, Effect::Emit(Event::Login { .. }))), "{fx:?}");
    let app_state = Answer::AppState(Some("{\"to\":\"/inbox\"}".into()));
    assert_eq!(answers(&fx), vec![(1, app_state.clone()), (2, app_state.clone())]);
    assert_eq!(m.tokens().map(|t| t.access_token.as_str()), Some("at"));
    // Later calls for the same URL get the same answer, with no new exchange.
    let fx = m.handle(NOW, 5.0, callback(3, url, &"s".repeat(43), None));
    assert_eq!((answers(&fx), exchange_id(&fx)), (vec![(3, app_state)], None));
}

#[test]
fn a_refused_code_or_a_wrong_nonce_signs_nobody_in() {
    for (reply, id_claims, want) in [
        (
            Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) },
            None,
            Error::LoginFailed(400, Some("invalid_grant".into())),
        ),
        (
            tokens_reply(),
            claims("another-nonce-of-enough-length"),
            Error::IdToken("nonce", "does not match the sign-in's nonce"),
        ),
        (Reply::Network, None, Error::Network),
    ] {
        let mut m = machine();
        m.handle(NOW, 1.0, Input::Discovered(Ok(provider())));
        let fx = m.handle(NOW, 2.0, callback(1, "https://app.example.com/cb?x", &"s".repeat(43), Some(login())));
        let id = exchange_id(&fx).expect("an exchange");
        let fx = m.handle(NOW, 3.0, Input::CodeReply { id, reply, id_claims });
        assert_eq!(answers(&fx), vec![(1, Answer::Failed(want))]);
        assert!(m.tokens().is_none());
    }
}

#[test]
fn a_forged_state_is_refused_and_leaves_the_real_login_in_place() {
    let mut m = machine();
    let fx = m.handle(NOW, 1.0, callback(1, "https://app.example.com/cb?forged", &"f".repeat(43), Some(login())));
    assert!(matches!(answers(&fx)[..], [(1, Answer::Failed(Error::InvalidState(_)))]), "{fx:?}");
    assert!(!fx.contains(&Effect::DiscardLogin) && exchange_id(&fx).is_none());
    // The real callback still works.
    let fx = m.handle(NOW, 2.0, callback(2, "https://app.example.com/cb?real", &"s".repeat(43), Some(login())));
    assert!(fx.contains(&Effect::DiscardLogin) && fx.contains(&Effect::Discover), "{fx:?}");
}

#[test]
fn a_replayed_callback_finds_no_login_in_progress() {
    let mut m = machine();
    let fx = m.handle(NOW, 1.0, callback(1, "https://app.example.com/cb?old", &"s".repeat(43), None));
    assert!(matches!(answers(&fx)[..], [(1, Answer::Failed(Error::InvalidState(_)))]), "{fx:?}");
    assert!(exchange_id(&fx).is_none() && !fx.contains(&Effect::Discover));
}

fn popup(ticket: Ticket, timeout_ms: f64) -> Input {
    let auth = Authorization {
        ticket,
        login: login(),
        challenge: "ch".into(),
        options: LoginOptions::default(),
        popup: Some(timeout_ms),
    };
    Input::Authorize(auth)
}

fn popup_callback(state: &str) -> Input {
    let params = vec![("code".to_string(), "c".to_string()), ("state".to_string(), state.to_string())];
    Input::PopupCallback { url: "https://app.example.com/cb?code=c".into(), params }
}

#[test]
fn a_popup_sign_in_keeps_its_login_in_memory_and_signs_in_from_the_popups_callback() {
    let mut m = machine();
    m.handle(NOW, 1.0, Input::Discovered(Ok(provider())));
    let fx = m.handle(NOW, 2.0, popup(1, 60_000.0));
    assert!(fx.iter().any(|e| matches!(e, Effect::NavigatePopup { ticket: 1, .. })), "{fx:?}");
    assert!(fx.contains(&Effect::Timer(Some(NOW + 60_000.0))), "the timeout is armed: {fx:?}");
    let fx = m.handle(NOW + 5_000.0, 3.0, popup_callback(&"s".repeat(43)));
    assert!(fx.contains(&Effect::ClosePopup), "{fx:?}");
    assert!(!fx.contains(&Effect::DiscardLogin), "nothing was stored: {fx:?}");
    let id = exchange_id(&fx).expect("an exchange");
    let fx = m.handle(
        NOW + 5_100.0,
        4.0,
        Input::CodeReply { id, reply: tokens_reply(), id_claims: claims(&"n".repeat(43)) },
    );
    assert_eq!(answers(&fx), vec![(1, Answer::AppState(Some("{\"to\":\"/inbox\"}".into())))]);
    assert!(m.tokens().is_some());
    // The popup's deadline is gone with it.
    let fx = m.handle(NOW + 61_000.0, 5.0, Input::Tick);
    assert!(answers(&fx).is_empty(), "{fx:?}");
}

#[test]
fn a_popup_closed_timed_out_or_answering_another_state_fails_its_caller() {
    let mut m = machine();
    m.handle(NOW, 1.0, popup(1, 60_000.0));
    let fx = m.handle(NOW + 10.0, 2.0, Input::PopupClosed);
    assert_eq!(answers(&fx), vec![(1, Answer::Failed(Error::PopupClosed))]);
    // Discovery answering late navigates nothing.
    let fx = m.handle(NOW + 20.0, 3.0, Input::Discovered(Ok(provider())));
    assert!(!fx.iter().any(|e| matches!(e, Effect::NavigatePopup { .. })), "{fx:?}");

    m.handle(NOW + 30.0, 4.0, popup(2, 60_000.0));
    let fx = m.handle(NOW + 60_030.0, 5.0, Input::Tick);
    assert_eq!(answers(&fx), vec![(2, Answer::Failed(Error::PopupTimeout))]);
    assert!(fx.contains(&Effect::ClosePopup));

    m.handle(NOW + 60_040.0, 6.0, popup(3, 60_000.0));
    let fx = m.handle(NOW + 60_050.0, 7.0, popup_callback(&"x".repeat(43)));
    assert!(matches!(answers(&fx)[..], [(3, Answer::Failed(Error::InvalidState(_)))]), "{fx:?}");
    assert!(exchange_id(&fx).is_none() && m.tokens().is_none());
}

#[test]
fn a_popup_that_cannot_be_sent_to_the_provider_fails_once_and_closes() {
    let mut m = machine();
    m.handle(NOW, 1.0, Input::Discovered(Ok(provider())));
    m.handle(NOW, 2.0, popup(1, 60_000.0));
    let fx = m.handle(NOW + 10.0, 3.0, Input::Navigated { ticket: 1, error: Some(Error::PopupClosed) });
    assert_eq!(answers(&fx), vec![(1, Answer::Failed(Error::PopupClosed))]);
    assert!(fx.contains(&Effect::ClosePopup) && fx.contains(&Effect::Timer(None)), "{fx:?}");
    // No second answer when its timeout would have come.
    let fx = m.handle(NOW + 61_000.0, 4.0, Input::Tick);
    assert!(answers(&fx).is_empty(), "{fx:?}");
}
