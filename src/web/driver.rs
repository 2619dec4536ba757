//! The one owner of the [`Machine`]: feeds it inputs (API calls, timers, replies, messages,
//! lock grants, storage changes, page events) and carries out its effects. Nothing here
//! decides; every decision is the machine's.

use std::cell::{Cell, Ref, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::core::config::{Config, Mode, StorageMode};
use crate::core::error::Error;
use crate::core::events::Event;
use crate::core::machine::{Answer, Boot, Effect, Input, Machine, Ticket, Transport};

use super::callbacks::spawn as spawn_local;
use super::events::Events;
use super::http;
use super::storage::Store;
use super::tabs::{self, Bus, Locks};
use super::timers::{self, Deadline, Listener};

/// Absolute URLs and origins, resolved against the page once, at construction.
pub struct Endpoints {
    /// The auth server's endpoints as configured (`tokenUrl`, `revokeUrl`, and for OpenID
    /// Connect `authorizationUrl`, `endSessionUrl`); discovery fills in the rest.
    pub configured: super::oidc::Provider,
    /// Cookie mode: the session endpoint.
    pub session_url: Option<String>,
    /// Serialized origins that may receive the token: the page's own (unless it is plain
    /// http off this machine), the issuer's and `allowedOrigins`.
    pub token_origins: Vec<String>,
    /// OpenID Connect: the issuer.
    pub issuer: Option<String>,
    /// OpenID Connect: where the provider sends the browser back.
    pub redirect_uri: String,
    /// OpenID Connect: where the provider sends the browser after logout.
    pub post_logout_redirect_uri: Option<String>,
}

/// Everything a session owns in the browser.
pub struct Driver {
    machine: RefCell<Machine>,
    /// Inputs that arrived while the machine was busy (a re-entrant call): handled next.
    queue: RefCell<VecDeque<Input>>,
    /// Validated options.
    pub config: Config,
    /// Resolved URLs.
    pub endpoints: Endpoints,
    /// This tab's id in messages and lock names.
    pub tab_id: String,
    /// The app's callbacks.
    pub events: Events,
    /// Persistence.
    pub store: Store,
    /// The provider's endpoints, once known (discovery runs at first need).
    pub provider: RefCell<Option<Rc<super::oidc::Provider>>>,
    /// The sign-in callback handled here (its URL) and its outcome: a second call for the
    /// same URL (a component mounted twice) gets the same promise instead of a refusal.
    pub callback: RefCell<Option<(String, Promise)>>,
    /// Web Locks.
    pub locks: Locks,
    bus: RefCell<Option<Bus>>,
    deadline: RefCell<Deadline>,
    listeners: RefCell<Vec<Listener>>,
    /// Callers waiting for an answer (a few at a time: a list, not a map).
    waiting: RefCell<Vec<(Ticket, Function)>>,
    answers: RefCell<Vec<(Ticket, Answer)>>,
    next_ticket: Cell<Ticket>,
    ready: Promise,
    ready_resolve: RefCell<Option<Function>>,
    /// While the constructor runs, events wait here: the app subscribes after it returns.
    deferred: RefCell<Option<Vec<Event>>>,
    /// The fast path's response handler (`http::on_response`), made once. Owned by JS: a
    /// fetch may still be in flight when the session is dropped, and its handler must stay
    /// callable (it then passes the response through). One small closure per session.
    on_response: js_sys::Function,
    me: Weak<Driver>,
}

/// 16 random hex digits.
fn random_id() -> String {
    let n = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let m = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("{:016x}", (n << 32) | m)
}

/// Removes and returns the entry for `ticket`.
fn take<T>(list: &RefCell<Vec<(Ticket, T)>>, ticket: Ticket) -> Option<T> {
    let mut list = list.borrow_mut();
    let i = list.iter().position(|(t, _)| *t == ticket)?;
    Some(list.swap_remove(i).1)
}

/// A promise that stays pending until its `resolve` is called.
fn pending() -> (Promise, Option<Function>) {
    let mut resolve = None;
    let promise = Promise::new(&mut |r, _| resolve = Some(r));
    (promise, resolve)
}

impl Driver {
    /// Opens storage, the channel and the page listeners, and starts the machine.
    pub fn start(config: Config, endpoints: Endpoints) -> Rc<Driver> {
        let (store, storage_error) = match Store::open(config.storage, &config.namespace) {
            Ok(store) => (store, None),
            Err(e) => (Store::memory(&config.namespace), Some(e)),
        };
        let tab_id = random_id();
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let machine = Machine::new(config.clone(), tab_id.clone(), seed);
        let (ready, ready_resolve) = pending();
        let d = Rc::new_cyclic(|me: &Weak<Driver>| {
            let handler_owner = me.clone();
            let on_response =
                Closure::<dyn FnMut(JsValue, JsValue, JsValue) -> JsValue>::new(move |retry, seq, response| {
                    match handler_owner.upgrade() {
                        Some(d) => http::on_response(&d, retry, seq, response),
                        None => response,
                    }
                });
            Driver {
                machine: RefCell::new(machine),
                queue: RefCell::default(),
                config,
                endpoints,
                tab_id,
                events: Events::default(),
                store,
                provider: RefCell::default(),
                callback: RefCell::default(),
                locks: Locks::default(),
                bus: RefCell::new(None),
                deadline: RefCell::default(),
                listeners: RefCell::default(),
                waiting: RefCell::default(),
                answers: RefCell::default(),
                next_ticket: Cell::new(0),
                ready,
                ready_resolve: RefCell::new(ready_resolve),
                deferred: RefCell::new(Some(Vec::new())),
                on_response: on_response.into_js_value().unchecked_into(),
                me: me.clone(),
            }
        });
        let ns = &d.config.namespace;
        if d.config.cross_tab {
            *d.bus.borrow_mut() = Bus::open(ns, d.me.clone());
        }
        let transport = d.bus.borrow().as_ref().map_or(Transport::None, Bus::transport);
        let locks = transport != Transport::None && tabs::locks_supported();
        let mut listeners = timers::page_listeners(d.me.clone());
        if d.config.cross_tab && d.store.mode() == StorageMode::Local {
            listeners.extend(d.watch_storage());
        }
        *d.listeners.borrow_mut() = listeners;
        d.input(Input::Start(Boot {
            stored: d.store.read(),
            storage: d.store.mode(),
            storage_error,
            transport,
            locks,
            online: timers::online(),
        }));
        if locks {
            d.locks.announce_presence(ns, &d.tab_id, d.me.clone());
        }
        // Events of start-up (a storage error) reach listeners added right after `new`;
        // later ones go out at once.
        let events = d.deferred.borrow_mut().take().unwrap_or_default();
        if !events.is_empty() {
            let me = d.me.clone();
            spawn_local(async move {
                let Some(d) = me.upgrade() else { return };
                for e in events {
                    d.events.emit(&e);
                }
            });
        }
        d
    }

    /// In `local` mode: another tab wrote the stored session.
    fn watch_storage(&self) -> Option<Listener> {
        let window = web_sys::window()?;
        let me = self.me.clone();
        Listener::new(&window, "storage", move |e: JsValue| {
            let Some(d) = me.upgrade() else { return };
            let key = js_sys::Reflect::get(&e, &"key".into()).ok().and_then(|k| k.as_string());
            if key.as_deref() == Some(d.store.key()) {
                let stored = d.store.read();
                d.input(Input::StorageChanged(stored));
            }
        })
    }

    /// A read-only view of the machine (getters, the fetch fast path).
    pub fn machine(&self) -> Ref<'_, Machine> {
        self.machine.borrow()
    }

    /// Hands one input to the machine and carries out what it says.
    pub fn input(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
        loop {
            let Ok(mut machine) = self.machine.try_borrow_mut() else {
                return; // a call from inside an effect: the outer loop takes it next
            };
            let Some(input) = self.queue.borrow_mut().pop_front() else { return };
            let effects = machine.handle(js_sys::Date::now(), timers::monotonic(), input);
            drop(machine);
            for effect in effects {
                self.apply(effect);
            }
        }
    }

    fn apply(&self, effect: Effect) {
        let ns = &self.config.namespace;
        match effect {
            Effect::Timer(at) => self.deadline.borrow_mut().arm(at, self.me.clone()),
            Effect::Post(msg) => {
                if let Some(bus) = self.bus.borrow().as_ref() {
                    bus.post(ns, &self.tab_id, &msg);
                }
            }
            Effect::Save(record) => {
                if let Err(e) = self.store.write(&record) {
                    self.emit(Event::Error(e));
                }
            }
            Effect::Clear => self.store.clear(),
            Effect::Emit(event) => self.emit(event),
            Effect::Answer(ticket, answer) => {
                self.answers.borrow_mut().push((ticket, answer));
                if let Some(resolve) = take(&self.waiting, ticket) {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
            Effect::Ready(signed_in) => {
                if let Some(resolve) = self.ready_resolve.borrow_mut().take() {
                    let _ = resolve.call1(&JsValue::UNDEFINED, &signed_in.into());
                }
            }
            Effect::Refresh { id, refresh_token } => {
                let Some(d) = self.me.upgrade() else { return };
                spawn_local(async move {
                    let reply = match d.config.mode {
                        Mode::Token => http::refresh(&d, &refresh_token).await,
                        Mode::Cookie => http::extend_session(&d, &refresh_token).await,
                    };
                    d.input(Input::RefreshReply { id, reply });
                });
            }
            Effect::ReadSession => {
                let Some(d) = self.me.upgrade() else { return };
                spawn_local(async move {
                    let reply = http::read_session(&d).await;
                    d.input(Input::SessionRead { reply });
                });
            }
            Effect::Revoke { token, ticket } => {
                let Some(d) = self.me.upgrade() else { return };
                spawn_local(async move {
                    let error = match d.config.mode {
                        Mode::Token => http::revoke(&d, &token).await,
                        Mode::Cookie => http::end_session(&d, &token).await,
                    };
                    d.input(Input::RevokeReply { ticket, error });
                });
            }
            Effect::AcquireLock { id, steal } => self.locks.acquire(ns, id, steal, self.me.clone()),
            Effect::ReleaseLock { id } => self.locks.release(id),
        }
    }

    fn emit(&self, event: Event) {
        if let Some(deferred) = self.deferred.borrow_mut().as_mut() {
            deferred.push(event);
            return;
        }
        self.events.emit(&event);
    }

    /// The refresh lock was granted to request `id`.
    pub fn lock_granted(&self, id: u32, stolen: bool, waited: bool) {
        // Shared storage is read at the grant: a result stored by the last holder counts.
        let stored = (self.store.mode() == StorageMode::Local).then(|| self.store.read());
        self.input(Input::LockGranted { id, stolen, waited, stored });
    }

    /// Sends the input `make(ticket)` and waits for the machine's answer to that ticket.
    pub async fn ask(self: Rc<Self>, make: impl FnOnce(Ticket) -> Input) -> Answer {
        let ticket = self.next_ticket.get().wrapping_add(1);
        self.next_ticket.set(ticket);
        let (promise, resolve) = pending();
        if let Some(resolve) = resolve {
            self.waiting.borrow_mut().push((ticket, resolve));
        }
        self.input(make(ticket));
        if !self.answers.borrow().iter().any(|(t, _)| *t == ticket) {
            let _ = JsFuture::from(promise).await;
        }
        take(&self.waiting, ticket);
        take(&self.answers, ticket).unwrap_or(Answer::Failed(Error::Disposed))
    }

    /// The fast path's response handler.
    pub fn on_response(&self) -> &js_sys::Function {
        &self.on_response
    }

    /// Resolves once start-up restore is done, to whether there was a session.
    pub fn ready(&self) -> Promise {
        self.ready.clone()
    }

    /// Stops everything this session started: the timer, the page listeners, the channel,
    /// the presence lock and all subscriptions. A refresh already under way still lands in
    /// storage and releases its lock.
    pub fn dispose(&self) {
        self.input(Input::Dispose);
        self.deadline.borrow_mut().arm(None, Weak::new());
        self.listeners.borrow_mut().clear();
        self.bus.borrow_mut().take();
        self.locks.release_presence();
        self.events.clear();
    }
}
