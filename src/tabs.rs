//! The cross-tab protocol: versioned messages over a BroadcastChannel named per namespace
//! (with a `storage`-event fallback), and the Web Locks wrapper that lets one tab refresh.
//!
//! The message types and their validation are plain Rust; the channel and the lock are glue.

use serde::{Deserialize, Serialize};

use crate::events::LogoutReason;
use crate::token::TokenSet;

/// Protocol version; messages with another version are ignored.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a tab sends its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// It just logged in.
    Login,
    /// It just refreshed.
    Refresh,
    /// A new tab asked (`hello`).
    Share,
}

/// One message between tabs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// New tokens, to adopt if newer than one's own.
    Tokens {
        /// The token set.
        tokens: TokenSet,
        /// Why it was sent.
        why: Why,
    },
    /// The session ended in the sending tab.
    Logout {
        /// Why it ended there.
        reason: LogoutReason,
    },
    /// The sender holds the refresh lock and is calling the token endpoint.
    Refreshing,
    /// The sender's refresh failed without ending the session (peers stop waiting for it).
    RefreshFailed,
    /// A new tab asks the open tabs for the current session.
    Hello,
}

/// A message with its header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The sender's namespace.
    pub ns: String,
    /// The sender's tab id.
    pub from: String,
    /// The message.
    pub msg: Message,
}

impl Envelope {
    /// A message from this tab.
    pub fn new(ns: &str, from: &str, msg: Message) -> Self {
        Envelope { v: PROTOCOL_VERSION, ns: ns.to_string(), from: from.to_string(), msg }
    }

    /// Accepts a received envelope only if it is this version, this namespace, from another
    /// tab, and carries valid tokens. Anything else changes nothing.
    pub fn accept(self, ns: &str, me: &str) -> Result<Message, &'static str> {
        if self.v != PROTOCOL_VERSION {
            return Err("message from another protocol version ignored");
        }
        if self.ns != ns {
            return Err("message for another namespace ignored");
        }
        if self.from == me || self.from.is_empty() || self.from.len() > 64 {
            return Err("message with a bad sender ignored");
        }
        if let Message::Tokens { tokens, .. } = &self.msg {
            tokens.validate().map_err(|_| "message with invalid tokens ignored")?;
        }
        Ok(self.msg)
    }
}

/// The BroadcastChannel (and fallback storage key) name for a namespace.
pub fn channel_name(ns: &str) -> String {
    let mut n = String::from("wasm-session:");
    n.push_str(ns);
    n
}

/// The Web Locks name guarding refreshes in a namespace.
pub fn lock_name(ns: &str) -> String {
    channel_name(ns) + ":refresh"
}

#[cfg(target_arch = "wasm32")]
pub use browser::{acquire, Channel, LockGuard};

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::{channel_name, Envelope, Message};
    use crate::flight::Flight;
    use crate::timers::clamp_delay;
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        /// `navigator.locks` (Web Locks API), bound by hand: web-sys has it only as unstable.
        type LockManager;

        #[wasm_bindgen(method, catch, js_name = request)]
        fn request(this: &LockManager, name: &str, options: &JsValue, callback: &Function) -> Result<Promise, JsValue>;
    }

    fn lock_manager() -> Option<LockManager> {
        let navigator = web_sys::window()?.navigator();
        let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
        (locks.is_object() && Reflect::has(&locks, &"request".into()).unwrap_or(false)).then(|| locks.unchecked_into())
    }

    /// A held Web Lock; dropping it releases the lock.
    pub struct LockGuard {
        release: Option<Function>,
    }

    impl Drop for LockGuard {
        fn drop(&mut self) {
            if let Some(f) = self.release.take() {
                let _ = f.call0(&JsValue::UNDEFINED);
            }
        }
    }

    /// `(promise, resolve)`: a promise and the function that resolves it.
    fn deferred() -> (Promise, Function) {
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _rej| resolve = Some(res));
        // The executor runs synchronously, so `resolve` is always set; a no-op is the fallback.
        (promise, resolve.unwrap_or_else(|| Function::new_no_args("")))
    }

    /// Requests `name` with the given options; resolves once granted, or to `None` if the
    /// request failed (aborted by our timeout, or stolen before it was granted).
    async fn request(locks: &LockManager, name: &str, options: &Object) -> Option<LockGuard> {
        let granted: Flight<bool> = Flight::new();
        let (held, release) = deferred();
        let on_grant = granted.clone();
        let callback = Closure::<dyn FnMut(JsValue) -> Promise>::once_into_js(move |_lock: JsValue| {
            on_grant.complete(true);
            held
        });
        let done = locks.request(name, options, callback.unchecked_ref()).ok()?;
        // The request's own promise settles only after release, or rejects on abort/steal:
        // either way, if the lock was not granted by then, it never will be.
        let on_settle = granted.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = JsFuture::from(done).await;
            on_settle.complete(false);
        });
        granted.wait().await.then_some(LockGuard { release: Some(release) })
    }

    /// Takes the refresh lock, waiting at most `timeout_ms` for a holder to finish. After
    /// that the lock is stolen: a holder frozen or stuck mid-refresh must not stall the rest.
    /// `None` when the browser has no Web Locks (the caller carries on without).
    pub async fn acquire(name: &str, timeout_ms: f64) -> Option<LockGuard> {
        let locks = lock_manager()?;
        let controller = web_sys::AbortController::new().ok()?;
        let options = Object::new();
        let _ = Reflect::set(&options, &"signal".into(), &controller.signal());
        let abort = gloo_timers::callback::Timeout::new(clamp_delay(timeout_ms), move || controller.abort());
        if let Some(guard) = request(&locks, name, &options).await {
            abort.cancel();
            return Some(guard);
        }
        let steal = Object::new();
        let _ = Reflect::set(&steal, &"steal".into(), &JsValue::TRUE);
        request(&locks, name, &steal).await
    }

    /// The cross-tab transport for one namespace.
    pub struct Channel {
        channel: Option<web_sys::BroadcastChannel>,
        storage: Option<web_sys::Storage>,
        key: String,
        _handler: Closure<dyn FnMut(JsValue)>,
        listening_on: Option<web_sys::Window>,
    }

    impl Channel {
        /// Opens the channel; `on_message` gets every raw message from other tabs. Uses
        /// BroadcastChannel, else `storage` events on localStorage, else `None`.
        pub fn open(ns: &str, mut on_message: impl FnMut(JsValue) + 'static) -> Option<Channel> {
            let name = channel_name(ns);
            if let Ok(channel) = web_sys::BroadcastChannel::new(&name) {
                let handler = Closure::new(move |e: JsValue| {
                    if let Some(e) = e.dyn_ref::<web_sys::MessageEvent>() {
                        on_message(e.data());
                    }
                });
                channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
                return Some(Channel { channel: Some(channel), storage: None, key: name, _handler: handler, listening_on: None });
            }
            let window = web_sys::window()?;
            let storage = window.local_storage().ok().flatten()?;
            let key = name.clone();
            let handler = Closure::new(move |e: JsValue| {
                let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else { return };
                if e.key().as_deref() == Some(key.as_str()) {
                    if let Some(text) = e.new_value() {
                        if let Ok(v) = js_sys::JSON::parse(&text) {
                            on_message(v);
                        }
                    }
                }
            });
            window.add_event_listener_with_callback("storage", handler.as_ref().unchecked_ref()).ok()?;
            Some(Channel { channel: None, storage: Some(storage), key: name, _handler: handler, listening_on: Some(window) })
        }

        /// True when messages go through localStorage (no BroadcastChannel).
        pub fn via_storage(&self) -> bool {
            self.channel.is_none()
        }

        /// Sends a message to the other tabs. Failures are dropped: tabs also re-check
        /// their deadlines on their own.
        pub fn post(&self, envelope: &Envelope) {
            let Ok(value) = serde_wasm_bindgen::to_value(envelope) else { return };
            if let Some(c) = &self.channel {
                let _ = c.post_message(&value);
            } else if let Some(s) = &self.storage {
                // Tokens never pass through storage, not even for a moment: in `local` mode the
                // other tabs read them from the stored session instead.
                if matches!(envelope.msg, Message::Tokens { .. }) {
                    return;
                }
                if let Some(text) = js_sys::JSON::stringify(&value).ok().and_then(|t| t.as_string()) {
                    let _ = s.set_item(&self.key, &text);
                    let _ = s.remove_item(&self.key);
                }
            }
        }
    }

    impl Drop for Channel {
        fn drop(&mut self) {
            if let Some(c) = &self.channel {
                c.set_onmessage(None);
                c.close();
            }
            if let Some(w) = &self.listening_on {
                let _ = w.remove_event_listener_with_callback("storage", self._handler.as_ref().unchecked_ref());
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            refresh_token: Some("rt".into()),
            id_token: None,
            scope: None,
            issued_at: 1.0,
            expires_at: 30_001.0,
        }
    }

    #[test]
    fn codec_round_trips_every_message() {
        for msg in [
            Message::Tokens { tokens: tokens(), why: Why::Refresh },
            Message::Logout { reason: LogoutReason::User },
            Message::Refreshing,
            Message::RefreshFailed,
            Message::Hello,
        ] {
            let env = Envelope::new("app", "tab-a", msg.clone());
            let text = serde_json::to_string(&env).unwrap();
            let back: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(back.accept("app", "tab-b").unwrap(), msg);
        }
        let text = serde_json::to_string(&Envelope::new("app", "a", Message::Hello)).unwrap();
        assert_eq!(text, r#"{"v":1,"ns":"app","from":"a","msg":{"type":"hello"}}"#);
    }

    #[test]
    fn foreign_and_malformed_messages_are_refused() {
        let env = |v, ns: &str, from: &str| Envelope { v, ns: ns.into(), from: from.into(), msg: Message::Hello };
        assert!(env(2, "app", "a").accept("app", "b").is_err(), "other version");
        assert!(env(1, "other", "a").accept("app", "b").is_err(), "other namespace");
        assert!(env(1, "app", "b").accept("app", "b").is_err(), "own echo");
        assert!(env(1, "app", &"x".repeat(65)).accept("app", "b").is_err(), "oversized sender");
        let mut bad = tokens();
        bad.access_token = "has space".into();
        let e = Envelope::new("app", "a", Message::Tokens { tokens: bad, why: Why::Login });
        assert!(e.accept("app", "b").is_err(), "invalid tokens");
        for garbage in ["{}", r#"{"v":1,"ns":"app","from":"a","msg":{"type":"nuke"}}"#, r#"{"v":1,"ns":"app","from":"a","msg":{"type":"logout","reason":"because"}}"#, "42"] {
            assert!(serde_json::from_str::<Envelope>(garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn names_are_per_namespace() {
        assert_eq!(channel_name("app"), "wasm-session:app");
        assert_eq!(lock_name("app"), "wasm-session:app:refresh");
    }
}
