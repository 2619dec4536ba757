//! The live session behind the JS `Session` class: state, transitions (install tokens, end
//! the session), cross-tab message handling and start-up restore. Browser only.

use crate::prelude::*;

use crate::cell::RefCell;
use alloc::rc::{Rc, Weak};
use core::cell::Cell;

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::events::{EventKind, Events, LogoutReason};
use crate::flight::Flight;
use crate::policy::{self, Action, Retry};
use crate::refresh;
use crate::store::Store;
use crate::tabs::{Channel, Envelope, Message, Why};
use crate::timers::{self, Timers};
use crate::token::TokenSet;
use crate::value::Value;

/// Absolute URLs and origins, resolved against the page once at construction.
pub struct Endpoints {
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint.
    pub revoke_url: Option<String>,
    /// The page's own origin.
    pub page_origin: String,
    /// Other origins allowed to receive the token.
    pub allowed_origins: Vec<String>,
}

/// Mutable session state.
#[derive(Default)]
pub struct State {
    /// The current tokens; `None` when signed out.
    pub tokens: Option<TokenSet>,
    /// Bumped on every change of `tokens`; lets a refresh see that another tab got there first.
    pub generation: u64,
    /// Failed refreshes and backoff.
    pub retry: Retry,
    /// True once `expired` was emitted for the current tokens.
    pub expiry_announced: bool,
    /// Set while another tab announced it is refreshing; completed when it reports back.
    pub peer_refresh: Option<PeerRefresh>,
}

/// Another tab's announced refresh.
#[derive(Clone)]
pub struct PeerRefresh {
    /// The lowest tab id among the tabs that announced one.
    pub from: String,
    /// Completes when a result (tokens, failure, logout) arrives.
    pub done: Flight<()>,
}

/// Where new tokens came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `login()` or `setTokens()` in this tab.
    Local,
    /// A refresh in this tab.
    Refreshed,
    /// Another tab (message).
    Peer,
    /// Storage at start-up.
    Restored,
}

/// Everything a session owns.
pub struct Inner {
    /// Validated options.
    pub config: Config,
    /// Resolved URLs.
    pub endpoints: Endpoints,
    /// The time source.
    pub clock: Box<dyn Clock>,
    /// Tokens and refresh state.
    pub state: RefCell<State>,
    /// Subscribers.
    pub events: Events,
    /// Persistence.
    pub store: Store,
    /// Cross-tab transport, when enabled and available.
    pub channel: RefCell<Option<Channel>>,
    /// The deadline timer and the wake-up listeners.
    pub timers: RefCell<Timers>,
    /// The refresh in flight in this tab, shared by every caller.
    pub flight: RefCell<Option<Flight<Result<(), Error>>>>,
    /// Completes when start-up restore (storage, other tabs) is done.
    pub ready: Flight<()>,
    /// This tab's random id in cross-tab messages.
    pub tab_id: String,
    /// In `local` mode: adopts sessions other tabs write to storage.
    pub storage_listener: RefCell<Option<timers::Listener>>,
    /// Set by `dispose()`.
    pub disposed: Cell<bool>,
}

/// 13 random hex digits (52 bits). A digit loop: `u64::to_string` pulls in `core::fmt`.
fn random_id() -> String {
    let mut n = (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64;
    let mut id = String::with_capacity(13);
    for _ in 0..13 {
        id.push(char::from(b"0123456789abcdef"[(n & 15) as usize]));
        n >>= 4;
    }
    id
}

impl Inner {
    /// A session for `config`; call [`start`] next.
    pub fn new(config: Config, endpoints: Endpoints, store: Store) -> Rc<Inner> {
        Rc::new(Inner {
            config,
            endpoints,
            clock: Box::new(SystemClock),
            state: RefCell::default(),
            events: Events::default(),
            store,
            channel: RefCell::new(None),
            timers: RefCell::default(),
            flight: RefCell::new(None),
            ready: Flight::new(),
            tab_id: random_id(),
            storage_listener: RefCell::new(None),
            disposed: Cell::new(false),
        })
    }

    /// Current time.
    pub fn now(&self) -> f64 {
        self.clock.now()
    }

    /// A copy of the current tokens.
    pub fn tokens(&self) -> Option<TokenSet> {
        self.state.borrow().tokens.clone()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.state.borrow().generation
    }

    /// Emits an event to this tab's subscribers.
    pub fn emit(&self, kind: EventKind, payload: &[(&str, JsValue)]) {
        if self.disposed.get() {
            return;
        }
        // `{ type, ...payload }`; setting a property on a fresh plain object cannot fail.
        let event = Object::new();
        let _ = Reflect::set(&event, &JsValue::from_str("type"), &JsValue::from_str(kind.as_str()));
        for (k, v) in payload {
            let _ = Reflect::set(&event, &JsValue::from_str(k), v);
        }
        self.events.emit(kind, &event);
    }

    /// Emits an `error` event carrying `err` as a JS `Error`.
    pub fn emit_error(&self, err: &Error) {
        self.emit(EventKind::Error, &[("error", err.to_js())]);
    }

    /// Sends a message to the other tabs.
    pub fn post(&self, msg: Message) {
        if let Some(c) = self.channel.borrow().as_ref() {
            c.post(&Envelope::new(&self.config.namespace, &self.tab_id, msg));
        }
    }

    /// Decides what a request made now should do with the token.
    pub fn decide(&self) -> Option<(Action, String)> {
        let now = self.now();
        let state = self.state.borrow();
        let t = state.tokens.as_ref()?;
        let in_flight = self.flight.borrow().is_some();
        Some((policy::decide(t, self.config.refresh_lead_ms, state.retry, in_flight, now), t.access_token.clone()))
    }
}

/// Installs new tokens: state, storage, other tabs, events, timer.
pub fn install(inner: &Rc<Inner>, tokens: TokenSet, source: Source) {
    let was_signed_in = {
        let mut st = inner.state.borrow_mut();
        let was = st.tokens.is_some();
        st.tokens = Some(tokens.clone());
        st.generation += 1;
        st.retry = Retry::default();
        st.expiry_announced = false;
        if let Some(p) = st.peer_refresh.take() {
            p.done.complete(());
        }
        was
    };
    // Tokens from another tab are already in shared (local) storage, possibly already
    // replaced by newer ones: writing them back could resurrect a spent refresh token.
    let shared = inner.store.mode() == crate::config::StorageMode::Local;
    let save = match source {
        Source::Restored => false,
        Source::Peer => !shared,
        Source::Local | Source::Refreshed => true,
    };
    if save {
        if let Err(e) = inner.store.save(&tokens) {
            inner.emit_error(&e);
        }
    }
    match source {
        Source::Local => inner.post(Message::Tokens { tokens: tokens.clone(), why: Why::Login }),
        Source::Refreshed => inner.post(Message::Tokens { tokens: tokens.clone(), why: Why::Refresh }),
        Source::Peer | Source::Restored => {}
    }
    timers::schedule(inner);
    inner.ready.complete(());
    if source != Source::Restored {
        let kind = if was_signed_in { EventKind::Refresh } else { EventKind::Login };
        inner.emit(kind, &[("expiresAt", tokens.expires_at.into())]);
    }
}

/// Ends the session in this tab: forgets tokens, clears storage, cancels timers, emits
/// `logout`, and (when `tell_others`) tells the other tabs. Returns the tokens it held.
pub fn end(inner: &Rc<Inner>, reason: LogoutReason, tell_others: bool) -> Option<TokenSet> {
    let held = {
        let mut st = inner.state.borrow_mut();
        let held = st.tokens.take();
        st.generation += 1;
        st.retry = Retry::default();
        if let Some(p) = st.peer_refresh.take() {
            p.done.complete(());
        }
        held
    };
    inner.store.clear();
    timers::cancel(inner);
    if tell_others {
        inner.post(Message::Logout { reason });
    }
    if held.is_some() {
        inner.emit(EventKind::Logout, &[("reason", reason.as_str().into())]);
    }
    held
}

/// Handles one raw message from another tab. Anything malformed is ignored.
pub fn on_message(weak: &Weak<Inner>, data: JsValue) {
    let Some(inner) = weak.upgrade() else { return };
    if inner.disposed.get() {
        return;
    }
    if !data.is_object() {
        return;
    }
    let get = |k: &str| Value::field(&data, k);
    let Ok((from, msg)) = Envelope::decode(&get, &inner.config.namespace, &inner.tab_id) else { return };
    match msg {
        Message::Tokens { tokens, .. } => {
            let newer = inner.state.borrow().tokens.as_ref().is_none_or(|t| tokens.issued_at > t.issued_at);
            if newer {
                install(&inner, tokens, Source::Peer);
            }
            inner.ready.complete(());
        }
        Message::Logout { reason } => {
            end(&inner, reason.seen_from_other_tab(), false);
        }
        Message::Refreshing => {
            let mut st = inner.state.borrow_mut();
            match st.peer_refresh.as_mut() {
                Some(p) if from < p.from => p.from = from,
                Some(_) => {}
                None => st.peer_refresh = Some(PeerRefresh { from, done: Flight::new() }),
            }
        }
        Message::RefreshFailed => {
            // Back off with the tab that failed, so that tabs don't take turns hammering.
            refresh::back_off(&inner);
            if let Some(p) = inner.state.borrow_mut().peer_refresh.take() {
                p.done.complete(());
            }
            timers::schedule(&inner);
        }
        Message::Hello => {
            let tokens = inner.tokens().filter(|t| t.expires_at > inner.now() || t.refresh_token.is_some());
            if let Some(tokens) = tokens {
                inner.post(Message::Tokens { tokens, why: Why::Share });
            }
        }
    }
}

/// In `local` mode, adopt newer tokens that another tab writes to storage: this keeps tabs
/// in step even where BroadcastChannel is missing.
fn watch_storage(inner: &Rc<Inner>) {
    let Some(window) = crate::page::window() else { return };
    let weak = Rc::downgrade(inner);
    let key = crate::store::key(&inner.config.namespace);
    let listener = timers::Listener::new(&window, "storage", move |e: JsValue| {
        let Some(inner) = weak.upgrade() else { return };
        // Read as plain fields: the event's own bindings would add three imports.
        let ours = matches!(Value::field(&e, "key"), Value::Str(k) if k == key);
        if !ours || !matches!(Value::field(&e, "newValue"), Value::Str(_)) || inner.disposed.get() {
            return;
        }
        if let Ok(Some(tokens)) = inner.store.load() {
            if inner.state.borrow().tokens.as_ref().is_some_and(|t| tokens.issued_at > t.issued_at) {
                install(&inner, tokens, Source::Peer);
            }
        }
    });
    *inner.storage_listener.borrow_mut() = listener;
}

/// Start-up: restore from storage, open the channel, ask open tabs, arm timers.
/// `early_error` (storage could not be opened) is reported like a failed restore.
pub fn start(inner: &Rc<Inner>, early_error: Option<Error>) {
    let weak = Rc::downgrade(inner);
    if inner.config.cross_tab && inner.store.mode() == crate::config::StorageMode::Local {
        watch_storage(inner);
    }
    if inner.config.cross_tab {
        let w = weak.clone();
        *inner.channel.borrow_mut() = Channel::open(&inner.config.namespace, move |data| on_message(&w, data));
    }
    timers::listen(inner);
    let restored = inner.store.load();
    let startup_error = early_error.or(match restored {
        Ok(Some(tokens)) if tokens.expires_at > inner.now() || tokens.refresh_token.is_some() => {
            install(inner, tokens, Source::Restored);
            None
        }
        Ok(Some(_)) => {
            inner.store.clear();
            None
        }
        Ok(None) => None,
        Err(e) => Some(e),
    });
    let ask_tabs = inner.tokens().is_none() && inner.channel.borrow().as_ref().is_some_and(|c| !c.via_storage());
    if ask_tabs {
        inner.post(Message::Hello);
        timers::complete_after(inner.config.restore_timeout_ms, &inner.ready);
    } else {
        inner.ready.complete(());
    }
    // Reported after the constructor returns, so that listeners added right after see it.
    crate::flight::spawn(async move {
        let Some(inner) = weak.upgrade() else { return };
        if let Some(e) = startup_error {
            inner.emit_error(&e);
        }
        timers::check(&inner);
    });
}

/// The access token to send now, refreshing first if it is (nearly) expired; `None` when
/// signed out.
pub async fn fresh_token(inner: &Rc<Inner>) -> Result<Option<String>, Error> {
    inner.ready.wait().await;
    for _ in 0..2 {
        let Some((action, token)) = inner.decide() else { return Ok(None) };
        match action {
            Action::Use => return Ok(Some(token)),
            Action::UseAndRefresh => {
                refresh::start(inner);
                return Ok(Some(token));
            }
            Action::RefreshFirst => refresh::refresh(inner).await?,
            Action::Unavailable => {
                // Backing off here, but another tab is refreshing right now: wait for it.
                let peer = inner.state.borrow().peer_refresh.clone();
                let Some(peer) = peer else {
                    return Err(Error::RefreshFailed("the token endpoint is failing; backing off"));
                };
                timers::complete_after(inner.config.lock_timeout_ms, &peer.done);
                peer.done.wait().await;
            }
        }
    }
    match inner.decide() {
        Some((Action::Use | Action::UseAndRefresh, token)) => Ok(Some(token)),
        Some(_) => Err(Error::RefreshFailed("the new token is already expired")),
        None => Ok(None),
    }
}

/// Tears everything down: timers, listeners, channel, subscribers.
pub fn dispose(inner: &Rc<Inner>) {
    inner.disposed.set(true);
    timers::cancel(inner);
    timers::unlisten(inner);
    inner.channel.borrow_mut().take();
    inner.storage_listener.borrow_mut().take();
    inner.events.clear();
    inner.ready.complete(());
}
