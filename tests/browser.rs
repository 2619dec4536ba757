//! Browser tests (wasm-bindgen-test in headless Chromium, against the real local server
//! started by `scripts/with-server.sh`) for what only a browser has: storage backends, the
//! wire format through real JS values, `session.fetch`'s origin rule, timers cancelled on
//! reschedule and dispose, and errors as real JS `Error`s. They run the build that ships:
//! no feature switches anything off for tests.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_session::core::config::StorageMode;
use wasm_session::core::events::LogoutReason;
use wasm_session::core::protocol::{Message, Stamp, Why, Wire};
use wasm_session::core::store::{self, Record, Stored, STORE_VERSION};
use wasm_session::web::storage::Store;
use wasm_session::{Session, TokenSet};

wasm_bindgen_test_configure!(run_in_browser);

/// Origins of the local server, set at compile time by scripts/with-server.sh.
const API: Option<&str> = option_env!("WS_API");
const FOREIGN: Option<&str> = option_env!("WS_FOREIGN");

fn api() -> &'static str {
    API.expect("WS_API is unset: run through scripts/with-server.sh (make test-browser)")
}

fn foreign() -> &'static str {
    FOREIGN.expect("WS_FOREIGN is unset: run through scripts/with-server.sh (make test-browser)")
}

fn tokens(issued_at: f64) -> TokenSet {
    TokenSet {
        access_token: "at".into(),
        refresh_token: Some("rt".into()),
        id_token: None,
        scope: None,
        issued_at,
        expires_at: issued_at + 30_000.0,
        login_at: None,
        user: None,
    }
}

fn record(ns: &str) -> Record {
    Record {
        v: STORE_VERSION,
        ns: ns.into(),
        stamp: Stamp { seq: 7, origin: "tab".into() },
        tokens: tokens(1.0),
        after_401: false,
    }
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen(inline_js = r#"
// Wraps the page's fetch (the session looks it up when it calls it) to record each request
// to one URL as it leaves: the page clock's time then and its refresh_token.
export class Requests {
  constructor(url) {
    this.url = url;
    this.seen = [];
    this.waiting = [];
    this.real = globalThis.fetch;
    const self = this;
    globalThis.fetch = function (input, init) {
      const request = input instanceof Request ? input.clone() : new Request(input, init);
      if (request.url === self.url) {
        const at = Date.now();
        self.seen.push(request.text().then((body) => ({ at, refreshToken: new URLSearchParams(body).get("refresh_token") })));
        self.waiting = self.waiting.filter((check) => !check());
      }
      return self.real.call(globalThis, input, init);
    };
  }
  get count() { return this.seen.length; }
  /** The `n`th request (from 0) once it has left, or an Error after `guardMs` without it. */
  nth(n, guardMs) {
    return new Promise((resolve, reject) => {
      const check = () => this.seen.length > n && (resolve(this.seen[n]), true);
      if (check()) return;
      this.waiting.push(check);
      setTimeout(() => reject(new Error(`no request ${n + 1} to ${this.url} within ${guardMs} ms`)), guardMs);
    });
  }
  stop() { globalThis.fetch = this.real; }
}

/** `promise`, or a rejection after `ms` if it has not settled by then. */
export function within(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms))]);
}
"#)]
extern "C" {
    /// Requests to one URL, recorded as they leave the page (see the inline JS above).
    type Requests;
    #[wasm_bindgen(constructor)]
    fn new(url: &str) -> Requests;
    #[wasm_bindgen(method, getter)]
    fn count(this: &Requests) -> u32;
    #[wasm_bindgen(method)]
    fn nth(this: &Requests, n: u32, guard_ms: u32) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn stop(this: &Requests);
    fn within(promise: js_sys::Promise, ms: u32) -> js_sys::Promise;
}

/// The `n`th request `requests` saw: (page clock ms when it left, its refresh_token).
async fn nth(requests: &Requests, n: u32) -> (f64, String) {
    let r = JsFuture::from(requests.nth(n, 10_000)).await.unwrap_or_else(|e| panic!("{e:?}"));
    (get(&r, "at").as_f64().unwrap(), get(&r, "refreshToken").as_string().unwrap_or_default())
}

fn refresh_at(session: &Session) -> f64 {
    session.refresh_at().as_f64().expect("a refresh is scheduled")
}

fn local() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn session_storage() -> web_sys::Storage {
    web_sys::window().unwrap().session_storage().unwrap().unwrap()
}

/// GET/POST to the server outside the SDK; returns the parsed JSON body (or null).
async fn server(method: &str, url: &str) -> JsValue {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let resp: web_sys::Response =
        JsFuture::from(web_sys::window().unwrap().fetch_with_str_and_init(url, &init)).await.unwrap().unchecked_into();
    JsFuture::from(resp.json().unwrap()).await.unwrap_or(JsValue::NULL)
}

async fn stat(origin: &str, name: &str) -> f64 {
    get(&server("GET", &format!("{origin}/__stats")).await, name).as_f64().unwrap()
}

fn config(ns: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let mut pairs = vec![
        ("tokenUrl", JsValue::from_str(&format!("{}/auth/token", api()))),
        ("namespace", ns.into()),
        ("allowedOrigins", js_sys::Array::of1(&api().into()).into()),
    ];
    pairs.extend_from_slice(extra);
    obj(&pairs)
}

#[wasm_bindgen_test]
fn web_storage_round_trips_records() {
    for mode in [StorageMode::Local, StorageMode::Session] {
        let s = Store::open(mode, "rt-test").unwrap();
        assert_eq!(s.read(), Stored::Empty);
        s.write(&record("rt-test")).unwrap();
        assert_eq!(s.read(), Stored::Valid(record("rt-test")));
        s.clear();
        assert_eq!(s.read(), Stored::Empty);
    }
}

#[wasm_bindgen_test]
fn garbage_is_invalid_and_other_versions_are_other() {
    let key = store::key("garbage-test");
    let s = Store::open(StorageMode::Local, "garbage-test").unwrap();
    for garbage in [
        "not json",
        "{}",
        "[1,2]",
        "null",
        "42",
        r#"{"v":2,"ns":"garbage-test","stamp":{"seq":1,"origin":"t"},"tokens":{"access_token":7}}"#,
    ] {
        local().set_item(&key, garbage).unwrap();
        assert!(matches!(s.read(), Stored::Invalid(_)), "{garbage}");
    }
    let other_ns = serde_json_like(&record("someone-else"));
    local().set_item(&key, &other_ns).unwrap();
    assert!(matches!(s.read(), Stored::Invalid(_)), "another namespace's record");
    for v in [1, 3] {
        local().set_item(&key, &format!(r#"{{"v":{v},"ns":"garbage-test"}}"#)).unwrap();
        assert_eq!(s.read(), Stored::OtherVersion, "v{v}");
    }
    local().remove_item(&key).unwrap();
}

fn serde_json_like(r: &Record) -> String {
    let v = serde_wasm_bindgen::to_value(r).unwrap();
    js_sys::JSON::stringify(&v).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
fn memory_store_writes_nothing() {
    let (l, s) = (local().length().unwrap(), session_storage().length().unwrap());
    let store = Store::open(StorageMode::Memory, "mem-test").unwrap();
    store.write(&record("mem-test")).unwrap();
    assert_eq!(store.read(), Stored::Empty);
    assert_eq!((local().length().unwrap(), session_storage().length().unwrap()), (l, s));
}

#[wasm_bindgen_test]
fn messages_round_trip_through_js_and_garbage_is_refused() {
    for msg in [
        Message::Tokens {
            stamp: Stamp { seq: 1_795_000_000_000, origin: "a".into() },
            tokens: tokens(9.0),
            why: Why::Share,
            after_401: false,
        },
        Message::Logout { seq: 3, reason: LogoutReason::RefreshRejected },
        Message::Refreshing { timeout_ms: 10_000.0 },
        Message::Claim,
        Message::Hello,
    ] {
        let js = serde_wasm_bindgen::to_value(&Wire::seal("ns", "a", &msg)).unwrap();
        // Through JSON, as a message through the storage fallback travels.
        let js = js_sys::JSON::parse(&js_sys::JSON::stringify(&js).unwrap().as_string().unwrap()).unwrap();
        let wire: Wire = serde_wasm_bindgen::from_value(js).unwrap();
        assert_eq!(wire.open("ns", "b").unwrap().msg, msg);
    }
    let garbage = [
        obj(&[("v", "2".into())]),
        obj(&[("v", 2.into()), ("ns", "ns".into()), ("from", "a".into()), ("type", "explode".into())]),
        obj(&[
            ("v", 2.into()),
            ("ns", "ns".into()),
            ("from", "a".into()),
            ("type", "logout".into()),
            ("seq", (-1).into()),
        ]),
        obj(&[
            ("v", 2.into()),
            ("ns", "ns".into()),
            ("from", "a".into()),
            ("type", "tokens".into()),
            ("why", "login".into()),
            ("tokens", obj(&[("access_token", obj(&[]))])),
        ]),
    ];
    for g in garbage {
        let opened = serde_wasm_bindgen::from_value::<Wire>(g).ok().and_then(|w| w.open("ns", "b").ok());
        assert_eq!(opened, None);
    }
}

#[wasm_bindgen_test]
async fn fetch_adds_the_token_only_for_allowed_origins() {
    server("POST", &format!("{}/__reset", foreign())).await;
    let session = Session::new(config("fetch-test", &[])).unwrap();
    JsFuture::from(session.login(
        format!("{}/auth/login", api()).into(),
        obj(&[("username", "demo".into()), ("password", "demo".into())]),
    ))
    .await
    .unwrap();
    assert!(session.is_authenticated());
    let me: web_sys::Response =
        JsFuture::from(session.fetch(format!("{}/api/me", api()).into(), None)).await.unwrap().unchecked_into();
    assert_eq!(me.status(), 200, "the allowed origin must get the token");
    let leak: web_sys::Response =
        JsFuture::from(session.fetch(format!("{}/steal", foreign()).into(), None)).await.unwrap().unchecked_into();
    assert_eq!(leak.status(), 200);
    let redirect = format!("{}/__redirect?to={}/redirected", api(), foreign());
    let _ = JsFuture::from(session.fetch(redirect.into(), None)).await;
    assert_eq!(stat(foreign(), "authorization_seen").await, 0.0, "a token reached the foreign origin");
    session.dispose();
}

#[wasm_bindgen_test]
async fn rescheduling_cancels_the_pending_refresh() {
    let token_url = format!("{}/auth/token", api());
    let requests = Requests::new(&token_url);
    let session = Session::new(config("resched-test", &[("crossTab", false.into())])).unwrap();
    // A 2 s token is due for refresh at 1.5 s; replacing it with a 3 s token, due at 2.25 s,
    // must cancel that: the first refresh to leave is the second token's, at its own time.
    let short = obj(&[("access_token", "short".into()), ("expires_in", 2.into()), ("refresh_token", "bogus-1".into())]);
    session.set_tokens(short).unwrap();
    let cancelled = refresh_at(&session);
    let later = obj(&[("access_token", "later".into()), ("expires_in", 3.into()), ("refresh_token", "bogus-2".into())]);
    session.set_tokens(later).unwrap();
    let due = refresh_at(&session);
    assert!(cancelled < due, "the replaced deadline {cancelled} is not before the new one {due}");
    // The clock here is the page's: the request's own departure time says whether it left at
    // the cancelled deadline or at the new one, however late the timers ran.
    let (at, refresh_token) = nth(&requests, 0).await;
    requests.stop();
    assert!(at >= due, "a refresh left {} ms before the new deadline: the cancelled one fired", due - at);
    assert_eq!(refresh_token, "bogus-2");
    session.dispose();
}

#[wasm_bindgen_test]
async fn dispose_cancels_timers_and_later_calls_reject() {
    let token_url = format!("{}/auth/token", api());
    let requests = Requests::new(&token_url);
    let disposed = Session::new(config("dispose-test", &[("crossTab", false.into())])).unwrap();
    let due = obj(&[("access_token", "a".into()), ("expires_in", 2.into()), ("refresh_token", "disposed".into())]);
    disposed.set_tokens(due).unwrap();
    // A witness session armed after it and due later (3 s token, at 2.25 s): timers of one page
    // fire in deadline order, so when the witness's refresh leaves, the disposed session's
    // timer (1.5 s) would have fired and its request left before.
    let witness = Session::new(config("dispose-witness", &[("crossTab", false.into())])).unwrap();
    let later = obj(&[("access_token", "w".into()), ("expires_in", 3.into()), ("refresh_token", "witness".into())]);
    witness.set_tokens(later).unwrap();
    assert!(refresh_at(&disposed) < refresh_at(&witness));
    disposed.dispose();
    let (_, refresh_token) = nth(&requests, 0).await;
    assert_eq!(refresh_token, "witness", "a disposed session refreshed");
    assert_eq!(requests.count(), 1, "a disposed session refreshed");
    requests.stop();
    witness.dispose();
    let err = JsFuture::from(disposed.fetch("/x".into(), None)).await.unwrap_err();
    assert_eq!(get(&err, "code"), "disposed");
    assert!(err.is_instance_of::<js_sys::Error>());
}

#[wasm_bindgen_test]
fn bad_config_throws_an_error_naming_the_field() {
    let cases: Vec<(JsValue, &str)> = vec![
        (JsValue::from(5), "(config)"),
        (obj(&[]), "tokenUrl"),
        (obj(&[("tokenUrl", 5.into())]), "tokenUrl"),
        (obj(&[("tokenUrl", "/t".into()), ("tokenURL", "/t".into())]), "tokenURL"),
        (obj(&[("tokenUrl", "http://auth.example.com/token".into())]), "tokenUrl"),
        (
            obj(&[
                ("tokenUrl", "/t".into()),
                ("allowedOrigins", js_sys::Array::of1(&"https://api.example.com/v1".into()).into()),
            ]),
            "allowedOrigins",
        ),
        (obj(&[("tokenUrl", "/t".into()), ("namespace", "".into())]), "namespace"),
        (obj(&[("tokenUrl", "/t".into()), ("refreshLeadMs", "60000".into())]), "refreshLeadMs"),
    ];
    for (cfg, field) in cases {
        let err = Session::new(cfg).err().expect("bad config accepted");
        assert_eq!(get(&err, "code"), "invalid_config");
        assert_eq!(get(&err, "name"), "SessionError");
        let msg = get(&err, "message").as_string().unwrap();
        assert!(msg.contains(field), "{msg} does not name {field}");
        assert!(err.is_instance_of::<js_sys::Error>());
    }
}

#[wasm_bindgen_test]
fn bad_token_response_is_refused_and_changes_nothing() {
    let session = Session::new(config("bad-tokens", &[("crossTab", false.into())])).unwrap();
    session.set_tokens(obj(&[("access_token", "good".into()), ("expires_in", 60.into())])).unwrap();
    for bad in [
        obj(&[("expires_in", 60.into())]),
        obj(&[("access_token", "x".into()), ("expires_in", "-5".into())]),
        obj(&[("access_token", "x".into()), ("expires_in", 60.into()), ("token_type", "MAC".into())]),
        JsValue::from_str("<html>error</html>"),
    ] {
        let err = session.set_tokens(bad).unwrap_err();
        let code = get(&err, "code").as_string().unwrap();
        assert!(code == "invalid_token_response" || code == "invalid_argument", "{code}");
        assert_eq!(session.access_token(), JsValue::from_str("good"));
    }
    session.dispose();
}

#[wasm_bindgen_test]
async fn ready_resolves_at_once_for_the_first_tab() {
    // No other tab holds a presence lock: ready without waiting for restoreTimeoutMs. At its
    // largest, 60 s, that timeout lies far beyond the 10 s allowed here, so resolving at all
    // shows it was not waited for.
    let session = Session::new(config("ready-test", &[("restoreTimeoutMs", 60_000.into())])).unwrap();
    let ready = JsFuture::from(within(session.ready(), 10_000)).await.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(ready, JsValue::FALSE);
    session.dispose();
}

#[wasm_bindgen_test]
async fn pkce_secrets_come_from_the_browsers_crypto() {
    // RFC 7636, Appendix B: the S256 challenge of the example verifier, by crypto.subtle.
    let challenge = wasm_session::web::oidc::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").await;
    assert_eq!(challenge.as_deref(), Ok("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    // 32 random bytes: 43 base64url characters, a valid verifier, never twice the same.
    let (a, b) = (wasm_session::web::oidc::random(32).unwrap(), wasm_session::web::oidc::random(32).unwrap());
    assert!(wasm_session::core::oidc::valid_verifier(&a) && wasm_session::core::oidc::valid_secret(&a), "{a}");
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
}
