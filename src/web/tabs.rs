//! Reaching the other tabs: a BroadcastChannel named per namespace, or, where there is none,
//! `storage` events on a localStorage key (never carrying tokens: the machine does not post
//! them there); and Web Locks, bound by hand (not in stable web-sys).

use std::cell::RefCell;
use std::rc::Weak;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::core::machine::{Input, Transport};
use crate::core::protocol::{Message, Wire};

use super::callbacks::{callback, spawn, Callback};
use super::driver::Driver;
use super::timers::Listener;

/// The BroadcastChannel name of a namespace; also the prefix of its lock names.
pub fn channel_name(ns: &str) -> String {
    format!("wasm-session:{ns}")
}

/// The localStorage key carrying messages where BroadcastChannel is missing (never the
/// session's own storage key).
fn bus_key(ns: &str) -> String {
    channel_name(ns) + ":bus"
}

/// A received message: deserialized with serde, then checked by [`Wire::open`]. Anything
/// else is ignored.
fn receive(driver: &Weak<Driver>, data: JsValue) {
    let Some(d) = driver.upgrade() else { return };
    if !data.is_object() {
        return;
    }
    let Ok(wire) = serde_wasm_bindgen::from_value::<Wire>(data) else { return };
    if let Ok(env) = wire.open(&d.config.namespace, &d.tab_id) {
        d.input(Input::Message(env));
    }
}

/// The cross-tab transport of one namespace.
pub enum Bus {
    /// BroadcastChannel.
    Channel(web_sys::BroadcastChannel, Callback),
    /// `storage` events on [`bus_key`].
    Storage(web_sys::Storage, String, Listener),
}

impl Bus {
    /// Opens BroadcastChannel, else the storage fallback, else `None`.
    pub fn open(ns: &str, driver: Weak<Driver>) -> Option<Bus> {
        if let Ok(channel) = web_sys::BroadcastChannel::new(&channel_name(ns)) {
            let d = driver.clone();
            let on_message = callback(move |e: JsValue| {
                if let Some(e) = e.dyn_ref::<web_sys::MessageEvent>() {
                    receive(&d, e.data());
                }
            });
            channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            return Some(Bus::Channel(channel, on_message));
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
                receive(&driver, data);
            }
        })?;
        Some(Bus::Storage(storage, key, listener))
    }

    /// How this bus reaches the other tabs.
    pub fn transport(&self) -> Transport {
        match self {
            Bus::Channel(..) => Transport::Broadcast,
            Bus::Storage(..) => Transport::StorageBus,
        }
    }

    /// Sends a message; failures are dropped (tabs also re-check their deadlines).
    pub fn post(&self, ns: &str, from: &str, msg: &Message) {
        let Ok(value) = serde_wasm_bindgen::to_value(&Wire::seal(ns, from, msg)) else { return };
        match self {
            Bus::Channel(channel, _) => {
                let _ = channel.post_message(&value);
            }
            Bus::Storage(storage, key, _) => {
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
        if let Bus::Channel(channel, _) = self {
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

enum Held {
    Pending(web_sys::AbortController),
    Granted(Function),
    Released,
}

/// How a lock request asks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Only if free at once (`ifAvailable`): tells a free lock from a hand-over.
    IfFree,
    /// In the queue, after the holder.
    Queue,
    /// Taken from the holder.
    Steal,
}

/// One lock request: its state, and its queue-grant callback. That one is owned here: JS
/// never calls it if the request is given up, and a closure handed to JS for good leaks if
/// JS never calls it. (The other grant callbacks are always called once, so JS owns them.)
struct Request {
    held: Held,
    _callbacks: Vec<Callback>,
}

/// This tab's lock requests: the refresh lock (by request id) and its presence lock.
#[derive(Default)]
pub struct Locks {
    /// By request id (one or two at a time: a list, not a map).
    requests: RefCell<Vec<(u32, Request)>>,
    presence: RefCell<Option<Function>>,
}

impl Drop for Locks {
    /// A dropped session lets go of its locks, and of queued requests whose callbacks go
    /// with it.
    fn drop(&mut self) {
        for (_, r) in self.requests.borrow_mut().iter_mut() {
            match std::mem::replace(&mut r.held, Held::Released) {
                Held::Pending(abort) => abort.abort(),
                Held::Granted(release) => {
                    let _ = release.call0(&JsValue::UNDEFINED);
                }
                Held::Released => {}
            }
        }
        self.release_presence();
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

impl Locks {
    /// Requests the refresh lock as request `id`: taking it from its holder if `steal`,
    /// else first only if free, then in the queue (so that the grant says which it was).
    pub fn acquire(&self, ns: &str, id: u32, steal: bool, driver: Weak<Driver>) {
        let Ok(abort) = web_sys::AbortController::new() else { return };
        self.requests.borrow_mut().push((id, Request { held: Held::Pending(abort), _callbacks: Vec::new() }));
        let ask = if steal { Ask::Steal } else { Ask::IfFree };
        self.request(channel_name(ns) + ":refresh", id, ask, driver);
    }

    fn is_pending(&self, id: u32) -> bool {
        self.requests.borrow().iter().any(|(i, r)| *i == id && matches!(r.held, Held::Pending(_)))
    }

    fn request(&self, name: String, id: u32, ask: Ask, driver: Weak<Driver>) {
        let Some(locks) = lock_manager() else { return };
        let options = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&options, &k.into(), v).is_ok();
        let ok = match ask {
            Ask::IfFree => set("ifAvailable", &true.into()),
            Ask::Steal => set("steal", &true.into()),
            Ask::Queue => {
                let signal = self.requests.borrow().iter().find_map(|(i, r)| match &r.held {
                    Held::Pending(abort) if *i == id => Some(abort.signal()),
                    _ => None,
                });
                signal.is_some_and(|s| set("signal", &s))
            }
        };
        if !ok {
            return;
        }
        let granted_to = driver.clone();
        let queue_name = name.clone();
        let granted = move |lock: JsValue| -> JsValue {
            let Some(d) = granted_to.upgrade() else { return JsValue::UNDEFINED };
            if !d.locks.is_pending(id) {
                return JsValue::UNDEFINED; // given up meanwhile: let it go at once
            }
            if lock.is_null() {
                // Another tab holds it: wait in the queue; that grant is a hand-over.
                d.locks.request(queue_name.clone(), id, Ask::Queue, granted_to.clone());
                return JsValue::UNDEFINED;
            }
            let (held, release) = hold();
            let Some(release) = release else { return JsValue::UNDEFINED };
            if let Some((_, r)) = d.locks.requests.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
                r.held = Held::Granted(release);
            }
            d.lock_granted(id, ask == Ask::Steal, ask == Ask::Queue);
            held.into()
        };
        let done = if ask == Ask::Queue {
            let granted = Callback::new(granted);
            let done = locks.request(&name, &options, granted.as_ref().unchecked_ref());
            if let Some((_, r)) = self.requests.borrow_mut().iter_mut().find(|(i, _)| *i == id) {
                r._callbacks.push(granted);
            }
            done
        } else {
            // Always called once (granted, or `null` if not free): JS owns it.
            locks.request(&name, &options, &Closure::once_into_js(move |lock: JsValue| granted(lock)))
        };
        let Ok(done) = done else { return };
        // Settles when released (or found taken, or given up), or rejects when stolen.
        on_settled(done, move |_| {
            let Some(d) = driver.upgrade() else { return };
            let ended = {
                let mut requests = d.locks.requests.borrow_mut();
                let i = requests.iter().position(|(i, r)| *i == id && !matches!(r.held, Held::Pending(_)));
                i.map(|i| requests.swap_remove(i).1)
            };
            if matches!(ended, Some(Request { held: Held::Granted(_), .. })) {
                // Still ours as far as this tab knew: another tab took it.
                d.input(Input::LockLost { id });
            }
        });
    }

    /// Releases request `id`, or gives it up if not granted yet. The entry goes when its
    /// request settles (its callbacks may still be called until then).
    pub fn release(&self, id: u32) {
        let mut requests = self.requests.borrow_mut();
        let Some((_, r)) = requests.iter_mut().find(|(i, _)| *i == id) else { return };
        match std::mem::replace(&mut r.held, Held::Released) {
            Held::Pending(abort) => abort.abort(),
            Held::Granted(release) => {
                drop(requests);
                let _ = release.call0(&JsValue::UNDEFINED);
            }
            Held::Released => {}
        }
    }

    /// Holds this tab's presence lock, then asks whether other tabs of the namespace hold
    /// theirs: `Input::Presence`.
    pub fn announce_presence(&self, ns: &str, tab: &str, driver: Weak<Driver>) {
        let Some(locks) = lock_manager() else { return };
        let (held, release) = hold();
        // Always granted once (the name is this tab's alone), so JS owns the callback.
        let keep = Closure::once_into_js(move |_lock: JsValue| -> JsValue { held.into() });
        let prefix = channel_name(ns) + ":tab:";
        let _ = locks.request(&(prefix.clone() + tab), &Object::new(), &keep);
        *self.presence.borrow_mut() = release;
        let Ok(query) = locks.query() else { return };
        let me = prefix.clone() + tab;
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
            if let Some(d) = driver.upgrade() {
                d.input(Input::Presence { others });
            }
        });
    }

    /// Lets go of the presence lock (dispose). The refresh lock is the machine's to release:
    /// a refresh under way keeps it until its answer lands.
    pub fn release_presence(&self) {
        if let Some(release) = self.presence.borrow_mut().take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}
