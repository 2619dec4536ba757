//! Where tokens live between page loads: nowhere (`memory`), `sessionStorage` or
//! `localStorage`, behind one [`Store`]. The stored format is versioned and validated on load.

use crate::prelude::*;

use crate::token::TokenSet;
use crate::value::Value;

/// Version of the stored format; other versions are discarded on load.
pub const STORE_VERSION: f64 = 1.0;

/// The flat record written under the storage key: version, namespace, then the tokens.
pub fn encode(ns: &str, tokens: &TokenSet) -> Vec<(&'static str, Value)> {
    let mut out = vec![("v", Value::Num(STORE_VERSION)), ("ns", Value::Str(ns.to_string()))];
    tokens.to_fields(&mut out);
    out
}

/// Reads a stored record: right version, this namespace, valid tokens; else why not.
pub fn decode(get: &dyn Fn(&str) -> Value, ns: &str) -> Result<TokenSet, &'static str> {
    if !matches!(get("v"), Value::Num(v) if v == STORE_VERSION) {
        return Err("stored session has another format; discarded");
    }
    if !matches!(get("ns"), Value::Str(s) if s == ns) {
        return Err("stored session belongs to another namespace; discarded");
    }
    TokenSet::from_fields(get).map_err(|_| "stored session is invalid; discarded")
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
    use super::{decode, encode, key};
    use crate::config::StorageMode;
    use crate::error::Error;
    use crate::prelude::*;
    use crate::token::TokenSet;
    use crate::value::{to_object, Value};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    // Opening is one call: the storage object, or why not. Some browsers expose storage that
    // throws on use (Safari private mode, blocked cookies), so a write is probed.
    #[wasm_bindgen(module = "/src/browser.js")]
    extern "C" {
        /// The storage, `false` if there is none, `true` if a write to it fails.
        fn ws_storage(local: bool, probe: &str) -> JsValue;
    }

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
                    let s = ws_storage(mode == StorageMode::Local, &(key(ns) + ":probe"));
                    match s.as_bool() {
                        None => Some(s.unchecked_into()),
                        Some(false) => return Err(Error::Storage("this browser blocks web storage; using memory")),
                        Some(true) => return Err(Error::Storage("web storage is full or blocked; using memory")),
                    }
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
                .map_err(|_| "stored session is not JSON; discarded")
                .and_then(|v| decode(&|k| Value::field(&v, k), &self.ns));
            parsed.map(Some).map_err(|why| {
                self.clear();
                Error::Storage(why)
            })
        }

        /// Writes the session (nothing in memory mode).
        pub fn save(&self, tokens: &TokenSet) -> Result<(), Error> {
            let Some(s) = &self.storage else { return Ok(()) };
            let text = js_sys::JSON::stringify(&to_object(&encode(&self.ns, tokens)))
                .ok()
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

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tokens() -> TokenSet {
        crate::token::sample(1.0)
    }

    fn decode_map(map: &HashMap<&str, Value>, ns: &str) -> Result<TokenSet, &'static str> {
        decode(&|k| map.get(k).cloned().unwrap_or(Value::Missing), ns)
    }

    #[test]
    fn round_trips() {
        let map: HashMap<&str, Value> = encode("app", &tokens()).into_iter().collect();
        assert_eq!(decode_map(&map, "app").unwrap(), tokens());
    }

    #[test]
    fn other_versions_namespaces_and_garbage_are_refused() {
        let good: HashMap<&str, Value> = encode("app", &tokens()).into_iter().collect();
        assert!(decode_map(&good, "other").is_err(), "other namespace");
        let mut v2 = good.clone();
        v2.insert("v", Value::Num(2.0));
        assert!(decode_map(&v2, "app").is_err(), "other version");
        let mut bad = good.clone();
        bad.insert("expires_at", Value::Num(-1.0));
        assert!(decode_map(&bad, "app").is_err(), "invalid expiry");
        let mut bad = good;
        bad.insert("access_token", Value::Num(5.0));
        assert!(decode_map(&bad, "app").is_err(), "wrong type");
        assert!(decode_map(&HashMap::new(), "app").is_err(), "empty");
    }

    #[test]
    fn keys_are_per_namespace() {
        assert_eq!(key("app"), "wasm-session:app");
        assert_ne!(key("a"), key("b"));
    }
}
