//! A tab: a real [`Machine`] and what the page around it keeps (its timer, its callers, its
//! requests, its sessionStorage, the events it emitted). [`World::deliver`] hands a machine
//! one input; its effects are routed to the browser models, the servers and the app.

use std::collections::BTreeMap;

use wasm_session::core::config::StorageMode;
use wasm_session::core::events::{Event, LogoutReason};
use wasm_session::core::machine::{Boot, Credential, Effect, Input, Machine, Ticket};
use wasm_session::core::store::Stored;

use crate::app::Call;
use crate::browser::read_stored;
use crate::invariants::Fact;
use crate::world::{Ev, World};

/// A refresh request of a tab (cookie mode: an extension under a CSRF token).
#[derive(Debug)]
pub struct Request {
    pub refresh_token: String,
    pub sent_at: f64,
    /// Answered, or given up at its timeout.
    pub done: bool,
    /// DPoP: the key and nonce its proof was signed with.
    pub proof: (Option<u64>, Option<String>),
}

pub struct Tab {
    pub id: String,
    pub machine: Machine,
    pub alive: bool,
    pub frozen: bool,
    /// Events that came while frozen, run in order when it thaws.
    pub deferred: Vec<Ev>,
    pub thawed_at: f64,
    /// The one timer: an `Ev::Timer` of an older generation was replaced.
    pub timer_gen: u64,
    pub session_store: Option<String>,
    /// The OpenID Connect login kept in this tab's sessionStorage across the redirect.
    pub oidc_login: Option<wasm_session::core::oidc::Pending>,
    /// The app's callers waiting for an answer, by ticket.
    pub calls: BTreeMap<Ticket, Call>,
    pub next_ticket: Ticket,
    pub requests: BTreeMap<u32, Request>,
    pub events: Vec<Event>,
    pub ready_at: Option<f64>,
    pub opened_at: f64,
}

impl World {
    /// Opens a tab: a new machine, started with what storage holds.
    pub fn open_tab(&mut self) -> usize {
        let t = self.tabs.len();
        let id = format!("tab{t:02}{:04x}", self.rng.next() & 0xffff);
        let machine = Machine::new(self.setup.config.clone(), id.clone(), self.rng.next());
        self.tabs.push(Tab {
            id,
            machine,
            alive: true,
            frozen: false,
            deferred: Vec::new(),
            thawed_at: self.now,
            timer_gen: 0,
            session_store: None,
            oidc_login: None,
            calls: BTreeMap::new(),
            next_ticket: 0,
            requests: BTreeMap::new(),
            events: Vec::new(),
            ready_at: None,
            opened_at: self.now,
        });
        let stored = match self.setup.storage {
            StorageMode::Local => read_stored(self.browser.local.as_deref(), &self.setup.config.namespace),
            _ => Stored::Empty,
        };
        self.log(format!("open {t}"));
        self.last_activity = self.now; // opening a tab is activity
        let start = Input::Start(Boot {
            stored,
            storage: self.setup.storage,
            storage_error: None,
            transport: self.setup.transport,
            locks: self.setup.locks,
            online: self.browser.online,
        });
        self.deliver(t, start);
        if self.setup.locks {
            let others = (0..self.tabs.len()).any(|u| u != t && self.tabs[u].alive);
            self.at(1.0, Ev::Input(t, Input::Presence { others }));
        }
        t
    }

    /// Hands an input to a tab's machine (or keeps it until the tab thaws), and carries out
    /// its effects. Scenarios call it to drive a tab's inputs directly.
    pub fn deliver(&mut self, t: usize, input: Input) {
        if !self.tabs[t].alive {
            return;
        }
        if self.tabs[t].frozen {
            self.tabs[t].deferred.push(Ev::Input(t, input));
            return;
        }
        let Some(input) = self.sabotage_input(t, input) else { return };
        let short = format!("{input:?}");
        self.log(format!("tab {t} <- {}", &short[..short.len().min(160)]));
        let wall = self.wall();
        let held = self.tabs[t].machine.tokens().map(|s| s.access_token.clone());
        let effects = self.tabs[t].machine.handle(wall, self.now, input);
        // Whether the cookie session it held was still on the server when it ended it.
        let ended = effects.iter().any(|e| matches!(e, Effect::Emit(Event::Logout { reason: LogoutReason::Expired })));
        if let Some(csrf) = held.filter(|_| ended && self.cookie_mode()) {
            let server_has_it = self.cookie_session_live(&csrf);
            self.facts.push(Fact::CookieSessionEnded { tab: t, server_has_it });
        }
        for e in effects {
            self.apply(t, e);
        }
    }

    /// Carries out one effect of tab `t`'s machine.
    fn apply(&mut self, t: usize, effect: Effect) {
        let short = format!("{effect:?}");
        self.log(format!("tab {t} -> {}", &short[..short.len().min(160)]));
        if self.setup.saboteur.is_none() {
            return self.carry_out(t, effect);
        }
        for e in self.sabotage_effect(t, effect) {
            self.carry_out(t, e);
        }
    }

    fn carry_out(&mut self, t: usize, effect: Effect) {
        match effect {
            Effect::Timer(at) => {
                self.tabs[t].timer_gen += 1;
                if let Some(at) = at {
                    let gen = self.tabs[t].timer_gen;
                    let delay = at - self.wall();
                    self.at(delay, Ev::Timer(t, gen));
                }
            }
            Effect::Post(msg) => self.post(t, msg),
            Effect::Save(record) => self.save(t, record),
            Effect::Clear => self.clear(t),
            Effect::Emit(event) => self.tabs[t].events.push(event),
            Effect::Answer(ticket, answer) => self.answered(t, ticket, answer),
            Effect::Ready(_) => self.tabs[t].ready_at = Some(self.now),
            Effect::Refresh { id, credential: Credential::Csrf(csrf) } => self.extend(t, id, csrf),
            Effect::Refresh { id, credential: Credential::RefreshToken(rt) | Credential::AccessToken(rt) } => {
                self.send_refresh(t, id, rt)
            }
            Effect::ReadSession => self.read_session(t),
            Effect::Revoke { credential, ticket } => {
                let token = credential.secret().to_string();
                let d = self.rng.range(2.0, 40.0);
                self.at(d, Ev::Revoke(t, token, ticket));
            }
            Effect::AcquireLock { id, steal } => self.acquire(t, id, steal),
            Effect::ReleaseLock { id } => self.release(t, id),
            Effect::Discover => self.discover(t),
            Effect::Navigate { ticket, params, login, .. } => self.navigate(t, ticket, params, login),
            Effect::NavigatePopup { params, .. } => self.navigate_popup(t, params),
            Effect::ClosePopup | Effect::CleanAddressBar { .. } => {}
            Effect::DiscardLogin => self.tabs[t].oidc_login = None,
            Effect::ExchangeCode { id, form, .. } => self.exchange(t, id, &form),
            Effect::Key(op) => self.key_op(t, op),
        }
    }

    /// The reasons of the logouts tab `t` emitted.
    pub fn logouts(&self, t: usize) -> Vec<LogoutReason> {
        self.tabs[t]
            .events
            .iter()
            .filter_map(|e| if let Event::Logout { reason } = e { Some(*reason) } else { None })
            .collect()
    }
}
