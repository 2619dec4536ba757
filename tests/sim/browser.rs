//! The browser's shared parts, as the tabs of one origin see them: a BroadcastChannel (in
//! order per sender, any interleaving between senders, up to [`MSG_DELAY_MAX`] late), Web
//! Locks (FIFO grants, steal, release on close), localStorage with `storage` events (and each
//! tab's sessionStorage), the cookie jar and the network's on/off state.

use std::collections::{BTreeMap, VecDeque};

use wasm_session::core::config::StorageMode;
use wasm_session::core::machine::Input;
use wasm_session::core::protocol::{Message, Wire};
use wasm_session::core::store::{Record, Stored};

use crate::invariants::Fact;
use crate::world::{Ev, World};

/// Longest delay of a message between tabs, and of a storage event.
pub const MSG_DELAY_MAX: f64 = 20.0;

pub struct Browser {
    /// localStorage's record (JSON), shared by the tabs.
    pub local: Option<String>,
    /// The cookie jar, shared by the tabs: the cookie session's family.
    pub cookie: Option<u64>,
    /// `navigator.onLine`.
    pub online: bool,
    pub locks: Locks,
    /// When the last message from one tab to another arrives: later ones come after it.
    fifo: BTreeMap<(usize, usize), f64>,
}

impl Default for Browser {
    fn default() -> Browser {
        Browser { local: None, cookie: None, online: true, locks: Locks::default(), fifo: BTreeMap::new() }
    }
}

/// The refresh lock: its holder (tab, request id) and the requests waiting, in order.
#[derive(Default)]
pub struct Locks {
    pub holder: Option<(usize, u32)>,
    waiting: VecDeque<(usize, u32)>,
}

/// What storage holds, as a tab reads it.
pub fn read_stored(json: Option<&str>, ns: &str) -> Stored {
    let Some(json) = json else { return Stored::Empty };
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => return Stored::Invalid("not JSON"),
    };
    let version = value.get("v").and_then(serde_json::Value::as_f64);
    Stored::classify(version, serde_json::from_value::<Record>(value).ok(), ns)
}

impl World {
    // ---- BroadcastChannel ---------------------------------------------------------------------

    /// Tab `t` posts `msg` to every other live tab.
    pub fn post(&mut self, t: usize, msg: Message) {
        if let Message::Logout { seq, .. } = &msg {
            self.facts.push(Fact::LogoutPosted { seq: *seq, at: self.now });
        }
        // Through the wire format and JSON, as a real message travels.
        let wire = Wire::seal(&self.setup.config.namespace, &self.tabs[t].id, &msg);
        let json = serde_json::to_string(&wire).expect("wire record serializes");
        // DPoP: the driver posts its key beside a tokens message.
        let key = self.dpop_key_of(t).filter(|_| matches!(msg, Message::Tokens { .. }));
        for u in 0..self.tabs.len() {
            if u == t || !self.tabs[u].alive {
                continue;
            }
            let back: Wire = serde_json::from_str(&json).expect("wire record parses");
            let Ok(mut env) = back.open(&self.setup.config.namespace, &self.tabs[u].id) else { continue };
            env.with_key = key.is_some();
            let delay = self.rng.range(0.0, MSG_DELAY_MAX);
            let when = (self.now + delay).max(*self.browser.fifo.get(&(t, u)).unwrap_or(&0.0));
            self.browser.fifo.insert((t, u), when);
            let now = self.now;
            match key {
                Some(k) => self.at(when - now, Ev::Keyed(u, Input::Message(env), k)),
                None => self.at(when - now, Ev::Input(u, Input::Message(env))),
            }
        }
    }

    // ---- storage --------------------------------------------------------------------------------

    pub fn save(&mut self, t: usize, record: Record) {
        let json = serde_json::to_string(&record).expect("record serializes");
        match self.setup.storage {
            StorageMode::Local => {
                self.browser.local = Some(json);
                self.storage_event(t);
            }
            StorageMode::Session => self.tabs[t].session_store = Some(json),
            StorageMode::Memory => self.facts.push(Fact::StoredInMemoryMode { tab: t }),
        }
    }

    pub fn clear(&mut self, t: usize) {
        match self.setup.storage {
            StorageMode::Local => {
                if self.browser.local.take().is_some() {
                    self.storage_event(t);
                }
            }
            _ => self.tabs[t].session_store = None,
        }
    }

    /// A `storage` event in every other live tab.
    fn storage_event(&mut self, writer: usize) {
        for u in 0..self.tabs.len() {
            if u != writer && self.tabs[u].alive {
                let stored = read_stored(self.browser.local.as_deref(), &self.setup.config.namespace);
                let d = self.rng.range(0.0, MSG_DELAY_MAX);
                self.at(d, Ev::Input(u, Input::StorageChanged(stored)));
            }
        }
    }

    /// In `local` mode, the stored session a lock grant comes with.
    pub fn stored_for_lock(&self) -> Option<Stored> {
        (self.setup.storage == StorageMode::Local)
            .then(|| read_stored(self.browser.local.as_deref(), &self.setup.config.namespace))
    }

    // ---- Web Locks ------------------------------------------------------------------------------

    fn grant(&mut self, t: usize, id: u32, stolen: bool, waited: bool) {
        self.browser.locks.holder = Some((t, id));
        let stored = self.stored_for_lock();
        let d = self.rng.range(0.0, 3.0);
        self.at(d, Ev::Input(t, Input::LockGranted { id, stolen, waited, stored }));
    }

    pub fn acquire(&mut self, t: usize, id: u32, steal: bool) {
        match self.browser.locks.holder {
            Some((h, hid)) if steal => {
                self.log(format!("lock stolen from {h} by {t}"));
                self.at(0.0, Ev::Input(h, Input::LockLost { id: hid }));
                self.grant(t, id, true, false);
            }
            Some(_) => self.browser.locks.waiting.push_back((t, id)),
            None => self.grant(t, id, false, false),
        }
    }

    /// Releases the lock held by request `id` of tab `t`, or drops that request from the
    /// queue.
    pub fn release(&mut self, t: usize, id: u32) {
        if self.browser.locks.holder == Some((t, id)) {
            self.browser.locks.holder = None;
            while let Some((next, nid)) = self.browser.locks.waiting.pop_front() {
                if self.tabs[next].alive {
                    self.grant(next, nid, false, true);
                    break;
                }
            }
        } else {
            self.browser.locks.waiting.retain(|&w| w != (t, id));
        }
    }

    /// A closed tab's locks and queued requests are released by the browser.
    pub fn release_all(&mut self, t: usize) {
        if let Some((h, id)) = self.browser.locks.holder {
            if h == t {
                self.release(t, id);
            }
        }
        self.browser.locks.waiting.retain(|&(u, _)| u != t);
    }
}
