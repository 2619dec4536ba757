//! The machine's deadlines: one table of what can fall due, in the order it is acted on.
//! The top machine reads each deadline from the part that owns it (`Machine::deadline`)
//! and acts on it (`Machine::fire`); checking and arming the one timer are loops over
//! [`Deadline::ALL`].

use super::io::{Effect, Out};

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
    pub const ALL: [Deadline; 10] = [
        Deadline::Restore,
        Deadline::Peers,
        Deadline::ShareActivity,
        Deadline::Settle,
        Deadline::Flight,
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
