//! The session's own limits: user activity (here and in other tabs), the idle timeout and
//! its warning, and the absolute lifetime.

use super::io::Out;
use crate::core::config::{Config, Mode};
use crate::core::events::Event;
use crate::core::protocol::Message;
use crate::core::token::TokenSet;

/// Activity is shared with the other tabs at most this often (and at most a quarter of
/// `idleTimeoutMs`).
pub const ACTIVITY_SHARE_MS: f64 = 5_000.0;

/// Activity, idleness and the absolute lifetime.
#[derive(Debug)]
pub(super) struct Limits {
    idle_timeout_ms: Option<f64>,
    idle_warning_ms: Option<f64>,
    max_session_ms: Option<f64>,
    /// A refresh nobody asked for needs activity since the set was issued.
    activity_required: bool,
    /// The last user activity in any tab (epoch ms).
    last_activity: f64,
    /// When this tab last told the others of activity, and whether activity came since.
    shared_at: f64,
    unshared: bool,
    /// An `idle_warning` was emitted and no activity came since.
    warned: bool,
}

impl Limits {
    pub fn new(cfg: &Config) -> Limits {
        Limits {
            idle_timeout_ms: cfg.idle_timeout_ms,
            idle_warning_ms: cfg.idle_warning_ms,
            max_session_ms: cfg.max_session_ms,
            // Without an idle timeout the session may be kept alive in the background, but
            // not in cookie mode, where a refresh extends the server's session.
            activity_required: cfg.idle_timeout_ms.is_some() || cfg.mode() == Mode::Cookie,
            last_activity: f64::NEG_INFINITY,
            shared_at: f64::NEG_INFINITY,
            unshared: false,
            warned: false,
        }
    }

    /// The user did something `age` ms ago: here (`local`), or in another tab. A warning
    /// given while signed in is taken back with `active`.
    pub fn activity(&mut self, now: f64, age: f64, local: bool, signed_in: bool, out: &mut Out) {
        let at = now - age.max(0.0);
        if at <= self.last_activity {
            return;
        }
        let was_warned = self.warned;
        self.last_activity = at;
        self.warned = false;
        if was_warned && signed_in {
            out.emit(Event::Active);
        }
        if local {
            self.unshared = true;
            self.share(now, out);
        }
    }

    /// Tells the other tabs of activity at most every [`ACTIVITY_SHARE_MS`]; the last burst
    /// goes out when that time has passed (a deadline), with its age.
    pub fn share(&mut self, now: f64, out: &mut Out) {
        if self.share_at().is_some_and(|at| now >= at) {
            self.unshared = false;
            self.shared_at = now;
            out.post(Message::Activity { age_ms: now - self.last_activity });
        }
    }

    /// When activity not yet shared goes out.
    pub fn share_at(&self) -> Option<f64> {
        let every = self.idle_timeout_ms.map_or(ACTIVITY_SHARE_MS, |t| ACTIVITY_SHARE_MS.min(t / 4.0));
        self.unshared.then_some(self.shared_at + every)
    }

    /// When the idle logout comes, if there is one.
    pub fn idle_at(&self) -> Option<f64> {
        self.idle_timeout_ms.map(|t| self.last_activity + t)
    }

    /// When the idle warning is due, if there is one still to give.
    pub fn warning_at(&self) -> Option<f64> {
        let w = self.idle_warning_ms.filter(|_| !self.warned)?;
        Some(self.idle_at()? - w)
    }

    /// Gives the idle warning.
    pub fn warn(&mut self, out: &mut Out) {
        self.warned = true;
        if let Some(logout_at) = self.idle_at() {
            out.emit(Event::IdleWarning { logout_at });
        }
    }

    /// When the session's absolute lifetime ends, if it has one.
    pub fn absolute_at(&self, t: &TokenSet) -> Option<f64> {
        Some(t.login_at? + self.max_session_ms?)
    }

    /// May a refresh run now that nobody asked for? Not while the user is idle, where a
    /// session must not be kept alive by background work.
    pub fn active_since(&self, t: &TokenSet) -> bool {
        // Activity heard from another tab is dated by its age, a few ms off: activity within
        // a second of the issue (the sign-in itself) is not a sign of use since.
        !self.activity_required || self.last_activity > t.issued_at + 1_000.0
    }

    /// The wall clock stepped back by `step` ms: activity keeps its age.
    pub fn shift(&mut self, step: f64) {
        self.last_activity -= step;
        self.shared_at -= step;
    }
}
