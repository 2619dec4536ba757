//! [`Machine`]: the whole session as a state machine without I/O.
//!
//! `Machine::handle(now, mono, input)` takes one thing that happened (an API call, a timer,
//! an HTTP reply, a message from another tab, a lock grant, a storage change, the page
//! waking) and returns what to do ([`Effect`]s): send a request, post a message, take or
//! release the lock, write storage, emit an event, answer a waiting caller, arm the one
//! timer. The browser driver (`crate::web::driver`) carries the effects out and feeds the
//! results back; the simulation (`tests/sim/`) does the same with a model of many tabs.
//!
//! The top machine holds the session (the token set, its counter, the start-up phase) and
//! routes everything else to the small machines that own their state:
//!
//! - [`refresh`]: the refresh in flight, the lock, other tabs' refreshes, the backoff;
//! - [`callers`]: the callers waiting for a token, a refresh or start-up;
//! - [`cookie`]: cookie mode's session reads;
//! - [`limits`]: activity, the idle timeout and the absolute lifetime;
//! - [`deadline`]: the table of deadlines and the one timer;
//! - [`io`]: the inputs, effects and answers.

mod callers;
mod cookie;
mod deadline;
mod io;
mod limits;
mod refresh;

pub use io::{Answer, Boot, Effect, Input, Reply, Ticket, Transport};
pub use limits::ACTIVITY_SHARE_MS;
pub use refresh::{CLAIM_SETTLE_MS, LATE_MS, PEER_GRACE_MS, PEER_MARGIN_MS, SETTLE_MS};

use callers::{Callers, Want};
use cookie::{CookieSession, News};
use deadline::{Deadline, Timer};
use io::Out;
use limits::Limits;
use refresh::{Cause, Current, Outcome, Refresh};

use super::config::{Config, Mode, StorageMode};
use super::error::Error;
use super::events::{Event, LogoutReason};
use super::policy;
use super::protocol::{Envelope, Message, Stamp, Why};
use super::store::{Record, Stored, STORE_VERSION};
use super::token::TokenSet;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Created,
    Restoring,
    Ready,
    Disposed,
}

/// The token set this tab holds.
#[derive(Clone, Debug, PartialEq)]
struct Session {
    tokens: TokenSet,
    stamp: Stamp,
    /// The set came from a refresh forced by a 401: a 401 on it is final.
    after_401: bool,
    /// A 401 on this set already forced a refresh.
    refreshed_on_401: bool,
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
    phase: Phase,
    storage: StorageMode,
    transport: Transport,
    online: bool,
    restore_until: Option<f64>,
    /// The counter of the current state (token set or logout).
    seq: u64,
    session: Option<Session>,
    expiry_announced: bool,
    refresh: Refresh,
    callers: Callers,
    cookie: CookieSession,
    limits: Limits,
    timer: Timer,
    /// The latest wall and monotonic times seen, to measure steps of the wall clock.
    last_now: f64,
    last_mono: f64,
    out: Out,
}

impl Machine {
    /// A machine for `cfg` in the tab `tab` (its id in messages); `seed` seeds the backoff
    /// jitter.
    pub fn new(cfg: Config, tab: String, seed: u64) -> Machine {
        Machine {
            refresh: Refresh::new(&cfg, tab.clone(), seed),
            limits: Limits::new(&cfg),
            storage: cfg.storage,
            cfg,
            tab,
            phase: Phase::Created,
            transport: Transport::None,
            online: true,
            restore_until: None,
            seq: 0,
            session: None,
            expiry_announced: false,
            callers: Callers::default(),
            cookie: CookieSession::default(),
            timer: Timer::default(),
            last_now: f64::NEG_INFINITY,
            last_mono: 0.0,
            out: Out::default(),
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
        let next = if self.phase == Phase::Disposed { None } else { self.next_deadline(now) };
        self.timer.arm(next, now, &mut self.out);
        std::mem::take(&mut self.out.effects)
    }

    // ---- read-only views, for the driver's getters and fast path ----------------------------

    /// The current token set.
    pub fn tokens(&self) -> Option<&TokenSet> {
        self.session.as_ref().map(|s| &s.tokens)
    }

    /// The token a request may use right now without any state change, and its set's
    /// counter: the fast path of `session.fetch`. `None` when anything needs deciding.
    pub fn token_now(&self, now: f64) -> Option<(&str, u64)> {
        let s = self.session.as_ref().filter(|_| self.phase == Phase::Ready)?;
        let t = &s.tokens;
        let fresh = now < policy::usable_until(t) && (now < self.refresh.due(t) || !self.refresh.idle());
        fresh.then_some((t.access_token.as_str(), s.stamp.seq))
    }

    /// When the next refresh is due (after any backoff); `None` when nothing can renew the set.
    pub fn refresh_at(&self) -> Option<f64> {
        let t = self.tokens().filter(|t| self.renewable(t))?;
        Some(self.refresh.due(t))
    }

    /// When the idle logout comes if nothing happens (epoch ms), while signed in.
    pub fn idle_logout_at(&self) -> Option<f64> {
        self.session.as_ref().and(self.limits.idle_at())
    }

    /// When the session's absolute lifetime ends (epoch ms), while signed in with one.
    pub fn session_ends_at(&self) -> Option<f64> {
        self.tokens().and_then(|t| self.limits.absolute_at(t))
    }

    /// The stamp of the current token set.
    pub fn stamp(&self) -> Option<&Stamp> {
        self.session.as_ref().map(|s| &s.stamp)
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
                if self.phase == Phase::Restoring && !others && !self.cookie.reading() {
                    self.become_ready(now);
                }
            }
            Input::SignIn { tokens, ticket } => {
                let stamp = self.next_stamp(now);
                self.install(now, tokens, stamp, Source::SignIn, false);
                if let Some(t) = ticket {
                    self.out.answer(t, Answer::Done);
                }
            }
            Input::TokenWanted { ticket } => self.want(now, ticket, Want::Token),
            Input::Unauthorized { ticket, seq } => self.want(now, ticket, Want::Retry401 { seq }),
            Input::Refresh { ticket } => self.want(now, ticket, Want::Refresh),
            Input::Logout { ticket } => self.end_here(now, LogoutReason::User, Some(ticket)),
            Input::Activity => self.activity(now, 0.0, true),
            Input::SessionRead { reply } => self.session_read(now, reply),
            Input::CsrfRejected { ticket } => {
                if self.session.is_none() {
                    return self.out.answer(ticket, Answer::NoToken);
                }
                self.cookie.wait(ticket);
                self.cookie.read(self.seq, now, &mut self.out);
            }
            Input::Dispose => self.dispose(),
            Input::Tick | Input::Wake => self.timer.fired(now),
            Input::Online(online) => {
                self.online = online;
                if online {
                    self.refresh.online();
                }
            }
            Input::RefreshReply { id, reply } => {
                let outcome = self.refresh.reply(now, id, reply, &mut self.out);
                self.apply(now, outcome);
            }
            Input::RevokeReply { ticket, error } => {
                if let Some(e) = error {
                    self.out.emit(Event::Error(e));
                }
                if let Some(t) = ticket {
                    self.out.answer(t, Answer::Done);
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
            Input::LockGranted { id, stolen, waited, stored } => {
                let Some(grant) = self.refresh.grant(id, &mut self.out) else { return };
                // Shared storage read at the grant: a result stored by the last holder counts.
                if let Some(Stored::Valid(r)) = stored {
                    if self.accepts(&r.stamp) {
                        self.install(now, r.tokens, r.stamp, Source::Peer, r.after_401);
                    }
                }
                let cur = current(&self.session, self.seq, self.cfg.mode);
                let outcome = self.refresh.granted(now, grant, stolen, waited, cur, &mut self.out);
                self.apply(now, outcome);
            }
            Input::LockLost { id } => self.refresh.lock_lost(id),
        }
    }

    /// After `dispose()` only a refresh already under way lands (its rotated refresh token
    /// must reach storage, or the next page load would send a spent one); locks are given back.
    fn after_dispose(&mut self, now: f64, input: Input) {
        match input {
            Input::RefreshReply { id, reply } => {
                let outcome = self.refresh.reply(now, id, reply, &mut self.out);
                self.apply(now, outcome);
            }
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
        self.out.linked = self.transport != Transport::None;
        self.refresh.connect(self.transport, locks);
        self.online = online;
        if let Some(e) = storage_error {
            self.out.emit(Event::Error(e));
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
                self.out.emit(Event::Error(Error::Storage("stored session has another format version; left alone")))
            }
            Stored::Invalid(why) => {
                self.out.push(Effect::Clear);
                self.out.emit(Event::Error(Error::Storage(why)));
            }
        }
        // Say hello in any case: the answers carry the session and any refresh under way,
        // which this tab must not start again. Ready at once when the answer is known: a
        // stored session, shared storage (a signed-in tab would have written it), or no tab
        // to ask. Otherwise at the first answer, when presence says no other tab is open, or
        // at the restore timeout.
        self.out.post(Message::Hello);
        // Opening a tab is activity.
        self.activity(now, 0.0, true);
        if self.cfg.mode == Mode::Cookie {
            // The cookie is the session: the server says whether there is one.
            self.cookie.read(self.seq, now, &mut self.out);
        } else if self.session.is_some() || self.storage == StorageMode::Local || self.transport != Transport::Broadcast
        {
            self.become_ready(now);
        } else {
            self.restore_until = Some(now + self.cfg.restore_timeout_ms);
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
        self.out.push(Effect::Ready(self.session.is_some()));
        for (ticket, want) in self.callers.take_early() {
            self.want(now, ticket, want);
        }
    }

    fn dispose(&mut self) {
        self.callers.dispose(&mut self.out);
        if self.phase == Phase::Restoring {
            self.out.push(Effect::Ready(self.session.is_some()));
        }
        self.phase = Phase::Disposed;
        self.out.disposed = true;
        self.refresh.dispose(&mut self.out);
    }

    fn activity(&mut self, now: f64, age: f64, local: bool) {
        self.limits.activity(now, age, local, self.session.is_some(), &mut self.out);
    }

    // ---- time -------------------------------------------------------------------------------

    /// When `d` falls due, read from the part that owns it; `None` when it is not pending.
    fn deadline(&self, d: Deadline, now: f64) -> Option<f64> {
        let tokens = self.tokens();
        match d {
            Deadline::Restore => self.restore_until,
            Deadline::Peers => self.refresh.peers_deadline(),
            Deadline::ShareActivity => self.limits.share_at(),
            Deadline::Settle => self.refresh.settle_deadline(),
            Deadline::Flight => self.refresh.flight_deadline(),
            Deadline::Absolute => tokens.and_then(|t| self.limits.absolute_at(t)),
            Deadline::Idle => tokens.and(self.limits.idle_at()),
            Deadline::IdleWarning => tokens.and(self.limits.warning_at()),
            Deadline::Expiry => tokens.filter(|_| !self.expiry_announced).map(|t| t.expires_at),
            Deadline::Refresh => {
                // Without activity since the set was issued, a refresh waits for some (an
                // `Activity` input re-checks), or for a request that needs it.
                let t = tokens.filter(|t| self.renewable(t) && self.limits.active_since(t))?;
                if !self.refresh.idle() || self.phase != Phase::Ready {
                    return None;
                }
                let due = self.refresh.due(t);
                Some(if self.online || due > now { due } else { now + OFFLINE_RECHECK_MS })
            }
        }
    }

    /// Acts on `d`, due at `now`; `false` stops the check for this step.
    fn fire(&mut self, d: Deadline, now: f64) -> bool {
        match d {
            Deadline::Restore => self.become_ready(now),
            Deadline::Peers => self.refresh.prune_peers(now),
            Deadline::ShareActivity => self.limits.share(now, &mut self.out),
            Deadline::Settle => self.refresh.settle_done(&mut self.out),
            Deadline::Flight => {
                let cur = current(&self.session, self.seq, self.cfg.mode);
                let outcome = self.refresh.flight_due(now, cur, &mut self.out);
                self.apply(now, outcome);
            }
            Deadline::Absolute => {
                self.end_here(now, LogoutReason::Absolute, None);
                return false;
            }
            Deadline::Idle => {
                self.end_here(now, LogoutReason::Idle, None);
                return false;
            }
            Deadline::IdleWarning => self.limits.warn(&mut self.out),
            Deadline::Expiry => {
                self.expiry_announced = true;
                let Some(t) = self.tokens() else { return false };
                let (expires_at, renewable) = (t.expires_at, self.renewable(t));
                if self.cfg.mode == Mode::Cookie {
                    // This tab's copy ran out, but another tab may have extended the session
                    // (a frozen tab hears of it late): the server says whether it still lives.
                    self.cookie.read(self.seq, now, &mut self.out);
                    return false;
                }
                self.out.emit(Event::Expired { expires_at });
                // No refresh token: over.
                if !renewable {
                    self.end(now, LogoutReason::Expired, None);
                    return false;
                }
            }
            Deadline::Refresh => {
                if self.online {
                    let _ = self.start_refresh(now, Cause::Scheduled);
                }
            }
        }
        true
    }

    /// Looks at the clock: whatever is due now happens now, in the table's order. Runs after
    /// every input, so a late timer (a sleeping laptop, a throttled tab) is caught up by the
    /// next event.
    fn check(&mut self, now: f64) {
        for d in Deadline::ALL {
            if self.deadline(d, now).is_some_and(|at| now >= at) && !self.fire(d, now) {
                return;
            }
        }
    }

    /// The next time something falls due.
    fn next_deadline(&self, now: f64) -> Option<f64> {
        Deadline::ALL.iter().filter_map(|d| self.deadline(*d, now)).reduce(f64::min)
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
        if let Some(t) = self.restore_until.as_mut() {
            *t -= step;
        }
        self.refresh.shift(step);
        self.limits.shift(step);
    }

    // ---- callers --------------------------------------------------------------------------

    fn want(&mut self, now: f64, ticket: Ticket, want: Want) {
        if self.phase != Phase::Ready {
            self.callers.wait_for_ready(ticket, want);
            return;
        }
        let Some(s) = self.session.as_ref() else {
            let answer = if want == Want::Refresh { Answer::Failed(Error::NotAuthenticated) } else { Answer::NoToken };
            return self.out.answer(ticket, answer);
        };
        let t = &s.tokens;
        let renewable = self.renewable(t);
        // Without a refresh token the token is used while it lasts: nothing can replace it.
        let usable = now < policy::usable_until(t) || (!renewable && now < t.expires_at);
        let due = renewable && now >= self.refresh.due(t);
        let token = Answer::Token { token: t.access_token.clone(), seq: s.stamp.seq };
        let (seq, after_401, refreshed_on_401) = (s.stamp.seq, s.after_401, s.refreshed_on_401);
        let idle = self.refresh.idle();
        match want {
            Want::Token if usable => {
                self.out.answer(ticket, token);
                if due {
                    let _ = self.start_refresh(now, Cause::Scheduled);
                }
            }
            Want::Token if !renewable => self.out.answer(ticket, Answer::NoToken),
            Want::Token if self.refresh.backing_off(now) && idle && self.refresh.peer_until(now).is_none() => {
                // Expired, and the token endpoint is failing: don't hammer it.
                let e = Error::RefreshFailed("the token endpoint is failing; backing off");
                self.out.answer(ticket, Answer::Failed(e));
            }
            Want::Token | Want::Refresh => {
                self.callers.wait(ticket, want);
                let cause = if want == Want::Refresh { Cause::Explicit } else { Cause::Needed };
                if let Err(e) = self.start_refresh(now, cause) {
                    self.callers.fail(ticket, e, &mut self.out);
                }
            }
            // Newer tokens arrived meanwhile: retry with them.
            Want::Retry401 { seq: used } if used != seq => self.want(now, ticket, Want::Token),
            // Cookie mode: the server no longer knows the session. It ends in every tab.
            Want::Retry401 { .. } if self.cfg.mode == Mode::Cookie => {
                self.server_ended(now);
                self.out.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } if after_401 || !renewable || (refreshed_on_401 && idle) => {
                // Refreshing cannot fix this 401 (or already did not): the app gets it.
                self.out.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } => {
                if let Some(s) = self.session.as_mut() {
                    s.refreshed_on_401 = true;
                }
                self.callers.wait(ticket, want);
                if let Err(e) = self.start_refresh(now, Cause::Unauthorized) {
                    self.callers.fail(ticket, e, &mut self.out);
                }
            }
        }
    }

    /// Answers every waiting caller after the tokens changed or a refresh ended.
    fn settle_callers(&mut self, now: f64, failure: Option<&Error>) {
        let current = self.session.as_ref().map(|s| (&s.tokens, s.stamp.seq));
        self.callers.settle(now, current, failure, &mut self.out);
    }

    // ---- refresh ----------------------------------------------------------------------------

    /// Can this set be renewed: a refresh token, or (cookie mode) the session endpoint.
    fn renewable(&self, t: &TokenSet) -> bool {
        t.refresh_token.is_some() || self.cfg.mode == Mode::Cookie
    }

    fn start_refresh(&mut self, now: f64, cause: Cause) -> Result<(), Error> {
        let s = self.session.as_ref().ok_or(Error::NotAuthenticated)?;
        if !self.renewable(&s.tokens) {
            return Err(Error::NotAuthenticated);
        }
        let cur = current(&self.session, self.seq, self.cfg.mode);
        self.refresh.start(now, cause, &s.tokens, self.online, cur, &mut self.out)
    }

    /// Carries out what the refresh protocol decided for the rest of the session.
    fn apply(&mut self, now: f64, outcome: Outcome) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Settle(failure) => self.settle_callers(now, failure.as_ref()),
            Outcome::Renewed { mut tokens, for_401, locked } => {
                // A refresh may come without an ID token (OpenID Connect Core §12.2): the
                // sign-in's stays, for logout's `id_token_hint`.
                if tokens.id_token.is_none() {
                    tokens.id_token = self.tokens().and_then(|t| t.id_token.clone());
                }
                let stamp = self.next_stamp(now);
                self.install(now, tokens, stamp, Source::Refreshed, for_401);
                self.refresh.hold(now, locked, &mut self.out);
            }
            Outcome::Rejected => {
                self.end(now, LogoutReason::RefreshRejected, None);
            }
            Outcome::SessionGone => self.server_ended(now),
            Outcome::Failed(e) => {
                self.out.emit(Event::Error(e.clone()));
                self.settle_callers(now, Some(&e));
            }
        }
    }

    // ---- tokens in and out ------------------------------------------------------------------

    fn next_stamp(&self, now: f64) -> Stamp {
        Stamp { seq: next_seq(self.seq, now), origin: self.tab.clone() }
    }

    /// Is a token set stamped `stamp` newer than what this tab has (tokens or a logout)?
    fn accepts(&self, stamp: &Stamp) -> bool {
        stamp.seq > self.seq || (stamp.seq == self.seq && self.session.as_ref().is_some_and(|s| *stamp > s.stamp))
    }

    fn install(&mut self, now: f64, mut tokens: TokenSet, stamp: Stamp, source: Source, after_401: bool) {
        // The session's start stays the one of its sign-in, across refreshes.
        let previous_login = self.tokens().and_then(|t| t.login_at);
        match source {
            Source::SignIn => {
                tokens.login_at.get_or_insert(now);
                self.activity(now, 0.0, true);
            }
            Source::Refreshed => tokens.login_at = tokens.login_at.or(previous_login),
            Source::Peer | Source::Restored => {}
        }
        self.refresh.renewed(matches!(source, Source::SignIn | Source::Peer), &mut self.out);
        let was_signed_in = self.session.is_some();
        let expires_at = tokens.expires_at;
        self.seq = stamp.seq;
        self.session = Some(Session { tokens, stamp, after_401, refreshed_on_401: false });
        self.expiry_announced = false;
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
        match source {
            Source::SignIn => self.share(Why::Login),
            Source::Refreshed => self.share(Why::Refresh),
            Source::Peer | Source::Restored => {}
        }
        self.settle_callers(now, None);
        if source != Source::Restored {
            self.out.emit(if was_signed_in { Event::Refresh { expires_at } } else { Event::Login { expires_at } });
        }
        self.become_ready(now);
    }

    fn record(&self) -> Option<Record> {
        let s = self.session.as_ref()?;
        Some(Record {
            v: STORE_VERSION,
            ns: self.cfg.namespace.clone(),
            stamp: s.stamp.clone(),
            tokens: s.tokens.clone(),
            after_401: s.after_401,
        })
    }

    /// Sends the current tokens to the other tabs (over BroadcastChannel only: tokens never
    /// go through storage events).
    fn share(&mut self, why: Why) {
        if self.transport != Transport::Broadcast {
            return;
        }
        if let Some(s) = &self.session {
            let msg = Message::Tokens { stamp: s.stamp.clone(), tokens: s.tokens.clone(), why, after_401: s.after_401 };
            self.out.post(msg);
        }
    }

    /// Ends the session here and tells the other tabs; revokes what can be revoked (the
    /// refresh token, or the server's session); answers `ticket` once that was tried.
    fn end_here(&mut self, now: f64, reason: LogoutReason, ticket: Option<Ticket>) {
        let ended = self.end(now, reason, None);
        let token = ended.and_then(|s| s.tokens.refresh_token.or(Some(s.tokens.access_token)));
        match token.filter(|_| self.cfg.revokes()) {
            Some(token) => self.out.push(Effect::Revoke { token, ticket }),
            None => {
                if let Some(t) = ticket {
                    self.out.answer(t, Answer::Done);
                }
            }
        }
    }

    /// Ends the session in this tab: forgets the tokens, clears storage, abandons a refresh
    /// under way, answers callers, emits `logout`. `from_peer` is the counter of another
    /// tab's logout; without it the logout starts here and goes to the other tabs.
    fn end(&mut self, now: f64, reason: LogoutReason, from_peer: Option<u64>) -> Option<Session> {
        let ended = self.session.take();
        self.seq = from_peer.unwrap_or(next_seq(self.seq, now)).max(self.seq);
        self.expiry_announced = false;
        self.refresh.ended(&mut self.out);
        // Shared storage is cleared by the tab where the logout started: another tab may
        // have stored a newer login by the time the message arrives here.
        if from_peer.is_none() || self.storage != StorageMode::Local {
            self.out.push(Effect::Clear);
        }
        if from_peer.is_none() {
            self.out.post(Message::Logout { seq: self.seq, reason });
        }
        let failure =
            if reason == LogoutReason::RefreshRejected { Error::RefreshRejected } else { Error::NotAuthenticated };
        self.settle_callers(now, Some(&failure));
        if ended.is_some() {
            self.out.emit(Event::Logout { reason });
        }
        ended
    }

    /// Cookie mode: the server no longer has the session this tab holds. It ends here and in
    /// the tabs holding the same one (the logout carries that session's counter), not in a
    /// tab whose sign-in crossed the 401 on its way.
    fn server_ended(&mut self, now: f64) {
        let seq = self.session.as_ref().map_or(self.seq, |s| s.stamp.seq);
        if self.end(now, LogoutReason::Expired, Some(seq)).is_some() {
            self.out.post(Message::Logout { seq, reason: LogoutReason::Expired });
        }
    }

    // ---- cookie mode ------------------------------------------------------------------------

    /// What the session endpoint said: the session (a new CSRF token, a new expiry), no
    /// session (401), or nothing usable.
    fn session_read(&mut self, now: f64, reply: Reply) {
        let Some((news, waiting)) = self.cookie.land(now, self.seq, reply, &mut self.out) else { return };
        let before = match news {
            News::Stale => None,
            _ => self.tokens().map(|t| t.access_token.clone()),
        };
        match news {
            News::Stale => {}
            News::Session { session: mut tokens, seq: sent_seq, at: sent_at } => {
                tokens.login_at = self.tokens().and_then(|t| t.login_at).or(tokens.login_at);
                if self.phase == Phase::Restoring {
                    let stamp = Stamp { seq: 0, origin: String::new() };
                    self.install(now, tokens, stamp, Source::Restored, false);
                } else if let Some(s) = self.session.as_mut().filter(|s| s.tokens.access_token == tokens.access_token) {
                    // The same session, perhaps extended by another tab whose news has not
                    // come yet: take the later expiry; nothing to tell anyone.
                    if tokens.expires_at > s.tokens.expires_at {
                        s.tokens.expires_at = tokens.expires_at;
                        s.tokens.issued_at = tokens.issued_at;
                        self.expiry_announced = false;
                    }
                } else {
                    // A fresh CSRF token (after a 403): the other tabs take it too. Stamped
                    // as of the read, so that news from after it still wins.
                    let stamp = Stamp { seq: next_seq(sent_seq, sent_at), origin: self.tab.clone() };
                    self.install(now, tokens, stamp, Source::Refreshed, false);
                }
            }
            News::Gone => {
                if self.session.is_some() {
                    self.server_ended(now);
                }
            }
            News::Unreadable => {
                if self.phase == Phase::Restoring {
                    self.out.emit(Event::Error(Error::RefreshFailed("the session endpoint could not be read")));
                }
            }
        }
        self.become_ready(now);
        let after = self.session.as_ref().map(|s| (s.tokens.access_token.as_str(), s.stamp.seq));
        CookieSession::answer(waiting, before.as_deref(), after, &mut self.out);
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
                    if self.session.is_some() {
                        self.end(now, reason.seen_from_other_tab(), Some(seq));
                    } else {
                        self.seq = seq;
                    }
                }
            }
            Message::Refreshing { timeout_ms } => self.refresh.peer_refreshing(&from, now, timeout_ms),
            Message::Claim => self.refresh.peer_claim(from, now, &mut self.out),
            Message::RefreshFailed => {
                let cur = current(&self.session, self.seq, self.cfg.mode);
                let outcome = self.refresh.peer_failed(&from, now, cur, &mut self.out);
                self.apply(now, outcome);
            }
            Message::Hello => {
                if self.phase != Phase::Ready {
                    return;
                }
                let live = self.tokens().is_some_and(|t| t.expires_at > now || self.renewable(t));
                if live {
                    self.share(Why::Share);
                } else {
                    self.out.post(Message::SignedOut { seq: self.seq });
                }
                self.refresh.greet(now, &mut self.out);
            }
            Message::Activity { age_ms } => self.activity(now, age_ms, false),
            Message::SignedOut { seq } => {
                if self.session.is_none() {
                    self.seq = self.seq.max(seq);
                }
                self.become_ready(now);
            }
        }
    }
}

/// What the refresh protocol sees of `session`: the counter, and what a refresh sends (the
/// refresh token, or in cookie mode the CSRF token).
fn current(session: &Option<Session>, seq: u64, mode: Mode) -> Current<'_> {
    let t = session.as_ref().map(|s| &s.tokens);
    let credential = t.and_then(|t| match mode {
        Mode::Token => t.refresh_token.as_deref(),
        Mode::Cookie => Some(t.refresh_token.as_deref().unwrap_or(&t.access_token)),
    });
    Current { seq, credential, signed_in: t.is_some() }
}
