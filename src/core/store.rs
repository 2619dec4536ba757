//! The stored session: one versioned record per namespace in `sessionStorage` or
//! `localStorage`, written and read with serde, and what a record read back means.

use serde::{Deserialize, Serialize};

use super::protocol::Stamp;
use super::token::TokenSet;

/// Version of the stored format. Version 2: nested `tokens` and the stamp.
pub const STORE_VERSION: u32 = 2;

/// The storage key for a namespace.
pub fn key(ns: &str) -> String {
    format!("wasm-session:{ns}")
}

/// The record written under [`key`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`STORE_VERSION`].
    pub v: u32,
    /// The namespace, checked on load.
    pub ns: String,
    /// The order of this token set among all the session's sets.
    pub stamp: Stamp,
    /// The tokens.
    pub tokens: TokenSet,
    /// The set came from a refresh forced by a 401.
    #[serde(default, rename = "after401")]
    pub after_401: bool,
}

/// A record as read back from storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Stored {
    /// Nothing stored (or memory mode).
    Empty,
    /// A valid record of this namespace.
    Valid(Record),
    /// A record of another format version (an older or newer release of the app, open in
    /// another tab): left alone, not used.
    OtherVersion,
    /// Garbage, another namespace's data or invalid tokens: removed.
    Invalid(&'static str),
}

impl Stored {
    /// What a stored value means: `version` is its `v` field if it has a numeric one,
    /// `record` the value read as a [`Record`] (`None` if it does not have that shape).
    pub fn classify(version: Option<f64>, record: Option<Record>, ns: &str) -> Stored {
        match (version, record) {
            (Some(v), _) if v != f64::from(STORE_VERSION) => Stored::OtherVersion,
            (_, None) => Stored::Invalid("stored session is not a session record; discarded"),
            (_, Some(r)) if r.ns != ns => Stored::Invalid("stored session belongs to another namespace; discarded"),
            (_, Some(r)) if r.tokens.validate().is_err() => Stored::Invalid("stored session is invalid; discarded"),
            (_, Some(r)) => Stored::Valid(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::sample;
    use serde_json::{json, Value};

    fn read(v: Value, ns: &str) -> Stored {
        let version = v.get("v").and_then(Value::as_f64);
        Stored::classify(version, serde_json::from_value(v).ok(), ns)
    }

    fn record() -> Record {
        Record {
            v: STORE_VERSION,
            ns: "app".into(),
            stamp: Stamp { seq: 2, origin: "t".into() },
            tokens: sample(1.0),
            after_401: false,
        }
    }

    #[test]
    fn round_trips() {
        let r = record();
        assert_eq!(read(serde_json::to_value(&r).unwrap(), "app"), Stored::Valid(r));
    }

    #[test]
    fn other_versions_are_left_alone_and_garbage_is_invalid() {
        let good = serde_json::to_value(record()).unwrap();
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            g
        };
        assert_eq!(read(with("v", json!(3)), "app"), Stored::OtherVersion, "a newer release's record");
        assert_eq!(read(with("v", json!(1)), "app"), Stored::OtherVersion, "an older release's record");
        assert!(matches!(read(good.clone(), "other"), Stored::Invalid(_)), "other namespace");
        assert!(matches!(read(with("tokens", json!({ "access_token": 5 })), "app"), Stored::Invalid(_)));
        assert!(matches!(
            read(with("tokens", json!({ "access_token": "a b", "issued_at": 1, "expires_at": 2 })), "app"),
            Stored::Invalid(_)
        ));
        for garbage in [json!({}), json!([1, 2]), json!(null), json!("x")] {
            assert!(matches!(read(garbage.clone(), "app"), Stored::Invalid(_)), "{garbage}");
        }
    }

    #[test]
    fn keys_are_per_namespace() {
        assert_eq!(key("app"), "wasm-session:app");
    }
}
