//! Browser tests (wasm-bindgen-test in headless Chromium, against the real local server
//! started by `scripts/with-server.sh`) for what only a browser has: storage backends, the
//! wire format through real JS values, `session.fetch`'s origin rule, timers cancelled on
//! reschedule and dispose, and errors as real JS `Error`s. They run the build that ships:
//! no feature switches anything off for tests. Sessions are made with the Rust API
//! (`wasm_session::Session`); the JS class's own translation (config objects, JS errors) has
//! a test here too, and the end-to-end layer tests it throughout.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_session::core::config::StorageMode;
use wasm_session::core::events::LogoutReason;
use wasm_session::core::protocol::{Message, Stamp, Why, Wire};
use wasm_session::core::store::{self, Record, Stored, STORE_VERSION};
use wasm_session::web::storage::Store;
use wasm_session::{Config, Event, Session, TokenSet};

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
    session.refresh_at().expect("a refresh is scheduled")
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

fn config(ns: &str) -> Config {
    Config {
        token_url: Some(format!("{}/auth/token", api())),
        namespace: Some(ns.into()),
        allowed_origins: Some(vec![api().into()]),
        ..Default::default()
    }
}

/// One tab alone: no channel, no other tab's session.
fn alone(ns: &str) -> Config {
    Config { cross_tab: Some(false), ..config(ns) }
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
    let session = Session::new(config("fetch-test")).unwrap();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = events.clone();
    let subscription = session.subscribe(move |e: &Event| seen.borrow_mut().push(e.name()));
    session.login(&format!("{}/auth/login", api()), &json!({ "username": "demo", "password": "demo" })).await.unwrap();
    assert!(session.is_authenticated());
    assert_eq!(*events.borrow(), ["login"]);
    let request = web_sys::Request::new_with_str(&format!("{}/api/me", api())).unwrap();
    let me = session.fetch(request).await.unwrap();
    assert_eq!(me.status(), 200, "the allowed origin must get the token");
    let leak = session.fetch_url(&format!("{}/steal", foreign())).await.unwrap();
    assert_eq!(leak.status(), 200);
    let redirect = format!("{}/__redirect?to={}/redirected", api(), foreign());
    let _ = session.fetch_url(&redirect).await;
    assert_eq!(stat(foreign(), "authorization_seen").await, 0.0, "a token reached the foreign origin");
    // A dropped subscription hears nothing more.
    drop(subscription);
    session.logout().await.unwrap();
    assert_eq!(*events.borrow(), ["login"]);
    assert!(!session.is_authenticated());
    session.dispose();
}

#[wasm_bindgen_test]
async fn rescheduling_cancels_the_pending_refresh() {
    let token_url = format!("{}/auth/token", api());
    let requests = Requests::new(&token_url);
    let session = Session::new(alone("resched-test")).unwrap();
    // A 2 s token is due for refresh at 1.5 s; replacing it with a 3 s token, due at 2.25 s,
    // must cancel that: the first refresh to leave is the second token's, at its own time.
    session.set_tokens(&json!({ "access_token": "short", "expires_in": 2, "refresh_token": "bogus-1" })).unwrap();
    let cancelled = refresh_at(&session);
    session.set_tokens(&json!({ "access_token": "later", "expires_in": 3, "refresh_token": "bogus-2" })).unwrap();
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
    let disposed = Session::new(alone("dispose-test")).unwrap();
    disposed.set_tokens(&json!({ "access_token": "a", "expires_in": 2, "refresh_token": "disposed" })).unwrap();
    // A witness session armed after it and due later (3 s token, at 2.25 s): timers of one page
    // fire in deadline order, so when the witness's refresh leaves, the disposed session's
    // timer (1.5 s) would have fired and its request left before.
    let witness = Session::new(alone("dispose-witness")).unwrap();
    witness.set_tokens(&json!({ "access_token": "w", "expires_in": 3, "refresh_token": "witness" })).unwrap();
    assert!(refresh_at(&disposed) < refresh_at(&witness));
    disposed.dispose();
    let (_, refresh_token) = nth(&requests, 0).await;
    assert_eq!(refresh_token, "witness", "a disposed session refreshed");
    assert_eq!(requests.count(), 1, "a disposed session refreshed");
    requests.stop();
    witness.dispose();
    let err = disposed.fetch_url("/x").await.unwrap_err();
    assert_eq!(err.code(), "disposed");
    assert_eq!(disposed.refresh().await.unwrap_err(), wasm_session::Error::Disposed);
}

#[wasm_bindgen_test]
fn bad_config_is_an_error_naming_the_field() {
    let ok = || Config { token_url: Some("/t".into()), ..Default::default() };
    let cases = [
        (Config::default(), "tokenUrl"),
        (Config { token_url: Some("http://auth.example.com/token".into()), ..Default::default() }, "tokenUrl"),
        (Config { allowed_origins: Some(vec!["https://api.example.com/v1".into()]), ..ok() }, "allowedOrigins"),
        (Config { namespace: Some("".into()), ..ok() }, "namespace"),
        (Config { refresh_lead_ms: Some(-1.0), ..ok() }, "refreshLeadMs"),
    ];
    for (cfg, field) in cases {
        let err = Session::new(cfg).err().expect("bad config accepted");
        assert_eq!(err.code(), "invalid_config");
        assert!(err.to_string().contains(field), "{err} does not name {field}");
    }
}

#[wasm_bindgen_test]
fn the_js_class_throws_js_errors_naming_the_field() {
    use wasm_session::web::js::Session as JsSession;
    let cases: Vec<(JsValue, &str)> = vec![
        (JsValue::from(5), "(config)"),
        (obj(&[]), "tokenUrl"),
        (obj(&[("tokenUrl", 5.into())]), "tokenUrl"),
        (obj(&[("tokenUrl", "/t".into()), ("tokenURL", "/t".into())]), "tokenURL"),
        (obj(&[("tokenUrl", "http://auth.example.com/token".into())]), "tokenUrl"),
        (obj(&[("tokenUrl", "/t".into()), ("refreshLeadMs", "60000".into())]), "refreshLeadMs"),
    ];
    for (cfg, field) in cases {
        let err = JsSession::new(cfg).err().expect("bad config accepted");
        assert_eq!(get(&err, "code"), "invalid_config");
        assert_eq!(get(&err, "name"), "SessionError");
        let msg = get(&err, "message").as_string().unwrap();
        assert!(msg.contains(field), "{msg} does not name {field}");
        assert!(err.is_instance_of::<js_sys::Error>());
    }
    let session = JsSession::new(obj(&[("tokenUrl", "/t".into()), ("namespace", "js-class".into())])).unwrap();
    let err = session.set_tokens(JsValue::from_str("<html>error</html>")).unwrap_err();
    assert_eq!(get(&err, "code"), "invalid_argument");
    assert!(err.is_instance_of::<js_sys::Error>());
    session.dispose();
}

#[wasm_bindgen_test]
fn bad_token_response_is_refused_and_changes_nothing() {
    let session = Session::new(alone("bad-tokens")).unwrap();
    session.set_tokens(&json!({ "access_token": "good", "expires_in": 60 })).unwrap();
    for bad in [
        json!({ "expires_in": 60 }),
        json!({ "access_token": "x", "expires_in": "-5" }),
        json!({ "access_token": "x", "expires_in": 60, "token_type": "MAC" }),
        json!("<html>error</html>"),
    ] {
        let code = session.set_tokens(&bad).unwrap_err().code();
        assert!(code == "invalid_token_response" || code == "invalid_argument", "{code}");
        assert_eq!(session.current_access_token().as_deref(), Some("good"));
    }
    session.dispose();
}

#[wasm_bindgen_test]
async fn ready_resolves_at_once_for_the_first_tab() {
    // No other tab holds a presence lock: ready without waiting for restoreTimeoutMs. At its
    // largest, 60 s, that timeout lies far beyond the 10 s allowed here, so resolving at all
    // shows it was not waited for.
    let session = Session::new(Config { restore_timeout_ms: Some(60_000.0), ..config("ready-test") }).unwrap();
    let ready = session.ready();
    let ready = wasm_bindgen_futures::future_to_promise(async move { Ok(ready.await.into()) });
    let ready = JsFuture::from(within(ready, 10_000)).await.unwrap_or_else(|e| panic!("{e:?}"));
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
