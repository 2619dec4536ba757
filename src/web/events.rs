//! The app's subscriptions (Rust closures: `Session::subscribe`, and the JS class's
//! `session.on` through it), event payloads (serde), and errors as real JS `Error`s with a
//! stable `code`, and back.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Reflect;
use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::core::error::{Error, CODES};
use crate::core::events::Event;

/// An event as the app receives it: `{ type, expiresAt?, reason? }` (and `error` for
/// error events, set after serialization: a JS `Error` is not serde data).
#[derive(Serialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(rename = "logoutAt", skip_serializing_if = "Option::is_none")]
    logout_at: Option<f64>,
}

/// The JS value of an event. Events never carry tokens.
pub fn payload(event: &Event) -> JsValue {
    let mut p = Payload { kind: event.name(), expires_at: None, reason: None, logout_at: None };
    match event {
        Event::Login { expires_at } | Event::Refresh { expires_at } | Event::Expired { expires_at } => {
            p.expires_at = Some(*expires_at)
        }
        Event::Logout { reason } => p.reason = Some(reason.as_str()),
        Event::IdleWarning { logout_at } => p.logout_at = Some(*logout_at),
        Event::Error(_) | Event::Active => {}
    }
    let value = serde_wasm_bindgen::to_value(&p).unwrap_or_else(|_| js_sys::Object::new().into());
    if let Event::Error(e) = event {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&value, &"error".into(), &to_js(e));
    }
    value
}

/// A JS `Error` (`name: "SessionError"`) with `code` (and `status` where there is one).
pub fn to_js(e: &Error) -> JsValue {
    let error = js_sys::Error::new(&e.message());
    error.set_name("SessionError");
    let _ = Reflect::set(&error, &"code".into(), &e.code().into());
    if let Some(status) = e.status() {
        let _ = Reflect::set(&error, &"status".into(), &status.into());
    }
    if let Error::OAuth(code, description) = e {
        let _ = Reflect::set(&error, &"error".into(), &code.into());
        let description = description.as_deref().map_or(JsValue::NULL, Into::into);
        let _ = Reflect::set(&error, &"errorDescription".into(), &description);
    }
    error.into()
}

/// A value a JS promise rejected with, as an [`Error`]: a `SessionError` keeps its code and
/// message; anything else (fetch's `TypeError`, an `AbortError`) is `network`.
pub fn from_js(value: &JsValue) -> Error {
    let get = |k: &str| Reflect::get(value, &k.into()).ok().and_then(|v| v.as_string());
    let message = get("message").unwrap_or_default();
    let code = get("code").and_then(|c| CODES.iter().find(|k| **k == c).copied());
    match (get("name").as_deref(), code) {
        (Some("SessionError"), Some(code)) => Error::Js(code, message),
        _ => Error::Js("network", format!("wasm-session: fetch failed: {message}")),
    }
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        to_js(&e)
    }
}

/// A subscriber: called with every event.
pub type Subscriber = Rc<dyn Fn(&Event)>;

/// The app's subscribers.
#[derive(Default)]
pub struct Events {
    next_id: Cell<u32>,
    subs: RefCell<Vec<(u32, Subscriber)>>,
}

impl Events {
    /// Adds a subscriber; returns its id for [`Events::remove`].
    pub fn add(&self, subscriber: Subscriber) -> u32 {
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        self.subs.borrow_mut().push((id, subscriber));
        id
    }

    /// Removes one subscriber.
    pub fn remove(&self, id: u32) {
        self.subs.borrow_mut().retain(|(i, _)| *i != id);
    }

    /// Removes every subscriber.
    pub fn clear(&self) {
        self.subs.borrow_mut().clear();
    }

    /// Calls the subscribers with `event`. The list is copied first, so a subscriber may
    /// subscribe, unsubscribe or call the session.
    pub fn emit(&self, event: &Event) {
        let subs: Vec<Subscriber> = self.subs.borrow().iter().map(|(_, f)| f.clone()).collect();
        for f in subs {
            f(event);
        }
    }
}
