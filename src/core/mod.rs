//! The session core: every decision, no I/O. No wasm-bindgen, no web-sys, no async and no
//! clock reads: time and outside values come in as inputs, and what to do goes out as
//! effects ([`machine::Machine::handle`]). Everything here runs in `cargo test` on the host
//! and in the deterministic multi-tab simulation (`tests/sim/`).

pub mod config;
pub mod error;
pub mod events;
pub mod machine;
pub mod oidc;
pub mod policy;
pub mod protocol;
pub mod store;
pub mod token;

use serde::{Deserialize, Deserializer};

/// One field of an outside object (config, token response) as serde read it: absent (or
/// `null`), of the expected type, or of another type.
///
/// serde's own type errors do not say which field was wrong; reading each field into a
/// `Field` lets the validation that follows name it ("config.tokenUrl must be a string").
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Field<T> {
    /// Not there, `undefined` or `null`.
    #[default]
    Absent,
    /// There, with the expected type.
    Valid(T),
    /// There, with another type.
    Invalid,
}

impl<T> Field<T> {
    /// The value if it is there and valid.
    pub fn valid(self) -> Option<T> {
        match self {
            Field::Valid(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A wrong type is not an error here but a value for the validation to name. Each
        // field has a deserializer of its own (a JS value, a serde_json::Value), so
        // dropping its error leaves the others intact.
        Ok(match Option::<T>::deserialize(d) {
            Ok(Some(v)) => Field::Valid(v),
            Ok(None) => Field::Absent,
            Err(_) => Field::Invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        a: Field<String>,
        b: Field<f64>,
        c: Field<Vec<String>>,
    }

    #[test]
    fn fields_are_absent_valid_or_invalid() {
        let s: Sample = serde_json::from_value(serde_json::json!({ "a": 5, "b": 1.5, "c": null })).unwrap();
        assert_eq!((s.a, s.b, s.c), (Field::Invalid, Field::Valid(1.5), Field::Absent));
        let s: Sample = serde_json::from_value(serde_json::json!({ "c": ["x", 2] })).unwrap();
        assert_eq!((s.a, s.c), (Field::Absent, Field::Invalid));
    }
}
