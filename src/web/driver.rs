//! The one owner of the [`Machine`]: feeds it inputs (API calls, timers, replies, messages,
//! lock grants, storage changes, page events) and carries out its effects, each with one
//! adapter call whose result comes back through the session's [`Sink`]. Nothing here
//! decides; every decision is the machine's. Only this file and the JS class know the
//! driver: the adapters know the sink.

use std::cell::{Cell, Ref, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;

use crate::core::config::{Config, StorageMode};
#[cfg(feature = "oidc")]
use crate::core::error::Error;
use crate::core::events::Event;
use crate::core::machine::{Answer, Boot, Effect, Input, KeyOp, Machine, Ticket, Transport};

use super::auth::AuthServer;
use super::callbacks::{spawn, Listener};
use super::dpop::Keys;
use super::events::Events;
use super::fetch::Fetch;
#[cfg(feature = "oidc")]
use super::oidc::{self, SignIn};
#[cfg(feature = "oidc")]
use super::popup::Popup;
use super::sink::{Feed, Kept, Sink};
use super::storage::Store;
use super::tabs::{self, Bus, Locks};
use super::timers::{self, Deadline};

/// Where a session's requests go, resolved against the page once, at construction.
pub struct Endpoints {
    /// The auth server (OAuth 2.0 endpoints, or cookie mode's session endpoint).
    pub auth: AuthServer,
    /// OpenID Connect sign-in, if configured.
    #[cfg(feature = "oidc")]
    pub sign_in: Option<SignIn>,
    /// Serialized origins that may receive the token: the page's own (unless it is plain
    /// http off this machine), the issuer's and `allowedOrigins`.
    pub token_origins: Vec<String>,
    /// DPoP: the session's keys, when `dpop: true`.
    pub dpop: Option<Keys>,
}

/// Everything a session owns in the browser.
pub struct Driver {
    machine: RefCell<Machine>,
    /// Inputs that arrived while the machine was busy (a re-entrant call): handled next.
    queue: RefCell<VecDeque<Input>>,
    /// Validated options.
    pub config: Config,
    /// The auth server's calls.
    pub auth: Rc<AuthServer>,
    /// OpenID Connect sign-in, if configured.
    #[cfg(feature = "oidc")]
    pub sign_in: Option<SignIn>,
    /// DPoP: the session's keys, when `dpop: true`.
    pub dpop: Option<Keys>,
    /// `session.fetch`.
    pub fetch: Fetch,
    /// This tab's id in messages and lock names.
    tab_id: String,
    /// The app's callbacks.
    pub events: Events,
    /// Persistence.
    pub store: Store,
    /// The sign-in popup, while one is open.
    #[cfg(feature = "oidc")]
    popup: RefCell<Option<Popup>>,
    locks: Locks,
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
    /// Where the adapters' results come in: this driver, held weakly.
    sink: Sink,
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
        let csrf_header = match &endpoints.auth {
            AuthServer::Cookie(c) => Some(c.csrf_header.clone()),
            AuthServer::OAuth(_) => None,
        };
        let shared = (store.mode() == StorageMode::Local).then(|| store.clone());
        let d = Rc::new_cyclic(|me: &Weak<Driver>| {
            let me: Weak<dyn Feed> = me.clone();
            let sink = Sink::new(me);
            Driver {
                machine: RefCell::new(machine),
                queue: RefCell::default(),
                auth: Rc::new(endpoints.auth),
                #[cfg(feature = "oidc")]
                sign_in: endpoints.sign_in,
                fetch: Fetch::new(endpoints.token_origins, csrf_header, endpoints.dpop.clone(), sink.clone()),
                dpop: endpoints.dpop,
                locks: Locks::new(&config.namespace, sink.clone(), shared),
                config,
                tab_id,
                events: Events::default(),
                store,
                #[cfg(feature = "oidc")]
                popup: RefCell::default(),
                bus: RefCell::new(None),
                deadline: RefCell::default(),
                listeners: RefCell::default(),
                waiting: RefCell::default(),
                answers: RefCell::default(),
                next_ticket: Cell::new(0),
                ready,
                ready_resolve: RefCell::new(ready_resolve),
                deferred: RefCell::new(Some(Vec::new())),
                sink,
            }
        });
        if d.config.cross_tab {
            *d.bus.borrow_mut() = Bus::open(&d.config.namespace, &d.tab_id, d.dpop.clone(), d.sink.clone());
        }
        let transport = d.bus.borrow().as_ref().map_or(Transport::None, Bus::transport);
        let locks = transport != Transport::None && tabs::locks_supported();
        if locks {
            // First: a page's first Web Locks call takes a round trip to the browser (about
            // 12 ms cold, README, Performance) that start-up then waits for; it runs while
            // the rest of the session is set up. Its answer comes after `Start`.
            d.locks.announce_presence(&d.tab_id);
        }
        let mut listeners = timers::page_listeners(&d.sink);
        if d.config.cross_tab && d.store.mode() == StorageMode::Local {
            listeners.extend(d.store.watch(d.sink.clone()));
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
        // Events of start-up (a storage error) reach listeners added right after `new`;
        // later ones go out at once.
        let events = d.deferred.borrow_mut().take().unwrap_or_default();
        if !events.is_empty() {
            let me = Rc::downgrade(&d);
            spawn(async move {
                let Some(d) = me.upgrade() else { return };
                for e in events {
                    d.events.emit(&e);
                }
            });
        }
        d
    }

    /// A read-only view of the machine (getters, the fetch fast path).
    pub fn machine(&self) -> Ref<'_, Machine> {
        self.machine.borrow()
    }

    /// This session, kept alive while a caller waits for the machine's answer.
    pub fn kept(self: &Rc<Self>) -> Kept {
        Kept::new(self.clone())
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
        match effect {
            Effect::Timer(at) => self.deadline.borrow_mut().arm(at, &self.sink),
            Effect::Post(msg) => {
                if let Some(bus) = self.bus.borrow().as_ref() {
                    bus.post(&msg);
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
            // Requests under way keep the session alive: their answers must land.
            Effect::Refresh { id, credential } => {
                if let Some(kept) = self.sink.keep() {
                    self.auth.refresh(id, credential, kept);
                }
            }
            Effect::ReadSession => {
                if let Some(kept) = self.sink.keep() {
                    self.auth.read_session(kept);
                }
            }
            Effect::Revoke { credential, ticket } => {
                if let Some(kept) = self.sink.keep() {
                    self.auth.revoke(ticket, credential, kept);
                }
            }
            Effect::AcquireLock { id, steal } => self.locks.acquire(id, steal),
            Effect::ReleaseLock { id } => self.locks.release(id),
            #[cfg(feature = "oidc")]
            Effect::Discover => {
                if let Some(kept) = self.sink.keep() {
                    self.auth.discover(kept);
                }
            }
            #[cfg(feature = "oidc")]
            Effect::ExchangeCode { id, url, form } => {
                if let Some(kept) = self.sink.keep() {
                    self.auth.exchange_code(id, url, form, kept);
                }
            }
            #[cfg(feature = "oidc")]
            Effect::Navigate { ticket, url, params, login } => {
                let gone = Error::Config("issuer".into(), "is required for loginWithRedirect (or authorizationUrl)");
                let sent = self.sign_in.as_ref().ok_or(gone).and_then(|s| s.navigate(&url, &params, login.as_ref()));
                self.sink.send(Input::Navigated { ticket, error: sent.err() });
            }
            #[cfg(feature = "oidc")]
            Effect::NavigatePopup { ticket, url, params } => {
                let popup = self.popup.borrow();
                let sent = oidc::with_query(&url, &params)
                    .and_then(|href| popup.as_ref().ok_or(Error::PopupClosed)?.navigate(&href));
                drop(popup);
                if let Err(e) = sent {
                    self.sink.send(Input::Navigated { ticket, error: Some(e) });
                }
            }
            #[cfg(feature = "oidc")]
            Effect::ClosePopup => drop(self.popup.borrow_mut().take()),
            #[cfg(feature = "oidc")]
            Effect::DiscardLogin => {
                if let Some(s) = &self.sign_in {
                    s.discard_login();
                }
            }
            #[cfg(feature = "oidc")]
            Effect::CleanAddressBar { url } => oidc::clean_address_bar(&url),
            Effect::Key(op) => {
                let Some(keys) = &self.dpop else { return };
                match op {
                    KeyOp::Load => {
                        if let Some(kept) = self.sink.keep() {
                            keys.load(kept);
                        }
                    }
                    KeyOp::AdoptSignIn => keys.adopt(true),
                    KeyOp::AdoptSent => keys.adopt(false),
                    KeyOp::Drop { stored } => keys.forget(stored),
                }
            }
        }
    }

    /// Closes the sign-in popup, if one is open.
    #[cfg(feature = "oidc")]
    pub fn close_popup(&self) {
        drop(self.popup.borrow_mut().take());
    }

    /// Opens the sign-in popup (in the app's click, before anything is awaited); false when
    /// the browser blocked it. A popup still open is closed.
    #[cfg(feature = "oidc")]
    pub fn open_popup(&self) -> bool {
        drop(self.popup.borrow_mut().take());
        let popup = Popup::open(&self.sink);
        let opened = popup.is_some();
        *self.popup.borrow_mut() = popup;
        opened
    }

    fn emit(&self, event: Event) {
        if let Some(deferred) = self.deferred.borrow_mut().as_mut() {
            deferred.push(event);
            return;
        }
        self.events.emit(&event);
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
        self.deadline.borrow_mut().arm(None, &self.sink);
        self.listeners.borrow_mut().clear();
        #[cfg(feature = "oidc")]
        self.close_popup();
        self.bus.borrow_mut().take();
        self.locks.release_presence();
        self.events.clear();
    }
}

impl Feed for Driver {
    fn input(&self, input: Input) {
        Driver::input(self, input);
    }

    fn ticket(&self) -> (Ticket, Promise) {
        let ticket = self.next_ticket.get().wrapping_add(1);
        self.next_ticket.set(ticket);
        let (promise, resolve) = pending();
        if let Some(resolve) = resolve {
            self.waiting.borrow_mut().push((ticket, resolve));
        }
        (ticket, promise)
    }

    fn answer(&self, ticket: Ticket) -> Option<Answer> {
        let answer = take(&self.answers, ticket)?;
        take(&self.waiting, ticket);
        Some(answer)
    }

    fn nonce(&self, origin: &str) -> Option<String> {
        self.machine.try_borrow().ok()?.dpop_nonce(origin).map(str::to_string)
    }
}
