//! The cross-tab protocol: messages between the tabs of one origin and namespace, as a flat,
//! versioned wire record ([`Wire`], serde) and as validated [`Message`]s.
//!
//! Token sets are ordered by a [`Stamp`] (a counter and the tab that minted them), never by
//! the wall clock, so a clock step cannot make a tab keep a spent refresh token.

use serde::{Deserialize, Serialize};

use super::events::LogoutReason;
use super::token::TokenSet;

/// Protocol version; messages with another version are ignored. Version 2: nested `tokens`,
/// stamps and the `signed_out` answer. A new message type keeps the version when tabs that
/// do not know it lose nothing by ignoring it (`dpop_nonce`: they fetch the nonce once more).
pub const PROTOCOL_VERSION: u32 = 2;

/// Longest tab id accepted from another tab.
pub const MAX_TAB_ID: usize = 64;

/// Orders token sets: a higher `seq` is newer; two sets minted at the same `seq` (two tabs
/// logging in at once) are ordered by the minting tab's id, so every tab picks the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    /// The counter: one more than the highest the minting tab knew.
    pub seq: u64,
    /// The tab that minted the set.
    pub origin: String,
}

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
    /// Tokens, to adopt if their stamp is newer than one's own.
    Tokens {
        /// Their order.
        stamp: Stamp,
        /// The set.
        tokens: TokenSet,
        /// Why they were sent.
        why: Why,
        /// They came from a refresh forced by a 401: another 401 on them is final.
        after_401: bool,
    },
    /// The session ended in the sending tab: ends every session at or below `seq`.
    Logout {
        /// The counter of the logout.
        seq: u64,
        /// Why it ended there.
        reason: LogoutReason,
    },
    /// The sender wants to refresh and has no lock to decide it (no Web Locks, or its wait
    /// for the lock ran out): of the tabs claiming at once, the lowest tab id goes ahead.
    Claim,
    /// The sender is calling the token endpoint now; it gives up after `timeout_ms`.
    Refreshing {
        /// The sender's request timeout.
        timeout_ms: f64,
    },
    /// The sender's refresh failed without ending the session: back off with it.
    RefreshFailed,
    /// A new tab asks the open tabs for the current session.
    Hello,
    /// The user was active in the sending tab `age_ms` ago (sent at most every few seconds).
    Activity {
        /// How long ago.
        age_ms: f64,
    },
    /// The answer to `hello` from a tab without a session, with its counter.
    SignedOut {
        /// The counter of its last state.
        seq: u64,
    },
    /// DPoP: a server's latest nonce (its `DPoP-Nonce` header) for proofs to `origin`.
    Nonce {
        /// The server's origin (`https://host:port`).
        origin: String,
        /// The nonce.
        nonce: String,
    },
}

/// Longest DPoP nonce or origin accepted from another tab.
pub const MAX_NONCE: usize = 512;

/// A DPoP nonce as RFC 9449 §8 allows it: 1 or more of `%x21 / %x23-5B / %x5D-7E`.
pub fn valid_nonce(nonce: &str) -> bool {
    let ok = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
    !nonce.is_empty() && nonce.len() <= MAX_NONCE && nonce.bytes().all(ok)
}

/// A received message and its sender.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The sender's tab id.
    pub from: String,
    /// The message.
    pub msg: Message,
    /// DPoP: the sender's key came with it (beside the record, by structured clone; the
    /// driver holds it, the machine decides whether to adopt it).
    pub with_key: bool,
}

/// The wire record: `{v, ns, from, type, ...}`. Every field is optional to serde, so that a
/// record of the right shape but the wrong content reaches [`Wire::open`] and is refused
/// there; a record of the wrong shape fails to deserialize and is ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct Wire {
    pub v: u32,
    pub ns: String,
    pub from: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenSet>,
    #[serde(rename = "after401", skip_serializing_if = "is_false")]
    pub after_401: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(rename = "timeoutMs", skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<f64>,
    #[serde(rename = "ageMs", skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<f64>,
    #[serde(rename = "nonceOrigin", skip_serializing_if = "Option::is_none")]
    pub nonce_origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Wire {
    /// The record for `msg` from tab `from` in namespace `ns`.
    pub fn seal(ns: &str, from: &str, msg: &Message) -> Wire {
        let mut w = Wire { v: PROTOCOL_VERSION, ns: ns.into(), from: from.into(), ..Wire::default() };
        w.kind = match msg {
            Message::Tokens { stamp, tokens, why, after_401 } => {
                w.seq = stamp.seq;
                w.origin = Some(stamp.origin.clone());
                w.why = Some(why.as_str().into());
                w.tokens = Some(tokens.clone());
                w.after_401 = *after_401;
                "tokens"
            }
            Message::Logout { seq, reason } => {
                w.seq = *seq;
                w.reason = Some(reason.as_str().into());
                "logout"
            }
            Message::Refreshing { timeout_ms } => {
                w.timeout_ms = Some(*timeout_ms);
                "refreshing"
            }
            Message::Claim => "claim",
            Message::RefreshFailed => "refresh_failed",
            Message::Hello => "hello",
            Message::Activity { age_ms } => {
                w.age_ms = Some(*age_ms);
                "activity"
            }
            Message::SignedOut { seq } => {
                w.seq = *seq;
                "signed_out"
            }
            Message::Nonce { origin, nonce } => {
                w.nonce_origin = Some(origin.clone());
                w.nonce = Some(nonce.clone());
                "dpop_nonce"
            }
        }
        .into();
        w
    }

    /// Opens a received record. Accepts it only if it is this protocol version, this
    /// namespace, from another tab, of a known type, with valid content; anything else is
    /// refused and changes nothing.
    pub fn open(self, ns: &str, me: &str) -> Result<Envelope, &'static str> {
        if self.v != PROTOCOL_VERSION {
            return Err("message from another protocol version ignored");
        }
        if self.ns != ns {
            return Err("message for another namespace ignored");
        }
        if self.from.is_empty() || self.from.len() > MAX_TAB_ID || self.from == me {
            return Err("message with a bad sender ignored");
        }
        let msg = match self.kind.as_str() {
            "tokens" => {
                let why = self.why.as_deref().and_then(Why::parse).ok_or("message with a bad reason ignored")?;
                let origin = self.origin.filter(|o| !o.is_empty() && o.len() <= MAX_TAB_ID).ok_or("bad origin")?;
                let tokens =
                    self.tokens.filter(|t| t.validate().is_ok()).ok_or("message with invalid tokens ignored")?;
                Message::Tokens { stamp: Stamp { seq: self.seq, origin }, tokens, why, after_401: self.after_401 }
            }
            "logout" => {
                let reason = self.reason.as_deref().and_then(LogoutReason::parse).ok_or("bad reason")?;
                Message::Logout { seq: self.seq, reason }
            }
            "refreshing" => {
                let timeout_ms = self.timeout_ms.filter(|t| t.is_finite() && *t >= 0.0 && *t <= 600_000.0);
                Message::Refreshing { timeout_ms: timeout_ms.ok_or("bad timeout")? }
            }
            "claim" => Message::Claim,
            "refresh_failed" => Message::RefreshFailed,
            "hello" => Message::Hello,
            "activity" => {
                let age_ms = self.age_ms.filter(|a| a.is_finite() && (0.0..=86_400_000.0).contains(a));
                Message::Activity { age_ms: age_ms.ok_or("bad age")? }
            }
            "signed_out" => Message::SignedOut { seq: self.seq },
            "dpop_nonce" => {
                let origin = self.nonce_origin.filter(|o| o.starts_with("http") && o.len() <= MAX_NONCE);
                let nonce = self.nonce.filter(|n| valid_nonce(n)).ok_or("bad nonce")?;
                Message::Nonce { origin: origin.ok_or("bad nonce origin")?, nonce }
            }
            _ => return Err("message of an unknown type ignored"),
        };
        Ok(Envelope { from: self.from, msg, with_key: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::sample;
    use serde_json::json;

    fn through_json(w: &Wire) -> Wire {
        serde_json::from_value(serde_json::to_value(w).unwrap()).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        for msg in [
            Message::Tokens {
                stamp: Stamp { seq: 3, origin: "a".into() },
                tokens: sample(1.0),
                why: Why::Refresh,
                after_401: true,
            },
            Message::Logout { seq: 4, reason: LogoutReason::User },
            Message::Claim,
            Message::Refreshing { timeout_ms: 10_000.0 },
            Message::RefreshFailed,
            Message::Hello,
            Message::Activity { age_ms: 1_500.0 },
            Message::SignedOut { seq: 9 },
            Message::Nonce { origin: "https://as.example.com".into(), nonce: "n-1".into() },
        ] {
            let env = through_json(&Wire::seal("app", "tab-a", &msg)).open("app", "tab-b").unwrap();
            assert_eq!(env, Envelope { from: "tab-a".into(), msg, with_key: false });
        }
    }

    #[test]
    fn foreign_and_malformed_messages_are_refused() {
        let hello = Wire::seal("app", "a", &Message::Hello);
        assert!(hello.clone().open("other", "b").is_err(), "other namespace");
        assert!(hello.clone().open("app", "a").is_err(), "own echo");
        let with = |f: &dyn Fn(&mut Wire)| {
            let mut w = hello.clone();
            f(&mut w);
            w.open("app", "b")
        };
        assert!(with(&|w| w.v = 1).is_err(), "older version");
        assert!(with(&|w| w.v = 3).is_err(), "newer version");
        assert!(with(&|w| w.from = "x".repeat(65)).is_err(), "oversized sender");
        assert!(with(&|w| w.kind = "nuke".into()).is_err(), "unknown type");
        assert!(with(&|w| {
            w.kind = "logout".into();
            w.reason = Some("because".into())
        })
        .is_err());
        let mut bad = sample(1.0);
        bad.access_token = "has space".into();
        let t = Message::Tokens {
            stamp: Stamp { seq: 1, origin: "a".into() },
            tokens: bad,
            why: Why::Login,
            after_401: false,
        };
        assert!(Wire::seal("app", "a", &t).open("app", "b").is_err(), "invalid tokens");
        // Wrong shapes do not even deserialize; right shapes with nothing in them are refused.
        let nonce = |n: &str| Message::Nonce { origin: "https://as.example.com".into(), nonce: n.into() };
        for bad in ["", "has space", "quo\"te", &"n".repeat(513)] {
            assert!(Wire::seal("app", "a", &nonce(bad)).open("app", "b").is_err(), "nonce {bad:?}");
        }
        for garbage in [json!(42), json!("logout"), json!(null), json!({ "v": "2" }), json!({ "seq": -1 })] {
            assert!(serde_json::from_value::<Wire>(garbage.clone()).is_err(), "{garbage}");
        }
        for empty in [json!({}), json!([])] {
            assert!(serde_json::from_value::<Wire>(empty).unwrap().open("app", "b").is_err(), "empty");
        }
    }

    #[test]
    fn stamps_order_by_counter_then_tab() {
        let s = |seq, origin: &str| Stamp { seq, origin: origin.into() };
        assert!(s(2, "a") > s(1, "z"));
        assert!(s(2, "b") > s(2, "a"));
    }
}
