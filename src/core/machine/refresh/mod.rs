//! The refresh protocol: one refresh at a time in a tab, and across tabs.
//!
//! - A refresh is announced (`refreshing`, with the sender's request timeout) before its
//!   request goes out, in the same step, so no tab can freeze between the two.
//! - A tab refreshes under the Web Lock. Granted the lock, it re-checks: newer tokens
//!   arrived (adopt them), a tab just failed (back off with it), a refresh is announced and
//!   unresolved (wait for it: a short grace after a normal release, the announced timeout
//!   after a steal: a stolen lock is not a released one).
//! - Without Web Locks, tabs claim the refresh over the channel and the lowest tab id wins.
//! - Results travel as stamped token sets (the top machine adopts the newer); a failure is
//!   announced, and every tab backs off with the tab that failed.

mod lock;
mod peers;
mod reply;

use super::io::{Credential, Effect, Out, Transport};
use crate::core::config::{Config, Mode};
use crate::core::error::Error;
use crate::core::policy::{self, Backoff};
use crate::core::protocol::Message;
use crate::core::token::TokenSet;
use peers::Peers;

/// How long competing claims get to reach each other. Messages take a few ms, but a loaded
/// machine has delivered one 58 ms late (WebKit, 2 busy cores): the window is wide, and costs
/// a refresh without Web Locks a fifth of a second, well ahead of expiry.
pub const CLAIM_SETTLE_MS: f64 = 200.0;

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

/// Why a refresh starts, which decides what may hold it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// Due by the clock: waits for backoff and the minimum interval.
    Scheduled,
    /// A request needs a token now: waits for the minimum interval.
    Needed,
    /// A 401: waits for backoff.
    Unauthorized,
    /// `refresh()`: nothing holds it back.
    Explicit,
}

/// What the protocol sees of the session it renews.
#[derive(Clone, Copy, Debug)]
pub(super) struct Current<'a> {
    /// The counter of the current state (token set or logout).
    pub seq: u64,
    /// What a refresh sends: the refresh token, or in cookie mode the CSRF token. `None`
    /// when signed out or when nothing can renew the set.
    pub credential: Option<&'a str>,
    /// Signed in.
    pub signed_in: bool,
}

/// What the top machine must do after a step of the protocol.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    /// Nothing more.
    Nothing,
    /// Answer the waiting callers: the tokens changed, or the refresh ended (with `Some` error).
    Settle(Option<Error>),
    /// New tokens from this tab's refresh; `for_401` if a 401 forced it, `locked` if it ran
    /// under the lock (hand it to [`Refresh::hold`] once the tokens are installed).
    Renewed { tokens: TokenSet, for_401: bool, locked: bool },
    /// The auth server refused the grant: the session is over.
    Rejected,
    /// Cookie mode: the server no longer has the session.
    SessionGone,
    /// The refresh failed; it was announced and will be retried after a backoff.
    Failed(Error),
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
    /// The request is on the wire.
    Sending {
        id: u32,
        credential: String,
        locked: bool,
        for_401: bool,
        sent_at: f64,
        /// DPoP: already sent again with the server's nonce.
        nonce_retried: bool,
    },
}

/// The lock request a grant answers, and the plan it was for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grant {
    plan: Plan,
    steal_at: f64,
}

/// The refresh in flight, the lock, the other tabs' refreshes and the backoff.
#[derive(Debug)]
pub(super) struct Refresh {
    tab: String,
    cookie: bool,
    revokes: bool,
    lead_ms: f64,
    request_timeout_ms: f64,
    lock_timeout_ms: f64,
    backoff: Backoff,
    /// Web Locks and a channel to the other tabs.
    with_locks: bool,
    transport: Transport,
    flight: Flight,
    /// Holding the lock after a refresh, until then (see [`SETTLE_MS`]).
    settle_until: Option<f64>,
    /// Other tabs' refreshes under way, and their claims.
    peers: Peers,
    /// Failures since the last success, and no scheduled refresh before `not_before`.
    attempts: u32,
    not_before: f64,
    rng: u64,
    next_id: u32,
    /// The current lock request (pending or granted).
    lock_id: u32,
    /// Refreshes abandoned under way (logout, a new sign-in): request id, and the lock
    /// request it holds until its answer lands.
    abandoned: Vec<(u32, Option<u32>)>,
}

impl Refresh {
    /// The protocol for tab `tab`; `seed` seeds the backoff jitter.
    pub fn new(cfg: &Config, tab: String, seed: u64) -> Refresh {
        Refresh {
            tab,
            cookie: cfg.mode() == Mode::Cookie,
            revokes: cfg.revokes(),
            lead_ms: cfg.refresh_lead_ms,
            request_timeout_ms: cfg.request_timeout_ms,
            lock_timeout_ms: cfg.lock_timeout_ms,
            backoff: Backoff { base_ms: cfg.retry_base_ms, max_ms: cfg.retry_max_ms },
            with_locks: false,
            transport: Transport::None,
            flight: Flight::Idle,
            settle_until: None,
            peers: Peers::default(),
            attempts: 0,
            not_before: 0.0,
            rng: seed,
            next_id: 0,
            lock_id: 0,
            abandoned: Vec::new(),
        }
    }

    /// How this tab reaches the others, known at start.
    pub fn connect(&mut self, transport: Transport, locks: bool) {
        self.transport = transport;
        self.with_locks = locks && transport != Transport::None;
    }

    // ---- views ----------------------------------------------------------------------------

    /// No refresh is under way or being prepared.
    pub fn idle(&self) -> bool {
        self.flight == Flight::Idle
    }

    /// When `t` is due for a refresh, after any backoff.
    pub fn due(&self, t: &TokenSet) -> f64 {
        policy::refresh_at(t, self.lead_ms).max(self.not_before)
    }

    /// Backing off after failures until then.
    pub fn backing_off(&self, now: f64) -> bool {
        now < self.not_before
    }

    /// Until when the other tabs' refreshes under way may still report back, if any is.
    pub fn peer_until(&self, now: f64) -> Option<f64> {
        self.peers.until(now)
    }

    // ---- deadlines ------------------------------------------------------------------------

    /// The end of the lock hold after a refresh.
    pub fn settle_deadline(&self) -> Option<f64> {
        self.settle_until
    }

    /// The earliest time another tab's refresh is given up on.
    pub fn peers_deadline(&self) -> Option<f64> {
        self.peers.deadline()
    }

    /// The deadline of the refresh being prepared (steal, claim, wait for another tab).
    pub fn flight_deadline(&self) -> Option<f64> {
        match &self.flight {
            Flight::Locking { claim_until: Some(u), .. } => Some(*u),
            Flight::Locking { steal_at, stealing: false, .. } => Some(*steal_at),
            Flight::Claiming { until, .. } | Flight::AwaitPeer { until, .. } => Some(*until),
            Flight::Locking { stealing: true, .. } | Flight::Idle | Flight::Sending { .. } => None,
        }
    }

    /// Other tabs' refreshes past their time are given up on.
    pub fn prune_peers(&mut self, now: f64) {
        self.peers.prune(now);
    }

    /// The wall clock stepped back by `step` ms: every wait keeps its length.
    pub fn shift(&mut self, step: f64) {
        let back = |t: &mut f64| *t -= step;
        if let Some(t) = self.settle_until.as_mut() {
            back(t);
        }
        self.peers.shift(step);
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
    }

    // ---- starting -------------------------------------------------------------------------

    /// Starts a refresh of `t` (renewable) for `cause`, or joins the one under way. `Ok` when
    /// the caller should wait (answered when it lands), even if the refresh is held back.
    pub fn start(
        &mut self,
        now: f64,
        cause: Cause,
        t: &TokenSet,
        online: bool,
        cur: Current,
        out: &mut Out,
    ) -> Result<(), Error> {
        let for_401 = cause == Cause::Unauthorized;
        if let Flight::Sending { for_401: f, .. } = &mut self.flight {
            *f |= for_401;
            return Ok(());
        }
        if self.flight != Flight::Idle {
            return Ok(()); // joined: the waiter is answered when it lands
        }
        if !online {
            return Err(Error::Network); // the `online` event re-checks
        }
        let floor = t.issued_at + policy::MIN_REFRESH_INTERVAL_MS;
        let held_back = match cause {
            Cause::Scheduled => now < floor || now < self.not_before,
            Cause::Needed => now < floor,
            Cause::Unauthorized => now < self.not_before,
            Cause::Explicit => false,
        };
        if held_back {
            return if for_401 { Err(Error::RefreshFailed("backing off")) } else { Ok(()) };
        }
        let plan = Plan { seq: cur.seq, attempts: self.attempts, for_401 };
        // With Web Locks, queue for the lock even while another tab's refresh is announced:
        // a grant then means that tab let go (its result is on the way, or it was closed).
        if let Some(until) = self.peer_until(now).filter(|_| !self.with_locks) {
            self.flight = Flight::AwaitPeer { plan, until, locked: false, late: false };
        } else {
            self.lock_or_send(now, plan, cur, out);
        }
        Ok(())
    }

    fn lock_or_send(&mut self, now: f64, plan: Plan, cur: Current, out: &mut Out) {
        if let Some(until) = self.settle_until.take() {
            // Still holding the lock after this tab's last refresh (an expired hold was let go
            // before this input): refresh under it once the result had time to reach the
            // other tabs.
            self.flight = Flight::AwaitPeer { plan, until, locked: true, late: false };
        } else if self.with_locks {
            self.acquire_lock(false, out);
            let steal_at = now + self.lock_timeout_ms;
            self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
        } else if self.transport == Transport::Broadcast {
            out.post(Message::Claim);
            self.flight = Flight::Claiming { plan, until: now + CLAIM_SETTLE_MS };
        } else {
            self.send(now, plan, false, cur, out);
        }
    }

    fn send(&mut self, now: f64, plan: Plan, locked: bool, cur: Current, out: &mut Out) {
        let Some(credential) = cur.credential else {
            self.release_if(locked, out);
            self.flight = Flight::Idle;
            return;
        };
        // Announced in the same step as the request: no tab can freeze between the two.
        out.post(Message::Refreshing { timeout_ms: self.request_timeout_ms });
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let sent = match self.cookie {
            true => Credential::Csrf(credential.to_string()),
            false => Credential::RefreshToken(credential.to_string()),
        };
        out.push(Effect::Refresh { id, credential: sent });
        let credential = credential.to_string();
        let for_401 = plan.for_401;
        self.flight = Flight::Sending { id, credential, locked, for_401, sent_at: now, nonce_retried: false };
    }

    /// DPoP: the server wants its nonce in the proof: the same refresh token goes once more
    /// (the refusal did not spend it), announced again so that the other tabs keep waiting.
    fn send_with_nonce(&mut self, now: f64, credential: String, locked: bool, for_401: bool, out: &mut Out) {
        out.post(Message::Refreshing { timeout_ms: self.request_timeout_ms });
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let sent = match self.cookie {
            true => Credential::Csrf(credential.clone()),
            false => Credential::RefreshToken(credential.clone()),
        };
        out.push(Effect::Refresh { id, credential: sent });
        self.flight = Flight::Sending { id, credential, locked, for_401, sent_at: now, nonce_retried: true };
    }

    fn abandon(&mut self, out: &mut Out) {
        match std::mem::replace(&mut self.flight, Flight::Idle) {
            // The request is still on the wire: its lock is kept until it lands, so that no
            // tab that has not heard the news yet sends the same refresh token meanwhile.
            Flight::Sending { id, locked, .. } => self.abandoned.push((id, locked.then_some(self.lock_id))),
            Flight::Locking { .. } | Flight::AwaitPeer { locked: true, .. } => self.release_lock(out),
            Flight::Idle | Flight::Claiming { .. } | Flight::AwaitPeer { locked: false, .. } => {}
        }
    }

    fn back_off(&mut self, now: f64) {
        self.attempts = self.attempts.saturating_add(1);
        let rand = self.random();
        self.not_before = now + self.backoff.delay(self.attempts, rand);
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

    // ---- the session changing under it -------------------------------------------------------

    /// New tokens were installed: a sign-in or another tab's set (`adopted`) ends any
    /// refresh of the previous set; this tab's own result ends only a claim.
    pub fn renewed(&mut self, adopted: bool, out: &mut Out) {
        if adopted {
            // A refresh of the previous session must not land on top of this one.
            self.abandon(out);
        } else if let Flight::Claiming { .. } = self.flight {
            self.flight = Flight::Idle;
        }
        self.attempts = 0;
        self.not_before = 0.0;
        self.peers.clear();
    }

    /// The session ended: whatever was under way is abandoned, the lock let go.
    pub fn ended(&mut self, out: &mut Out) {
        self.attempts = 0;
        self.not_before = 0.0;
        self.peers.clear();
        self.abandon(out);
        self.settle_done(out);
    }

    /// Back online: one prompt attempt rather than waiting out the backoff.
    pub fn online(&mut self) {
        self.not_before = 0.0;
    }

    /// `dispose()`: locks are let go; a request under way still lands, so that a rotated
    /// refresh token reaches storage.
    pub fn dispose(&mut self, out: &mut Out) {
        self.settle_done(out);
        match std::mem::replace(&mut self.flight, Flight::Idle) {
            f @ Flight::Sending { .. } => self.flight = f,
            Flight::Locking { .. } | Flight::AwaitPeer { locked: true, .. } => self.release_lock(out),
            Flight::Idle | Flight::Claiming { .. } | Flight::AwaitPeer { locked: false, .. } => {}
        }
    }

    // ---- other tabs -------------------------------------------------------------------------

    /// Another tab announced its refresh request, with the time it has left.
    pub fn peer_refreshing(&mut self, from: &str, now: f64, timeout_ms: f64) {
        self.peers.note(from, now + timeout_ms + PEER_MARGIN_MS, true);
    }

    /// Another tab claims the next refresh.
    pub fn peer_claim(&mut self, from: String, now: f64, out: &mut Out) {
        // Its refresh is about to start: a tab not claiming itself waits for it.
        self.peers.note(&from, now + CLAIM_SETTLE_MS + PEER_GRACE_MS, false);
        self.peers.claim(from, now);
        // Holding the lock, this tab is alive and its request is coming or under way: say
        // so, so that a tab whose wait ran out does not take the lock over.
        let timeout = self.request_timeout_ms;
        match self.flight {
            Flight::Sending { sent_at, locked: true, .. } => {
                out.post(Message::Refreshing { timeout_ms: (sent_at + timeout - now).max(0.0) })
            }
            Flight::AwaitPeer { until, locked: true, .. } => {
                out.post(Message::Refreshing { timeout_ms: (until - now).max(0.0) + timeout })
            }
            Flight::Idle
            | Flight::Locking { .. }
            | Flight::Claiming { .. }
            | Flight::Sending { locked: false, .. }
            | Flight::AwaitPeer { locked: false, .. } => {}
        }
    }

    /// Another tab's refresh failed: back off with it, so that tabs don't take turns
    /// hammering the server.
    pub fn peer_failed(&mut self, from: &str, now: f64, cur: Current, out: &mut Out) -> Outcome {
        self.back_off(now);
        self.peers.forget(from);
        self.after_peer(now, cur, out)
    }

    /// A new tab said hello: it missed the announcement of a refresh under way (repeat it,
    /// with the time it has left, so that it waits too), or of a claim being settled (it
    /// must rank against it).
    pub fn greet(&mut self, now: f64, out: &mut Out) {
        match self.flight {
            Flight::Sending { sent_at, .. } => {
                let left = (sent_at + self.request_timeout_ms - now).max(0.0);
                out.post(Message::Refreshing { timeout_ms: left });
            }
            Flight::Claiming { .. } | Flight::Locking { claim_until: Some(_), .. } => out.post(Message::Claim),
            Flight::Idle | Flight::Locking { claim_until: None, .. } | Flight::AwaitPeer { .. } => {}
        }
    }
}
