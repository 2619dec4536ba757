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
mod dpop;
mod io;
mod limits;
mod messages;
mod refresh;
mod session;
#[cfg(feature = "oidc")]
mod signin;

pub use dpop::{DPOP_UNBOUND, MAX_NONCE_ORIGINS};
#[cfg(feature = "oidc")]
pub use io::Authorization;
pub use io::{Answer, Boot, Credential, Effect, Input, Key, KeyOp, Reply, Ticket, Transport};
pub use limits::ACTIVITY_SHARE_MS;
pub use refresh::{CLAIM_SETTLE_MS, LATE_MS, PEER_GRACE_MS, PEER_MARGIN_MS, SETTLE_MS};

use callers::{Callers, Want};
use cookie::CookieSession;
use deadline::Timer;
use dpop::Dpop;
use io::Out;
use limits::Limits;
use refresh::{Cause, Outcome, Refresh};
use session::{current, Session, Source};
#[cfg(feature = "oidc")]
use signin::SignIn;

use super::config::{Config, Mode, StorageMode};
use super::error::Error;
use super::events::{Event, LogoutReason};
use super::policy;
use super::protocol::{Message, Stamp};
use super::store::Stored;
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
    #[cfg(feature = "oidc")]
    signin: SignIn,
    dpop: Dpop,
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
            #[cfg(feature = "oidc")]
            signin: SignIn::new(&cfg),
            dpop: Dpop::new(cfg.dpop),
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

    /// DPoP: the latest nonce `origin` gave, for the next proof to it.
    pub fn dpop_nonce(&self, origin: &str) -> Option<&str> {
        self.dpop.nonce(origin)
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
                self.dpop.signed_in(&mut self.out);
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
                self.dpop.revoked(&mut self.out);
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
                        // Over BroadcastChannel the key comes with the tokens' message.
                        if self.transport != Transport::Broadcast {
                            self.dpop.adopted_stored(&mut self.out);
                        }
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
                let cur = current(&self.session, self.seq, self.cfg.mode());
                let outcome = self.refresh.granted(now, grant, stolen, waited, cur, &mut self.out);
                self.apply(now, outcome);
            }
            Input::LockLost { id } => self.refresh.lock_lost(id),
            #[cfg(feature = "oidc")]
            Input::Authorize(auth) => self.signin.authorize(now, auth, &mut self.out),
            #[cfg(feature = "oidc")]
            Input::PopupCallback { url, params } => self.signin.popup_callback(url, &params, &mut self.out),
            #[cfg(feature = "oidc")]
            Input::PopupClosed => self.signin.popup_closed(&mut self.out),
            #[cfg(feature = "oidc")]
            Input::Callback { ticket, url, params, login } => {
                self.signin.callback(ticket, url, &params, login, &mut self.out)
            }
            #[cfg(feature = "oidc")]
            Input::Discovered(result) => self.signin.discovered(result, &mut self.out),
            #[cfg(feature = "oidc")]
            Input::CodeReply { id, reply, id_claims } => self.code_reply(now, id, reply, id_claims),
            #[cfg(feature = "oidc")]
            Input::Navigated { ticket, error } => self.signin.navigated(ticket, error, &mut self.out),
            Input::Key(key) => {
                let news = self.dpop.key(key, &mut self.out);
                if news.lost && self.session.is_some() {
                    // Its tokens are bound to the lost key: useless here and in every tab
                    // that shares the stored key. Over, never stuck; the next sign-in makes
                    // a new key.
                    self.end(now, LogoutReason::Expired, None);
                }
                if news.ready {
                    self.become_ready(now);
                }
            }
            Input::Nonce { origin, nonce } => self.dpop.note_nonce(origin, nonce, false, &mut self.out),
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
            Input::Start(_)
            | Input::Presence { .. }
            | Input::SignIn { .. }
            | Input::TokenWanted { .. }
            | Input::Unauthorized { .. }
            | Input::Refresh { .. }
            | Input::Logout { .. }
            | Input::Dispose
            | Input::Tick
            | Input::Wake
            | Input::Online(_)
            | Input::RevokeReply { .. }
            | Input::Message(_)
            | Input::StorageChanged(_)
            | Input::Activity
            | Input::SessionRead { .. }
            | Input::CsrfRejected { .. }
            | Input::LockLost { .. }
            | Input::Key(_)
            | Input::Nonce { .. } => {}
            #[cfg(feature = "oidc")]
            Input::Authorize(_)
            | Input::PopupCallback { .. }
            | Input::PopupClosed
            | Input::Callback { .. }
            | Input::Discovered(_)
            | Input::CodeReply { .. }
            | Input::Navigated { .. } => {}
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
        self.dpop.start(storage != StorageMode::Memory, &mut self.out);
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
        if self.cfg.mode() == Mode::Cookie {
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
        if self.phase != Phase::Restoring || self.dpop.hold_ready() {
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

    // ---- refresh ----------------------------------------------------------------------------

    /// Can this set be renewed: a refresh token, or (cookie mode) the session endpoint.
    /// With DPoP, only with the key: a bound refresh token is refused without its proof.
    fn renewable(&self, t: &TokenSet) -> bool {
        (t.refresh_token.is_some() && self.dpop.can_sign()) || self.cfg.mode() == Mode::Cookie
    }

    fn start_refresh(&mut self, now: f64, cause: Cause) -> Result<(), Error> {
        let s = self.session.as_ref().ok_or(Error::NotAuthenticated)?;
        if !self.renewable(&s.tokens) {
            return Err(Error::NotAuthenticated);
        }
        let cur = current(&self.session, self.seq, self.cfg.mode());
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
                self.dpop.ended(true, &mut self.out);
            }
            Outcome::SessionGone => self.server_ended(now),
            Outcome::Failed(e) => {
                self.out.emit(Event::Error(e.clone()));
                self.settle_callers(now, Some(&e));
            }
        }
    }
}
