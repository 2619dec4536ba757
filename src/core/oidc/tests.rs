//! Tests of `core::oidc`.

use super::*;
use serde_json::json;

const ISSUER: &str = "https://id.example.com";

fn pending() -> Pending {
    Pending {
        v: PENDING_VERSION,
        state: "s".repeat(43),
        nonce: "n".repeat(43),
        verifier: "v".repeat(43),
        redirect_uri: "https://app.example/cb".into(),
        app_state: None,
        dpop_jkt: None,
    }
}

fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn discovery_is_checked_field_by_field() {
    let doc = |v| serde_json::from_value::<Discovery>(v).unwrap();
    let full = json!({ "issuer": ISSUER, "authorization_endpoint": "https://id.example.com/auth",
        "token_endpoint": "https://id.example.com/token", "revocation_endpoint": "https://id.example.com/revoke",
        "code_challenge_methods_supported": ["plain", "S256"] });
    let urls = doc(full.clone()).validate(ISSUER).unwrap();
    assert_eq!(
        (urls.token.as_str(), urls.revocation.as_deref(), urls.end_session),
        ("https://id.example.com/token", Some("https://id.example.com/revoke"), None)
    );
    for (change, field) in [
        (json!({ "issuer": "https://id.example.com/" }), "issuer"),
        (json!({ "issuer": null }), "issuer"),
        (json!({ "token_endpoint": null }), "token_endpoint"),
        (json!({ "authorization_endpoint": 5 }), "authorization_endpoint"),
        (json!({ "end_session_endpoint": "" }), "end_session_endpoint"),
        (json!({ "code_challenge_methods_supported": ["plain"] }), "code_challenge_methods_supported"),
        (json!({ "code_challenge_methods_supported": "S256" }), "code_challenge_methods_supported"),
    ] {
        let mut v = full.clone();
        for (k, x) in change.as_object().unwrap() {
            v[k] = x.clone();
        }
        assert!(matches!(doc(v).validate(ISSUER), Err(Error::Discovery(f, _)) if f == field), "{change}");
    }
    assert_eq!(
        discovery_url("https://id.example.com/realms/a/"),
        "https://id.example.com/realms/a/.well-known/openid-configuration"
    );
}

#[test]
fn the_authorization_request_carries_pkce_state_and_nonce() {
    let client = Client { id: "spa", redirect_uri: "https://app.example/cb", scope: "openid offline_access" };
    let options: RawLoginOptions =
        serde_json::from_value(json!({ "prompt": "login", "extraParams": { "ui_locales": "fr" } })).unwrap();
    let p = authorize_params(&client, &pending(), "CHALLENGE", &options.validate().unwrap());
    let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        (get("response_type"), get("code_challenge_method"), get("code_challenge")),
        (Some("code"), Some("S256"), Some("CHALLENGE"))
    );
    assert_eq!(
        (get("state"), get("prompt"), get("ui_locales"), get("login_hint")),
        (Some(&*"s".repeat(43)), Some("login"), Some("fr"), None)
    );
    for bad in [
        json!({ "extraParams": { "state": "x" } }),
        json!({ "extraParams": { "a": 1 } }),
        json!({ "prompt": "" }),
        json!({ "loginHint": 3 }),
    ] {
        let options: RawLoginOptions = serde_json::from_value(bad.clone()).unwrap();
        assert!(matches!(options.validate(), Err(Error::InvalidArgument(..))), "{bad}");
    }
}

#[test]
fn callbacks_are_checked_against_the_login_in_progress() {
    let p = pending();
    let state = p.state.clone();
    let ok = params(&[("code", "abc"), ("state", &state), ("iss", ISSUER)]);
    assert_eq!(check_callback(&ok, Some(&p), Some(ISSUER)), Ok(Callback::Code("abc".into())));
    assert!(matches!(check_callback(&ok, None, Some(ISSUER)), Err(Error::InvalidState(_))), "a replay");
    let wrong = params(&[("code", "abc"), ("state", "other")]);
    assert!(matches!(check_callback(&wrong, Some(&p), Some(ISSUER)), Err(Error::InvalidState(_))));
    let mixup = params(&[("code", "abc"), ("state", &state), ("iss", "https://evil.example")]);
    assert!(matches!(check_callback(&mixup, Some(&p), Some(ISSUER)), Err(Error::InvalidState(_))));
    let denied = params(&[("error", "access_denied"), ("error_description", "no"), ("state", &state)]);
    assert_eq!(
        check_callback(&denied, Some(&p), Some(ISSUER)),
        Err(Error::OAuth("access_denied".into(), Some("no".into())))
    );
    let forged = params(&[("error", "access_denied")]);
    assert!(matches!(check_callback(&forged, Some(&p), Some(ISSUER)), Err(Error::InvalidState(_))));
    assert!(matches!(check_callback(&params(&[("x", "1")]), Some(&p), None), Err(Error::InvalidArgument(..))));
}

#[test]
fn a_callback_uses_the_sign_in_up_unless_its_state_was_wrong() {
    let code = Ok(Callback::Code("c".into()));
    let denied = Err(Error::OAuth("access_denied".into(), None));
    let wrong = Err(Error::InvalidState("state"));
    let other = Err(Error::InvalidArgument("url", "not a callback"));
    assert_eq!(callback_disposal(&code, false), (true, true));
    assert_eq!(callback_disposal(&denied, false), (true, true));
    assert_eq!(callback_disposal(&wrong, false), (false, true));
    assert_eq!(callback_disposal(&wrong, true), (true, true));
    assert_eq!(callback_disposal(&other, false), (false, false));
}

#[test]
fn stored_logins_are_validated() {
    assert!(pending().validate().is_ok());
    for broken in [
        Pending { v: 2, ..pending() },
        Pending { state: "short".into(), ..pending() },
        Pending { nonce: "n n".repeat(20), ..pending() },
        Pending { verifier: "v".repeat(42), ..pending() },
        Pending { verifier: "v".repeat(129), ..pending() },
        Pending { redirect_uri: String::new(), ..pending() },
    ] {
        assert!(matches!(broken.clone().validate(), Err(Error::InvalidState(_))), "{broken:?}");
    }
}

#[test]
fn id_token_claims_are_checked() {
    let now = 1_700_000_000_000.0;
    let expected = Expected { issuer: Some(ISSUER), client_id: "spa", nonce: "N", now };
    let good = json!({ "iss": ISSUER, "aud": "spa", "nonce": "N", "exp": 1_700_000_600, "iat": 1_700_000_000 });
    let claims = |v| serde_json::from_value::<IdClaims>(v).unwrap();
    assert_eq!(check_id_claims(claims(good.clone()), &expected), Ok(()));
    let several = json!({ "iss": ISSUER, "aud": ["api", "spa"], "azp": "spa", "nonce": "N", "exp": 1_700_000_600, "iat": 1_700_000_000 });
    assert_eq!(check_id_claims(claims(several), &expected), Ok(()));
    for (change, field) in [
        (json!({ "iss": "https://evil.example" }), "iss"),
        (json!({ "iss": null }), "iss"),
        (json!({ "aud": "other" }), "aud"),
        (json!({ "aud": ["api", "spa"] }), "azp"),
        (json!({ "azp": "other" }), "azp"),
        (json!({ "nonce": "M" }), "nonce"),
        (json!({ "nonce": null }), "nonce"),
        (json!({ "exp": 1_699_999_000 }), "exp"),
        (json!({ "exp": "soon" }), "exp"),
        (json!({ "iat": 1_700_001_000 }), "iat"),
    ] {
        let mut v = good.clone();
        for (k, x) in change.as_object().unwrap() {
            v[k] = x.clone();
        }
        assert!(matches!(check_id_claims(claims(v), &expected), Err(Error::IdToken(f, _)) if f == field), "{change}");
    }
}
