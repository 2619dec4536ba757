//! Browser tests (wasm-bindgen-test in headless Chromium) for the glue: storage backends,
//! the cross-tab codec and lock, `session.fetch`'s origin rule against the real local server
//! (started by `scripts/with-server.sh`), timers, and JS-facing errors.
#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_session::config::StorageMode;
use wasm_session::events::LogoutReason;
use wasm_session::store::{self, Store};
use wasm_session::tabs::{self, Envelope, Message, Why};
use wasm_session::value::{to_object, Value};
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

async fn await_promise(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
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
fn web_storage_round_trips() {
    for mode in [StorageMode::Local, StorageMode::Session] {
        let s = Store::open(mode, "rt-test").unwrap();
        assert_eq!(s.load().unwrap(), None);
        s.save(&tokens(1000.0)).unwrap();
        assert_eq!(s.load().unwrap(), Some(tokens(1000.0)));
        s.clear();
        assert_eq!(s.load().unwrap(), None);
    }
}

#[wasm_bindgen_test]
fn web_storage_survives_garbage_and_discards_it() {
    let key = store::key("garbage-test");
    let other_ns = format!(r#"{{"v":1,"ns":"someone-else","tokens":{}}}"#, serde_json_tokens());
    let other_version = format!(r#"{{"v":99,"ns":"garbage-test","tokens":{}}}"#, serde_json_tokens());
    for garbage in [
        "not json",
        "{}",
        "[1,2]",
        "null",
        r#"{"v":1,"ns":"garbage-test","tokens":{"access_token":7}}"#,
        &other_ns,
        &other_version,
    ] {
        local().set_item(&key, garbage).unwrap();
        let s = Store::open(StorageMode::Local, "garbage-test").unwrap();
        let result = s.load();
        assert!(result.is_err() || result == Ok(None), "{garbage} was accepted");
        assert_eq!(local().get_item(&key).unwrap(), None, "{garbage} was left in storage");
    }
}

fn serde_json_tokens() -> String {
    r#"{"access_token":"at","token_type":"Bearer","refresh_token":"rt","id_token":null,"scope":null,"issued_at":1,"expires_at":30001}"#.into()
}

#[wasm_bindgen_test]
fn memory_store_writes_nothing() {
    let (l, s) = (local().length().unwrap(), session_storage().length().unwrap());
    let store = Store::open(StorageMode::Memory, "mem-test").unwrap();
    store.save(&tokens(5.0)).unwrap();
    assert_eq!(store.load().unwrap(), None);
    assert_eq!((local().length().unwrap(), session_storage().length().unwrap()), (l, s));
}

fn decode_js(v: &JsValue) -> Result<Message, &'static str> {
    Envelope::decode(&|k| Value::field(v, k), "ns", "b").map(|(_, m)| m)
}

#[wasm_bindgen_test]
fn message_codec_round_trips_through_js_and_refuses_garbage() {
    for msg in [
        Message::Tokens { tokens: tokens(9.0), why: Why::Share },
        Message::Logout { reason: LogoutReason::RefreshRejected },
        Message::Hello,
    ] {
        let js = to_object(&Envelope::new("ns", "a", msg.clone()).encode());
        // Through structured-clone-like JSON, as a message would travel.
        let js = js_sys::JSON::parse(&js_sys::JSON::stringify(&js).unwrap().as_string().unwrap()).unwrap();
        assert_eq!(decode_js(&js).unwrap(), msg);
    }
    let garbage = [
        JsValue::from(42),
        JsValue::from_str("hello"),
        JsValue::NULL,
        obj(&[("v", 1.into())]),
        obj(&[("v", 1.into()), ("ns", "ns".into()), ("from", "a".into()), ("type", "explode".into())]),
        obj(&[
            ("v", 1.into()),
            ("ns", "ns".into()),
            ("from", "a".into()),
            ("type", "tokens".into()),
            ("why", "login".into()),
            ("access_token", obj(&[])),
        ]),
    ];
    for g in garbage {
        assert!(decode_js(&g).is_err());
    }
}

#[wasm_bindgen_test]
async fn lock_is_exclusive_and_a_stuck_holder_is_taken_over_after_the_timeout() {
    let name = "wasm-session:lock-test:refresh";
    let first = tabs::acquire(name, 1000.0).await.expect("Web Locks available");
    let started = js_sys::Date::now();
    // The first guard is never released: the second request must time out, then steal.
    let second = tabs::acquire(name, 300.0).await.expect("stolen after the timeout");
    let waited = js_sys::Date::now() - started;
    assert!(waited >= 290.0, "got the lock after {waited} ms while it was held");
    drop(second);
    drop(first);
    let started = js_sys::Date::now();
    let third = tabs::acquire(name, 5000.0).await.expect("free lock");
    assert!(js_sys::Date::now() - started < 1000.0, "a free lock must be granted at once");
    drop(third);
}

#[wasm_bindgen_test]
async fn fetch_adds_the_token_only_for_allowed_origins() {
    server("POST", &format!("{}/__reset", foreign())).await;
    let session = Session::new(config("fetch-test", &[])).unwrap();
    await_promise(session.login(
        format!("{}/auth/login", api()).into(),
        obj(&[("username", "demo".into()), ("password", "demo".into())]),
    ))
    .await
    .unwrap();
    assert!(session.is_authenticated());
    let me: web_sys::Response =
        await_promise(session.fetch(format!("{}/api/me", api()).into(), None)).await.unwrap().unchecked_into();
    assert_eq!(me.status(), 200, "the allowed origin must get the token");
    let leak: web_sys::Response =
        await_promise(session.fetch(format!("{}/steal", foreign()).into(), None)).await.unwrap().unchecked_into();
    assert_eq!(leak.status(), 200);
    let redirect = format!("{}/__redirect?to={}/redirected", api(), foreign());
    let _ = await_promise(session.fetch(redirect.into(), None)).await;
    assert_eq!(stat(foreign(), "authorization_seen").await, 0.0, "a token reached the foreign origin");
    session.dispose();
}

#[wasm_bindgen_test]
async fn rescheduling_cancels_the_pending_refresh() {
    let before = stat(api(), "token_requests").await;
    let session = Session::new(config("resched-test", &[("crossTab", false.into())])).unwrap();
    let logouts = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = logouts.clone();
    let cb = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |_| seen.set(seen.get() + 1));
    session.on("logout".into(), cb.as_ref().clone()).unwrap();
    // A 1 s token is due for refresh at 0.75 s; replacing it with a 1 h token must cancel that.
    session
        .set_tokens(obj(&[
            ("access_token", "short".into()),
            ("expires_in", 1.into()),
            ("refresh_token", "bogus-1".into()),
        ]))
        .unwrap();
    session
        .set_tokens(obj(&[
            ("access_token", "long".into()),
            ("expires_in", 3600.into()),
            ("refresh_token", "bogus-2".into()),
        ]))
        .unwrap();
    sleep(1500).await;
    assert_eq!(stat(api(), "token_requests").await, before, "the cancelled refresh ran");
    assert_eq!(logouts.get(), 0);
    assert!(session.is_authenticated());
    session.dispose();
}

#[wasm_bindgen_test]
async fn dispose_cancels_timers_and_later_calls_reject() {
    let before = stat(api(), "token_requests").await;
    let session = Session::new(config("dispose-test", &[("crossTab", false.into())])).unwrap();
    session
        .set_tokens(obj(&[("access_token", "a".into()), ("expires_in", 1.into()), ("refresh_token", "bogus".into())]))
        .unwrap();
    session.dispose();
    sleep(1500).await;
    assert_eq!(stat(api(), "token_requests").await, before, "a disposed session refreshed");
    let err = await_promise(session.fetch("/x".into(), None)).await.unwrap_err();
    assert_eq!(get(&err, "code"), "disposed");
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
    ];
    for (cfg, field) in cases {
        let err = Session::new(cfg).err().expect("bad config accepted");
        assert_eq!(get(&err, "code"), "invalid_config");
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
