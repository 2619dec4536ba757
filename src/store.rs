//! Where tokens live between page loads: nowhere (`memory`), `sessionStorage` or
//! `localStorage`, behind one [`Store`]. The stored format is versioned and validated on load.

use serde::{Deserialize, Serialize};

use crate::token::TokenSet;

/// Version of the stored format; other versions are discarded on load.
pub const STORE_VERSION: u32 = 1;

/// What is written under the storage key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Format version ([`STORE_VERSION`]).
    pub v: u32,
    /// The namespace that wrote it.
    pub ns: String,
    /// The session's tokens.
    pub tokens: TokenSet,
}

impl Stored {
    /// Checks version, namespace and the tokens themselves.
    pub fn check(self, ns: &str) -> Result<TokenSet, &'static str> {
        if self.v != STORE_VERSION {
            return Err("stored session has another format version; discarded");
        }
        if self.ns != ns {
            return Err("stored session belongs to another namespace; discarded");
        }
        self.tokens.validate().map_err(|_| "stored session is invalid; discarded")?;
        Ok(self.tokens)
    }
}

/// The storage key for a namespace.
pub fn key(ns: &str) -> String {
    let mut k = String::from("wasm-session:");
    k.push_str(ns);
    k
}

#[cfg(target_arch = "wasm32")]
pub use browser::Store;

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::{key, Stored, STORE_VERSION};
    use crate::config::StorageMode;
    use crate::error::Error;
    use crate::token::TokenSet;
    use wasm_bindgen::JsValue;

    /// A storage backend for one namespace.
    pub struct Store {
        storage: Option<web_sys::Storage>,
        mode: StorageMode,
        key: String,
        ns: String,
    }

    impl Store {
        /// Opens the backend for `mode`. Storage that is missing or throws (Safari private
        /// mode, disabled cookies) gives an error; the caller falls back to memory.
        pub fn open(mode: StorageMode, ns: &str) -> Result<Store, Error> {
            let storage = match mode {
                StorageMode::Memory => None,
                StorageMode::Session | StorageMode::Local => {
                    let window = web_sys::window().ok_or(Error::Storage("no window"))?;
                    let s = if mode == StorageMode::Local { window.local_storage() } else { window.session_storage() };
                    let s = s.ok().flatten().ok_or(Error::Storage("this browser blocks web storage; using memory"))?;
                    // Probe a write: some browsers expose storage that throws on use.
                    let probe = key(ns) + ":probe";
                    s.set_item(&probe, "1").map_err(|_| Error::Storage("web storage is full or blocked; using memory"))?;
                    let _ = s.remove_item(&probe);
                    Some(s)
                }
            };
            Ok(Store { storage, mode, key: key(ns), ns: ns.to_string() })
        }

        /// A store that keeps nothing.
        pub fn memory(ns: &str) -> Store {
            Store { storage: None, mode: StorageMode::Memory, key: key(ns), ns: ns.to_string() }
        }

        /// The mode actually in use.
        pub fn mode(&self) -> StorageMode {
            self.mode
        }

        /// The stored session. Garbage, other versions and other namespaces' data are
        /// removed and reported as an error; nothing panics.
        pub fn load(&self) -> Result<Option<TokenSet>, Error> {
            let Some(s) = &self.storage else { return Ok(None) };
            let Some(text) = s.get_item(&self.key).ok().flatten() else { return Ok(None) };
            let parsed = js_sys::JSON::parse(&text)
                .ok()
                .and_then(|v| serde_wasm_bindgen::from_value::<Stored>(v).ok())
                .ok_or("stored session is not valid JSON of this library; discarded")
                .and_then(|stored| stored.check(&self.ns));
            parsed.map(Some).map_err(|why| {
                self.clear();
                Error::Storage(why)
            })
        }

        /// Writes the session (nothing in memory mode).
        pub fn save(&self, tokens: &TokenSet) -> Result<(), Error> {
            let Some(s) = &self.storage else { return Ok(()) };
            let stored = Stored { v: STORE_VERSION, ns: self.ns.clone(), tokens: tokens.clone() };
            let text = serde_wasm_bindgen::to_value(&stored)
                .ok()
                .and_then(|v| js_sys::JSON::stringify(&v).ok())
                .and_then(|t| t.as_string())
                .ok_or(Error::Storage("could not serialize the session"))?;
            s.set_item(&self.key, &text).map_err(|_: JsValue| Error::Storage("web storage is full or blocked"))
        }

        /// Removes the session from storage.
        pub fn clear(&self) {
            if let Some(s) = &self.storage {
                let _ = s.remove_item(&self.key);
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
    fn round_trips_through_json() {
        let s = Stored { v: STORE_VERSION, ns: "app".into(), tokens: tokens() };
        let text = serde_json::to_string(&s).unwrap();
        let back: Stored = serde_json::from_str(&text).unwrap();
        assert_eq!(back.check("app").unwrap(), tokens());
    }

    #[test]
    fn other_versions_namespaces_and_garbage_are_refused() {
        assert!(Stored { v: 2, ns: "app".into(), tokens: tokens() }.check("app").is_err());
        assert!(Stored { v: 1, ns: "other".into(), tokens: tokens() }.check("app").is_err());
        let mut bad = tokens();
        bad.expires_at = -1.0;
        assert!(Stored { v: 1, ns: "app".into(), tokens: bad }.check("app").is_err());
        for garbage in ["{}", "[]", "null", r#"{"v":1,"ns":"app","tokens":{"access_token":5}}"#] {
            assert!(serde_json::from_str::<Stored>(garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn keys_are_per_namespace() {
        assert_eq!(key("app"), "wasm-session:app");
        assert_ne!(key("a"), key("b"));
    }
}
