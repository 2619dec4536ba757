//! Without the `dpop` feature: the same interface as `dpop.rs`, for a key that cannot exist.
//! The config refuses `dpop: true` in this build, so a session never has [`Keys`]; both types
//! are empty enums, and every DPoP path in the driver is a `None` branch that is never taken.

use crate::core::error::Error;

use super::sink::Kept;

/// No key: this build has no DPoP.
#[derive(Clone)]
pub enum KeyPair {}

/// No keys: this build has no DPoP (so an `Option<Keys>` is always `None`).
#[derive(Clone)]
pub enum Keys {}

impl KeyPair {
    /// A key carried by a message: never one here.
    pub fn from_js(_: &wasm_bindgen::JsValue) -> Option<KeyPair> {
        None
    }

    /// Never called: there is no key to send.
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        match *self {}
    }
}

impl Keys {
    /// Never called: there are no keys.
    pub fn current(&self) -> Option<KeyPair> {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn signing_in(&self) -> Option<KeyPair> {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn stored(&self) -> bool {
        match *self {}
    }

    /// Never called: there are no keys.
    pub async fn new_sign_in(&self, _: bool) -> Result<String, Error> {
        match *self {}
    }

    /// Never called: there are no keys.
    pub async fn resume_sign_in(&self) -> Result<(), Error> {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn arrived(&self, pair: KeyPair) {
        match pair {}
    }

    /// Never called: there are no keys.
    pub fn adopt(&self, _: bool) {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn forget(&self, _: bool) {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn load(&self, _: Kept) {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn note_nonce(&self, _: &Kept, _: &str, _: Option<String>) {
        match *self {}
    }

    /// Never called: there are no keys.
    pub fn server_date(&self, _: f64, _: Option<f64>) {
        match *self {}
    }

    /// Never called: there are no keys.
    pub async fn header(
        &self,
        _: &Kept,
        _: Option<KeyPair>,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<Option<String>, Error> {
        match *self {}
    }
}

/// The session's keys: none in this build.
pub fn for_session(_: &str, _: bool) -> Option<Keys> {
    None
}
