//! The cross-tab protocol: versioned messages over a BroadcastChannel named per namespace
//! (with a `storage`-event fallback), and the Web Locks wrapper that lets one tab refresh.
//!
//! The message types and their validation are plain Rust; the channel and the lock are glue.

use crate::prelude::*;

use crate::events::LogoutReason;
use crate::token::TokenSet;
use crate::value::Value;

/// Protocol version; messages with another version are ignored.
pub const PROTOCOL_VERSION: f64 = 1.0;

/// Why a tab sends its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// It just logged in.
    Login,
    /// It just refreshed.
    Refresh,
    /// A new tab asked (`hello`).
    Share,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Login => "login",
            Why::Refresh => "refresh",
            Why::Share => "share",
        }
    }

    fn parse(s: &str) -> Option<Why> {
        Some(match s {
            "login" => Why::Login,
            "refresh" => Why::Refresh,
            "share" => Why::Share,
            _ => return None,
        })
    }
}

/// One message between tabs.
#[derive(Clone, Debug, PartialEq)]
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

/// A message with its header: protocol version, namespace and sender.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
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
        Envelope { ns: ns.to_string(), from: from.to_string(), msg }
    }

    /// The flat wire record: `{v, ns, from, type, ...}`.
    pub fn encode(&self) -> Vec<(&'static str, Value)> {
        let kind = match &self.msg {
            Message::Tokens { .. } => "tokens",
            Message::Logout { .. } => "logout",
            Message::Refreshing => "refreshing",
            Message::RefreshFailed => "refresh_failed",
            Message::Hello => "hello",
        };
        let mut out = vec![
            ("v", Value::Num(PROTOCOL_VERSION)),
            ("ns", Value::Str(self.ns.clone())),
            ("from", Value::Str(self.from.clone())),
            ("type", Value::Str(kind.to_string())),
        ];
        match &self.msg {
            Message::Tokens { tokens, why } => {
                out.push(("why", Value::Str(why.as_str().to_string())));
                tokens.to_fields(&mut out);
            }
            Message::Logout { reason } => out.push(("reason", Value::Str(reason.as_str().to_string()))),
            _ => {}
        }
        out
    }

    /// Reads a received record. Accepts it only if it is this protocol version, this
    /// namespace, from another tab, of a known type, and carries valid tokens: anything else
    /// is refused and changes nothing.
    /// Returns the sender's tab id with the message.
    pub fn decode(get: &dyn Fn(&str) -> Value, ns: &str, me: &str) -> Result<(String, Message), &'static str> {
        if !matches!(get("v"), Value::Num(v) if v == PROTOCOL_VERSION) {
            return Err("message from another protocol version ignored");
        }
        // `matches!`, not `!=`: comparing whole `Value`s links their recursive equality.
        if !matches!(get("ns"), Value::Str(s) if s == ns) {
            return Err("message for another namespace ignored");
        }
        let from = match get("from") {
            Value::Str(from) if !from.is_empty() && from.len() <= 64 && from != me => from,
            _ => return Err("message with a bad sender ignored"),
        };
        let text = |k| match get(k) {
            Value::Str(s) => Some(s),
            _ => None,
        };
        let kind = text("type").unwrap_or_default();
        let msg = match kind.as_str() {
            "tokens" => {
                let why = text("why").as_deref().and_then(Why::parse).ok_or("message with a bad reason ignored")?;
                let tokens = TokenSet::from_fields(get).map_err(|_| "message with invalid tokens ignored")?;
                Message::Tokens { tokens, why }
            }
            "logout" => {
                let reason = text("reason")
                    .as_deref()
                    .and_then(LogoutReason::parse)
                    .ok_or("message with a bad reason ignored")?;
                Message::Logout { reason }
            }
            "refreshing" => Message::Refreshing,
            "refresh_failed" => Message::RefreshFailed,
            "hello" => Message::Hello,
            _ => return Err("message of an unknown type ignored"),
        };
        Ok((from, msg))
    }
}

/// The BroadcastChannel (and fallback storage key) name for a namespace.
pub fn channel_name(ns: &str) -> String {
    let mut n = String::from("wasm-session:");
    n.push_str(ns);
    n
}

/// The localStorage key carrying messages where BroadcastChannel is missing (never the
/// session's own storage key).
pub fn bus_key(ns: &str) -> String {
    channel_name(ns) + ":bus"
}

/// The Web Locks name guarding refreshes in a namespace.
pub fn lock_name(ns: &str) -> String {
    channel_name(ns) + ":refresh"
}

#[cfg(target_arch = "wasm32")]
pub use browser::{acquire, Channel, LockGuard};

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::{bus_key, channel_name, Envelope, Message};
    use crate::callback::{self, Callback};
    use crate::flight::{settle, Map};
    use crate::timers::clamp_delay;
    use crate::value::to_object;
    use js_sys::Function;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    // Web Locks are not in stable web-sys; the steps that need no decision are plain JS.
    // `lock` resolves to the lock's release function, or `null` if it was never granted;
    // it returns `null` at once where the browser has no Web Locks.
    #[wasm_bindgen(module = "/src/browser.js")]
    extern "C" {
        fn ws_lock(name: &str, timeout_ms: u32) -> JsValue;
    }

    /// A held Web Lock; dropping it releases the lock.
    pub struct LockGuard {
        release: Function,
    }

    impl Drop for LockGuard {
        fn drop(&mut self) {
            let _ = self.release.call0(&JsValue::UNDEFINED);
        }
    }

    /// Takes the refresh lock, waiting at most `timeout_ms` for a holder to finish. After
    /// that the lock is stolen: a holder frozen or stuck mid-refresh must not stall the rest.
    /// `None` when the browser has no Web Locks (the caller carries on without).
    pub fn acquire(name: &str, timeout_ms: f64) -> Map<Option<LockGuard>> {
        settle(ws_lock(name, clamp_delay(timeout_ms))).map(|r| Some(LockGuard { release: r.ok()?.dyn_into().ok()? }))
    }

    // The transport is plain JS (no decisions in it): a BroadcastChannel, else `storage`
    // events on a localStorage key. Every call is wrapped so that nothing throws into Rust.
    #[wasm_bindgen(module = "/src/browser.js")]
    extern "C" {
        type Bus;
        fn ws_bus(name: &str, key: &str, receive: &JsValue) -> Option<Bus>;
        #[wasm_bindgen(method, getter)]
        fn storage(this: &Bus) -> bool;
        #[wasm_bindgen(method)]
        fn post(this: &Bus, message: &JsValue);
        #[wasm_bindgen(method)]
        fn close(this: &Bus);
    }

    /// The cross-tab transport for one namespace.
    pub struct Channel {
        bus: Bus,
        _receive: Callback,
    }

    impl Channel {
        /// Opens the channel; `on_message` gets every raw message from other tabs. Uses
        /// BroadcastChannel, else `storage` events on localStorage, else `None`.
        pub fn open(ns: &str, on_message: impl FnMut(JsValue) + 'static) -> Option<Channel> {
            let receive = callback::repeated(on_message);
            let bus = ws_bus(&channel_name(ns), &bus_key(ns), receive.as_ref())?;
            Some(Channel { bus, _receive: receive })
        }

        /// True when messages go through localStorage (no BroadcastChannel).
        pub fn via_storage(&self) -> bool {
            self.bus.storage()
        }

        /// Sends a message to the other tabs. Failures are dropped: tabs also re-check
        /// their deadlines on their own.
        pub fn post(&self, envelope: &Envelope) {
            // Tokens never pass through storage, not even for a moment: in `local` mode the
            // other tabs read them from the stored session instead.
            if self.via_storage() && matches!(envelope.msg, Message::Tokens { .. }) {
                return;
            }
            self.bus.post(&to_object(&envelope.encode()));
        }
    }

    impl Drop for Channel {
        fn drop(&mut self) {
            self.bus.close();
        }
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tokens() -> TokenSet {
        crate::token::sample(1.0)
    }

    type Record = HashMap<&'static str, Value>;

    fn record(env: &Envelope) -> Record {
        env.encode().into_iter().collect()
    }

    fn decode(r: &Record, ns: &str, me: &str) -> Result<Message, &'static str> {
        Envelope::decode(&|k| r.get(k).cloned().unwrap_or(Value::Missing), ns, me).map(|(_, m)| m)
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
            let r = record(&Envelope::new("app", "tab-a", msg.clone()));
            assert_eq!(decode(&r, "app", "tab-b").unwrap(), msg);
            let from = Envelope::decode(&|k| r.get(k).cloned().unwrap_or(Value::Missing), "app", "tab-b").unwrap().0;
            assert_eq!(from, "tab-a");
        }
    }

    #[test]
    fn foreign_and_malformed_messages_are_refused() {
        let hello = record(&Envelope::new("app", "a", Message::Hello));
        assert!(decode(&hello, "other", "b").is_err(), "other namespace");
        assert!(decode(&hello, "app", "a").is_err(), "own echo");
        let with = |k: &'static str, v: Value| {
            let mut r = hello.clone();
            r.insert(k, v);
            r
        };
        assert!(decode(&with("v", Value::Num(2.0)), "app", "b").is_err(), "other version");
        assert!(decode(&with("v", Value::Str("1".into())), "app", "b").is_err(), "version as string");
        assert!(decode(&with("from", Value::Str("x".repeat(65))), "app", "b").is_err(), "oversized sender");
        assert!(decode(&with("from", Value::Num(3.0)), "app", "b").is_err(), "sender not a string");
        assert!(decode(&with("type", Value::Str("nuke".into())), "app", "b").is_err(), "unknown type");
        assert!(decode(&with("type", Value::Missing), "app", "b").is_err(), "no type");
        let logout = record(&Envelope::new("app", "a", Message::Logout { reason: LogoutReason::User }));
        let mut bad = logout.clone();
        bad.insert("reason", Value::Str("because".into()));
        assert!(decode(&bad, "app", "b").is_err(), "unknown reason");
        let mut bad_tokens = tokens();
        bad_tokens.access_token = "has space".into();
        let t = record(&Envelope::new("app", "a", Message::Tokens { tokens: bad_tokens, why: Why::Login }));
        assert!(decode(&t, "app", "b").is_err(), "invalid tokens");
        let mut huge = tokens();
        huge.access_token = "x".repeat(20_000);
        let t = record(&Envelope::new("app", "a", Message::Tokens { tokens: huge, why: Why::Login }));
        assert!(decode(&t, "app", "b").is_err(), "oversized token");
        assert!(decode(&HashMap::new(), "app", "b").is_err(), "empty");
    }

    #[test]
    fn names_are_per_namespace() {
        assert_eq!(channel_name("app"), "wasm-session:app");
        assert_eq!(lock_name("app"), "wasm-session:app:refresh");
        assert_ne!(bus_key("app"), crate::store::key("app"), "messages must not clobber the stored session");
    }
}
