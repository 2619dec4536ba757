//! Tests of `core::config`.

use super::*;
use serde_json::{json, Value};

fn parse(v: Value) -> Result<Config, Error> {
    let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    Config::from_raw(&keys, serde_json::from_value(v).unwrap())
}

fn field_of(r: Result<Config, Error>) -> String {
    match r.unwrap_err() {
        Error::Config(f, _) => f,
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn defaults_for_everything_but_the_token_url() {
    let c = parse(json!({ "tokenUrl": "/auth/token" })).unwrap();
    assert_eq!(c, Config::with_token_url("/auth/token"));
}

#[test]
fn every_option_is_read() {
    let c = parse(json!({
        "tokenUrl": "/t", "clientId": "spa", "revokeUrl": "/r", "storage": "local", "namespace": "app-2",
        "allowedOrigins": ["https://api.example.com"], "refreshLeadMs": 5, "requestTimeoutMs": 2000,
        "retryBaseMs": 50, "retryMaxMs": 500, "lockTimeoutMs": 3000, "restoreTimeoutMs": 0, "crossTab": false,
    }))
    .unwrap();
    assert_eq!((c.storage, c.namespace.as_str(), c.client_id.as_deref()), (StorageMode::Local, "app-2", Some("spa")));
    assert_eq!(c.allowed_origins, vec!["https://api.example.com".to_string()]);
    assert_eq!((c.refresh_lead_ms, c.request_timeout_ms), (5.0, 2000.0));
    assert_eq!((c.retry_base_ms, c.retry_max_ms, c.lock_timeout_ms, c.restore_timeout_ms), (50.0, 500.0, 3000.0, 0.0));
    assert!(!c.cross_tab);
}

#[test]
fn errors_name_the_field() {
    for (config, field) in [
        (json!({}), "tokenUrl"),
        (json!({ "tokenUrl": 1 }), "tokenUrl"),
        (json!({ "tokenUrl": "  " }), "tokenUrl"),
        (json!({ "tokenUrl": "/t", "tokenurl": "/t" }), "tokenurl"),
        (json!({ "tokenUrl": "/t", "storage": "cookie" }), "storage"),
        (json!({ "tokenUrl": "/t", "namespace": "" }), "namespace"),
        (json!({ "tokenUrl": "/t", "namespace": "a b" }), "namespace"),
        (json!({ "tokenUrl": "/t", "allowedOrigins": "https://x" }), "allowedOrigins"),
        (json!({ "tokenUrl": "/t", "allowedOrigins": [1] }), "allowedOrigins"),
        (json!({ "tokenUrl": "/t", "allowedOrigins": [""] }), "allowedOrigins"),
        (json!({ "tokenUrl": "/t", "refreshLeadMs": "60" }), "refreshLeadMs"),
        (json!({ "tokenUrl": "/t", "requestTimeoutMs": -1 }), "requestTimeoutMs"),
        (json!({ "tokenUrl": "/t", "retryBaseMs": 900, "retryMaxMs": 100 }), "retryMaxMs"),
        (json!({ "tokenUrl": "/t", "crossTab": "yes" }), "crossTab"),
        (json!({ "tokenUrl": "/t", "dpop": "on" }), "dpop"),
        (json!({ "mode": "cookie", "sessionUrl": "/s", "dpop": true }), "dpop"),
        (json!({ "tokenUrl": "/t", "clientId": {} }), "clientId"),
        (json!({ "tokenUrl": "/t", "mode": "session" }), "mode"),
        (json!({ "mode": "cookie" }), "sessionUrl"),
        (json!({ "mode": "cookie", "sessionUrl": "/s", "tokenUrl": "/t" }), "tokenUrl"),
        (json!({ "mode": "cookie", "sessionUrl": "/s", "storage": "local" }), "storage"),
        (json!({ "tokenUrl": "/t", "sessionUrl": "/s" }), "sessionUrl"),
        (json!({ "tokenUrl": "/t", "idleWarningMs": 5000 }), "idleWarningMs"),
        (json!({ "tokenUrl": "/t", "idleTimeoutMs": 60000, "idleWarningMs": 60000 }), "idleWarningMs"),
        (json!({ "tokenUrl": "/t", "idleTimeoutMs": 10 }), "idleTimeoutMs"),
        (json!({ "tokenUrl": "/t", "maxSessionMs": "8h" }), "maxSessionMs"),
        (json!({ "mode": "cookie", "sessionUrl": "/s", "csrfHeader": "X CSRF" }), "csrfHeader"),
        (json!({ "issuer": "https://id.example.com" }), "clientId"),
        (json!({ "issuer": 5, "clientId": "spa" }), "issuer"),
        (json!({ "authorizationUrl": "/authorize", "clientId": "spa" }), "tokenUrl"),
        (json!({ "tokenUrl": "/t", "redirectUri": "/cb" }), "redirectUri"),
        (json!({ "tokenUrl": "/t", "scope": "openid" }), "scope"),
        (json!({ "issuer": "https://id.example.com", "clientId": "spa", "scope": "openid \"x\"" }), "scope"),
        (
            json!({ "issuer": "https://id.example.com", "clientId": "spa", "postLogoutRedirectUri": [] }),
            "postLogoutRedirectUri",
        ),
        (
            json!({ "mode": "cookie", "sessionUrl": "/s", "issuer": "https://id.example.com", "clientId": "spa" }),
            "issuer",
        ),
    ] {
        assert_eq!(field_of(parse(config.clone())), field, "{config}");
    }
}

#[test]
fn cookie_mode_and_timeouts_are_read() {
    let c = parse(json!({ "mode": "cookie", "sessionUrl": "/session", "idleTimeoutMs": 900000,
        "idleWarningMs": 60000, "maxSessionMs": 28800000 }))
    .unwrap();
    let server = Server::Cookie { session_url: "/session".into(), csrf_header: "X-CSRF-Token".into() };
    assert_eq!((c.mode(), &c.server), (Mode::Cookie, &server));
    assert_eq!(
        (c.idle_timeout_ms, c.idle_warning_ms, c.max_session_ms),
        (Some(900_000.0), Some(60_000.0), Some(28_800_000.0))
    );
}

#[test]
fn openid_connect_is_read() {
    let c = parse(json!({ "issuer": "https://id.example.com", "clientId": "spa" })).unwrap();
    let o = c.oidc.clone().unwrap();
    assert_eq!(
        (&c.server, o.scope.as_str(), o.discovers(), c.revokes()),
        (&Server::OAuth { token_url: String::new(), revoke_url: None }, "openid offline_access", true, true)
    );
    let c =
        parse(json!({ "authorizationUrl": "/authorize", "tokenUrl": "/token", "clientId": "spa", "scope": "openid" }))
            .unwrap();
    let o = c.oidc.clone().unwrap();
    assert_eq!((o.discovers(), o.scope.as_str(), c.revokes()), (false, "openid", false));
}

#[test]
fn null_means_default() {
    assert_eq!(parse(json!({ "tokenUrl": "/t", "storage": null })).unwrap().storage, StorageMode::Memory);
}

#[test]
fn transport_rules() {
    assert!(check_transport("tokenUrl", "https:", "auth.example.com").is_ok());
    for host in ["127.0.0.1", "localhost", "[::1]", "127.0.0.9", "127.255.255.255", "app.localhost"] {
        assert!(check_transport("tokenUrl", "http:", host).is_ok(), "{host}");
    }
    for host in [
        "example.com",
        "127.evil.com",
        "127.0.0.1.evil.com",
        "127.0.0",
        "127..0.1",
        "127.0.0.",
        "127.0.0.1234",
        "127.0.0.1.",
        "127",
        "1127.0.0.1",
    ] {
        assert!(check_transport("tokenUrl", "http:", host).is_err(), "{host}");
    }
    assert!(check_transport("tokenUrl", "ftp:", "localhost").is_err());
    assert!(check_transport("tokenUrl", "javascript:", "").is_err());
}

#[test]
fn dpop_is_off_by_default_and_on_in_token_and_openid_connect_modes() {
    assert!(!parse(json!({ "tokenUrl": "/t" })).unwrap().dpop);
    assert!(parse(json!({ "tokenUrl": "/t", "dpop": true })).unwrap().dpop);
    #[cfg(feature = "oidc")]
    assert!(parse(json!({ "issuer": "https://id.example.com", "clientId": "spa", "dpop": true })).unwrap().dpop);
}
