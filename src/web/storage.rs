//! Where the session is kept between page loads: nowhere (`memory`), `sessionStorage` or
//! `localStorage`. Records are written and read with serde; what a record read back means
//! is decided by [`Stored::classify`]. In `local` mode, another tab's write is a `storage`
//! event, handed to the session as [`Input::StorageChanged`].

use wasm_bindgen::JsValue;

use crate::core::config::StorageMode;
use crate::core::error::Error;
use crate::core::machine::Input;
use crate::core::store::{self, Record, Stored};

use super::callbacks::Listener;
use super::sink::Sink;

/// The storage backend of one namespace.
#[derive(Clone)]
pub struct Store {
    storage: Option<web_sys::Storage>,
    mode: StorageMode,
    key: String,
    ns: String,
}

fn web_storage(local: bool) -> Option<web_sys::Storage> {
    let window = web_sys::window()?;
    // Reading the property throws where storage is blocked (cookies disabled, sandboxes).
    let storage = if local { window.local_storage() } else { window.session_storage() };
    storage.ok().flatten()
}

impl Store {
    /// Opens the backend for `mode`. Storage that is missing, blocked, or refuses writes
    /// (Safari private mode, a full quota) is an error; the caller falls back to memory.
    pub fn open(mode: StorageMode, ns: &str) -> Result<Store, Error> {
        let storage = match mode {
            StorageMode::Memory => None,
            StorageMode::Session | StorageMode::Local => {
                let s = web_storage(mode == StorageMode::Local)
                    .ok_or(Error::Storage("this browser blocks web storage; using memory"))?;
                let probe = store::key(ns) + ":probe";
                s.set_item(&probe, "1").map_err(|_| Error::Storage("web storage is full or blocked; using memory"))?;
                let _ = s.remove_item(&probe);
                Some(s)
            }
        };
        Ok(Store { storage, mode, key: store::key(ns), ns: ns.to_string() })
    }

    /// A store that keeps nothing.
    pub fn memory(ns: &str) -> Store {
        Store { storage: None, mode: StorageMode::Memory, key: store::key(ns), ns: ns.to_string() }
    }

    /// The mode in use.
    pub fn mode(&self) -> StorageMode {
        self.mode
    }

    /// The storage key of the session.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored session.
    pub fn read(&self) -> Stored {
        let Some(s) = &self.storage else { return Stored::Empty };
        let Some(text) = s.get_item(&self.key).ok().flatten() else { return Stored::Empty };
        let Ok(value) = js_sys::JSON::parse(&text) else {
            return Stored::Invalid("stored session is not JSON; discarded");
        };
        let version = js_sys::Reflect::get(&value, &"v".into()).ok().and_then(|v| v.as_f64());
        let record = value.is_object().then(|| serde_wasm_bindgen::from_value::<Record>(value).ok()).flatten();
        Stored::classify(version, record, &self.ns)
    }

    /// Writes the session (nothing in memory mode).
    pub fn write(&self, record: &Record) -> Result<(), Error> {
        let Some(s) = &self.storage else { return Ok(()) };
        let text = serde_wasm_bindgen::to_value(record)
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

    /// Watches for other tabs' writes of the session (`storage` events fire in every tab
    /// but the writer): each is read and handed to `sink`.
    pub fn watch(&self, sink: Sink) -> Option<Listener> {
        let window = web_sys::window()?;
        let store = self.clone();
        Listener::new(&window, "storage", move |e: JsValue| {
            let key = js_sys::Reflect::get(&e, &"key".into()).ok().and_then(|k| k.as_string());
            if key.as_deref() == Some(store.key()) {
                sink.send(Input::StorageChanged(store.read()));
            }
        })
    }
}
