//! [`Machine`]: the whole session as a state machine without I/O.
//!
//! `Machine::handle(now, input)` takes one thing that happened (an API call, a timer, an
//! HTTP reply, a message from another tab, a lock grant, a storage change, the page waking)
//! and returns what to do ([`Effect`]s): send a request, post a message, take or release the
//! lock, write storage, emit an event, answer a waiting caller, arm the one timer. The
//! browser driver (`crate::web::driver`) carries the effects out and feeds the results back;
//! the simulation (`tests/sim.rs`) does the same with a model of many tabs.
//!
//! The cross-tab refresh protocol, in short:
//! - A refresh is announced (`refreshing`, with the sender's request timeout) before its
//!   request goes out, in the same step, so no tab can freeze between the two.
//! - A tab refreshes under the Web Lock. Granted the lock, it re-checks: newer tokens
//!   arrived (adopt them), a tab just failed (back off with it), a refresh is announced and
//!   unresolved (wait for it: a short grace after a normal release, the announced timeout
//!   after a steal: a stolen lock is not a released one).
//! - Without Web Locks, tabs claim the refresh over the channel and the lowest tab id wins.
//! - Results travel as stamped token sets; a tab adopts a set only if its stamp is newer.

use super::config::{Config, Mode, StorageMode};
use super::error::Error;
use super::events::{Event, LogoutReason};
use super::policy::{self, Backoff, Failure};
use super::protocol::{Envelope, Message, Stamp, Why};
use super::store::{Record, Stored, STORE_VERSION};
use super::token::{JwtTimes, TokenResponse, TokenSet};

/// Identifies a waiting caller (a promise in the driver).
pub type Ticket = u32;

/// How long competing claims get to reach each other (messages take a few ms).
pub const CLAIM_SETTLE_MS: f64 = 60.0;

/// Granted the lock after a normal release, how long to wait for the result of a refresh
/// another tab announced (its message is normally a few ms behind the release; if the tab
/// was closed mid-refresh, none will come).
pub const PEER_GRACE_MS: f64 = 1_000.0;

/// Added to another tab's announced request timeout before giving up on its refresh.
pub const PEER_MARGIN_MS: f64 = 1_000.0;

/// After a refresh under the lock (success or failure), the lock is kept this long, so
/// that the result message reaches the other tabs before any of them can take the lock and
/// decide with what it knows. Messages between tabs take a few ms; nobody waits on this.
pub const SETTLE_MS: f64 = 100.0;

/// A deadline acted on this long after it passed means the tab was frozen (throttled
/// background tabs run timers up to about a second late: that is not a freeze):
/// messages may be waiting that it has not read.
pub const LATE_MS: f64 = 2_000.0;

/// Activity is shared with the other tabs at most this often (and at most a quarter of
/// `idleTimeoutMs`).
pub const ACTIVITY_SHARE_MS: f64 = 5_000.0;

/// Offline and due: look again after this long even if no `online` event comes.
pub const OFFLINE_RECHECK_MS: f64 = 30_000.0;

/// The counter of a new state (token set or logout): a hybrid logical clock, the larger of
/// the wall clock (ms) and one more than the highest counter this tab knows. Tabs that talk
/// order their states by the counter alone, so a clock step backwards cannot make a newer
/// set look older; a tab that heard from nobody (opened while the others were frozen) still
/// orders its states after theirs, by the clock.
pub fn next_seq(known: u64, now: f64) -> u64 {
    let clock = if now.is_finite() { now.clamp(0.0, 4e15) as u64 } else { 0 };
    clock.max(known.saturating_add(1))
}

/// How this tab reaches the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// BroadcastChannel.
    Broadcast,
    /// `storage` events on a localStorage key (no BroadcastChannel). Tokens never travel
    /// this way; in `local` mode tabs read them from the stored session instead.
    StorageBus,
    /// Alone (`crossTab: false`, or neither is available).
    None,
}

/// An auth server's answer to a refresh, as the driver read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 2xx with a JSON object body.
    Tokens {
        /// The body.
        response: TokenResponse,
        /// `exp`/`iat` of the access token if it is a JWT.
        jwt: Option<JwtTimes>,
        /// The `Date` header (epoch ms).
        date: Option<f64>,
    },
    /// Not 2xx.
    Status {
        /// The HTTP status.
        status: u16,
        /// The RFC 6749 §5.2 `error` of a JSON body, if there was one.
        oauth_error: Option<String>,
    },
    /// Cookie mode: 2xx with a valid session body.
    Session(TokenSet),
    /// 2xx but not a JSON object, or too large.
    Garbled,
    /// No answer: network error, CORS, dropped connection.
    Network,
    /// No answer within the request timeout.
    Timeout,
}

/// What a new session finds: what storage held, and what the page offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Boot {
    /// The stored record.
    pub stored: Stored,
    /// The storage mode in use (memory if the requested storage was unavailable).
    pub storage: StorageMode,
    /// Why the requested storage was unavailable, if it was.
    pub storage_error: Option<Error>,
    /// How this tab reaches the others.
    pub transport: Transport,
    /// The page has Web Locks.
    pub locks: bool,
    /// `navigator.onLine`.
    pub online: bool,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The session was created.
    Start(Boot),
    /// Whether other tabs of this namespace are open (their presence locks).
    Presence {
        /// At least one is.
        others: bool,
    },
    /// Validated tokens from `login()` (its reply) or `setTokens()`.
    SignIn {
        /// The tokens.
        tokens: TokenSet,
        /// The caller to answer.
        ticket: Option<Ticket>,
    },
    /// A request wants the access token.
    TokenWanted {
        /// The caller.
        ticket: Ticket,
    },
    /// A request with the token of counter `seq` got a 401: may it retry with another?
    Unauthorized {
        /// The caller.
        ticket: Ticket,
        /// The counter of the token set it used.
        seq: u64,
    },
    /// `refresh()`.
    Refresh {
        /// The caller.
        ticket: Ticket,
    },
    /// `logout()`.
    Logout {
        /// The caller.
        ticket: Ticket,
    },
    /// `dispose()`.
    Dispose,
    /// The timer fired.
    Tick,
    /// The page woke up: visible again, focused, shown from the back-forward cache.
    Wake,
    /// The browser went online or offline.
    Online(bool),
    /// The answer to [`Effect::Refresh`] `id`.
    RefreshReply {
        /// The request.
        id: u32,
        /// Its outcome.
        reply: Reply,
    },
    /// The outcome of [`Effect::Revoke`].
    RevokeReply {
        /// The caller to answer.
        ticket: Option<Ticket>,
        /// What went wrong, if anything.
        error: Option<Error>,
    },
    /// A valid message from another tab.
    Message(Envelope),
    /// Another tab wrote the stored session (`local` mode).
    StorageChanged(Stored),
    /// The refresh lock is ours (request `id`).
    LockGranted {
        /// The request.
        id: u32,
        /// It was taken from a holder that did not release it.
        stolen: bool,
        /// Another tab held it when it was requested: handed over, not found free.
        waited: bool,
        /// In `local` mode, the stored session read when the lock was granted.
        stored: Option<Stored>,
    },
    /// The user did something (pointer, key, touch, the tab shown again).
    Activity,
    /// Cookie mode: the answer to [`Effect::ReadSession`].
    SessionRead {
        /// What the session endpoint said.
        reply: Reply,
    },
    /// Cookie mode: a request got a 403 naming a CSRF failure: may it retry with a fresh token?
    CsrfRejected {
        /// The caller.
        ticket: Ticket,
    },
    /// Another tab stole the lock this tab held (request `id`).
    LockLost {
        /// The request.
        id: u32,
    },
}

/// What a waiting caller gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The access token to use, and the counter of its set (for [`Input::Unauthorized`]).
    Token {
        /// The token.
        token: String,
        /// Its set's counter.
        seq: u64,
    },
    /// No token: signed out (a request goes without one), or a 401 that stays a 401.
    NoToken,
    /// Done (`refresh()`, `logout()`, `login()`).
    Done,
    /// Failed.
    Failed(Error),
}

/// Something to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Arm the one timer for this absolute time (epoch ms), replacing the pending one;
    /// `None` cancels it.
    Timer(Option<f64>),
    /// Post a message to the other tabs.
    Post(Message),
    /// Write the stored session.
    Save(Record),
    /// Remove the stored session.
    Clear,
    /// Emit an event to the app.
    Emit(Event),
    /// Answer a waiting caller.
    Answer(Ticket, Answer),
    /// Start-up restore is done: resolve `ready` with whether there is a session.
    Ready(bool),
    /// POST the refresh grant with this refresh token (cookie mode: extend the session,
    /// `POST {sessionUrl}/refresh`, under this CSRF token); answer with [`Input::RefreshReply`].
    Refresh {
        /// Request id.
        id: u32,
        /// The refresh token (cookie mode: the CSRF token) to send.
        refresh_token: String,
    },
    /// Cookie mode: read the session (`GET {sessionUrl}`); answer with [`Input::SessionRead`].
    ReadSession,
    /// Revoke this token (RFC 7009), or in cookie mode end the server session (`POST
    /// {sessionUrl}/logout`); answer with [`Input::RevokeReply`].
    Revoke {
        /// The token.
        token: String,
        /// The caller to answer once done.
        ticket: Option<Ticket>,
    },
    /// Request the refresh lock (taking it from its holder if `steal`); answer with
    /// [`Input::LockGranted`] of the same `id`.
    AcquireLock {
        /// The request.
        id: u32,
        /// Take it over.
        steal: bool,
    },
    /// Release the lock held by request `id`, or give that request up if not granted yet.
    ReleaseLock {
        /// The request.
        id: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Created,
    Restoring,
    Ready,
    Disposed,
}

#[derive(Clone, Debug, PartialEq)]
struct Held {
    tokens: TokenSet,
    stamp: Stamp,
    /// The set came from a refresh forced by a 401: a 401 on it is final.
    after_401: bool,
    /// A 401 on this set already forced a refresh.
    refreshed_on_401: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Token,
    Refresh,
    Retry401 { seq: u64 },
}

/// Why a refresh starts, which decides what may hold it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why2 {
    /// Due by the clock: waits for backoff and the minimum interval.
    Scheduled,
    /// A request needs a token now: waits for the minimum interval.
    Needed,
    /// A 401: waits for backoff.
    Unauthorized,
    /// `refresh()`: nothing holds it back.
    Explicit,
}

/// What a refresh in preparation re-checks: the counter and failure count it started from.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Plan {
    seq: u64,
    attempts: u32,
    for_401: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Flight {
    Idle,
    /// Waiting for the lock; at `steal_at` a claim, settled at `claim_until`, decides
    /// whether this tab steals it.
    Locking {
        plan: Plan,
        steal_at: f64,
        claim_until: Option<f64>,
        stealing: bool,
    },
    /// Without Web Locks: claimed the refresh, settled at `until`.
    Claiming {
        plan: Plan,
        until: f64,
    },
    /// Waiting for another tab's refresh to report back (or, `late`, for the news a frozen
    /// or throttled tab may not have read yet), holding the lock if `locked`.
    AwaitPeer {
        plan: Plan,
        until: f64,
        locked: bool,
        late: bool,
    },
    Sending {
        id: u32,
        refresh_token: String,
        locked: bool,
        for_401: bool,
        sent_at: f64,
    },
}

/// Another tab's refresh this tab knows of: claimed, or announced as sent (`sending`).
#[derive(Clone, Debug, PartialEq)]
struct Peer {
    from: String,
    until: f64,
    sending: bool,
}

/// How a token set came to be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    SignIn,
    Refreshed,
    Peer,
    Restored,
}

/// The session state and its transitions. See the module docs.
#[derive(Debug)]
pub struct Machine {
    cfg: Config,
    tab: String,
    rng: u64,
    storage: StorageMode,
    transport: Transport,
    locks: bool,
    online: bool,
    phase: Phase,
    restore_until: Option<f64>,
    seq: u64,
    held: Option<Held>,
    attempts: u32,
    not_before: f64,
    expiry_announced: bool,
    flight: Flight,
    /// Holding the lock after a refresh, until then (see [`SETTLE_MS`]).
    settle_until: Option<f64>,
    /// Other tabs' refreshes under way, one entry per tab.
    peers: Vec<Peer>,
    /// Claims from other tabs: sender and when it arrived.
    claims: Vec<(String, f64)>,
    waiters: Vec<(Ticket, Want)>,
    early: Vec<(Ticket, Want)>,
    next_id: u32,
    /// The current lock request (pending or granted).
    lock_id: u32,
    /// Refreshes abandoned under way (logout, a new sign-in): request id, and the lock
    /// request it holds until its answer lands.
    abandoned: Vec<(u32, Option<u32>)>,
    armed: Option<f64>,
    /// The latest wall and monotonic times seen, to measure steps of the wall clock.
    last_now: f64,
    last_mono: f64,
    /// The last user activity in any tab (epoch ms).
    last_activity: f64,
    /// When this tab last told the others of activity, and whether activity came since.
    activity_shared: f64,
    activity_unshared: bool,
    /// An `idle_warning` was emitted and no activity came since.
    warned: bool,
    /// Cookie mode: the state counter and clock when the `GET {sessionUrl}` under way was sent, and
    /// the callers waiting for it.
    reading: Option<(u64, f64)>,
    read_waiters: Vec<Ticket>,
    out: Vec<Effect>,
}

impl Machine {
    /// A machine for `cfg` in the tab `tab` (its id in messages); `seed` seeds the backoff
    /// jitter.
    pub fn new(cfg: Config, tab: String, seed: u64) -> Machine {
        Machine {
            storage: cfg.storage,
            cfg,
            tab,
            rng: seed,
            transport: Transport::None,
            locks: false,
            online: true,
            phase: Phase::Created,
            restore_until: None,
            seq: 0,
            held: None,
            attempts: 0,
            not_before: 0.0,
            expiry_announced: false,
            flight: Flight::Idle,
            settle_until: None,
            peers: Vec::new(),
            claims: Vec::new(),
            waiters: Vec::new(),
            early: Vec::new(),
            next_id: 0,
            lock_id: 0,
            abandoned: Vec::new(),
            armed: None,
            last_now: f64::NEG_INFINITY,
            last_mono: 0.0,
            last_activity: f64::NEG_INFINITY,
            activity_shared: f64::NEG_INFINITY,
            activity_unshared: false,
            warned: false,
            reading: None,
            read_waiters: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Handles one input at `now` (the wall clock, epoch ms; `mono` is a monotonic clock in
    /// ms, e.g. `performance.now()`) and returns what to do, in order.
    pub fn handle(&mut self, now: f64, mono: f64, input: Input) -> Vec<Effect> {
        // A clock that reads NaN or infinity is ignored: the last good reading stands.
        let now = if now.is_finite() { now } else { self.last_now.max(0.0) };
        let mono = if mono.is_finite() { mono } else { self.last_mono };
        self.observe(now, mono);
        if self.phase == Phase::Disposed {
            self.after_dispose(now, input);
        } else {
            // Whatever fell due first (a tab thawing after a freeze sees its deadlines passed
            // before the inputs that queued up meanwhile), then the input, then what it makes due.
            self.check(now);
            self.on(now, input);
            self.check(now);
        }
        self.arm(now);
        std::mem::take(&mut self.out)
    }

    // ---- read-only views, for the driver's getters and fast path ----------------------------

    /// The current token set.
    pub fn tokens(&self) -> Option<&TokenSet> {
        self.held.as_ref().map(|h| &h.tokens)
    }

    /// The token a request may use right now without any state change, and its set's
    /// counter: the fast path of `session.fetch`. `None` when anything needs deciding.
    pub fn token_now(&self, now: f64) -> Option<(&str, u64)> {
        let h = self.held.as_ref().filter(|_| self.phase == Phase::Ready)?;
        let t = &h.tokens;
        let fresh = now < policy::usable_until(t) && (now < self.refresh_due(t) || self.flight != Flight::Idle);
        fresh.then_some((t.access_token.as_str(), h.stamp.seq))
    }

    /// When the next refresh is due (after any backoff); `None` when nothing can renew the set.
    pub fn refresh_at(&self) -> Option<f64> {
        let t = self.tokens().filter(|t| self.renewable(t))?;
        Some(self.refresh_due(t))
    }

    /// When the idle logout comes if nothing happens (epoch ms), while signed in.
    pub fn idle_logout_at(&self) -> Option<f64> {
        self.held.as_ref().and(self.idle_at())
    }

    /// When the session's absolute lifetime ends (epoch ms), while signed in with one.
    pub fn session_ends_at(&self) -> Option<f64> {
        self.tokens().and_then(|t| self.absolute_at(t))
    }

    /// The stamp of the current token set.
    pub fn stamp(&self) -> Option<&Stamp> {
        self.held.as_ref().map(|h| &h.stamp)
    }

    /// The counter of the current state (token set or logout).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The storage mode in use.
    pub fn storage(&self) -> StorageMode {
        self.storage
    }

    /// Start-up restore is done.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready | Phase::Disposed)
    }

    /// `dispose()` was called.
    pub fn is_disposed(&self) -> bool {
        self.phase == Phase::Disposed
    }

    // ---- inputs -------------------------------------------------------------------------------

    fn on(&mut self, now: f64, input: Input) {
        match input {
            Input::Start(boot) => self.start(now, boot),
            Input::Presence { others } => {
                // Alone: nobody to wait for. (In cookie mode the server's answer decides.)
                if self.phase == Phase::Restoring && !others && self.reading.is_none() {
                    self.become_ready(now);
                }
            }
            Input::SignIn { tokens, ticket } => {
                let stamp = self.next_stamp(now);
                self.install(now, tokens, stamp, Source::SignIn, false);
                if let Some(t) = ticket {
                    self.answer(t, Answer::Done);
                }
            }
            Input::TokenWanted { ticket } => self.want(now, ticket, Want::Token),
            Input::Unauthorized { ticket, seq } => self.want(now, ticket, Want::Retry401 { seq }),
            Input::Refresh { ticket } => self.want(now, ticket, Want::Refresh),
            Input::Logout { ticket } => self.end_here(now, LogoutReason::User, Some(ticket)),
            Input::Activity => self.activity(now, 0.0, true),
            Input::SessionRead { reply } => self.session_read(now, reply),
            Input::CsrfRejected { ticket } => {
                if self.held.is_none() {
                    return self.answer(ticket, Answer::NoToken);
                }
                self.read_waiters.push(ticket);
                self.read_session(now);
            }
            Input::Dispose => self.dispose(),
            Input::Tick | Input::Wake => {
                // A timer that fired before its deadline (the wall clock went back while it
                // ran) is spent: arm it again even though the deadline has not changed.
                if self.armed.is_some_and(|a| a > now) {
                    self.armed = None;
                }
            }
            Input::Online(online) => {
                self.online = online;
                if online {
                    // Back online: one prompt attempt rather than waiting out the backoff.
                    self.not_before = 0.0;
                }
            }
            Input::RefreshReply { id, reply } => self.refresh_reply(now, id, reply),
            Input::RevokeReply { ticket, error } => {
                if let Some(e) = error {
                    self.emit(Event::Error(e));
                }
                if let Some(t) = ticket {
                    self.answer(t, Answer::Done);
                }
            }
            Input::Message(env) => self.message(now, env),
            Input::StorageChanged(stored) => {
                if let Stored::Valid(r) = stored {
                    if self.storage == StorageMode::Local && self.accepts(&r.stamp) {
                        self.install(now, r.tokens, r.stamp, Source::Peer, r.after_401);
                    }
                }
            }
            Input::LockGranted { id, stolen, waited, stored } => self.lock_granted(now, id, stolen, waited, stored),
            Input::LockLost { id } => {
                if id != self.lock_id {
                    return;
                }
                self.settle_until = None;
                if let Flight::Sending { locked, .. } | Flight::AwaitPeer { locked, .. } = &mut self.flight {
                    *locked = false;
                }
            }
        }
    }

    /// After `dispose()` only a refresh already under way lands (its rotated refresh token
    /// must reach storage, or the next page load would send a spent one); locks are given back.
    fn after_dispose(&mut self, now: f64, input: Input) {
        match input {
            Input::RefreshReply { id, reply } => self.refresh_reply(now, id, reply),
            Input::LockGranted { id, .. } => self.out.push(Effect::ReleaseLock { id }),
            _ => {}
        }
    }

    fn start(&mut self, now: f64, boot: Boot) {
        let Boot { stored, storage, storage_error, transport, locks, online } = boot;
        if self.phase != Phase::Created {
            return;
        }
        self.phase = Phase::Restoring;
        self.storage = storage;
        self.transport = if self.cfg.cross_tab { transport } else { Transport::None };
        self.locks = locks;
        self.online = online;
        if let Some(e) = storage_error {
            self.emit(Event::Error(e));
        }
        match stored {
            Stored::Empty => {}
            Stored::Valid(r) if r.tokens.expires_at > now || r.tokens.refresh_token.is_some() => {
                self.install(now, r.tokens, r.stamp, Source::Restored, r.after_401)
            }
            Stored::Valid(r) => {
                // Expired and not renewable: nothing to restore.
                self.seq = r.stamp.seq;
                self.out.push(Effect::Clear);
            }
            Stored::OtherVersion => {
                self.emit(Event::Error(Error::Storage("stored session has another format version; left alone")))
            }
            Stored::Invalid(why) => {
                self.out.push(Effect::Clear);
                self.emit(Event::Error(Error::Storage(why)));
            }
        }
        // Say hello in any case: the answers carry the session and any refresh under way,
        // which this tab must not start again. Ready at once when the answer is known: a
        // stored session, shared storage (a signed-in tab would have written it), or no tab
        // to ask. Otherwise at the first answer, when presence says no other tab is open, or
        // at the restore timeout.
        self.post(Message::Hello);
        // Opening a tab is activity.
        self.activity(now, 0.0, true);
        if self.cfg.mode == Mode::Cookie {
            // The cookie is the session: the server says whether there is one.
            self.read_session(now);
        } else if self.held.is_some() || self.storage == StorageMode::Local || self.transport != Transport::Broadcast {
            self.become_ready(now);
        } else {
            self.restore_until = Some(now + self.cfg.restore_timeout_ms);
        }
    }

    // ---- activity and the session's own limits ------------------------------------------------

    /// The user did something `age` ms ago: here (`local`), or in another tab.
    fn activity(&mut self, now: f64, age: f64, local: bool) {
        let at = now - age.max(0.0);
        if at <= self.last_activity {
            return;
        }
        let was_warned = self.warned;
        self.last_activity = at;
        self.warned = false;
        if was_warned && self.held.is_some() {
            self.emit(Event::Active);
        }
        if local {
            self.activity_unshared = true;
            self.share_activity(now);
        }
    }

    /// Tells the other tabs of activity at most every [`ACTIVITY_SHARE_MS`]; the last burst
    /// goes out when that time has passed (a deadline), with its age.
    fn share_activity(&mut self, now: f64) {
        if self.activity_unshared && now >= self.activity_share_at() {
            self.activity_unshared = false;
            self.activity_shared = now;
            self.post(Message::Activity { age_ms: now - self.last_activity });
        }
    }

    fn activity_share_at(&self) -> f64 {
        let every = self.cfg.idle_timeout_ms.map_or(ACTIVITY_SHARE_MS, |t| ACTIVITY_SHARE_MS.min(t / 4.0));
        self.activity_shared + every
    }

    /// When the idle logout comes, if there is one.
    fn idle_at(&self) -> Option<f64> {
        self.cfg.idle_timeout_ms.map(|t| self.last_activity + t)
    }

    /// When the session's absolute lifetime ends, if it has one.
    fn absolute_at(&self, t: &TokenSet) -> Option<f64> {
        Some(t.login_at? + self.cfg.max_session_ms?)
    }

    /// Can this set be renewed: a refresh token, or (cookie mode) the session endpoint.
    fn renewable(&self, t: &TokenSet) -> bool {
        t.refresh_token.is_some() || self.cfg.mode == Mode::Cookie
    }

    /// May a refresh run now that nobody asked for? Not while the user is idle, where a
    /// session must not be kept alive by background work: with an idle timeout (and always
    /// in cookie mode, where a refresh extends the server's session), only after activity
    /// since the set was issued.
    fn active_since(&self, t: &TokenSet) -> bool {
        let required = self.cfg.idle_timeout_ms.is_some() || self.cfg.mode == Mode::Cookie;
        // Activity heard from another tab is dated by its age, a few ms off: activity within
        // a second of the issue (the sign-in itself) is not a sign of use since.
        !required || self.last_activity > t.issued_at + 1_000.0
    }

    /// Ends the session here and tells the other tabs; revokes what can be revoked (the
    /// refresh token, or the server's session); answers `ticket` once that was tried.
    fn end_here(&mut self, now: f64, reason: LogoutReason, ticket: Option<Ticket>) {
        let held = self.end(now, reason, None);
        let token = held.and_then(|h| h.tokens.refresh_token.or(Some(h.tokens.access_token)));
        let revocable = self.cfg.revokes();
        match token.filter(|_| revocable) {
            Some(token) => self.out.push(Effect::Revoke { token, ticket }),
            None => {
                if let Some(t) = ticket {
                    self.answer(t, Answer::Done);
                }
            }
        }
    }

    // ---- cookie mode ------------------------------------------------------------------------

    fn read_session(&mut self, now: f64) {
        if self.reading.is_none() {
            self.reading = Some((self.seq, now));
            self.out.push(Effect::ReadSession);
        }
    }

    /// What the session endpoint said: the session (a new CSRF token, a new expiry), no
    /// session (401), or nothing usable.
    fn session_read(&mut self, now: f64, reply: Reply) {
        // A read sent before a sign-in, a logout or another tab's news describes a session
        // that is no longer the question (a 401 from before a sign-in must not end it).
        let Some((sent_seq, sent_at)) = self.reading.take() else { return };
        let stale = sent_seq != self.seq;
        let waiters = std::mem::take(&mut self.read_waiters);
        if !stale && matches!(&reply, Reply::Session(t) if t.expires_at <= now) {
            // An answer held up past its own expiry (a frozen tab): ask again.
            self.read_waiters = waiters;
            return self.read_session(now);
        }
        let before = if stale { None } else { self.held.as_ref().map(|h| h.tokens.access_token.clone()) };
        match reply {
            _ if stale => {}
            Reply::Session(mut tokens) => {
                let restoring = self.phase == Phase::Restoring;
                tokens.login_at = self.held.as_ref().and_then(|h| h.tokens.login_at).or(tokens.login_at);
                if restoring {
                    let stamp = Stamp { seq: 0, origin: String::new() };
                    self.install(now, tokens, stamp, Source::Restored, false);
                } else if let Some(h) = self.held.as_mut().filter(|h| h.tokens.access_token == tokens.access_token) {
                    // The same session, perhaps extended by another tab whose news has not
                    // come yet: take the later expiry; nothing to tell anyone.
                    if tokens.expires_at > h.tokens.expires_at {
                        h.tokens.expires_at = tokens.expires_at;
                        h.tokens.issued_at = tokens.issued_at;
                        self.expiry_announced = false;
                    }
                } else {
                    // A fresh CSRF token (after a 403): the other tabs take it too. Stamped
                    // as of the read, so that news from after it still wins.
                    let stamp = Stamp { seq: next_seq(sent_seq, sent_at), origin: self.tab.clone() };
                    self.install(now, tokens, stamp, Source::Refreshed, false);
                }
            }
            Reply::Status { status: 401, .. } => {
                if self.held.is_some() {
                    self.server_ended(now);
                }
            }
            _ => {
                if self.phase == Phase::Restoring {
                    self.emit(Event::Error(Error::RefreshFailed("the session endpoint could not be read")));
                }
            }
        }
        self.become_ready(now);
        let after = self.held.as_ref().map(|h| (h.tokens.access_token.clone(), h.stamp.seq));
        for ticket in waiters {
            let answer = match &after {
                Some((csrf, seq)) if Some(csrf) != before.as_ref() => Answer::Token { token: csrf.clone(), seq: *seq },
                _ => Answer::NoToken,
            };
            self.answer(ticket, answer);
        }
    }

    fn become_ready(&mut self, now: f64) {
        if self.phase != Phase::Restoring {
            return;
        }
        self.phase = Phase::Ready;
        self.restore_until = None;
        // The deadlines first: a restored session may already be past its absolute or idle
        // end, and must not be handed to the callers that waited for it.
        self.check(now);
        self.out.push(Effect::Ready(self.held.is_some()));
        for (ticket, want) in std::mem::take(&mut self.early) {
            self.want(now, ticket, want);
        }
    }

    fn dispose(&mut self) {
        let waiting = std::mem::take(&mut self.waiters).into_iter().chain(std::mem::take(&mut self.early));
        for (ticket, _) in waiting.collect::<Vec<_>>() {
            self.answer(ticket, Answer::Failed(Error::Disposed));
        }
        if self.phase == Phase::Restoring {
            self.out.push(Effect::Ready(self.held.is_some()));
        }
        self.phase = Phase::Disposed;
        if self.settle_until.take().is_some() {
            self.release_lock();
        }
        match std::mem::replace(&mut self.flight, Flight::Idle) {
            // A request under way still lands (see `after_dispose`).
            f @ Flight::Sending { .. } => self.flight = f,
            Flight::Locking { .. } | Flight::AwaitPeer { locked: true, .. } => self.release_lock(),
            _ => {}
        }
    }

    // ---- callers --------------------------------------------------------------------------

    fn want(&mut self, now: f64, ticket: Ticket, want: Want) {
        if self.phase != Phase::Ready {
            self.early.push((ticket, want));
            return;
        }
        let Some(h) = self.held.as_ref() else {
            let answer = if want == Want::Refresh { Answer::Failed(Error::NotAuthenticated) } else { Answer::NoToken };
            return self.answer(ticket, answer);
        };
        let t = &h.tokens;
        let renewable = self.renewable(t);
        // Without a refresh token the token is used while it lasts: nothing can replace it.
        let usable = now < policy::usable_until(t) || (!renewable && now < t.expires_at);
        let due = renewable && now >= self.refresh_due(t);
        let token = Answer::Token { token: t.access_token.clone(), seq: h.stamp.seq };
        let (seq, after_401, refreshed_on_401) = (h.stamp.seq, h.after_401, h.refreshed_on_401);
        let idle = self.flight == Flight::Idle;
        match want {
            Want::Token if usable => {
                self.answer(ticket, token);
                if due {
                    let _ = self.start_refresh(now, Why2::Scheduled);
                }
            }
            Want::Token if !renewable => self.answer(ticket, Answer::NoToken),
            Want::Token if now < self.not_before && idle && !self.peer_pending(now) => {
                // Expired, and the token endpoint is failing: don't hammer it.
                let e = Error::RefreshFailed("the token endpoint is failing; backing off");
                self.answer(ticket, Answer::Failed(e));
            }
            Want::Token | Want::Refresh => {
                self.waiters.push((ticket, want));
                let why = if want == Want::Refresh { Why2::Explicit } else { Why2::Needed };
                if let Err(e) = self.start_refresh(now, why) {
                    self.fail_waiter(ticket, e);
                }
            }
            // Newer tokens arrived meanwhile: retry with them.
            Want::Retry401 { seq: used } if used != seq => self.want(now, ticket, Want::Token),
            // Cookie mode: the server no longer knows the session. It ends in every tab.
            Want::Retry401 { .. } if self.cfg.mode == Mode::Cookie => {
                self.server_ended(now);
                self.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } if after_401 || !renewable || (refreshed_on_401 && idle) => {
                // Refreshing cannot fix this 401 (or already did not): the app gets it.
                self.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } => {
                if let Some(h) = self.held.as_mut() {
                    h.refreshed_on_401 = true;
                }
                self.waiters.push((ticket, want));
                if let Err(e) = self.start_refresh(now, Why2::Unauthorized) {
                    self.fail_waiter(ticket, e);
                }
            }
        }
    }

    fn fail_waiter(&mut self, ticket: Ticket, e: Error) {
        if let Some(i) = self.waiters.iter().position(|(t, _)| *t == ticket) {
            let (_, want) = self.waiters.remove(i);
            let answer = match want {
                Want::Retry401 { .. } => Answer::NoToken,
                _ => Answer::Failed(e),
            };
            self.answer(ticket, answer);
        }
    }

    /// Answers every waiting caller after the tokens changed or a refresh ended
    /// (`failure` says how, if it did not succeed).
    fn settle_waiters(&mut self, now: f64, failure: Option<Error>) {
        for (ticket, want) in std::mem::take(&mut self.waiters) {
            let current = self.held.as_ref();
            let token = current
                .filter(|h| now < policy::usable_until(&h.tokens))
                .map(|h| Answer::Token { token: h.tokens.access_token.clone(), seq: h.stamp.seq });
            let answer = match (want, &failure) {
                (Want::Refresh, Some(e)) => Answer::Failed(e.clone()),
                (Want::Refresh, None) if current.is_some() => Answer::Done,
                (Want::Refresh, None) => Answer::Failed(Error::NotAuthenticated),
                // The 401 stays a 401.
                (Want::Retry401 { .. }, Some(_)) => Answer::NoToken,
                (_, None) => token.unwrap_or(Answer::NoToken),
                (Want::Token, Some(e)) => match token {
                    Some(token) => token,
                    // Signed out: the request goes without a token.
                    None if current.is_none() && *e != Error::RefreshRejected => Answer::NoToken,
                    None => Answer::Failed(e.clone()),
                },
            };
            self.answer(ticket, answer);
        }
    }

    // ---- refresh ----------------------------------------------------------------------------

    fn refresh_due(&self, t: &TokenSet) -> f64 {
        policy::refresh_at(t, self.cfg.refresh_lead_ms).max(self.not_before)
    }

    fn peer_pending(&self, now: f64) -> bool {
        self.peer_until(now).is_some()
    }

    fn start_refresh(&mut self, now: f64, why: Why2) -> Result<(), Error> {
        let h = self.held.as_ref().ok_or(Error::NotAuthenticated)?;
        if !self.renewable(&h.tokens) {
            return Err(Error::NotAuthenticated);
        }
        let for_401 = why == Why2::Unauthorized;
        if let Flight::Sending { for_401: f, .. } = &mut self.flight {
            *f |= for_401;
            return Ok(());
        }
        if self.flight != Flight::Idle {
            return Ok(()); // joined: the waiter is answered when it lands
        }
        if !self.online {
            return Err(Error::Network); // the `online` event re-checks
        }
        let floor = h.tokens.issued_at + policy::MIN_REFRESH_INTERVAL_MS;
        let held_back = match why {
            Why2::Scheduled => now < floor || now < self.not_before,
            Why2::Needed => now < floor,
            Why2::Unauthorized => now < self.not_before,
            Why2::Explicit => false,
        };
        if held_back {
            return if why == Why2::Unauthorized { Err(Error::RefreshFailed("backing off")) } else { Ok(()) };
        }
        let plan = Plan { seq: self.seq, attempts: self.attempts, for_401 };
        let with_locks = self.locks && self.transport != Transport::None;
        // With Web Locks, queue for the lock even while another tab's refresh is announced:
        // a grant then means that tab let go (its result is on the way, or it was closed).
        if let Some(until) = self.peer_until(now).filter(|_| !with_locks) {
            self.flight = Flight::AwaitPeer { plan, until, locked: false, late: false };
        } else {
            self.lock_or_send(now, plan);
        }
        Ok(())
    }

    fn lock_or_send(&mut self, now: f64, plan: Plan) {
        if let Some(until) = self.settle_until.take() {
            // Still holding the lock after this tab's last refresh (an expired hold was let go
            // before this input): refresh under it once the result had time to reach the
            // other tabs.
            self.flight = Flight::AwaitPeer { plan, until, locked: true, late: false };
        } else if self.transport != Transport::None && self.locks {
            self.acquire_lock(false);
            let steal_at = now + self.cfg.lock_timeout_ms;
            self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
        } else if self.transport == Transport::Broadcast {
            self.post(Message::Claim);
            self.flight = Flight::Claiming { plan, until: now + CLAIM_SETTLE_MS };
        } else {
            self.send(now, plan, false, true);
        }
    }

    fn send(&mut self, now: f64, plan: Plan, locked: bool, announce: bool) {
        // Cookie mode renews with the session endpoint, under the CSRF token.
        let cookie = self.cfg.mode == Mode::Cookie;
        let token = self
            .held
            .as_ref()
            .and_then(|h| h.tokens.refresh_token.clone().or(cookie.then(|| h.tokens.access_token.clone())));
        let Some(refresh_token) = token else {
            if locked {
                self.release_lock();
            }
            self.flight = Flight::Idle;
            return;
        };
        if announce {
            // In the same step as the request: no tab can freeze between the two.
            self.post(Message::Refreshing { timeout_ms: self.cfg.request_timeout_ms });
        }
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        self.out.push(Effect::Refresh { id, refresh_token: refresh_token.clone() });
        self.flight = Flight::Sending { id, refresh_token, locked, for_401: plan.for_401, sent_at: now };
    }

    fn lock_granted(&mut self, now: f64, id: u32, stolen: bool, waited: bool, stored: Option<Stored>) {
        let Flight::Locking { plan, steal_at, .. } = self.flight else {
            self.out.push(Effect::ReleaseLock { id });
            return;
        };
        if id != self.lock_id {
            // A request this tab gave up (it stole since): not the lock it waits for.
            self.out.push(Effect::ReleaseLock { id });
            return;
        }
        if let Some(Stored::Valid(r)) = stored {
            if self.accepts(&r.stamp) {
                self.install(now, r.tokens, r.stamp, Source::Peer, r.after_401);
            }
        }
        if self.held.is_none() || self.seq != plan.seq {
            // Another tab refreshed (or the session ended) while this one waited.
            self.release_lock();
            self.flight = Flight::Idle;
            self.settle_waiters(now, None);
        } else if self.attempts > plan.attempts {
            self.release_lock();
            self.flight = Flight::Idle;
            self.settle_waiters(now, Some(Error::RefreshFailed("another tab's refresh just failed; backing off")));
        } else if let Some(peer_until) = self.peer_sending(now) {
            // A refresh was announced and has not reported back. After a normal release its
            // result is a few ms away (or its tab was closed); after a steal its request may
            // still be on the wire: wait for it to finish or time out.
            let until = if stolen { peer_until } else { peer_until.min(now + PEER_GRACE_MS) };
            self.flight = Flight::AwaitPeer { plan, until, locked: true, late: false };
        } else if !stolen && now > steal_at + LATE_MS {
            // Granted while this tab was frozen: another tab may have taken the lock and
            // refreshed since, in news not read yet. Read it first.
            self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked: true, late: true };
        } else if waited && !stolen {
            // Handed over by a holder, which most likely just refreshed: its result may be
            // a message behind the grant (a tab closed within its settle time lets go at
            // once). Give the news the settle time.
            self.flight = Flight::AwaitPeer { plan, until: now + SETTLE_MS, locked: true, late: true };
        } else {
            self.send(now, plan, true, true);
        }
    }

    /// A wait for another tab's refresh ended without its result.
    fn after_peer(&mut self, now: f64) {
        let Flight::AwaitPeer { plan, locked, until, late } = self.flight else { return };
        let pending = self.peer_until(now);
        if self.held.is_none() || self.seq != plan.seq {
            self.release_if(locked);
            self.flight = Flight::Idle;
        } else if self.attempts > plan.attempts {
            self.release_if(locked);
            self.flight = Flight::Idle;
            self.settle_waiters(now, Some(Error::RefreshFailed("another tab's refresh just failed; backing off")));
        } else if let Some(until) = pending.filter(|_| !locked) {
            // Another tab announced a refresh meanwhile: wait for that one too. (Holding the
            // lock, an announcement is from a tab that let it go: done, or closed.)
            self.flight = Flight::AwaitPeer { plan, until, locked, late: false };
        } else if locked && !late && now > until + LATE_MS {
            // This timer fired late (a frozen or throttled tab): read the news first, once.
            self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked, late: true };
        } else if locked {
            self.send(now, plan, true, true);
        } else {
            self.lock_or_send(now, plan);
        }
    }

    /// Requests the lock; a steal gives up the pending request first.
    fn acquire_lock(&mut self, steal: bool) {
        if steal {
            self.release_lock();
        }
        self.lock_id = self.lock_id.wrapping_add(1);
        self.out.push(Effect::AcquireLock { id: self.lock_id, steal });
    }

    fn release_lock(&mut self) {
        self.out.push(Effect::ReleaseLock { id: self.lock_id });
    }

    /// Keeps the lock for [`SETTLE_MS`] after a refresh under it.
    fn settle(&mut self, now: f64, locked: bool) {
        if locked && self.phase != Phase::Disposed {
            self.settle_until = Some(now + SETTLE_MS);
        } else {
            self.release_if(locked);
        }
    }

    fn release_if(&mut self, locked: bool) {
        if locked {
            self.release_lock();
        }
    }

    fn refresh_reply(&mut self, now: f64, id: u32, reply: Reply) {
        let Flight::Sending { id: current, .. } = self.flight else {
            return self.late_reply(id, reply);
        };
        if current != id {
            return self.late_reply(id, reply);
        }
        let Flight::Sending { refresh_token, locked, for_401, .. } = std::mem::replace(&mut self.flight, Flight::Idle)
        else {
            return;
        };
        let why = match reply {
            Reply::Tokens { response, jwt, date } => {
                match TokenSet::from_response(response, jwt, now, date, Some(&refresh_token)) {
                    Ok(mut tokens) => {
                        // A refresh may come without an ID token (OpenID Connect Core §12.2):
                        // the sign-in's stays, for logout's `id_token_hint`.
                        if tokens.id_token.is_none() {
                            tokens.id_token = self.tokens().and_then(|t| t.id_token.clone());
                        }
                        let stamp = self.next_stamp(now);
                        self.install(now, tokens, stamp, Source::Refreshed, for_401);
                        self.settle(now, locked);
                        return;
                    }
                    Err(_) => "the token endpoint's reply is not a valid token response",
                }
            }
            Reply::Session(tokens) => {
                let stamp = self.next_stamp(now);
                self.install(now, tokens, stamp, Source::Refreshed, false);
                self.settle(now, locked);
                return;
            }
            // Cookie mode: the server's session is gone.
            Reply::Status { status: 401, .. } if self.cfg.mode == Mode::Cookie => {
                self.release_if(locked);
                self.server_ended(now);
                return;
            }
            Reply::Status { status, oauth_error } => match policy::classify(status, oauth_error.as_deref()) {
                Failure::Rejected => {
                    self.release_if(locked);
                    self.end(now, LogoutReason::RefreshRejected, None);
                    return;
                }
                Failure::Transient => "the token endpoint answered with an error status",
            },
            Reply::Garbled => "the token endpoint's reply is not a valid token response",
            Reply::Network => "the token endpoint could not be reached",
            Reply::Timeout => "the token endpoint did not answer in time",
        };
        self.back_off(now);
        self.post(Message::RefreshFailed);
        self.settle(now, locked);
        let e = Error::RefreshFailed(why);
        self.emit(Event::Error(e.clone()));
        self.settle_waiters(now, Some(e));
    }

    /// The reply to a refresh this tab abandoned (logout, a new sign-in): a new refresh
    /// token in it would otherwise stay valid, unknown to anyone. Revoke it.
    fn late_reply(&mut self, id: u32, reply: Reply) {
        let Some(i) = self.abandoned.iter().position(|a| a.0 == id) else { return };
        let (_, lock) = self.abandoned.swap_remove(i);
        if let Some(lock) = lock {
            self.out.push(Effect::ReleaseLock { id: lock });
        }
        if let Reply::Tokens { response, .. } = reply {
            let token = response.refresh_token.valid().or(response.access_token.valid());
            if let Some(token) = token.filter(|_| self.cfg.revokes()) {
                self.out.push(Effect::Revoke { token, ticket: None });
            }
        }
    }

    fn abandon_flight(&mut self) {
        match std::mem::replace(&mut self.flight, Flight::Idle) {
            // The request is still on the wire: its lock is kept until it lands, so that no
            // tab that has not heard the news yet sends the same refresh token meanwhile.
            Flight::Sending { id, locked, .. } => self.abandoned.push((id, locked.then_some(self.lock_id))),
            Flight::Locking { .. } | Flight::AwaitPeer { locked: true, .. } => self.release_lock(),
            _ => {}
        }
    }

    fn back_off(&mut self, now: f64) {
        self.attempts = self.attempts.saturating_add(1);
        let backoff = Backoff { base_ms: self.cfg.retry_base_ms, max_ms: self.cfg.retry_max_ms };
        let rand = self.random();
        self.not_before = now + backoff.delay(self.attempts, rand);
    }

    /// A uniform number in [0, 1) for backoff jitter (splitmix64 over the seed).
    fn random(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    // ---- tokens in and out ------------------------------------------------------------------

    fn next_stamp(&self, now: f64) -> Stamp {
        Stamp { seq: next_seq(self.seq, now), origin: self.tab.clone() }
    }

    /// Is a token set stamped `stamp` newer than what this tab has (tokens or a logout)?
    fn accepts(&self, stamp: &Stamp) -> bool {
        stamp.seq > self.seq || (stamp.seq == self.seq && self.held.as_ref().is_some_and(|h| *stamp > h.stamp))
    }

    fn install(&mut self, now: f64, mut tokens: TokenSet, stamp: Stamp, source: Source, after_401: bool) {
        // The session's start stays the one of its sign-in, across refreshes.
        let previous_login = self.held.as_ref().and_then(|h| h.tokens.login_at);
        match source {
            Source::SignIn => {
                tokens.login_at.get_or_insert(now);
                self.activity(now, 0.0, true);
            }
            Source::Refreshed => tokens.login_at = tokens.login_at.or(previous_login),
            Source::Peer | Source::Restored => {}
        }
        if matches!(source, Source::SignIn | Source::Peer) {
            // A refresh of the previous session must not land on top of this one.
            self.abandon_flight();
        } else if let Flight::Claiming { .. } = self.flight {
            self.flight = Flight::Idle;
        }
        let was_signed_in = self.held.is_some();
        let expires_at = tokens.expires_at;
        self.seq = stamp.seq;
        self.held = Some(Held { tokens, stamp, after_401, refreshed_on_401: false });
        self.attempts = 0;
        self.not_before = 0.0;
        self.expiry_announced = false;
        self.peers.clear();
        // Tokens from another tab in shared storage are already stored, perhaps already
        // replaced by newer ones: writing them back could resurrect a spent refresh token.
        let save = match source {
            Source::SignIn | Source::Refreshed => true,
            Source::Peer => self.storage != StorageMode::Local,
            Source::Restored => false,
        };
        if save && self.storage != StorageMode::Memory {
            if let Some(record) = self.record() {
                self.out.push(Effect::Save(record));
            }
        }
        let why = match source {
            Source::SignIn => Some(Why::Login),
            Source::Refreshed => Some(Why::Refresh),
            _ => None,
        };
        if let Some(why) = why {
            self.share(why);
        }
        self.settle_waiters(now, None);
        if source != Source::Restored {
            self.emit(if was_signed_in { Event::Refresh { expires_at } } else { Event::Login { expires_at } });
        }
        self.become_ready(now);
    }

    fn record(&self) -> Option<Record> {
        let h = self.held.as_ref()?;
        Some(Record {
            v: STORE_VERSION,
            ns: self.cfg.namespace.clone(),
            stamp: h.stamp.clone(),
            tokens: h.tokens.clone(),
            after_401: h.after_401,
        })
    }

    /// Sends the current tokens to the other tabs (over BroadcastChannel only: tokens never
    /// go through storage events).
    fn share(&mut self, why: Why) {
        if self.transport != Transport::Broadcast {
            return;
        }
        if let Some(h) = &self.held {
            let msg = Message::Tokens { stamp: h.stamp.clone(), tokens: h.tokens.clone(), why, after_401: h.after_401 };
            self.post(msg);
        }
    }

    /// Ends the session in this tab: forgets the tokens, clears storage, abandons a refresh
    /// under way, answers callers, emits `logout`. `from_peer` is the counter of another
    /// tab's logout; without it the logout starts here and goes to the other tabs.
    fn end(&mut self, now: f64, reason: LogoutReason, from_peer: Option<u64>) -> Option<Held> {
        let held = self.held.take();
        self.seq = from_peer.unwrap_or(next_seq(self.seq, now)).max(self.seq);
        self.attempts = 0;
        self.not_before = 0.0;
        self.expiry_announced = false;
        self.peers.clear();
        self.abandon_flight();
        if self.settle_until.take().is_some() {
            self.release_lock();
        }
        // Shared storage is cleared by the tab where the logout started: another tab may
        // have stored a newer login by the time the message arrives here.
        if from_peer.is_none() || self.storage != StorageMode::Local {
            self.out.push(Effect::Clear);
        }
        if from_peer.is_none() {
            self.post(Message::Logout { seq: self.seq, reason });
        }
        let failure =
            if reason == LogoutReason::RefreshRejected { Error::RefreshRejected } else { Error::NotAuthenticated };
        self.settle_waiters(now, Some(failure));
        if held.is_some() {
            self.emit(Event::Logout { reason });
        }
        held
    }

    /// Cookie mode: the server no longer has the session this tab holds. It ends here and in
    /// the tabs holding the same one (the logout carries that session's counter), not in a
    /// tab whose sign-in crossed the 401 on its way.
    fn server_ended(&mut self, now: f64) {
        let seq = self.held.as_ref().map_or(self.seq, |h| h.stamp.seq);
        if self.end(now, LogoutReason::Expired, Some(seq)).is_some() {
            self.post(Message::Logout { seq, reason: LogoutReason::Expired });
        }
    }

    // ---- other tabs -------------------------------------------------------------------------

    fn message(&mut self, now: f64, env: Envelope) {
        if self.transport == Transport::None {
            return;
        }
        let from = env.from;
        match env.msg {
            Message::Tokens { stamp, tokens, why, after_401 } => {
                if self.accepts(&stamp) {
                    self.install(now, tokens, stamp, Source::Peer, after_401);
                }
                if why == Why::Share {
                    self.become_ready(now);
                }
            }
            Message::Logout { seq, reason } => {
                if seq >= self.seq {
                    if self.held.is_some() {
                        self.end(now, reason.seen_from_other_tab(), Some(seq));
                    } else {
                        self.seq = seq;
                    }
                }
            }
            Message::Refreshing { timeout_ms } => self.note_peer(&from, now + timeout_ms + PEER_MARGIN_MS, true),
            Message::Claim => {
                // Its refresh is about to start: a tab not claiming itself waits for it.
                self.note_peer(&from, now + CLAIM_SETTLE_MS + PEER_GRACE_MS, false);
                self.claims.retain(|(_, at)| now - *at < 4.0 * CLAIM_SETTLE_MS);
                self.claims.push((from, now));
                // Holding the lock, this tab is alive and its request is coming or under way:
                // say so, so that a tab whose wait ran out does not take the lock over.
                let timeout = self.cfg.request_timeout_ms;
                match self.flight {
                    Flight::Sending { sent_at, locked: true, .. } => {
                        self.post(Message::Refreshing { timeout_ms: (sent_at + timeout - now).max(0.0) })
                    }
                    Flight::AwaitPeer { until, locked: true, .. } => {
                        self.post(Message::Refreshing { timeout_ms: (until - now).max(0.0) + timeout })
                    }
                    _ => {}
                }
            }
            Message::RefreshFailed => {
                // Back off with the tab that failed, so that tabs don't take turns hammering.
                self.back_off(now);
                self.peers.retain(|p| p.from != from);
                self.after_peer(now);
            }
            Message::Hello => {
                if self.phase != Phase::Ready {
                    return;
                }
                let live = self.held.as_ref().is_some_and(|h| h.tokens.expires_at > now || self.renewable(&h.tokens));
                if live {
                    self.share(Why::Share);
                } else {
                    self.post(Message::SignedOut { seq: self.seq });
                }
                // The new tab missed the announcement of a refresh under way: repeat it,
                // with the time it has left, so that the new tab waits for it too.
                match self.flight {
                    Flight::Sending { sent_at, .. } => {
                        let left = (sent_at + self.cfg.request_timeout_ms - now).max(0.0);
                        self.post(Message::Refreshing { timeout_ms: left });
                    }
                    // Likewise a claim being settled: the new tab must rank against it.
                    Flight::Claiming { .. } | Flight::Locking { claim_until: Some(_), .. } => self.post(Message::Claim),
                    _ => {}
                }
            }
            Message::Activity { age_ms } => self.activity(now, age_ms, false),
            Message::SignedOut { seq } => {
                if self.held.is_none() {
                    self.seq = self.seq.max(seq);
                }
                self.become_ready(now);
            }
        }
    }

    // ---- time -------------------------------------------------------------------------------

    /// Looks at the clock: whatever is due now happens now. Runs after every input, so a
    /// late timer (a sleeping laptop, a throttled tab) is caught up by the next event.
    fn check(&mut self, now: f64) {
        if self.restore_until.is_some_and(|u| now >= u) {
            self.become_ready(now);
        }
        self.peers.retain(|p| now < p.until);
        self.share_activity(now);
        if self.settle_until.is_some_and(|u| now >= u) {
            self.settle_until = None;
            self.release_lock();
        }
        match self.flight.clone() {
            Flight::Locking { plan, steal_at, claim_until: None, stealing: false } if now >= steal_at => {
                if let Some(until) = self.peer_until(now) {
                    // The holder announced a refresh: never take the lock from a tab that
                    // may be sending; wait for its result or its timeout.
                    self.flight = Flight::Locking { plan, steal_at: until, claim_until: None, stealing: false };
                } else {
                    // A holder frozen or stuck must not stall every tab; but of the tabs
                    // whose wait ran out together only one may take over.
                    self.post(Message::Claim);
                    let claim_until = Some(now + CLAIM_SETTLE_MS);
                    self.flight = Flight::Locking { plan, steal_at, claim_until, stealing: false };
                }
            }
            Flight::Locking { plan, claim_until: Some(until), .. } if now >= until => {
                if now > until + LATE_MS {
                    // Frozen while claiming: read the news, then claim afresh.
                    let steal_at = now + PEER_GRACE_MS;
                    self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
                } else if let Some(sending) = self.peer_sending(now) {
                    self.flight = Flight::Locking { plan, steal_at: sending, claim_until: None, stealing: false };
                } else if self.lost_claim(until) {
                    let steal_at = now + self.cfg.lock_timeout_ms;
                    self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
                } else {
                    self.flight = Flight::Locking { plan, steal_at: now, claim_until: None, stealing: true };
                    self.acquire_lock(true);
                }
            }
            Flight::Claiming { plan, until } if now >= until => {
                if self.held.is_none() || self.seq != plan.seq {
                    self.flight = Flight::Idle;
                } else if now > until + LATE_MS {
                    // Frozen while claiming: read the news, then claim afresh.
                    self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked: false, late: true };
                } else if let Some(sending) = self.peer_sending(now) {
                    self.flight = Flight::AwaitPeer { plan, until: sending, locked: false, late: false };
                } else if self.lost_claim(until) {
                    // The winner announces its request shortly: wait for it.
                    self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked: false, late: false };
                } else {
                    self.send(now, plan, false, true);
                }
            }
            Flight::AwaitPeer { until, .. } if now >= until => self.after_peer(now),
            _ => {}
        }
        let Some(h) = &self.held else { return };
        let t = &h.tokens;
        let (expires_at, renewable, active) = (t.expires_at, self.renewable(t), self.active_since(t));
        if self.absolute_at(t).is_some_and(|at| now >= at) {
            return self.end_here(now, LogoutReason::Absolute, None);
        }
        if let Some(idle_at) = self.idle_at() {
            if now >= idle_at {
                return self.end_here(now, LogoutReason::Idle, None);
            }
            let warn_at = self.cfg.idle_warning_ms.map(|w| idle_at - w);
            if warn_at.is_some_and(|w| now >= w) && !self.warned {
                self.warned = true;
                self.emit(Event::IdleWarning { logout_at: idle_at });
            }
        }
        if now >= expires_at && !self.expiry_announced {
            self.expiry_announced = true;
            if self.cfg.mode == Mode::Cookie {
                // This tab's copy ran out, but another tab may have extended the session
                // (a frozen tab hears of it late): the server says whether it still lives.
                self.read_session(now);
                return;
            }
            self.emit(Event::Expired { expires_at });
            // No refresh token: over.
            if !renewable {
                self.end(now, LogoutReason::Expired, None);
                return;
            }
        }
        let due = self.held.as_ref().is_some_and(|h| now >= self.refresh_due(&h.tokens));
        if due && renewable && active && self.phase == Phase::Ready && self.flight == Flight::Idle && self.online {
            let _ = self.start_refresh(now, Why2::Scheduled);
        }
    }

    /// Keeps this tab's waits (for the lock, a claim, another tab's refresh, a backoff, the
    /// user's idleness) as long as they were across a step of the wall clock backwards (an
    /// NTP correction, a user changing the time): their deadlines move back with it. The time
    /// that passed is the larger of the wall and monotonic clocks' (a sleeping laptop moves
    /// the wall clock only; a step back, the monotonic one only), so the step is exact. Token
    /// times stay as they were issued, the same in every tab and in storage; a token that
    /// looks valid too long after such a step is refused by the API and refreshed once.
    fn observe(&mut self, now: f64, mono: f64) {
        let (wall_delta, mono_delta) = (now - self.last_now, mono - self.last_mono);
        let first = self.last_now == f64::NEG_INFINITY;
        self.last_now = now;
        self.last_mono = mono;
        let step = mono_delta.max(0.0) - wall_delta;
        if first || step.is_nan() || step <= 0.0 {
            return;
        }
        let back = |t: &mut f64| *t -= step;
        for t in [self.restore_until.as_mut(), self.settle_until.as_mut()].into_iter().flatten() {
            back(t);
        }
        for p in &mut self.peers {
            back(&mut p.until);
        }
        for (_, at) in &mut self.claims {
            back(at);
        }
        match &mut self.flight {
            Flight::Locking { steal_at: t, claim_until, .. } => {
                back(t);
                if let Some(u) = claim_until {
                    back(u);
                }
            }
            Flight::Claiming { until: t, .. }
            | Flight::AwaitPeer { until: t, .. }
            | Flight::Sending { sent_at: t, .. } => back(t),
            Flight::Idle => {}
        }
        if self.not_before > 0.0 {
            back(&mut self.not_before);
        }
        back(&mut self.last_activity);
        back(&mut self.activity_shared);
    }

    fn note_peer(&mut self, from: &str, until: f64, sending: bool) {
        match self.peers.iter_mut().find(|p| p.from == from) {
            Some(p) => {
                p.until = until;
                p.sending |= sending;
            }
            None => self.peers.push(Peer { from: from.to_string(), until, sending }),
        }
    }

    /// Until when the other tabs' refreshes under way may still report back, if any is.
    fn peer_until(&self, now: f64) -> Option<f64> {
        self.peers.iter().filter(|p| now < p.until).map(|p| p.until).reduce(f64::max)
    }

    /// The same, for refreshes announced as sent.
    fn peer_sending(&self, now: f64) -> Option<f64> {
        self.peers.iter().filter(|p| p.sending && now < p.until).map(|p| p.until).reduce(f64::max)
    }

    /// Did a tab with a lower id claim within the window of this tab's claim (settled at
    /// `settled`)?
    fn lost_claim(&self, settled: f64) -> bool {
        let since = settled - 2.0 * CLAIM_SETTLE_MS;
        self.claims.iter().any(|(from, at)| (since..=settled).contains(at) && *from < self.tab)
    }

    /// The next time something falls due.
    fn next_deadline(&self, now: f64) -> Option<f64> {
        if self.phase == Phase::Disposed {
            return None;
        }
        let mut at: Option<f64> = None;
        let mut consider = |t: f64| at = Some(at.map_or(t, |a: f64| a.min(t)));
        if let Some(u) = self.restore_until {
            consider(u);
        }
        for p in &self.peers {
            consider(p.until);
        }
        if let Some(u) = self.settle_until {
            consider(u);
        }
        if self.activity_unshared {
            consider(self.activity_share_at());
        }
        match &self.flight {
            Flight::Locking { claim_until: Some(u), .. } => consider(*u),
            Flight::Locking { steal_at, stealing: false, .. } => consider(*steal_at),
            Flight::Claiming { until, .. } | Flight::AwaitPeer { until, .. } => consider(*until),
            _ => {}
        }
        if let Some(h) = &self.held {
            let t = &h.tokens;
            if !self.expiry_announced {
                consider(t.expires_at);
            }
            if let Some(at) = self.absolute_at(t) {
                consider(at);
            }
            if let Some(idle_at) = self.idle_at() {
                consider(idle_at);
                if let Some(w) = self.cfg.idle_warning_ms.filter(|_| !self.warned) {
                    consider(idle_at - w);
                }
            }
            // Without activity since the set was issued, a refresh waits for some (an
            // `Activity` input re-checks), or for a request that needs it.
            let waits = !self.active_since(t);
            if self.renewable(t) && !waits && self.flight == Flight::Idle && self.phase == Phase::Ready {
                let due = self.refresh_due(t);
                consider(if self.online || due > now { due } else { now + OFFLINE_RECHECK_MS });
            }
        }
        // Never in the past: a deadline that could not be acted on must not spin the timer.
        at.map(|a| a.max(now + 1.0))
    }

    fn arm(&mut self, now: f64) {
        let at = self.next_deadline(now);
        if at != self.armed {
            self.armed = at;
            self.out.push(Effect::Timer(at));
        }
    }

    // ---- effects ----------------------------------------------------------------------------

    fn post(&mut self, msg: Message) {
        if self.transport != Transport::None && self.phase != Phase::Disposed {
            self.out.push(Effect::Post(msg));
        }
    }

    fn emit(&mut self, event: Event) {
        if self.phase != Phase::Disposed {
            self.out.push(Effect::Emit(event));
        }
    }

    fn answer(&mut self, ticket: Ticket, answer: Answer) {
        self.out.push(Effect::Answer(ticket, answer));
    }
}
