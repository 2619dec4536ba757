//! Property-based fuzzing of everything that reads outside data, and of the machine: whatever
//! comes in (any JSON where JS values are read, any sequence of inputs at any times, NaN and
//! backwards clocks included), nothing panics (a panic kills the wasm module), nothing hangs,
//! no token that could not go into a header is accepted, no deadline is NaN, and no expired
//! token is handed out. `make test` runs a short round; `make fuzz` runs `PROPTEST_CASES`.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use wasm_session::core::config::{self, Config, RawConfig, StorageMode, OPTIONS};
use wasm_session::core::events::LogoutReason;
use wasm_session::core::machine::{Answer, Boot, Effect, Input, Machine, Reply, Transport};
use wasm_session::core::oidc;
use wasm_session::core::policy::{self, Backoff};
use wasm_session::core::protocol::{Envelope, Message, Stamp, Why, Wire};
use wasm_session::core::store::{Record, Stored};
use wasm_session::core::token::{self, JwtTimes, TokenResponse, TokenSet, MAX_TOKEN_LEN};

/// The options that decide between a token endpoint and discovery: few, so that valid
/// OpenID Connect configs come up often.
const OIDC_OPTIONS: &[&str] = &["issuer", "clientId", "tokenUrl", "authorizationUrl", "scope"];

const OIDC_FIELDS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "end_session_endpoint",
    "code_challenge_methods_supported",
    "v",
    "state",
    "nonce",
    "verifier",
    "redirect_uri",
    "app_state",
    "iss",
    "aud",
    "azp",
    "exp",
    "iat",
    "code",
    "error",
    "error_description",
    "prompt",
    "loginHint",
    "extraParams",
];

const FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "id_token",
    "scope",
    "issued_at",
    "expires_at",
    "v",
    "ns",
    "from",
    "type",
    "why",
    "reason",
    "seq",
    "origin",
    "tokens",
    "stamp",
    "timeoutMs",
    "after401",
    "exp",
    "iat",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..4_000_000_000_000).prop_map(|n| json!(n)),
        Just(json!(2)),
        Just(json!(0)),
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
        Just("refreshing".to_string()),
        Just("user".to_string()),
        Just("login".to_string()),
        (1usize..3).prop_map(|k| "x".repeat(k * MAX_TOKEN_LEN)),
        "[0-9]{0,14}",
        "https?://[a-z0-9.:\\[\\]]{0,30}/?[a-z]{0,5}",
        "[A-Za-z0-9_-]{1,20}\\.[A-Za-z0-9_=-]{0,40}\\.[A-Za-z0-9_-]{0,10}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// A flat object of mostly strings: configs and parameters that are nearly right.
fn flat_record(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![4 => text().prop_map(Value::String), 1 => number(), 1 => Just(Value::Null)];
    prop::collection::vec((prop::sample::select(keys), leaf), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()))
}

/// An object whose keys are mostly the ones a reader looks for.
fn record(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(keys), value()), 0..10)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()))
}

/// What the driver does with a JS value: serde reads objects only.
fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    v.is_object().then(|| serde_json::from_value(v.clone()).ok()).flatten()
}

fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

proptest! {
    #[test]
    fn config_never_panics_and_accepts_only_sane_values(v in prop_oneof![record(&OPTIONS), flat_record(OIDC_OPTIONS)]) {
        let keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        if let Some(raw) = read::<RawConfig>(&v) {
            if let Ok(c) = Config::from_raw(&keys, raw) {
                // An empty token endpoint only where it is not needed or will be discovered.
                let discovered = c.oidc.as_ref().is_some_and(|o| o.discovers());
                let token_url = match &c.server {
                    config::Server::OAuth { token_url, .. } => Some(token_url.as_str()),
                    config::Server::Cookie { .. } => None,
                };
                prop_assert!(token_url.is_none_or(|u| !u.trim().is_empty()) || discovered);
                if let Some(o) = &c.oidc {
                    prop_assert!(c.client_id.is_some() && !o.scope.is_empty());
                }
                for ms in [c.refresh_lead_ms, c.request_timeout_ms, c.retry_base_ms, c.retry_max_ms, c.lock_timeout_ms, c.restore_timeout_ms] {
                    prop_assert!(ms.is_finite() && ms >= 0.0);
                }
                prop_assert!(c.retry_max_ms >= c.retry_base_ms);
                prop_assert!(!c.namespace.is_empty() && c.namespace.len() <= 64);
            }
        }
    }

    #[test]
    fn token_responses_never_panic_and_yield_header_safe_tokens(v in record(FIELDS), now in number(), date in proptest::option::of(any::<f64>())) {
        let now = now.as_f64().unwrap_or(0.0);
        if let Some(r) = read::<TokenResponse>(&v) {
            let jwt = match &r.access_token {
                wasm_session::core::Field::Valid(t) => token::jwt_payload(t).and_then(|p| serde_json::from_slice::<Value>(&p).ok()).and_then(|c| read::<JwtTimes>(&c)),
                _ => None,
            };
            if let Ok(t) = TokenSet::from_response(r, jwt, now, date, Some("previous")) {
                prop_assert!(header_safe(&t.access_token));
                prop_assert!(t.validate().is_ok(), "{:?}", t);
            }
        }
    }

    #[test]
    fn tab_messages_never_panic_and_carry_valid_tokens(v in record(FIELDS)) {
        if let Some(w) = read::<Wire>(&v) {
            if let Ok(env) = w.open("default", "me") {
                prop_assert!(env.from != "me" && env.from.len() <= 64);
                if let Message::Tokens { tokens, .. } = env.msg {
                    prop_assert!(tokens.validate().is_ok());
                }
            }
        }
    }

    #[test]
    fn stored_records_never_panic(v in record(FIELDS)) {
        let version = v.get("v").and_then(Value::as_f64);
        if let Stored::Valid(r) = Stored::classify(version, read::<Record>(&v), "default") {
            prop_assert!(r.tokens.validate().is_ok());
        }
    }

    #[test]
    fn openid_connect_inputs_never_panic_and_pass_only_when_sane(v in prop_oneof![record(OIDC_FIELDS), flat_record(OIDC_FIELDS)], now in any::<f64>()) {
        let issuer = "https://id.example.com";
        if let Some(doc) = read::<oidc::Discovery>(&v) {
            if let Ok(urls) = doc.validate(issuer) {
                prop_assert!(!urls.authorization.is_empty() && !urls.token.is_empty());
            }
        }
        let pending = read::<oidc::Pending>(&v).and_then(|p| p.validate().ok());
        if let Some(p) = &pending {
            prop_assert!(oidc::valid_verifier(&p.verifier) && oidc::valid_secret(&p.state) && oidc::valid_secret(&p.nonce));
        }
        // The object's string fields as a callback's query parameters.
        let params: Vec<(String, String)> = v.as_object().into_iter().flatten()
            .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_string()))).collect();
        if let Ok(oidc::Callback::Code(code)) = oidc::check_callback(&params, pending.as_ref(), Some(issuer)) {
            let state = params.iter().find(|(k, _)| k == "state").map(|(_, s)| s.as_str());
            prop_assert!(!code.is_empty() && pending.as_ref().is_some_and(|p| Some(p.state.as_str()) == state));
        }
        if let Some(claims) = read::<oidc::IdClaims>(&v) {
            let expected = oidc::Expected { issuer: Some(issuer), client_id: "spa", nonce: "n", now };
            if oidc::check_id_claims(claims, &expected).is_ok() {
                prop_assert_eq!(v.get("iss").and_then(Value::as_str), Some(issuer));
                prop_assert_eq!(v.get("nonce").and_then(Value::as_str), Some("n"));
            }
        }
        if let Some(options) = read::<oidc::RawLoginOptions>(&v) {
            if let Ok(o) = options.validate() {
                prop_assert!(o.extra.iter().all(|(k, _)| !["state", "nonce", "code_challenge", "redirect_uri"].contains(&k.as_str())));
            }
        }
    }

    #[test]
    fn jwt_payloads_and_policy_never_panic(s in ".{0,200}", ms in any::<f64>(), attempt in any::<u32>(), r in any::<f64>()) {
        let _ = token::jwt_payload(&s);
        let _ = config::is_loopback(&s);
        let _ = policy::url_in_origins(&s, &["https://a.example".to_string()]);
        prop_assert!(policy::clamp_delay(ms) <= i32::MAX as u32);
        let d = Backoff { base_ms: 10.0, max_ms: 1000.0 }.delay(attempt, r);
        prop_assert!(d.is_finite() && (0.0..=1000.0).contains(&d));
    }

    #[test]
    fn the_machine_survives_any_inputs_at_any_times(steps in prop::collection::vec((step_time(), input()), 1..60)) {
        let mut m = Machine::new(Config { server: config::Server::OAuth { token_url: String::new(), revoke_url: Some("/r".into()) }, ..Config::default() }, "me".into(), 7);
        let (mut now, mut mono) = (1_795_000_000_000.0, 0.0);
        let start = Input::Start(Boot { stored: Stored::Empty, storage: StorageMode::Memory, storage_error: None, transport: Transport::Broadcast, locks: true, online: true });
        m.handle(now, mono, start);
        for (dt, input) in steps {
            now += dt;
            // The monotonic clock only moves forwards (and not always with the wall clock).
            mono += if dt > 0.0 { dt * 0.5 } else { 10.0 };
            for effect in m.handle(now, mono, input) {
                match effect {
                    Effect::Timer(Some(at)) => prop_assert!(!at.is_nan()),
                    Effect::Answer(_, Answer::Token { token, .. }) => {
                        let t = m.tokens().expect("a token is handed out only while signed in");
                        prop_assert_eq!(&token, &t.access_token);
                        prop_assert!(now < t.expires_at || now.is_nan(), "expired token handed out");
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Time steps: mostly forward, sometimes backwards, sometimes absurd.
fn step_time() -> impl Strategy<Value = f64> {
    prop_oneof![8 => 0.0..120_000.0f64, 1 => -3_600_000.0..0.0f64, 1 => Just(f64::NAN), 1 => Just(1e300)]
}

fn tokens() -> impl Strategy<Value = TokenSet> {
    (0.0..2e12f64, 1.0..1e7f64, any::<bool>()).prop_map(|(issued, life, rt)| TokenSet {
        access_token: "at".into(),
        refresh_token: rt.then(|| "rt".into()),
        id_token: None,
        scope: None,
        issued_at: issued,
        expires_at: issued + life,
        login_at: None,
        user: None,
    })
}

fn message() -> impl Strategy<Value = Message> {
    let seq = prop_oneof![any::<u64>(), 1_794_000_000_000u64..1_796_000_000_000];
    prop_oneof![
        (
            seq.clone(),
            tokens(),
            "[a-z]{1,3}",
            prop::sample::select(vec![Why::Login, Why::Refresh, Why::Share]),
            any::<bool>()
        )
            .prop_map(|(seq, tokens, origin, why, after_401)| Message::Tokens {
                stamp: Stamp { seq, origin },
                tokens,
                why,
                after_401
            }),
        (
            seq.clone(),
            prop::sample::select(vec![LogoutReason::User, LogoutReason::RefreshRejected, LogoutReason::Expired])
        )
            .prop_map(|(seq, reason)| Message::Logout { seq, reason }),
        (0.0..600_000.0f64).prop_map(|timeout_ms| Message::Refreshing { timeout_ms }),
        Just(Message::Claim),
        Just(Message::RefreshFailed),
        Just(Message::Hello),
        seq.prop_map(|seq| Message::SignedOut { seq }),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let ticket = 0u32..20;
    prop_oneof![
        tokens().prop_map(|tokens| Input::SignIn { tokens, ticket: None }),
        ticket.clone().prop_map(|ticket| Input::TokenWanted { ticket }),
        (ticket.clone(), any::<u64>()).prop_map(|(ticket, seq)| Input::Unauthorized { ticket, seq }),
        ticket.clone().prop_map(|ticket| Input::Refresh { ticket }),
        ticket.prop_map(|ticket| Input::Logout { ticket }),
        Just(Input::Tick),
        Just(Input::Wake),
        any::<bool>().prop_map(Input::Online),
        Just(Input::Presence { others: true }),
        (
            0u32..5,
            prop_oneof![
                Just(Reply::Network),
                Just(Reply::Timeout),
                Just(Reply::Garbled),
                (100u16..600, proptest::option::of("[a-z_]{1,20}"))
                    .prop_map(|(status, oauth_error)| Reply::Status { status, oauth_error }),
                record(FIELDS).prop_map(|v| Reply::Tokens {
                    response: read(&v).unwrap_or_default(),
                    jwt: None,
                    date: None
                }),
            ]
        )
            .prop_map(|(id, reply)| Input::RefreshReply { id, reply }),
        (0u32..5, any::<bool>(), any::<bool>()).prop_map(|(id, stolen, waited)| Input::LockGranted {
            id,
            stolen,
            waited,
            stored: None
        }),
        (0u32..5).prop_map(|id| Input::LockLost { id }),
        (message(), "[a-z]{1,3}").prop_map(|(msg, from)| Input::Message(Envelope { from, msg, with_key: false })),
        Just(Input::Dispose),
    ]
}
