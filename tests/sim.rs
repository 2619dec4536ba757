//! The deterministic multi-tab simulation: 1 to 6 tabs, each a real [`Machine`], in one
//! seeded world with a virtual clock, a BroadcastChannel model (in order per sender, any
//! interleaving between senders, delays), a Web Locks model (FIFO grants, steal, release on
//! close), shared storage with storage events, and a model auth server with rotating refresh
//! tokens, reuse detection that revokes the family, revocation, and faults (5xx, a proxy's
//! HTML 403, hangs, dropped connections, slow success, success after the client's timeout).
//! Tabs open, close, crash mid-request, freeze and thaw; the laptop sleeps; the wall clock
//! steps backwards; the app calls fetch, refresh and logout at random times.
//!
//! Invariants checked after every step (see [`World::check`]); a failure prints its seed and
//! the trace, and `SIM_SEED=<seed> cargo test --test sim replay -- --nocapture` replays it.
//! `SIM_SEEDS` sets how many seeded schedules `random_schedules` explores (`make test`: 2000;
//! `make fuzz`: 100000).
#![cfg(not(target_arch = "wasm32"))]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use wasm_session::core::config::{Config, Mode, StorageMode};
use wasm_session::core::events::{Event, LogoutReason};
use wasm_session::core::machine::{Answer, Boot, Effect, Input, Machine, Reply, Ticket, Transport};
use wasm_session::core::policy;
use wasm_session::core::protocol::{Message, Wire};
use wasm_session::core::store::{Record, Stored};
use wasm_session::core::token::{Seconds, SessionResponse, TokenResponse, TokenSet};
use wasm_session::core::Field;

// ---- randomness ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

// ---- the world ----------------------------------------------------------------------------

/// Longest delay of a message between tabs, and of a storage event.
const MSG_DELAY_MAX: f64 = 20.0;
/// A logout must have reached every live tab this long after it started.
const LOGOUT_BOUND: f64 = 1_000.0;

#[derive(Clone, Debug)]
struct Setup {
    tabs: usize,
    storage: StorageMode,
    transport: Transport,
    locks: bool,
    ttl_s: f64,
    config: Config,
    /// Probability that a refresh request meets a fault.
    fault_rate: f64,
    /// Random actions: freezes, crashes, sleeps, clock steps, offline spells.
    chaos: bool,
    fetch_every_ms: f64,
    /// The user does something in some tab about this often.
    activity_every_ms: f64,
    duration_ms: f64,
    /// Cookie mode: the server issues a new CSRF token with each extension (else the
    /// session keeps its token, as the demo server does).
    csrf_rotates: bool,
}

impl Setup {
    fn new(tabs: usize, storage: StorageMode) -> Setup {
        let config = Config {
            token_url: "https://app.example/auth/token".into(),
            revoke_url: Some("https://app.example/auth/revoke".into()),
            storage,
            ..Config::default()
        };
        Setup {
            tabs,
            storage,
            transport: Transport::Broadcast,
            locks: true,
            ttl_s: 30.0,
            config,
            fault_rate: 0.0,
            chaos: false,
            fetch_every_ms: 500.0,
            activity_every_ms: 10_000.0,
            duration_ms: 120_000.0,
            csrf_rotates: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    Status503,
    Html403,
    Hang,
    Drop { processed: bool },
    Slow,
    Late,
}

#[derive(Clone, Debug)]
enum Act {
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
    Chaos,
}

// Inputs are the big variant and the common one: boxing them would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum Ev {
    Input(usize, Input),
    Timer(usize, u64),
    ClientTimeout(usize, u32),
    Server(usize, u32, String, Fault),
    Revoke(usize, String, Option<Ticket>),
    Api(usize, Ticket, Option<String>),
    Act(Act),
}

impl Ev {
    fn tab(&self) -> Option<usize> {
        match self {
            Ev::Input(t, _) | Ev::Timer(t, _) | Ev::ClientTimeout(t, _) | Ev::Api(t, _, _) => Some(*t),
            Ev::Revoke(t, _, Some(_)) => Some(*t),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
enum Call {
    Fetch { since: f64 },
    Retry { since: f64 },
    Refresh { since: f64 },
    Logout { since: f64 },
    SignIn,
}

#[derive(Debug)]
struct Request {
    refresh_token: String,
    sent_at: f64,
    done: bool,
}

struct Tab {
    id: String,
    machine: Machine,
    alive: bool,
    frozen: bool,
    deferred: Vec<Ev>,
    thawed_at: f64,
    timer_gen: u64,
    session_store: Option<String>,
    calls: HashMap<Ticket, Call>,
    next_ticket: Ticket,
    requests: HashMap<u32, Request>,
    events: Vec<Event>,
    ready_at: Option<f64>,
    opened_at: f64,
}

#[derive(Debug, Default)]
struct Rt {
    family: u64,
    used: bool,
    /// When a rotation of this token was answered and the answer reached its tab's machine.
    delivered_at: Option<f64>,
    /// When the server rotated it.
    rotated_at: f64,
}

#[derive(Default)]
struct Server {
    next: u64,
    rts: HashMap<String, Rt>,
    ats: HashMap<String, (u64, f64)>,
    revoked: HashSet<u64>,
    /// Per family: when its tokens were last issued (true time), and whether an explicit
    /// refresh or a 401 asked for a new one since.
    issued: HashMap<u64, (f64, bool)>,
    always_401: bool,
    /// Cookie mode: each session's current CSRF token and expiry (true time), by family.
    cookie_sessions: HashMap<u64, (String, f64)>,
    /// When each cookie session began (wall clock), for `loginAt`.
    cookie_login: HashMap<u64, f64>,
    forced: Vec<Fault>,
    /// Extra delay before a request reaches the server, and before its answer comes back.
    slow_ms: f64,
    slow_answer_ms: f64,
}

#[derive(Debug, Default)]
struct Stats {
    steps: u64,
    checks: u64,
    token_requests: u64,
    refreshes: u64,
    excused_reuse: u64,
    revocations: u64,
    api_ok: u64,
    api_401_to_app: u64,
    fetch_errors: u64,
    foreign_requests: u64,
    logins: u64,
}

struct World {
    setup: Setup,
    rng: Rng,
    seed: u64,
    now: f64,
    offset: f64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    evs: HashMap<u64, Ev>,
    next_ev: u64,
    tabs: Vec<Tab>,
    server: Server,
    local: Option<String>,
    holder: Option<(usize, u32)>,
    waiting: Vec<(usize, u32)>,
    online: bool,
    fifo: HashMap<(usize, usize), f64>,
    logouts: Vec<(u64, f64)>,
    trace: Vec<String>,
    stats: Stats,
    sleeping: bool,
    quiet: bool,
    /// The browser's cookie jar, shared by the tabs: the cookie session's family.
    cookie: Option<u64>,
    /// The last user activity in any tab (true time).
    last_activity: f64,
}

/// Wall-clock start: 2026-11-28.
const EPOCH: f64 = 1_795_000_000_000.0;

fn micros(t: f64) -> u64 {
    (t * 1000.0).round().max(0.0) as u64
}

impl World {
    fn new(setup: Setup, seed: u64) -> World {
        let mut w = World {
            setup,
            rng: Rng(seed ^ 0x5EED),
            seed,
            now: 0.0,
            offset: EPOCH,
            queue: BinaryHeap::new(),
            evs: HashMap::new(),
            next_ev: 0,
            tabs: Vec::new(),
            server: Server { slow_ms: 0.0, ..Server::default() },
            local: None,
            holder: None,
            waiting: Vec::new(),
            online: true,
            fifo: HashMap::new(),
            logouts: Vec::new(),
            trace: Vec::new(),
            stats: Stats::default(),
            sleeping: false,
            quiet: false,
            cookie: None,
            last_activity: 0.0,
        };
        for _ in 0..w.setup.tabs {
            w.open_tab();
        }
        w
    }

    fn wall(&self) -> f64 {
        self.now + self.offset
    }

    fn at(&mut self, delay: f64, ev: Ev) {
        self.next_ev += 1;
        self.evs.insert(self.next_ev, ev);
        self.queue.push(Reverse((micros(self.now + delay.max(0.0)), self.next_ev)));
    }

    fn log(&mut self, line: String) {
        let line = format!("{:>10.1} {}", self.now, line);
        self.trace.push(line);
    }

    fn live(&self, t: usize) -> bool {
        self.tabs[t].alive
    }

    // ---- tabs -----------------------------------------------------------------------------

    fn open_tab(&mut self) -> usize {
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
            calls: HashMap::new(),
            next_ticket: 0,
            requests: HashMap::new(),
            events: Vec::new(),
            ready_at: None,
            opened_at: self.now,
        });
        let stored = match self.setup.storage {
            StorageMode::Local => read_stored(self.local.as_deref(), &self.setup.config.namespace),
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
            online: self.online,
        });
        self.deliver(t, start);
        if self.setup.locks {
            let others = (0..self.tabs.len()).any(|u| u != t && self.tabs[u].alive);
            self.at(1.0, Ev::Input(t, Input::Presence { others }));
        }
        t
    }

    fn ticket(&mut self, t: usize, call: Call) -> Ticket {
        let tab = &mut self.tabs[t];
        tab.next_ticket += 1;
        tab.calls.insert(tab.next_ticket, call);
        tab.next_ticket
    }

    /// Hands an input to a tab's machine (or keeps it until the tab thaws).
    fn deliver(&mut self, t: usize, input: Input) {
        if !self.tabs[t].alive {
            return;
        }
        if self.tabs[t].frozen {
            self.tabs[t].deferred.push(Ev::Input(t, input));
            return;
        }
        let short = format!("{input:?}");
        self.log(format!("tab {t} <- {}", &short[..short.len().min(160)]));
        let wall = self.wall();
        let held = self.tabs[t].machine.tokens().map(|s| s.access_token.clone());
        let effects = self.tabs[t].machine.handle(wall, self.now, input);
        // A cookie session ends as expired (here, or told by another tab) only when the
        // server no longer has it: not a newer one that a sign-in started meanwhile.
        let ended = effects.iter().any(|e| matches!(e, Effect::Emit(Event::Logout { reason: LogoutReason::Expired })));
        if ended && self.cookie_mode() && held.is_some_and(|csrf| self.cookie_session_live(&csrf)) {
            self.fail(format!("tab {t} ended a cookie session that the server still has"));
        }
        for e in effects {
            self.apply(t, e);
        }
    }

    fn apply(&mut self, t: usize, effect: Effect) {
        let short = format!("{effect:?}");
        self.log(format!("tab {t} -> {}", &short[..short.len().min(160)]));
        match effect {
            Effect::Timer(at) => {
                self.tabs[t].timer_gen += 1;
                if let Some(at) = at {
                    let gen = self.tabs[t].timer_gen;
                    let delay = at - self.wall();
                    self.at(delay, Ev::Timer(t, gen));
                }
            }
            Effect::Post(msg) => {
                if let Message::Logout { seq, .. } = &msg {
                    self.logouts.push((*seq, self.now));
                }
                // Through the wire format and JSON, as a real message travels.
                let wire = Wire::seal(&self.setup.config.namespace, &self.tabs[t].id, &msg);
                let json = serde_json::to_string(&wire).expect("wire record serializes");
                for u in 0..self.tabs.len() {
                    if u == t || !self.tabs[u].alive {
                        continue;
                    }
                    let back: Wire = serde_json::from_str(&json).expect("wire record parses");
                    let Ok(env) = back.open(&self.setup.config.namespace, &self.tabs[u].id) else { continue };
                    let delay = self.rng.range(0.0, MSG_DELAY_MAX);
                    let when = (self.now + delay).max(*self.fifo.get(&(t, u)).unwrap_or(&0.0));
                    self.fifo.insert((t, u), when);
                    let now = self.now;
                    self.at(when - now, Ev::Input(u, Input::Message(env)));
                }
            }
            Effect::Save(record) => {
                let json = serde_json::to_string(&record).expect("record serializes");
                match self.setup.storage {
                    StorageMode::Local => {
                        self.local = Some(json);
                        self.storage_event(t);
                    }
                    StorageMode::Session => self.tabs[t].session_store = Some(json),
                    StorageMode::Memory => panic!("memory mode wrote storage"),
                }
            }
            Effect::Clear => match self.setup.storage {
                StorageMode::Local => {
                    if self.local.take().is_some() {
                        self.storage_event(t);
                    }
                }
                _ => self.tabs[t].session_store = None,
            },
            Effect::Emit(event) => self.tabs[t].events.push(event),
            Effect::Answer(ticket, answer) => self.answered(t, ticket, answer),
            Effect::Ready(_) => self.tabs[t].ready_at = Some(self.now),
            Effect::Refresh { id, refresh_token } if self.cookie_mode() => self.extend(t, id, refresh_token),
            Effect::Refresh { id, refresh_token } => self.send_refresh(t, id, refresh_token),
            Effect::ReadSession => {
                let reply = self.cookie_session().unwrap_or(Reply::Status { status: 401, oauth_error: None });
                let d = self.rng.range(2.0, 30.0);
                self.at(d, Ev::Input(t, Input::SessionRead { reply }));
            }
            Effect::Revoke { token, ticket } => {
                let d = self.rng.range(2.0, 40.0);
                self.at(d, Ev::Revoke(t, token, ticket));
            }
            Effect::AcquireLock { id, steal } => self.acquire(t, id, steal),
            Effect::ReleaseLock { id } => self.release(t, id),
        }
    }

    fn storage_event(&mut self, writer: usize) {
        for u in 0..self.tabs.len() {
            if u != writer && self.tabs[u].alive {
                let stored = read_stored(self.local.as_deref(), &self.setup.config.namespace);
                let d = self.rng.range(0.0, MSG_DELAY_MAX);
                self.at(d, Ev::Input(u, Input::StorageChanged(stored)));
            }
        }
    }

    // ---- locks ----------------------------------------------------------------------------

    fn grant(&mut self, t: usize, id: u32, stolen: bool, waited: bool) {
        self.holder = Some((t, id));
        let stored = (self.setup.storage == StorageMode::Local)
            .then(|| read_stored(self.local.as_deref(), &self.setup.config.namespace));
        let d = self.rng.range(0.0, 3.0);
        self.at(d, Ev::Input(t, Input::LockGranted { id, stolen, waited, stored }));
    }

    fn acquire(&mut self, t: usize, id: u32, steal: bool) {
        match self.holder {
            Some((h, hid)) if steal => {
                self.log(format!("lock stolen from {h} by {t}"));
                self.at(0.0, Ev::Input(h, Input::LockLost { id: hid }));
                self.grant(t, id, true, false);
            }
            Some(_) => self.waiting.push((t, id)),
            None => self.grant(t, id, false, false),
        }
    }

    /// Releases the lock held by request `id` of tab `t`, or drops that request from the
    /// queue.
    fn release(&mut self, t: usize, id: u32) {
        if self.holder == Some((t, id)) {
            self.holder = None;
            while !self.waiting.is_empty() {
                let (next, nid) = self.waiting.remove(0);
                if self.tabs[next].alive {
                    self.grant(next, nid, false, true);
                    break;
                }
            }
        } else {
            self.waiting.retain(|&w| w != (t, id));
        }
    }

    /// A closed tab's locks and queued requests are released by the browser.
    fn release_all(&mut self, t: usize) {
        if let Some((h, id)) = self.holder {
            if h == t {
                self.release(t, id);
            }
        }
        self.waiting.retain(|&(u, _)| u != t);
    }

    // ---- HTTP -----------------------------------------------------------------------------

    fn send_refresh(&mut self, t: usize, id: u32, refresh_token: String) {
        self.stats.token_requests += 1;
        // At most one request with a refresh token in flight across all live tabs: from
        // sending until its answer, or its timeout, whichever comes first. A frozen tab is, to
        // the others, as good as closed until it thaws (nobody can hear from it); the reuse
        // invariant still holds for its requests. (Requests with two tokens of one session can
        // overlap only when the older is already spent by a tab that froze or died mid-request:
        // the reuse invariant judges that one.)
        let timeout = self.setup.config.request_timeout_ms;
        let mut overlap = None;
        for (u, tab) in self.tabs.iter().enumerate() {
            if u == t || !tab.alive || tab.frozen {
                continue;
            }
            for (rid, r) in &tab.requests {
                let same = r.refresh_token == refresh_token;
                if same && !r.done && self.now < r.sent_at + timeout {
                    overlap = Some(format!("tab {t} sent a refresh while tab {u}'s request {rid} was in flight"));
                }
            }
        }
        if let Some(o) = overlap {
            self.fail(o);
        }
        self.tabs[t]
            .requests
            .insert(id, Request { refresh_token: refresh_token.clone(), sent_at: self.now, done: false });
        self.at(timeout, Ev::ClientTimeout(t, id));
        if !self.online {
            let d = self.rng.range(0.0, 2.0);
            self.at(d, Ev::Input(t, Input::RefreshReply { id, reply: Reply::Network }));
            return;
        }
        let fault = if !self.server.forced.is_empty() {
            self.server.forced.remove(0)
        } else if self.rng.chance(self.setup.fault_rate) {
            match self.rng.below(6) {
                0 => Fault::Status503,
                1 => Fault::Html403,
                2 => Fault::Hang,
                3 => Fault::Drop { processed: self.rng.chance(0.5) },
                4 => Fault::Slow,
                _ => Fault::Late,
            }
        } else {
            Fault::None
        };
        let up = match fault {
            Fault::Slow => timeout * self.rng.range(0.3, 0.8),
            _ => self.server.slow_ms + self.rng.range(1.0, 30.0),
        };
        self.at(up, Ev::Server(t, id, refresh_token, fault));
    }

    fn server_refresh(&mut self, t: usize, id: u32, rt: String, fault: Fault) {
        let reply = match fault {
            Fault::Status503 => Some(Reply::Status { status: 503, oauth_error: None }),
            Fault::Html403 => Some(Reply::Status { status: 403, oauth_error: None }),
            Fault::Hang => None,
            Fault::Drop { processed } => {
                if processed {
                    let _ = self.rotate(t, id, &rt);
                }
                Some(Reply::Network)
            }
            Fault::Late => {
                let _ = self.rotate(t, id, &rt);
                None
            }
            Fault::None | Fault::Slow => Some(self.rotate(t, id, &rt)),
        };
        if let Some(reply) = reply {
            let d = self.server.slow_answer_ms + self.rng.range(1.0, 20.0);
            self.at(d, Ev::Input(t, Input::RefreshReply { id, reply }));
        }
    }

    /// The auth server's refresh grant: rotation, reuse detection, revoked families.
    fn rotate(&mut self, t: usize, id: u32, rt: &str) -> Reply {
        let rejected = Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) };
        let Some(state) = self.server.rts.get(rt) else { return rejected };
        let family = state.family;
        if self.server.revoked.contains(&family) {
            return rejected;
        }
        if state.used {
            // A request sent before the rotation by a tab that died before its answer: two
            // requests overlapped because the first sender died mid-request. Counted apart.
            let sent_at = self.tabs[t].requests.get(&id).map_or(f64::INFINITY, |r| r.sent_at);
            let died_mid_request = !self.tabs[t].alive && sent_at < state.rotated_at;
            if state.delivered_at.is_some_and(|d| d <= sent_at) && !died_mid_request {
                self.fail(format!("refresh token {rt} sent again after its rotation reached a tab"));
            }
            // The earlier answer had not reached a live tab when this one was sent (its tab
            // crashed or froze mid-request, or the answer came after its timeout), or this
            // request's tab died mid-request: no client can know. Counted apart.
            self.stats.excused_reuse += 1;
            self.log(format!("server: reuse of {rt} (answer lost); family {family} revoked"));
            self.server.revoked.insert(family);
            return rejected;
        }
        let (last, asked) = self.server.issued.get(&family).copied().unwrap_or((0.0, true));
        if !asked && self.now - last < 0.5 * self.setup.ttl_s * 1000.0 {
            self.fail(format!("family {family} refreshed {:.0} ms after its last tokens", self.now - last));
        }
        if let Some(s) = self.server.rts.get_mut(rt) {
            s.used = true;
            s.rotated_at = self.now;
        }
        self.stats.refreshes += 1;
        let (at, new_rt) = self.issue(family);
        Reply::Tokens { response: response(&at, Some(&new_rt), self.setup.ttl_s), jwt: None, date: None }
    }

    fn issue(&mut self, family: u64) -> (String, String) {
        self.server.next += 1;
        let n = self.server.next;
        let (at, rt) = (format!("at-{family}-{n}"), format!("rt-{family}-{n}"));
        self.server.rts.insert(rt.clone(), Rt { family, ..Rt::default() });
        self.server.ats.insert(at.clone(), (family, self.now + self.setup.ttl_s * 1000.0));
        self.server.issued.insert(family, (self.now, false));
        (at, rt)
    }

    fn cookie_mode(&self) -> bool {
        self.setup.config.mode == Mode::Cookie
    }

    /// Is the cookie session that issued this CSRF token (`csrf-<family>-<n>`) alive?
    fn cookie_session_live(&self, csrf: &str) -> bool {
        let family = csrf.split('-').nth(1).and_then(|f| f.parse::<u64>().ok());
        // Only the session behind the browser's cookie can be reached at all.
        family.is_some() && family == self.cookie && self.cookie_session_expiry().is_some_and(|e| self.now < e)
    }

    fn cookie_session_expiry(&self) -> Option<f64> {
        self.server.cookie_sessions.get(&self.cookie?).map(|(_, e)| *e)
    }

    /// The session behind the browser's cookie, as `GET /session` answers it.
    fn cookie_session(&mut self) -> Option<Reply> {
        let family = self.cookie?;
        let (csrf, expiry) = self.server.cookie_sessions.get(&family).filter(|(_, e)| self.now < *e)?.clone();
        // The server's clock keeps true time; its `Date` header lets the client adjust.
        let server_now = EPOCH + self.now;
        let login_at = self.server.cookie_login.get(&family).map_or(Field::Absent, |&l| Field::Valid(l));
        let body =
            SessionResponse { csrf_token: Field::Valid(csrf), expires_at: Field::Valid(EPOCH + expiry), login_at };
        TokenSet::from_session(body, Some("{}".into()), self.wall(), Some(server_now)).ok().map(Reply::Session)
    }

    /// Cookie mode: `POST /session/refresh` under `csrf` extends the session and rotates it.
    fn extend(&mut self, t: usize, id: u32, csrf: String) {
        self.stats.token_requests += 1;
        let family = self.cookie.filter(|f| self.server.cookie_sessions.get(f).is_some_and(|(_, e)| self.now < *e));
        let reply = match family {
            None => Reply::Status { status: 401, oauth_error: None },
            Some(f) if self.server.cookie_sessions[&f].0 != csrf => Reply::Status { status: 403, oauth_error: None },
            Some(f) => {
                self.stats.refreshes += 1;
                self.server.next += 1;
                let csrf =
                    if self.setup.csrf_rotates { format!("csrf-{f}-{}", self.server.next) } else { csrf.clone() };
                let fresh = (csrf, self.now + self.setup.ttl_s * 1000.0);
                self.server.cookie_sessions.insert(f, fresh);
                self.cookie_session().unwrap_or(Reply::Network)
            }
        };
        self.tabs[t].requests.insert(id, Request { refresh_token: csrf, sent_at: self.now, done: false });
        let d = self.rng.range(2.0, 30.0);
        self.at(d, Ev::Input(t, Input::RefreshReply { id, reply }));
    }

    fn revoke(&mut self, token: &str) {
        if self.cookie_mode() {
            // `POST /session/logout`: the session ends, the cookie goes.
            if let Some(f) = self.cookie.take() {
                self.server.cookie_sessions.remove(&f);
                self.stats.revocations += 1;
            }
            return;
        }
        let family = self.server.rts.get(token).map(|r| r.family).or(self.server.ats.get(token).map(|a| a.0));
        if let Some(f) = family {
            self.server.revoked.insert(f);
            self.stats.revocations += 1;
        }
    }

    // ---- the app --------------------------------------------------------------------------

    fn answered(&mut self, t: usize, ticket: Ticket, answer: Answer) {
        let Some(call) = self.tabs[t].calls.remove(&ticket) else {
            return self.fail(format!("tab {t} answered unknown ticket {ticket}"));
        };
        match (call, answer) {
            (Call::Fetch { .. } | Call::Retry { .. }, Answer::Token { token, seq }) => {
                let wall = self.wall();
                let expiry = self.tabs[t].machine.tokens().filter(|s| s.access_token == token).map(|s| s.expires_at);
                match expiry {
                    Some(e) if wall < e => {}
                    _ => self.fail(format!(
                        "tab {t} handed out an expired or unknown token {token} (expiry {expiry:?}, clock {wall})"
                    )),
                }
                let next = self.ticket(t, Call::Retry { since: self.now });
                let d = self.rng.range(2.0, 30.0);
                self.at(d, Ev::Api(t, next, Some(format!("{token} {seq}"))));
            }
            (Call::Fetch { .. }, Answer::NoToken) => {}
            (Call::Retry { .. }, Answer::NoToken) => self.stats.api_401_to_app += 1,
            (Call::Fetch { .. } | Call::Retry { .. }, Answer::Failed(_)) => self.stats.fetch_errors += 1,
            (Call::Refresh { .. } | Call::Logout { .. } | Call::SignIn, Answer::Done | Answer::Failed(_)) => {}
            (call, answer) => self.fail(format!("tab {t}: {answer:?} does not answer {call:?}")),
        }
    }

    /// The API server answers a request carrying `token` (and its set's counter).
    fn api(&mut self, t: usize, ticket: Ticket, carried: Option<String>) {
        // The retry ticket was created with the request; it is answered here or handed on.
        let Some(carried) = carried else { return };
        let (token, seq) = carried.split_once(' ').expect("token and counter");
        let seq: u64 = seq.parse().expect("counter");
        if self.cookie_mode() {
            let session = self.cookie.and_then(|f| self.server.cookie_sessions.get(&f)).filter(|(_, e)| self.now < *e);
            match session {
                Some((csrf, _)) if csrf == token => {
                    self.stats.api_ok += 1;
                    self.tabs[t].calls.remove(&ticket);
                }
                // A stale CSRF token: 403, and the driver asks to re-read the session.
                Some(_) => self.deliver(t, Input::CsrfRejected { ticket }),
                None => self.deliver(t, Input::Unauthorized { ticket, seq }),
            }
            return;
        }
        let valid = self
            .server
            .ats
            .get(token)
            .is_some_and(|(family, expiry)| self.now < *expiry && !self.server.revoked.contains(family));
        if valid && !self.server.always_401 {
            self.stats.api_ok += 1;
            self.tabs[t].calls.remove(&ticket);
            return;
        }
        if let Some((family, _)) = self.server.ats.get(token) {
            if let Some(i) = self.server.issued.get_mut(family) {
                i.1 = true;
            }
        }
        self.deliver(t, Input::Unauthorized { ticket, seq });
    }

    fn login(&mut self, t: usize) {
        self.stats.logins += 1;
        self.last_activity = self.now;
        self.server.next += 1;
        let family = self.server.next;
        if self.cookie_mode() {
            let expiry = self.now + self.setup.ttl_s * 1000.0;
            // Sign-in ends the session the browser had (no fixation) and starts a new one.
            if let Some(old) = self.cookie {
                self.server.cookie_sessions.remove(&old);
            }
            self.server.cookie_sessions.insert(family, (format!("csrf-{family}-0"), expiry));
            self.server.cookie_login.insert(family, EPOCH + self.now);
            self.cookie = Some(family);
            let Some(Reply::Session(tokens)) = self.cookie_session() else { panic!("a fresh cookie session") };
            let ticket = self.ticket(t, Call::SignIn);
            return self.deliver(t, Input::SignIn { tokens, ticket: Some(ticket) });
        }
        let (at, rt) = self.issue(family);
        // An OpenID Connect sign-in brings an ID token; the model server's refreshes do not.
        let r = TokenResponse {
            id_token: Field::Valid(format!("id-{family}")),
            ..response(&at, Some(&rt), self.setup.ttl_s)
        };
        let tokens = TokenSet::from_response(r, None, self.wall(), None, None).expect("valid login response");
        let ticket = self.ticket(t, Call::SignIn);
        self.deliver(t, Input::SignIn { tokens, ticket: Some(ticket) });
    }

    /// The app calls `session.fetch(url)`: only the page's own origin gets a token, by the
    /// rule the driver uses.
    fn fetch_url(&mut self, t: usize, url: &str) {
        if policy::url_in_origins(url, &["https://app.example".to_string()]) {
            let ticket = self.ticket(t, Call::Fetch { since: self.now });
            self.deliver(t, Input::TokenWanted { ticket });
        } else {
            self.stats.foreign_requests += 1;
        }
    }

    fn fetch(&mut self, t: usize) {
        self.fetch_url(t, "https://app.example/api/me");
    }

    /// The user does one thing in tab `t` (named scenarios; random runs use `Act::Activity`).
    fn touch(&mut self, t: usize) {
        self.last_activity = self.now;
        self.deliver(t, Input::Activity);
    }

    fn logouts(&self, t: usize) -> Vec<LogoutReason> {
        self.tabs[t]
            .events
            .iter()
            .filter_map(|e| if let Event::Logout { reason } = e { Some(*reason) } else { None })
            .collect()
    }

    // ---- the run ----------------------------------------------------------------------------

    fn schedule_random(&mut self) {
        for t in 0..self.tabs.len() {
            let d = self.rng.range(0.0, self.setup.fetch_every_ms);
            self.at(d, Ev::Act(Act::Fetch(t)));
        }
        let d = self.rng.range(0.0, 200.0);
        self.at(d, Ev::Act(Act::Login(0)));
        let d = self.rng.range(0.0, self.setup.activity_every_ms);
        self.at(d, Ev::Act(Act::Activity(0)));
        if self.setup.chaos {
            let d = self.rng.range(1_000.0, 10_000.0);
            self.at(d, Ev::Act(Act::Chaos));
        }
    }

    fn act(&mut self, act: Act) {
        self.log(format!("act {act:?}"));
        match act {
            Act::Activity(t) => {
                if self.live(t) && !self.tabs[t].frozen {
                    self.last_activity = self.now;
                    self.deliver(t, Input::Activity);
                }
                // The user moves on, to any tab.
                let next = self.rng.below(self.tabs.len());
                let d = self.rng.range(0.2, 1.8) * self.setup.activity_every_ms;
                self.at(d, Ev::Act(Act::Activity(next)));
            }
            Act::Fetch(t) => {
                if self.live(t) && !self.tabs[t].frozen {
                    let foreign = self.rng.chance(0.2);
                    let url = if foreign { "https://app.example.evil.com/x" } else { "https://app.example/api/me" };
                    self.fetch_url(t, url);
                }
                if self.live(t) {
                    let d = self.rng.range(0.2, 1.8) * self.setup.fetch_every_ms;
                    self.at(d, Ev::Act(Act::Fetch(t)));
                }
            }
            Act::Login(t) => {
                if self.live(t) && !self.tabs[t].frozen && self.tabs[t].machine.tokens().is_none() {
                    self.login(t);
                }
            }
            Act::Logout(t) => {
                if self.live(t) && !self.tabs[t].frozen {
                    let ticket = self.ticket(t, Call::Logout { since: self.now });
                    self.deliver(t, Input::Logout { ticket });
                }
            }
            Act::Refresh(t) => {
                if self.live(t) && !self.tabs[t].frozen {
                    if let Some(family) = self.family_of(t) {
                        if let Some(i) = self.server.issued.get_mut(&family) {
                            i.1 = true;
                        }
                    }
                    let ticket = self.ticket(t, Call::Refresh { since: self.now });
                    self.deliver(t, Input::Refresh { ticket });
                }
            }
            Act::Open => {
                let t = self.open_tab();
                let d = self.rng.range(0.0, self.setup.fetch_every_ms);
                self.at(d, Ev::Act(Act::Fetch(t)));
            }
            Act::Close(t) => {
                if self.live(t) {
                    self.tabs[t].alive = false;
                    self.release_all(t);
                }
            }
            Act::Freeze(t, ms) => {
                if self.live(t) && !self.tabs[t].frozen {
                    self.tabs[t].frozen = true;
                    self.at(ms, Ev::Act(Act::Thaw(t)));
                }
            }
            Act::Thaw(t) => self.thaw(t),
            Act::Sleep(ms) => {
                self.sleeping = true;
                for t in 0..self.tabs.len() {
                    self.tabs[t].frozen = true;
                }
                self.at(ms, Ev::Act(Act::Wake));
            }
            Act::Wake => {
                self.sleeping = false;
                for t in 0..self.tabs.len() {
                    self.thaw(t);
                }
            }
            Act::ClockBack(ms) => self.offset -= ms,
            Act::Offline(ms) => {
                self.online = false;
                for t in 0..self.tabs.len() {
                    self.deliver(t, Input::Online(false));
                }
                self.at(ms, Ev::Act(Act::Online));
            }
            Act::Online => {
                self.online = true;
                for t in 0..self.tabs.len() {
                    self.deliver(t, Input::Online(true));
                }
            }
            Act::Chaos => self.chaos(),
        }
    }

    fn chaos(&mut self) {
        if self.quiet {
            return;
        }
        let live: Vec<usize> = (0..self.tabs.len()).filter(|&t| self.live(t)).collect();
        let pick = |w: &mut World| live.get(w.rng.below(live.len().max(1))).copied();
        match self.rng.below(12) {
            0 | 1 => {
                if let Some(t) = pick(self) {
                    let ms = self.rng.range(100.0, 40_000.0);
                    self.act(Act::Freeze(t, ms));
                }
            }
            2 => {
                if live.len() > 1 {
                    if let Some(t) = pick(self) {
                        self.act(Act::Close(t));
                    }
                }
            }
            3 => {
                if live.len() < 6 {
                    self.act(Act::Open);
                }
            }
            4 if !self.sleeping => {
                let ms = self.rng.range(10_000.0, 600_000.0);
                self.act(Act::Sleep(ms));
            }
            5 => {
                // NTP-sized corrections; `defect_6_...` steps an hour between tabs that talk.
                let ms = self.rng.range(100.0, 60_000.0);
                self.act(Act::ClockBack(ms));
            }
            6 if self.online => {
                let ms = self.rng.range(1_000.0, 60_000.0);
                self.act(Act::Offline(ms));
            }
            7 => {
                if let Some(t) = pick(self) {
                    self.act(Act::Logout(t));
                    let d = self.rng.range(100.0, 5_000.0);
                    self.at(d, Ev::Act(Act::Login(t)));
                }
            }
            8 => {
                if let Some(t) = pick(self) {
                    self.act(Act::Refresh(t));
                }
            }
            _ => {
                if let Some(t) = pick(self) {
                    self.act(Act::Login(t));
                }
            }
        }
        let d = self.rng.range(1_000.0, 20_000.0);
        self.at(d, Ev::Act(Act::Chaos));
    }

    fn thaw(&mut self, t: usize) {
        if !self.live(t) || !self.tabs[t].frozen {
            return;
        }
        self.tabs[t].frozen = false;
        self.tabs[t].thawed_at = self.now;
        // What queued up while frozen runs now, in order, then the page-wake check.
        let deferred = std::mem::take(&mut self.tabs[t].deferred);
        for ev in deferred {
            self.at(0.0, ev);
        }
        self.at(0.0, Ev::Input(t, Input::Wake));
    }

    fn family_of(&self, t: usize) -> Option<u64> {
        let at = &self.tabs[t].machine.tokens()?.access_token;
        self.server.ats.get(at).map(|a| a.0)
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((time, id))) = self.queue.pop() else { return false };
        let ev = self.evs.remove(&id).expect("queued event");
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
            Ev::Timer(t, gen) => {
                if self.tabs[t].timer_gen == gen {
                    self.deliver(t, Input::Tick);
                }
            }
            Ev::ClientTimeout(t, id) => {
                let pending = self.tabs[t].requests.get(&id).is_some_and(|r| !r.done);
                if pending {
                    self.tabs[t].requests.get_mut(&id).expect("request").done = true;
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
        self.check();
        true
    }

    fn run_for(&mut self, ms: f64) {
        let end = self.now + ms;
        while let Some(Reverse((time, _))) = self.queue.peek() {
            if *time as f64 / 1000.0 > end {
                break;
            }
            self.step();
        }
        self.now = end;
    }

    fn fail(&mut self, why: String) {
        let keep = std::env::var("SIM_TAIL").ok().and_then(|s| s.parse().ok()).unwrap_or(80);
        let tail: Vec<&String> = self.trace.iter().rev().take(keep).collect();
        let tail: Vec<&str> = tail.into_iter().rev().map(String::as_str).collect();
        panic!(
            "invariant broken (seed {}, setup {:?}):\n  {why}\n--- last steps ---\n{}\n\
             replay: SIM_SEED={} cargo test --test sim replay -- --nocapture",
            self.seed,
            self.setup,
            tail.join("\n"),
            self.seed
        );
    }

    /// The invariants, after every step.
    fn check(&mut self) {
        self.stats.checks += 1;
        // Logout reaches every live tab within a bounded time, and afterwards no tab holds a
        // token set of that session (a counter at or below the logout's).
        let now = self.now;
        let mut broken = None;
        for &(seq, at) in &self.logouts {
            for (t, tab) in self.tabs.iter().enumerate() {
                let awake_since = at.max(tab.thawed_at);
                // Tabs opened after the logout never held that session.
                if !tab.alive || tab.frozen || tab.opened_at > at || now < awake_since + LOGOUT_BOUND {
                    continue;
                }
                if tab.machine.stamp().is_some_and(|s| s.seq <= seq) {
                    broken =
                        Some(format!("tab {t} still holds tokens {:?} after the logout at {seq}", tab.machine.stamp()));
                }
            }
        }
        self.logouts.retain(|&(_, at)| now < at + 3_600_000.0);
        if let Some(b) = broken.take() {
            self.fail(b);
        }
        // Every token set holds its sign-in's ID token (`at-{family}-n` goes with
        // `id-{family}`), through refreshes without one and in tabs that adopted it.
        for (t, tab) in self.tabs.iter().enumerate() {
            let Some(tokens) = tab.machine.tokens().filter(|_| tab.alive && !self.cookie_mode()) else { continue };
            let family = tokens.access_token.strip_prefix("at-").and_then(|r| r.split('-').next());
            if let Some(family) = family {
                if tokens.id_token.as_deref() != Some(&format!("id-{family}")) {
                    broken = Some(format!("tab {t} holds {} with ID token {:?}", tokens.access_token, tokens.id_token));
                }
            }
        }
        if let Some(b) = broken.take() {
            self.fail(b);
        }
        // Without user activity anywhere for `idleTimeoutMs`, and past `maxSessionMs`, no tab
        // holds the session (once awake, within the bound, plus the activity-sharing delay).
        let c = &self.setup.config;
        let wall = self.wall();
        for (t, tab) in self.tabs.iter().enumerate() {
            let Some(tokens) = tab.machine.tokens().filter(|_| tab.alive && !tab.frozen) else { continue };
            let awake = tab.thawed_at;
            if let Some(idle) = c.idle_timeout_ms {
                if now > self.last_activity.max(awake) + idle + LOGOUT_BOUND {
                    broken = Some(format!(
                        "tab {t} still signed in {:.0} ms after the last activity",
                        now - self.last_activity
                    ));
                }
            }
            if let (Some(max), Some(login)) = (c.max_session_ms, tokens.login_at) {
                if wall > login + max + LOGOUT_BOUND && now > awake + LOGOUT_BOUND {
                    broken = Some(format!("tab {t} still signed in {:.0} ms after login", wall - login));
                }
            }
        }
        if let Some(b) = broken.take() {
            self.fail(b);
        }
        // Every caller is answered in bounded time (unless its tab was frozen meanwhile).
        let c = &self.setup.config;
        let bound = c.lock_timeout_ms + 3.0 * (c.request_timeout_ms + 1_000.0) + c.retry_max_ms + 5_000.0;
        for (t, tab) in self.tabs.iter().enumerate() {
            if !tab.alive || tab.frozen {
                continue;
            }
            for (ticket, call) in &tab.calls {
                let since = match call {
                    Call::Fetch { since }
                    | Call::Retry { since }
                    | Call::Refresh { since }
                    | Call::Logout { since } => *since,
                    Call::SignIn => continue,
                };
                if now > since.max(tab.thawed_at) + bound {
                    broken = Some(format!("tab {t}: caller {ticket} ({call:?}) unanswered after {bound} ms"));
                }
            }
        }
        if let Some(b) = broken {
            self.fail(b);
        }
    }
}

fn read_stored(json: Option<&str>, ns: &str) -> Stored {
    let Some(json) = json else { return Stored::Empty };
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(_) => return Stored::Invalid("not JSON"),
    };
    let version = value.get("v").and_then(serde_json::Value::as_f64);
    Stored::classify(version, serde_json::from_value::<Record>(value).ok(), ns)
}

fn response(at: &str, rt: Option<&str>, ttl_s: f64) -> TokenResponse {
    TokenResponse {
        access_token: Field::Valid(at.into()),
        token_type: Field::Valid("Bearer".into()),
        expires_in: Field::Valid(Seconds(Some(ttl_s))),
        refresh_token: rt.map_or(Field::Absent, |r| Field::Valid(r.into())),
        ..TokenResponse::default()
    }
}

// ---- random schedules -----------------------------------------------------------------------

fn random_setup(rng: &mut Rng) -> Setup {
    let storage = [StorageMode::Memory, StorageMode::Session, StorageMode::Local][rng.below(3)];
    let mut s = Setup::new(1 + rng.below(6), storage);
    s.ttl_s = [2.0, 5.0, 30.0, 120.0][rng.below(4)];
    match rng.below(8) {
        // No BroadcastChannel: storage events, with Web Locks (local mode).
        0 if storage == StorageMode::Local => s.transport = Transport::StorageBus,
        // No Web Locks: claims over the channel.
        1 => s.locks = false,
        // Alone.
        2 => {
            s.tabs = 1;
            s.config.cross_tab = false;
            s.transport = Transport::None;
        }
        _ => {}
    }
    s.config.request_timeout_ms = [2_000.0, 10_000.0][rng.below(2)];
    s.config.lock_timeout_ms = [1_000.0, 5_000.0, 15_000.0][rng.below(3)];
    s.config.retry_base_ms = 200.0;
    s.config.retry_max_ms = [2_000.0, 30_000.0][rng.below(2)];
    s.config.refresh_lead_ms = [0.0, 60_000.0][rng.below(2)];
    s.fault_rate = [0.0, 0.05, 0.3][rng.below(3)];
    s.chaos = rng.chance(0.7) && s.transport != Transport::None;
    s.fetch_every_ms = [100.0, 700.0, 3_000.0][rng.below(3)];
    s.activity_every_ms = [2_000.0, 20_000.0, 120_000.0][rng.below(3)];
    if rng.chance(0.3) {
        s.config.idle_timeout_ms = Some([30_000.0, 90_000.0][rng.below(2)]);
        s.config.idle_warning_ms = rng.chance(0.5).then_some(10_000.0);
    }
    if rng.chance(0.2) {
        s.config.max_session_ms = Some([60_000.0, 300_000.0][rng.below(2)]);
    }
    if rng.chance(0.2) {
        cookie_mode(&mut s);
        s.csrf_rotates = rng.chance(0.5);
    }
    s.duration_ms = rng.range(30_000.0, 600_000.0);
    s
}

/// A server session behind a cookie instead of tokens (memory only, by the config's rule).
fn cookie_mode(s: &mut Setup) {
    s.storage = StorageMode::Memory;
    s.config.storage = StorageMode::Memory;
    s.config.mode = Mode::Cookie;
    s.config.token_url = String::new();
    s.config.revoke_url = None;
    s.config.session_url = Some("https://app.example/session".into());
    if s.transport == Transport::StorageBus {
        s.transport = Transport::Broadcast;
    }
}

fn run_seed(seed: u64) -> Stats {
    let mut rng = Rng(seed);
    let setup = random_setup(&mut rng);
    let duration = setup.duration_ms;
    let mut w = World::new(setup, seed);
    w.schedule_random();
    w.run_for(duration);
    // A quiet end: no chaos, no faults; everything settles and every caller is answered.
    w.quiet = true;
    w.setup.fault_rate = 0.0;
    if w.sleeping {
        w.act(Act::Wake);
    }
    for t in 0..w.tabs.len() {
        w.thaw(t);
    }
    if !w.online {
        w.act(Act::Online);
    }
    let c = w.setup.config.clone();
    w.run_for(c.lock_timeout_ms + 3.0 * (c.request_timeout_ms + 1_000.0) + c.retry_max_ms + 10_000.0);
    w.stats
}

#[test]
fn random_schedules() {
    let seeds: u64 = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let first: u64 = std::env::var("SIM_FIRST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in first..first + seeds {
        let s = run_seed(seed);
        total.steps += s.steps;
        total.checks += s.checks;
        total.token_requests += s.token_requests;
        total.refreshes += s.refreshes;
        total.excused_reuse += s.excused_reuse;
        total.api_ok += s.api_ok;
        total.api_401_to_app += s.api_401_to_app;
        total.logins += s.logins;
    }
    println!(
        "simulation: {seeds} schedules, {} steps, {} invariant checks, {} logins, {} token requests, {} refreshes, \
         {} API calls ok, {} 401s to the app, {} reuses after a lost answer (tab died or froze mid-request, or the \
         answer came after its timeout), in {:.1} s",
        total.steps,
        total.checks,
        total.logins,
        total.token_requests,
        total.refreshes,
        total.api_ok,
        total.api_401_to_app,
        total.excused_reuse,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn replay() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        let stats = run_seed(seed);
        println!("seed {seed}: {stats:?}");
    }
}

// ---- named scenarios: the defects of issue 13, each kept fixed --------------------------------

fn world(tabs: usize, storage: StorageMode, f: impl FnOnce(&mut Setup)) -> World {
    let mut s = Setup::new(tabs, storage);
    f(&mut s);
    let mut w = World::new(s, 1);
    w.run_for(500.0);
    w
}

/// Prints the trace when `SIM_TRACE` is set (for debugging a named scenario).
fn dump(w: &World) {
    if std::env::var("SIM_TRACE").is_ok() {
        println!("{}", w.trace.join("\n"));
    }
}

fn signed_in_everywhere(w: &World) -> bool {
    w.tabs.iter().filter(|t| t.alive).all(|t| t.machine.tokens().is_some())
}

#[test]
fn defect_1_a_401_that_refreshing_cannot_fix_refreshes_once() {
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.server.always_401 = true;
    for _ in 0..10 {
        w.fetch(0);
        w.run_for(200.0);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.token_requests, 1, "one refresh for the first 401, none after");
    assert_eq!(w.stats.api_401_to_app, 10);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_2_a_proxys_403_page_is_transient() {
    let mut w = world(2, StorageMode::Memory, |s| s.config.retry_base_ms = 100.0);
    w.login(0);
    w.run_for(100.0);
    w.server.forced = vec![Fault::Html403, Fault::Html403];
    w.run_for(25_000.0);
    assert!(signed_in_everywhere(&w), "a 403 without an OAuth error body ended the session");
    assert_eq!(w.stats.refreshes, 1);
    let errors = w.tabs[0].events.iter().chain(&w.tabs[1].events).filter(|e| matches!(e, Event::Error(_))).count();
    assert_eq!(errors, 2, "each failed attempt is an error event in the tab that made it");
}

#[test]
fn defect_3_a_newer_releases_stored_record_is_left_alone() {
    let mut m = Machine::new(Config::default(), "t".into(), 1);
    let effects = m.handle(
        EPOCH,
        0.0,
        Input::Start(Boot {
            stored: Stored::OtherVersion,
            storage: StorageMode::Local,
            storage_error: None,
            transport: Transport::Broadcast,
            locks: true,
            online: true,
        }),
    );
    assert!(!effects.contains(&Effect::Clear), "{effects:?}");
    assert!(effects.iter().any(|e| matches!(e, Effect::Emit(Event::Error(_)))));
    assert!(effects.contains(&Effect::Ready(false)));
}

#[test]
fn defect_4_a_stolen_lock_waits_for_the_holders_refresh() {
    // The holder's request is slow (3 s) but within its timeout (10 s); the other tab's lock
    // wait (1 s) runs out first. It must not send the same refresh token.
    let mut w = world(2, StorageMode::Memory, |s| s.config.lock_timeout_ms = 1_000.0);
    w.login(0);
    w.run_for(100.0);
    w.server.slow_ms = 3_000.0;
    w.act(Act::Refresh(0));
    w.run_for(50.0);
    w.act(Act::Refresh(1));
    w.run_for(15_000.0);
    dump(&w);
    assert_eq!(w.stats.excused_reuse, 0);
    assert_eq!(w.stats.token_requests, 1, "tab 1 waited for tab 0's refresh and adopted it");
    assert_eq!(w.tabs[0].machine.stamp(), w.tabs[1].machine.stamp());
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_5_logout_during_a_refresh_revokes_the_late_tokens() {
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.server.slow_answer_ms = 500.0;
    w.act(Act::Refresh(0));
    w.run_for(100.0);
    let ticket = w.ticket(0, Call::Logout { since: w.now });
    w.deliver(0, Input::Logout { ticket });
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 1);
    assert_eq!(w.stats.revocations, 2, "the refresh token at logout, then the one in the late reply");
    let late: Vec<&String> = w.server.rts.iter().filter(|(_, r)| !r.used).map(|(k, _)| k).collect();
    for rt in late {
        let family = w.server.rts[rt].family;
        assert!(w.server.revoked.contains(&family), "{rt} is still valid");
    }
}

#[test]
fn defect_6_newer_tokens_are_ordered_by_counter_not_clock() {
    let mut w = world(3, StorageMode::Local, |s| s.ttl_s = 10.0);
    w.login(0);
    w.run_for(100.0);
    w.act(Act::ClockBack(3_600_000.0));
    // Three refreshes, each stamped after the clock stepped back an hour.
    for i in 0..3 {
        w.act(Act::Refresh(i));
        w.run_for(1_000.0);
    }
    let stamps: Vec<_> = w.tabs.iter().map(|t| t.machine.stamp().cloned()).collect();
    assert!(stamps.windows(2).all(|p| p[0] == p[1]), "tabs disagree: {stamps:?}");
    w.run_for(60_000.0);
    assert_eq!(w.stats.excused_reuse, 0);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_7_tiny_lifetimes_and_many_waiting_callers_stay_bounded() {
    let mut w = world(1, StorageMode::Memory, |s| s.ttl_s = 0.001);
    w.login(0);
    w.run_for(10_000.0);
    assert!(w.stats.refreshes <= 11, "{} refreshes in 10 s for expires_in 0.001", w.stats.refreshes);
    // 100 callers waiting on one refresh arm one timer, not one each.
    let mut m = Machine::new(Config::default(), "t".into(), 1);
    let start = Input::Start(Boot {
        stored: Stored::Empty,
        storage: StorageMode::Memory,
        storage_error: None,
        transport: Transport::None,
        locks: false,
        online: true,
    });
    m.handle(EPOCH, 0.0, start);
    let tokens = TokenSet::from_response(response("a", Some("r"), 60.0), None, EPOCH, None, None).unwrap();
    m.handle(EPOCH, 0.0, Input::SignIn { tokens, ticket: None });
    let later = EPOCH + 59_900.0;
    let mut timers = 0;
    for ticket in 0..100 {
        let effects = m.handle(later, later - EPOCH, Input::TokenWanted { ticket });
        timers += effects.iter().filter(|e| matches!(e, Effect::Timer(_))).count();
    }
    assert!(timers <= 1, "{timers} timers armed for 100 waiting callers");
}

#[test]
fn defect_8_the_first_tab_is_ready_at_once() {
    for storage in [StorageMode::Memory, StorageMode::Session] {
        let mut w = world(1, storage, |_| {});
        assert_eq!(w.tabs[0].ready_at, Some(1.0), "{storage:?}: ready when presence says no other tab");
        w.run_for(10.0);
    }
    let w = world(1, StorageMode::Local, |_| {});
    assert_eq!(w.tabs[0].ready_at, Some(0.0), "local: storage answers at once");
    // With another tab open, ready comes with its answer, before the restore timeout.
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.run_for(100.0);
    let t = w.open_tab();
    w.run_for(100.0);
    let ready = w.tabs[t].ready_at.expect("ready");
    assert!(ready - 600.0 < MSG_DELAY_MAX * 2.0 + 1.0, "ready after {} ms", ready - 600.0);
    assert!(w.tabs[t].machine.tokens().is_some());
}

#[test]
fn logout_reaches_every_tab_and_ends_the_session() {
    for storage in [StorageMode::Memory, StorageMode::Session, StorageMode::Local] {
        let mut w = world(4, storage, |_| {});
        w.login(2);
        w.run_for(200.0);
        assert!(signed_in_everywhere(&w), "{storage:?}: login reached every tab");
        w.act(Act::Logout(1));
        w.run_for(200.0);
        for t in &w.tabs {
            assert!(t.machine.tokens().is_none());
            assert!(t
                .events
                .iter()
                .any(|e| matches!(e, Event::Logout { reason: LogoutReason::User | LogoutReason::OtherTab })));
        }
        assert!(w.local.is_none() && w.tabs.iter().all(|t| t.session_store.is_none()), "{storage:?}: storage cleared");
        assert_eq!(w.stats.revocations, 1);
    }
}

#[test]
fn one_refresh_per_lifetime_across_tabs() {
    for (locks, transport, storage) in [
        (true, Transport::Broadcast, StorageMode::Memory),
        (false, Transport::Broadcast, StorageMode::Memory),
        (true, Transport::StorageBus, StorageMode::Local),
    ] {
        let mut w = world(4, storage, |s| {
            s.ttl_s = 2.0;
            s.locks = locks;
            s.transport = transport;
            s.fetch_every_ms = 50.0;
        });
        w.schedule_random();
        w.run_for(24_000.0);
        // A 2 s token is refreshed at 1.5 s: 16 lifetimes in 24 s.
        assert!((15..=17).contains(&w.stats.refreshes), "{locks} {transport:?}: {} refreshes", w.stats.refreshes);
        assert_eq!(w.stats.token_requests, w.stats.refreshes, "{locks} {transport:?}");
        assert_eq!(w.stats.api_401_to_app, 0);
        assert_eq!(w.stats.fetch_errors, 0);
    }
}

#[test]
fn a_sleep_past_expiry_refreshes_before_the_next_request() {
    let mut w = world(3, StorageMode::Memory, |s| s.ttl_s = 30.0);
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Sleep(600_000.0));
    w.run_for(600_010.0);
    for t in 0..3 {
        w.fetch(t);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 1);
    assert_eq!(w.stats.api_ok, 3);
    assert_eq!(w.stats.api_401_to_app, 0);
}

// ---- idle and absolute timeouts, cookie sessions (issue 15) ---------------------------------

fn idle_world(mode_cookie: bool) -> World {
    world(3, StorageMode::Memory, |s| {
        s.ttl_s = 300.0;
        s.config.idle_timeout_ms = Some(60_000.0);
        s.config.idle_warning_ms = Some(10_000.0);
        if mode_cookie {
            cookie_mode(s);
        }
    })
}

#[test]
fn idle_activity_in_one_tab_keeps_every_tab_signed_in_then_idle_ends_all() {
    for cookie in [false, true] {
        let mut w = idle_world(cookie);
        w.login(0);
        w.run_for(40_000.0);
        w.touch(2); // only tab 2 sees the user
        w.run_for(55_000.0); // 95 s after sign-in: past the first deadline, not the second
        assert!(signed_in_everywhere(&w), "cookie {cookie}: activity in tab 2 did not reach the others");
        w.run_for(10_000.0); // 105 s: 65 s after the activity
        dump(&w);
        for t in 0..3 {
            assert_eq!(w.tabs[t].machine.tokens(), None, "cookie {cookie}: tab {t} still signed in");
            let reasons = w.logouts(t);
            assert!(reasons.contains(&LogoutReason::Idle) || reasons.contains(&LogoutReason::OtherTab), "{reasons:?}");
        }
        // Each tab's deadline is the same: more than one may revoke (a harmless repeat).
        assert!(w.stats.revocations >= 1, "cookie {cookie}: the session (or refresh token) was not revoked");
        if cookie {
            assert!(w.server.cookie_sessions.is_empty(), "the server session outlived the idle logout");
        }
    }
}

#[test]
fn idle_warning_then_activity_cancels_it_in_every_tab() {
    let mut w = idle_world(false);
    w.login(0);
    w.run_for(51_000.0);
    for t in 0..3 {
        assert!(w.tabs[t].events.iter().any(|e| matches!(e, Event::IdleWarning { .. })), "tab {t} got no warning");
    }
    w.touch(1);
    w.run_for(6_000.0);
    for t in 0..3 {
        assert!(w.tabs[t].events.iter().any(|e| matches!(e, Event::Active)), "tab {t} did not hear the activity");
    }
    w.run_for(40_000.0); // 97 s: would have been idle at 60 s
    dump(&w);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn idle_a_sleep_past_the_deadline_ends_the_session_on_wake() {
    let mut w = idle_world(false);
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Sleep(3_600_000.0));
    w.run_for(3_600_100.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 0, "an idle session was refreshed on wake");
    for t in 0..3 {
        assert_eq!(w.tabs[t].machine.tokens(), None, "tab {t} survived the sleep");
    }
}

#[test]
fn idle_no_background_refresh_keeps_an_idle_session_alive() {
    let mut w = world(2, StorageMode::Memory, |s| {
        s.ttl_s = 30.0;
        s.config.idle_timeout_ms = Some(300_000.0);
    });
    w.login(0);
    w.run_for(200_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 0, "a refresh ran without user activity");
    assert!(signed_in_everywhere(&w), "expired tokens are not a logout: the next request refreshes");
    w.touch(1);
    w.fetch(1);
    w.run_for(1_000.0);
    assert_eq!((w.stats.refreshes, w.stats.api_ok), (1, 1));
}

#[test]
fn absolute_the_session_ends_on_time_across_refreshes_and_new_tabs() {
    let mut w = world(2, StorageMode::Local, |s| {
        s.ttl_s = 20.0;
        s.config.max_session_ms = Some(100_000.0);
    });
    w.login(0);
    for _ in 0..9 {
        w.touch(1);
        w.fetch(1);
        w.run_for(10_000.0);
    }
    let t = w.open_tab(); // a reload: the stored session carries the sign-in time
    w.run_for(5_000.0);
    assert!(signed_in_everywhere(&w), "signed out before the absolute limit");
    assert!(w.stats.refreshes >= 3);
    w.run_for(7_000.0); // 102 s
    dump(&w);
    for tab in [0, 1, t] {
        assert_eq!(w.tabs[tab].machine.tokens(), None, "tab {tab} outlived maxSessionMs");
    }
    assert!(w.logouts(0).contains(&LogoutReason::Absolute) || w.logouts(1).contains(&LogoutReason::Absolute));
}

#[test]
fn cookie_a_read_sent_before_sign_in_does_not_end_the_new_session() {
    let mut w = world(0, StorageMode::Memory, cookie_mode);
    // A new tab reads the session (none yet); sign-in lands before the 401 comes back.
    let t = w.open_tab();
    w.login(t);
    w.run_for(1_000.0);
    dump(&w);
    assert!(signed_in_everywhere(&w), "a 401 from before the sign-in ended it");
}

#[test]
fn cookie_a_thawed_tab_with_a_lapsed_copy_asks_the_server_before_ending_anything() {
    let mut w = world(2, StorageMode::Memory, |s| {
        cookie_mode(s);
        s.ttl_s = 30.0;
        s.csrf_rotates = false;
    });
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Freeze(1, 60_000.0));
    for _ in 0..6 {
        w.touch(0);
        w.fetch(0);
        w.run_for(10_000.0);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert!(w.stats.refreshes >= 1, "tab 0 extended the session");
    assert!(signed_in_everywhere(&w), "the thawed tab ended a session the server still has");
    assert!(w.logouts(0).is_empty() && w.logouts(1).is_empty());
}

#[test]
fn cookie_a_401_ends_the_session_in_every_tab_and_a_csrf_403_rereads_once() {
    let mut w = world(3, StorageMode::Memory, |s| {
        cookie_mode(s);
        s.ttl_s = 600.0;
    });
    w.login(0);
    w.run_for(1_000.0);
    // The server forgets the CSRF token it issued (say, a restart): one re-read, one retry.
    let family = w.cookie.expect("a session cookie");
    if let Some(session) = w.server.cookie_sessions.get_mut(&family) {
        session.0 = "csrf-after-restart".into();
    }
    w.fetch(1);
    w.run_for(1_000.0);
    assert_eq!(w.stats.api_ok, 1, "the retry with the re-read token went through");
    assert!(signed_in_everywhere(&w));
    // The server ends the session: the next call's 401 ends it everywhere.
    w.server.cookie_sessions.clear();
    w.fetch(2);
    w.run_for(1_000.0);
    dump(&w);
    for t in 0..3 {
        assert_eq!(w.tabs[t].machine.tokens(), None, "tab {t} kept a session the server ended");
    }
}

#[test]
fn oidc_the_sign_ins_id_token_outlives_refreshes_in_every_tab_and_new_tabs() {
    // An OpenID Connect sign-in in one tab; the provider's refreshes carry no ID token.
    // Logout from any tab, now or after a reload, needs it for `id_token_hint`.
    for storage in [StorageMode::Memory, StorageMode::Session, StorageMode::Local] {
        let mut w = world(3, storage, |s| {
            s.ttl_s = 2.0;
            s.fetch_every_ms = 100.0;
        });
        w.login(1);
        w.schedule_random();
        w.run_for(10_000.0);
        let t = w.open_tab();
        w.run_for(2_000.0);
        dump(&w);
        assert!(w.stats.refreshes >= 6, "{storage:?}: {} refreshes", w.stats.refreshes);
        for tab in [0, 1, 2, t] {
            let id = w.tabs[tab].machine.tokens().and_then(|s| s.id_token.clone());
            assert_eq!(id.as_deref(), Some("id-1"), "{storage:?}: tab {tab}");
        }
    }
}
