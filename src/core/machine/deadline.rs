//! The machine's deadlines: one table of what can fall due, in the order it is acted on.
//! The top machine reads each deadline from the part that owns it (`Machine::deadline`)
//! and acts on it (`Machine::fire`); checking and arming the one timer are loops over
//! [`Deadline::ALL`].

use super::io::{Effect, Out};
use super::refresh::Cause;
use super::session::current;
use super::{Machine, Phase, OFFLINE_RECHECK_MS};
use crate::core::config::Mode;
use crate::core::events::{Event, LogoutReason};

/// Something that falls due at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    /// Start-up: no other tab shared its session in time.
    Restore,
    /// Another tab's announced refresh is given up on.
    Peers,
    /// Activity not yet told to the other tabs goes out.
    ShareActivity,
    /// The lock hold after this tab's refresh ends.
    Settle,
    /// The refresh being prepared moves on (steal the lock, settle a claim, stop waiting
    /// for another tab).
    Flight,
    /// The sign-in popup is given up on.
    Popup,
    /// The session's absolute lifetime ends.
    Absolute,
    /// No activity for the idle timeout.
    Idle,
    /// The idle warning.
    IdleWarning,
    /// The token set expires.
    Expiry,
    /// The token set is due for a refresh.
    Refresh,
}

impl Deadline {
    /// Every deadline, in the order they are acted on when several are due: the waits of
    /// the protocol first (their news may change the session), then the session's limits
    /// (a session past its end is not refreshed), then expiry and the refresh.
    pub const ALL: [Deadline; 11] = [
        Deadline::Restore,
        Deadline::Peers,
        Deadline::ShareActivity,
        Deadline::Settle,
        Deadline::Flight,
        Deadline::Popup,
        Deadline::Absolute,
        Deadline::Idle,
        Deadline::IdleWarning,
        Deadline::Expiry,
        Deadline::Refresh,
    ];
}

/// The one timer the driver keeps, armed for the earliest deadline.
#[derive(Debug, Default)]
pub(super) struct Timer {
    armed: Option<f64>,
}

impl Timer {
    /// Arms the timer for `at` (never in the past: a deadline that could not be acted on
    /// must not spin it), unless it is armed for that already.
    pub fn arm(&mut self, at: Option<f64>, now: f64, out: &mut Out) {
        let at = at.map(|a| a.max(now + 1.0));
        if at != self.armed {
            self.armed = at;
            out.push(Effect::Timer(at));
        }
    }

    /// The timer fired (or the page woke): if it fired before its deadline (the wall clock
    /// went back while it ran), it is spent and must be armed again.
    pub fn fired(&mut self, now: f64) {
        if self.armed.is_some_and(|a| a > now) {
            self.armed = None;
        }
    }
}

impl Machine {
    /// When `d` falls due, read from the part that owns it; `None` when it is not pending.
    pub(super) fn deadline(&self, d: Deadline, now: f64) -> Option<f64> {
        let tokens = self.tokens();
        match d {
            Deadline::Restore => self.restore_until,
            Deadline::Peers => self.refresh.peers_deadline(),
            Deadline::ShareActivity => self.limits.share_at(),
            Deadline::Settle => self.refresh.settle_deadline(),
            Deadline::Flight => self.refresh.flight_deadline(),
            #[cfg(feature = "oidc")]
            Deadline::Popup => self.signin.popup_deadline(),
            #[cfg(not(feature = "oidc"))]
            Deadline::Popup => None,
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
    pub(super) fn fire(&mut self, d: Deadline, now: f64) -> bool {
        match d {
            Deadline::Restore => self.become_ready(now),
            Deadline::Peers => self.refresh.prune_peers(now),
            Deadline::ShareActivity => self.limits.share(now, &mut self.out),
            Deadline::Settle => self.refresh.settle_done(&mut self.out),
            Deadline::Flight => {
                let cur = current(&self.session, self.seq, self.cfg.mode());
                let outcome = self.refresh.flight_due(now, cur, &mut self.out);
                self.apply(now, outcome);
            }
            #[cfg(feature = "oidc")]
            Deadline::Popup => self.signin.popup_timed_out(&mut self.out),
            #[cfg(not(feature = "oidc"))]
            Deadline::Popup => {}
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
                if self.cfg.mode() == Mode::Cookie {
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
    pub(super) fn check(&mut self, now: f64) {
        for d in Deadline::ALL {
            if self.deadline(d, now).is_some_and(|at| now >= at) && !self.fire(d, now) {
                return;
            }
        }
    }

    /// The next time something falls due.
    pub(super) fn next_deadline(&self, now: f64) -> Option<f64> {
        Deadline::ALL.iter().filter_map(|d| self.deadline(*d, now)).reduce(f64::min)
    }

    /// Keeps this tab's waits (for the lock, a claim, another tab's refresh, a backoff, the
    /// user's idleness) as long as they were across a step of the wall clock backwards (an
    /// NTP correction, a user changing the time): their deadlines move back with it. The time
    /// that passed is the larger of the wall and monotonic clocks' (a sleeping laptop moves
    /// the wall clock only; a step back, the monotonic one only), so the step is exact. Token
    /// times stay as they were issued, the same in every tab and in storage; a token that
    /// looks valid too long after such a step is refused by the API and refreshed once.
    pub(super) fn observe(&mut self, now: f64, mono: f64) {
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
        #[cfg(feature = "oidc")]
        self.signin.shift(step);
    }
}
