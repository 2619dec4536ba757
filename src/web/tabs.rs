//! Reaching the other tabs: a BroadcastChannel named per namespace, or, where there is none,
//! `storage` events on a localStorage key (never carrying tokens: the machine does not post
//! them there); and Web Locks, bound by hand (not in stable web-sys). What arrives goes to
//! the session's [`Sink`].

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::core::machine::{Input, Transport};
use crate::core::policy::LockAsk;
use crate::core::protocol::{Message, Wire};

use super::callbacks::{callback, spawn, Callback, Listener};
use super::dpop::{KeyPair, Keys};
use super::sink::Sink;
use super::storage::Store;

/// The BroadcastChannel name of a namespace; also the prefix of its lock names.
pub fn channel_name(ns: &str) -> String {
    format!("wasm-session:{ns}")
}

/// The localStorage key carrying messages where BroadcastChannel is missing (never the
/// session's own storage key).
fn bus_key(ns: &str) -> String {
    channel_name(ns) + ":bus"
}

/// Who this tab is on the bus: its namespace and tab id; with DPoP, its keys (the key
/// travels beside a tokens message, by structured clone).
#[derive(Clone)]
struct Address {
    ns: String,
    tab: String,
    keys: Option<Keys>,
}

/// The property of a posted message that carries the sender's DPoP key.
const KEY_FIELD: &str = "dpopKey";

impl Address {
    /// A received message: deserialized with serde, then checked by [`Wire::open`] (its
    /// namespace, not from this tab). Anything else is ignored.
    fn receive(&self, sink: &Sink, data: JsValue) {
        if !data.is_object() {
            return;
        }
        let Ok(wire) = serde_wasm_bindgen::from_value::<Wire>(data.clone()) else { return };
        if let Ok(mut env) = wire.open(&self.ns, &self.tab) {
            // A key beside tokens: held for the machine to adopt with them, or not.
            if let (Some(keys), Message::Tokens { .. }) = (&self.keys, &env.msg) {
                let pair = Reflect::get(&data, &KEY_FIELD.into()).ok().and_then(|k| KeyPair::from_js(&k));
                if let Some(pair) = pair {
                    keys.arrived(pair);
                    env.with_key = true;
                }
            }
            sink.send(Input::Message(env));
        }
    }
}

/// The cross-tab transport of one namespace.
pub struct Bus {
    link: Link,
    from: Address,
}

/// The way messages go; the callback and the listener are held for as long as the bus.
enum Link {
    /// BroadcastChannel.
    Channel { channel: web_sys::BroadcastChannel, _on_message: Callback },
    /// `storage` events on [`bus_key`].
    Storage { storage: web_sys::Storage, key: String, _listener: Listener },
}

impl Bus {
    /// Opens BroadcastChannel, else the storage fallback, else `None`, for tab `tab` of
    /// namespace `ns`; messages from the other tabs go to `sink`.
    pub fn open(ns: &str, tab: &str, keys: Option<Keys>, sink: Sink) -> Option<Bus> {
        let from = Address { ns: ns.to_string(), tab: tab.to_string(), keys };
        let to = from.clone();
        if let Ok(channel) = web_sys::BroadcastChannel::new(&channel_name(ns)) {
            let on_message = callback(move |e: JsValue| {
                if let Some(e) = e.dyn_ref::<web_sys::MessageEvent>() {
                    to.receive(&sink, e.data());
                }
            });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            return Some(Bus { link: Link::Channel { channel, _on_message: on_message }, from });
        }
        let window = web_sys::window()?;
        let storage = window.local_storage().ok().flatten()?;
        let key = bus_key(ns);
        let wanted = key.clone();
        let listener = Listener::new(&window, "storage", move |e: JsValue| {
            let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else { return };
            if e.key().as_deref() != Some(wanted.as_str()) {
                return;
            }
            if let Some(data) = e.new_value().and_then(|v| js_sys::JSON::parse(&v).ok()) {
                to.receive(&sink, data);
            }
        })?;
        Some(Bus { link: Link::Storage { storage, key, _listener: listener }, from })
    }

    /// How this bus reaches the other tabs.
    pub fn transport(&self) -> Transport {
        match self.link {
            Link::Channel { .. } => Transport::Broadcast,
            Link::Storage { .. } => Transport::StorageBus,
        }
    }

    /// Sends a message; failures are dropped (tabs also re-check their deadlines).
    pub fn post(&self, msg: &Message) {
        let Ok(value) = serde_wasm_bindgen::to_value(&Wire::seal(&self.from.ns, &self.from.tab, msg)) else { return };
        match &self.link {
            Link::Channel { channel, .. } => {
                let key = self.from.keys.as_ref().and_then(|k| k.current());
                if let (Some(pair), Message::Tokens { .. }) = (key, msg) {
                    let _ = Reflect::set(&value, &KEY_FIELD.into(), &pair.to_js());
                }
                let _ = channel.post_message(&value);
            }
            Link::Storage { storage, key, .. } => {
                if let Some(text) = js_sys::JSON::stringify(&value).ok().and_then(|t| t.as_string()) {
                    let _ = storage.set_item(key, &text);
                    let _ = storage.remove_item(key);
                }
            }
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Link::Channel { channel, .. } = &self.link {
            channel.set_onmessage(None);
            channel.close();
        }
    }
}

// Web Locks are not in stable web-sys: the few calls needed, bound by hand.
#[wasm_bindgen]
extern "C" {
    type LockManager;
    #[wasm_bindgen(method, catch)]
    fn request(this: &LockManager, name: &str, options: &Object, callback: &JsValue) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn query(this: &LockManager) -> Result<Promise, JsValue>;
}

fn lock_manager() -> Option<LockManager> {
    let navigator = web_sys::window()?.navigator();
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    let usable = locks.is_object() && Reflect::get(&locks, &"request".into()).is_ok_and(|r| r.is_function());
    usable.then(|| locks.unchecked_into())
}

/// True where the page has Web Locks.
pub fn locks_supported() -> bool {
    lock_manager().is_some()
}

/// Where a lock request is.
enum Hold {
    Pending(web_sys::AbortController),
    Granted(Function),
    Released,
}

/// One lock request: where it is, and its queue-grant callback. That one is owned here: JS
/// never calls it if the request is given up, and a closure handed to JS for good leaks if
/// JS never calls it. (The other grant callbacks are always called once, so JS owns them.)
struct Request {
    hold: Hold,
    _callbacks: Vec<Callback>,
}

/// This tab's Web Locks: the refresh lock (by request id) and its presence lock. Grants,
/// losses and the presence of other tabs go to the session's [`Sink`].
pub struct Locks(Rc<LockState>);

struct LockState {
    /// The namespace's lock names start with this.
    prefix: String,
    sink: Sink,
    /// In `local` mode, the stored session, read at each grant: a result stored by the last
    /// holder counts.
    shared: Option<Store>,
    /// By request id (one or two at a time: a list, not a map).
    requests: RefCell<Vec<(u32, Request)>>,
    presence: RefCell<Option<Function>>,
}

impl Drop for LockState {
    /// A dropped session lets go of its locks, and of queued requests whose callbacks go
    /// with it.
    fn drop(&mut self) {
        for (_, r) in self.requests.borrow_mut().iter_mut() {
            match std::mem::replace(&mut r.hold, Hold::Released) {
                Hold::Pending(abort) => abort.abort(),
                Hold::Granted(release) => {
                    let _ = release.call0(&JsValue::UNDEFINED);
                }
                Hold::Released => {}
            }
        }
        release_presence(&self.presence);
    }
}

/// A promise that stays pending until its `resolve` is called: the hold of a lock.
fn hold() -> (Promise, Option<Function>) {
    let mut release = None;
    let promise = Promise::new(&mut |resolve, _| release = Some(resolve));
    (promise, release)
}

/// Calls `f` once `promise` settles, with its value (or its error).
fn on_settled(promise: Promise, f: impl FnOnce(JsValue) + 'static) {
    spawn(async move {
        f(JsFuture::from(promise).await.unwrap_or_else(|e| e));
    });
}

fn release_presence(presence: &RefCell<Option<Function>>) {
    if let Some(release) = presence.borrow_mut().take() {
        let _ = release.call0(&JsValue::UNDEFINED);
    }
}

impl Locks {
    /// The locks of namespace `ns`, reporting to `sink`; `shared` is the store read at each
    /// grant (`local` mode).
    pub fn new(ns: &str, sink: Sink, shared: Option<Store>) -> Locks {
        Locks(Rc::new(LockState {
            prefix: channel_name(ns),
            sink,
            shared,
            requests: RefCell::default(),
            presence: RefCell::default(),
        }))
    }

    /// Requests the refresh lock as request `id`, asking as [`LockAsk::first`] says.
    pub fn acquire(&self, id: u32, steal: bool) {
        let Ok(abort) = web_sys::AbortController::new() else { return };
        let request = Request { hold: Hold::Pending(abort), _callbacks: Vec::new() };
        self.0.requests.borrow_mut().push((id, request));
        request_lock(&self.0, id, LockAsk::first(steal));
    }

    /// Releases request `id`, or gives it up if not granted yet. The entry goes when its
    /// request settles (its callbacks may still be called until then).
    pub fn release(&self, id: u32) {
        let mut requests = self.0.requests.borrow_mut();
        let Some((_, r)) = requests.iter_mut().find(|(i, _)| *i == id) else { return };
        match std::mem::replace(&mut r.hold, Hold::Released) {
            Hold::Pending(abort) => abort.abort(),
            Hold::Granted(release) => {
                drop(requests);
                let _ = release.call0(&JsValue::UNDEFINED);
            }
            Hold::Released => {}
        }
    }

    /// Holds tab `tab`'s presence lock, then asks whether other tabs of the namespace hold
    /// theirs: [`Input::Presence`].
    pub fn announce_presence(&self, tab: &str) {
        let Some(locks) = lock_manager() else { return };
        let (held, release) = hold();
        // Always granted once (the name is this tab's alone), so JS owns the callback.
        let keep = Closure::once_into_js(move |_lock: JsValue| -> JsValue { held.into() });
        let prefix = self.0.prefix.clone() + ":tab:";
        let _ = locks.request(&(prefix.clone() + tab), &Object::new(), &keep);
        *self.0.presence.borrow_mut() = release;
        let Ok(query) = locks.query() else { return };
        let me = prefix.clone() + tab;
        let sink = self.0.sink.clone();
        on_settled(query, move |state: JsValue| {
            let names = |list: &str| -> Vec<String> {
                let list = Reflect::get(&state, &list.into()).unwrap_or_default();
                js_sys::Array::from(&list)
                    .iter()
                    .filter_map(|l| Reflect::get(&l, &"name".into()).ok()?.as_string())
                    .collect()
            };
            let mut all = names("held");
            all.extend(names("pending"));
            let others = all.iter().any(|n| n.starts_with(&prefix) && *n != me);
            sink.send(Input::Presence { others });
        });
    }

    /// Lets go of the presence lock (dispose). The refresh lock is the machine's to release:
    /// a refresh under way keeps it until its answer lands.
    pub fn release_presence(&self) {
        release_presence(&self.0.presence);
    }
}

impl LockState {
    fn is_pending(&self, id: u32) -> bool {
        self.requests.borrow().iter().any(|(i, r)| *i == id && matches!(r.hold, Hold::Pending(_)))
    }
}

/// Sends request `id` for the refresh lock, asking as `ask`.
fn request_lock(state: &Rc<LockState>, id: u32, ask: LockAsk) {
    let Some(locks) = lock_manager() else { return };
    let options = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&options, &k.into(), v).is_ok();
    let ok = match ask {
        LockAsk::IfFree => set("ifAvailable", &true.into()),
        LockAsk::Steal => set("steal", &true.into()),
        LockAsk::Queue => {
            let signal = state.requests.borrow().iter().find_map(|(i, r)| match &r.hold {
                Hold::Pending(abort) if *i == id => Some(abort.signal()),
                _ => None,
            });
            signal.is_some_and(|s| set("signal", &s))
        }
    };
    if !ok {
        return;
    }
    let name = state.prefix.clone() + ":refresh";
    let granted_to = Rc::downgrade(state);
    let granted = move |lock: JsValue| -> JsValue {
        let Some(state) = granted_to.upgrade() else { return JsValue::UNDEFINED };
        if !state.is_pending(id) {
            return JsValue::UNDEFINED; // given up meanwhile: let it go at once
        }
        if lock.is_null() {
            // Another tab holds it.
            if let Some(next) = ask.when_held() {
                request_lock(&state, id, next);
            }
            return JsValue::UNDEFINED;
        }
        let (held, release) = hold();
        let Some(release) = release else { return JsValue::UNDEFINED };
        if let Some((_, r)) = state.requests.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
            r.hold = Hold::Granted(release);
        }
        let stored = state.shared.as_ref().map(Store::read);
        state.sink.send(Input::LockGranted { id, stolen: ask.stolen(), waited: ask.waited(), stored });
        held.into()
    };
    let done = if ask == LockAsk::Queue {
        let granted = Callback::new(granted);
        let done = locks.request(&name, &options, granted.as_ref().unchecked_ref());
        if let Some((_, r)) = state.requests.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
            r._callbacks.push(granted);
        }
        done
    } else {
        // Always called once (granted, or `null` if not free): JS owns it.
        locks.request(&name, &options, &Closure::once_into_js(move |lock: JsValue| granted(lock)))
    };
    let Ok(done) = done else { return };
    // Settles when released (or found taken, or given up), or rejects when stolen.
    let ended_for: Weak<LockState> = Rc::downgrade(state);
    on_settled(done, move |_| {
        let Some(state) = ended_for.upgrade() else { return };
        let ended = {
            let mut requests = state.requests.borrow_mut();
            let i = requests.iter().position(|(i, r)| *i == id && !matches!(r.hold, Hold::Pending(_)));
            i.map(|i| requests.swap_remove(i).1)
        };
        if matches!(ended, Some(Request { hold: Hold::Granted(_), .. })) {
            // Still ours as far as this tab knew: another tab took it.
            state.sink.send(Input::LockLost { id });
        }
    });
}
