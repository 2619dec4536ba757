//! Property-based fuzzing of every pure parser and decision on outside data: whatever comes
//! in, they return a value or an error, never panic, never hang, and never accept a token
//! that could not go into a header. `make test` runs a short round (256 cases a property);
//! `make fuzz` runs the fixed budget (`PROPTEST_CASES`, 100000 by default).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use proptest::prelude::*;
use wasm_session::config::{self, Config};
use wasm_session::policy::{self, Backoff, Retry};
use wasm_session::store;
use wasm_session::tabs::Envelope;
use wasm_session::timers::clamp_delay;
use wasm_session::token::{self, TokenSet, MAX_TOKEN_LEN};
use wasm_session::value::Value;

const TOKEN_FIELDS: &[&str] =
    &["access_token", "token_type", "expires_in", "refresh_token", "id_token", "scope", "issued_at", "expires_at"];
const OTHER_FIELDS: &[&str] = &["v", "ns", "from", "type", "why", "reason"];

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(1.0),
        (0u64..2_000_000_000_000).prop_map(|n| n as f64),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-zA-Z0-9_.-]{0,64}",
        Just("Bearer".to_string()),
        Just("default".to_string()),
        Just("tokens".to_string()),
        Just("logout".to_string()),
        Just("user".to_string()),
        (1usize..3).prop_map(|k| "x".repeat(k * MAX_TOKEN_LEN)),
        "[0-9]{0,14}",
        "https?://[a-z0-9.:\\[\\]]{0,30}/?[a-z]{0,5}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Missing),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Num),
        text().prop_map(Value::Str),
        Just(Value::Other("object")),
    ];
    prop_oneof![4 => leaf.clone(), 1 => prop::collection::vec(leaf, 0..4).prop_map(Value::List)]
}

fn record() -> impl Strategy<Value = HashMap<String, Value>> {
    let key = prop_oneof![
        prop::sample::select(TOKEN_FIELDS).prop_map(str::to_string),
        prop::sample::select(OTHER_FIELDS).prop_map(str::to_string),
        prop::sample::select(&config::OPTIONS[..]).prop_map(str::to_string),
        "[a-z]{1,8}",
    ];
    prop::collection::hash_map(key, value(), 0..12)
}

fn getter(r: &HashMap<String, Value>) -> impl Fn(&str) -> Value + '_ {
    move |k| r.get(k).cloned().unwrap_or(Value::Missing)
}

fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

proptest! {
    #[test]
    fn token_responses_never_panic_and_accepted_ones_are_sane(r in record(), now in number(), date in proptest::option::of(number())) {
        if let Ok(t) = TokenSet::from_response(&getter(&r), now, date, Some("previous")) {
            prop_assert!(header_safe(&t.access_token));
            prop_assert!(t.refresh_token.as_deref().is_none_or(header_safe));
            if now.is_finite() {
                prop_assert!(t.expires_at > now);
            }
        }
    }

    #[test]
    fn stored_and_sent_token_sets_are_validated(r in record()) {
        if let Ok(t) = TokenSet::from_fields(&getter(&r)) {
            prop_assert!(t.validate().is_ok());
            prop_assert!(t.expires_at.is_finite() && t.expires_at > t.issued_at);
        }
        let _ = store::decode(&getter(&r), "default");
    }

    #[test]
    fn tab_messages_never_panic(r in record(), me in "[a-z0-9]{1,8}") {
        if let Ok((from, _msg)) = Envelope::decode(&getter(&r), "default", &me) {
            prop_assert!(from != me && !from.is_empty() && from.len() <= 64);
        }
    }

    #[test]
    fn configs_never_panic(r in record()) {
        let keys: Vec<String> = r.keys().cloned().collect();
        if let Ok(c) = Config::parse(&keys, &getter(&r)) {
            prop_assert!(!c.token_url.trim().is_empty());
            prop_assert!(c.refresh_lead_ms.is_finite() && c.request_timeout_ms >= 100.0);
            prop_assert!(c.retry_max_ms >= c.retry_base_ms);
        }
    }

    #[test]
    fn jwt_decoding_never_panics(s in prop_oneof![".{0,200}", "[A-Za-z0-9_=-]{0,40}\\.[A-Za-z0-9_=+/-]{0,200}\\.[A-Za-z0-9_-]{0,20}"]) {
        let _ = token::jwt_payload(&s);
        let _ = token::jwt_times(&s);
    }

    #[test]
    fn decisions_and_delays_are_total(issued in number(), life in number(), lead in number(), now in number(),
                                      attempts in any::<u32>(), not_before in number(), rand in number(), ms in number()) {
        let t = TokenSet {
            access_token: "a".into(), refresh_token: None, id_token: None, scope: None,
            issued_at: issued, expires_at: issued + life,
        };
        let retry = Retry { attempts, not_before };
        let _ = policy::decide(&t, lead, retry, attempts % 3 == 0, now);
        let _ = policy::next_wakeup(&t, lead, retry, attempts % 2 == 0);
        let d = Backoff { base_ms: 1000.0, max_ms: 30_000.0 }.delay(attempts, rand);
        prop_assert!((500.0..=30_000.0).contains(&d));
        prop_assert!(clamp_delay(ms) <= i32::MAX as u32);
    }

    #[test]
    fn base64url_agrees_with_the_reference(s in "[A-Za-z0-9_=+/ -]{0,64}") {
        use base64::Engine;
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&s).ok();
        prop_assert_eq!(token::base64url_decode(&s), reference);
    }

    #[test]
    fn transport_rules_never_panic(proto in ".{0,8}", host in ".{0,40}") {
        if config::check_transport("x", &proto, &host).is_ok() {
            prop_assert!(proto == "https:" || config::is_loopback(&host));
        }
    }
}
