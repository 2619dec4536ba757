//! The world: one seeded schedule of events on a virtual clock. It owns the clock (true time
//! `now` and the wall clock the tabs read), the event queue, the randomness, the trace, and
//! the step loop that hands each event to its piece and then runs the one invariants pass.

use std::collections::BTreeMap;
use std::fmt;

use wasm_session::core::machine::{Input, Reply, Ticket};

use crate::auth_server::{AuthServer, Fault};
use crate::browser::Browser;
use crate::cookie_server::CookieServer;
use crate::invariants::{Fact, Invariant, Invariants};
use crate::provider::ProviderModel;
use crate::saboteurs::Planted;
use crate::setup::Setup;
use crate::tab::Tab;

/// Wall-clock start: 2026-11-28.
pub const EPOCH: f64 = 1_795_000_000_000.0;

/// The seed's randomness (splitmix64): every choice of the world comes from it, in order.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

/// Something the world does next: a tab's input, its timer, a request reaching a server, or
/// an act of the app, the user or the environment.
// Inputs are the big variant and the common one: boxing them would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Ev {
    Input(usize, Input),
    /// DPoP: a message that came with the sender's key (a key number).
    Keyed(usize, Input, u64),
    Timer(usize, u64),
    ClientTimeout(usize, u32),
    Server(usize, u32, String, Fault),
    Revoke(usize, String, Option<Ticket>),
    Api(usize, Ticket, Option<String>),
    Act(Act),
}

impl Ev {
    /// The tab the event happens in: dropped if it closed, kept until it thaws if frozen.
    fn tab(&self) -> Option<usize> {
        match self {
            Ev::Input(t, _) | Ev::Keyed(t, _, _) | Ev::Timer(t, _) | Ev::ClientTimeout(t, _) | Ev::Api(t, _, _) => {
                Some(*t)
            }
            Ev::Revoke(t, _, Some(_)) => Some(*t),
            Ev::Revoke(_, _, None) | Ev::Server(..) | Ev::Act(_) => None,
        }
    }
}

/// What the app, the user and the environment do (see `app.rs` and `chaos.rs`).
#[derive(Clone, Debug)]
pub enum Act {
    /// The user does something in a tab.
    Activity(usize),
    Fetch(usize),
    Login(usize),
    Logout(usize),
    Refresh(usize),
    Open,
    Close(usize),
    Freeze(usize, f64),
    Thaw(usize),
    Sleep(f64),
    Wake,
    ClockBack(f64),
    Offline(f64),
    Online,
    /// The browser tab comes back from the provider with a callback URL (and the
    /// sessionStorage of the page that left, if any).
    Return {
        url: String,
        kept: Option<Box<wasm_session::core::oidc::Pending>>,
    },
    Chaos,
}

/// What a run did, for the summary line and the scenarios' assertions.
#[derive(Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub checks: u64,
    pub token_requests: u64,
    pub refreshes: u64,
    pub excused_reuse: u64,
    pub revocations: u64,
    pub api_ok: u64,
    pub api_401_to_app: u64,
    pub fetch_errors: u64,
    pub foreign_requests: u64,
    pub logins: u64,
    /// OpenID Connect: code exchanges, and sign-ins answered with their app state.
    pub code_exchanges: u64,
    pub oidc_sign_ins: u64,
}

impl Stats {
    pub fn add(&mut self, s: &Stats) {
        self.steps += s.steps;
        self.checks += s.checks;
        self.token_requests += s.token_requests;
        self.refreshes += s.refreshes;
        self.excused_reuse += s.excused_reuse;
        self.revocations += s.revocations;
        self.api_ok += s.api_ok;
        self.api_401_to_app += s.api_401_to_app;
        self.fetch_errors += s.fetch_errors;
        self.foreign_requests += s.foreign_requests;
        self.logins += s.logins;
        self.code_exchanges += s.code_exchanges;
        self.oidc_sign_ins += s.oidc_sign_ins;
    }
}

/// An invariant the pass found broken, with what a person needs to replay it.
#[derive(Debug)]
pub struct Violation {
    pub seed: u64,
    pub invariant: Invariant,
    pub why: String,
    /// The seed, the setup, the trace's tail and the replay command.
    pub report: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

pub struct World {
    pub setup: Setup,
    pub rng: Rng,
    pub seed: u64,
    /// True time since the start (ms): the queue's clock.
    pub now: f64,
    /// The wall clock the tabs read is `now + offset` (stepped back by `Act::ClockBack`).
    pub offset: f64,
    /// Events by (time in µs, order of scheduling).
    queue: BTreeMap<(u64, u64), Ev>,
    next_ev: u64,
    /// The servers' one counter for families and tokens.
    serial: u64,
    pub tabs: Vec<Tab>,
    pub browser: Browser,
    pub server: AuthServer,
    pub cookie_server: CookieServer,
    pub provider: ProviderModel,
    pub dpop: crate::dpop::DpopModel,
    pub trace: Vec<String>,
    pub stats: Stats,
    pub sleeping: bool,
    /// The end of a random run: no more chaos.
    pub quiet: bool,
    /// The last user activity in any tab (true time).
    pub last_activity: f64,
    /// What happened since the last invariants pass, for it to judge.
    pub facts: Vec<Fact>,
    invariants: Invariants,
    /// The planted bugs' own memory (empty unless `setup.saboteur` is on).
    pub planted: Planted,
    /// The first broken invariant: the run stops there.
    pub violation: Option<Violation>,
}

fn micros(t: f64) -> u64 {
    (t * 1000.0).round().max(0.0) as u64
}

impl World {
    pub fn new(setup: Setup, seed: u64) -> World {
        let mut w = World {
            setup,
            rng: Rng(seed ^ 0x5EED),
            seed,
            now: 0.0,
            offset: EPOCH,
            queue: BTreeMap::new(),
            next_ev: 0,
            serial: 0,
            tabs: Vec::new(),
            browser: Browser::default(),
            server: AuthServer::default(),
            cookie_server: CookieServer::default(),
            provider: ProviderModel::default(),
            dpop: Default::default(),
            trace: Vec::new(),
            stats: Stats::default(),
            sleeping: false,
            quiet: false,
            last_activity: 0.0,
            facts: Vec::new(),
            invariants: Invariants::default(),
            planted: Planted::default(),
            violation: None,
        };
        for _ in 0..w.setup.tabs {
            w.open_tab();
        }
        w
    }

    /// The wall clock the tabs read.
    pub fn wall(&self) -> f64 {
        self.now + self.offset
    }

    /// Schedules `ev` `delay` ms from now.
    pub fn at(&mut self, delay: f64, ev: Ev) {
        self.next_ev += 1;
        self.queue.insert((micros(self.now + delay.max(0.0)), self.next_ev), ev);
    }

    pub fn log(&mut self, line: String) {
        let line = format!("{:>10.1} {}", self.now, line);
        self.trace.push(line);
    }

    /// The next number of the servers' counter.
    pub fn serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    pub fn live(&self, t: usize) -> bool {
        self.tabs[t].alive
    }

    /// What the app, the user or the environment does now.
    pub fn act(&mut self, act: Act) {
        self.log(format!("act {act:?}"));
        match act {
            Act::Activity(t) => self.user_activity(t),
            Act::Fetch(t) => self.app_fetch(t),
            Act::Login(t) => self.app_login(t),
            Act::Logout(t) => self.app_logout(t),
            Act::Refresh(t) => self.app_refresh(t),
            Act::Open => self.open_by_user(),
            Act::Close(t) => self.close(t),
            Act::Freeze(t, ms) => self.freeze(t, ms),
            Act::Thaw(t) => self.thaw(t),
            Act::Sleep(ms) => self.sleep(ms),
            Act::Wake => self.wake(),
            Act::ClockBack(ms) => self.offset -= ms,
            Act::Offline(ms) => self.offline(ms),
            Act::Online => self.back_online(),
            Act::Chaos => self.chaos(),
            Act::Return { url, kept } => self.callback_page(url, kept.map(|k| *k)),
        }
    }

    /// Runs the next event, then the invariants pass. False when nothing is left.
    fn step(&mut self) -> bool {
        let Some(((time, _), ev)) = self.queue.pop_first() else { return false };
        self.now = time as f64 / 1000.0;
        self.stats.steps += 1;
        if let Some(t) = ev.tab() {
            if !self.tabs[t].alive {
                return true;
            }
            if self.tabs[t].frozen {
                self.tabs[t].deferred.push(ev);
                return true;
            }
        }
        match ev {
            Ev::Input(t, input) => {
                // A refresh answer after the client gave up is dropped, as fetch does.
                if let Input::RefreshReply { id, reply } = &input {
                    let Some(r) = self.tabs[t].requests.get_mut(id) else { return true };
                    if r.done {
                        return true;
                    }
                    r.done = true;
                    if matches!(reply, Reply::Tokens { .. }) {
                        let rt = r.refresh_token.clone();
                        let now = self.now;
                        if let Some(s) = self.server.rts.get_mut(&rt) {
                            s.delivered_at.get_or_insert(now);
                        }
                    }
                }
                self.deliver(t, input);
            }
            Ev::Keyed(t, input, key) => self.deliver_keyed(t, input, key),
            Ev::Timer(t, gen) => {
                if self.tabs[t].timer_gen == gen {
                    self.deliver(t, Input::Tick);
                }
            }
            Ev::ClientTimeout(t, id) => {
                if let Some(r) = self.tabs[t].requests.get_mut(&id).filter(|r| !r.done) {
                    r.done = true;
                    self.deliver(t, Input::RefreshReply { id, reply: Reply::Timeout });
                }
            }
            Ev::Server(t, id, rt, fault) => self.server_refresh(t, id, rt, fault),
            Ev::Revoke(t, token, ticket) => {
                self.revoke(&token);
                if ticket.is_some() {
                    self.deliver(t, Input::RevokeReply { ticket, error: None });
                }
            }
            Ev::Api(t, ticket, carried) => self.api(t, ticket, carried),
            Ev::Act(act) => self.act(act),
        }
        self.judge();
        true
    }

    /// The one place the invariants are checked: after every step.
    fn judge(&mut self) {
        self.stats.checks += 1;
        let facts = std::mem::take(&mut self.facts);
        let mut invariants = std::mem::take(&mut self.invariants);
        let verdict = invariants.check(self, &facts);
        self.invariants = invariants;
        if let (Err((invariant, why)), None) = (verdict, &self.violation) {
            self.violation = Some(self.report(invariant, why));
        }
    }

    fn report(&self, invariant: Invariant, why: String) -> Violation {
        let keep = std::env::var("SIM_TAIL").ok().and_then(|s| s.parse().ok()).unwrap_or(80);
        let tail: Vec<&str> = self.trace.iter().rev().take(keep).rev().map(String::as_str).collect();
        let saboteur = self.setup.saboteur.map(|s| format!("SIM_SABOTEUR={} ", s.name())).unwrap_or_default();
        let report = format!(
            "invariant broken (seed {}, setup {:?}):\n  {invariant:?}: {why}\n--- last steps ---\n{}\n\
             replay: SIM_SEED={} {saboteur}cargo test --test sim replay -- --ignored --nocapture",
            self.seed,
            self.setup,
            tail.join("\n"),
            self.seed
        );
        Violation { seed: self.seed, invariant, why, report }
    }

    /// Runs `ms` of simulated time, or until an invariant breaks.
    pub fn try_run_for(&mut self, ms: f64) -> Result<(), &Violation> {
        let end = self.now + ms;
        while self.violation.is_none() {
            match self.queue.first_key_value() {
                Some(((time, _), _)) if *time as f64 / 1000.0 <= end => self.step(),
                _ => break,
            };
        }
        match &self.violation {
            Some(v) => Err(v),
            None => {
                self.now = end;
                Ok(())
            }
        }
    }

    /// Runs `ms` of simulated time; a broken invariant fails the test with its report.
    pub fn run_for(&mut self, ms: f64) {
        if let Err(v) = self.try_run_for(ms) {
            panic!("{v}");
        }
    }
}
