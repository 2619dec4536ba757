//! Pure decisions: when to refresh, whether a request may use the token now, how long to back
//! off after a failure, and what a failed refresh means.

use crate::token::TokenSet;

/// The refresh lead never exceeds this fraction of the token's lifetime, so a 30 s token
/// with the default 60 s lead is refreshed at 22.5 s, not in a loop.
pub const MAX_LEAD_FRACTION: f64 = 0.25;

/// A token this close to expiry is not sent: it could expire in flight.
pub const MAX_EXPIRY_MARGIN_MS: f64 = 5_000.0;

/// The expiry margin never exceeds this fraction of the lifetime.
pub const MAX_MARGIN_FRACTION: f64 = 0.1;

/// When to refresh `t`: `lead_ms` before expiry, capped by [`MAX_LEAD_FRACTION`].
pub fn refresh_at(t: &TokenSet, lead_ms: f64) -> f64 {
    t.expires_at - lead_ms.min(t.lifetime() * MAX_LEAD_FRACTION).max(0.0)
}

/// Until when `t` may be attached to a request.
pub fn usable_until(t: &TokenSet) -> f64 {
    t.expires_at - MAX_EXPIRY_MARGIN_MS.min(t.lifetime() * MAX_MARGIN_FRACTION).max(0.0)
}

/// What a request should do with the current token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The token is fresh: use it.
    Use,
    /// The token is valid but due: use it and refresh in the background.
    UseAndRefresh,
    /// The token is (nearly) expired: refresh first (or wait for the refresh in flight),
    /// then use the new one.
    RefreshFirst,
    /// The token is (nearly) expired and refreshes are failing: don't hammer the server.
    Unavailable,
}

/// Refresh state that the decision depends on, besides the token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retry {
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// No new attempt before this time (epoch ms); 0 when not backing off.
    pub not_before: f64,
}

impl Retry {
    /// True while a failed refresh is being backed off.
    pub fn backing_off(&self, now: f64) -> bool {
        now < self.not_before
    }
}

/// The decision for a request made at `now`; `in_flight` when a refresh is already running
/// (it is then joined, never duplicated).
pub fn decide(t: &TokenSet, lead_ms: f64, retry: Retry, in_flight: bool, now: f64) -> Action {
    let backing_off = retry.backing_off(now) && !in_flight;
    if now >= usable_until(t) {
        if backing_off {
            Action::Unavailable
        } else {
            Action::RefreshFirst
        }
    } else if now >= refresh_at(t, lead_ms) && !backing_off && !in_flight {
        Action::UseAndRefresh
    } else {
        Action::Use
    }
}

/// When the scheduler should look again: the refresh time (or the end of a backoff), or the
/// expiry if that comes first and has not been announced yet.
pub fn next_wakeup(t: &TokenSet, lead_ms: f64, retry: Retry, expiry_announced: bool) -> f64 {
    let due = refresh_at(t, lead_ms).max(retry.not_before);
    if expiry_announced {
        due
    } else {
        due.min(t.expires_at)
    }
}

/// Exponential backoff with jitter: `base * 2^attempt`, capped at `max`, then scaled by a
/// random factor in [0.5, 1) so that many clients don't retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure, before jitter.
    pub base_ms: f64,
    /// Largest delay, before jitter.
    pub max_ms: f64,
}

impl Backoff {
    /// The delay after `attempt` failures (`attempt` >= 1); `rand` is uniform in [0, 1).
    pub fn delay(&self, attempt: u32, rand: f64) -> f64 {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = (self.base_ms * f64::from(1u32 << exp)).min(self.max_ms);
        let rand = if rand.is_finite() { rand.clamp(0.0, 1.0) } else { 0.5 };
        raw * (0.5 + 0.5 * rand)
    }
}

/// What a failed refresh means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later: network, timeout, 5xx, 429, 408, garbled reply.
    Transient,
    /// The server refused the grant: the session is over.
    Rejected,
}

/// Classifies a token endpoint answer that was not a success.
pub fn classify(status: u16, oauth_error: Option<&str>) -> Failure {
    match (status, oauth_error) {
        (408 | 425 | 429, _) | (500..=599, _) => Failure::Transient,
        // RFC 6749 §5.2: the grant is dead; retrying cannot help.
        (_, Some("invalid_grant" | "invalid_client" | "unauthorized_client" | "unsupported_grant_type")) => {
            Failure::Rejected
        }
        (400 | 401 | 403, _) => Failure::Rejected,
        _ => Failure::Transient,
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn token(issued: f64, lifetime_s: f64) -> TokenSet {
        TokenSet {
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            id_token: None,
            scope: None,
            issued_at: issued,
            expires_at: issued + lifetime_s * 1000.0,
        }
    }

    #[test]
    fn lead_is_capped_for_short_tokens() {
        let hour = token(0.0, 3600.0);
        assert_eq!(refresh_at(&hour, 60_000.0), 3_540_000.0);
        let short = token(0.0, 30.0);
        assert_eq!(refresh_at(&short, 60_000.0), 22_500.0);
        assert_eq!(refresh_at(&short, 0.0), 30_000.0);
    }

    #[test]
    fn decision_for_every_state() {
        let clock = ManualClock::at(0.0);
        let t = token(0.0, 100.0); // refresh at 75 s, usable until 95 s, expires 100 s
        let idle = Retry::default();
        let lead = 60_000.0;
        assert_eq!(decide(&t, lead, idle, false, clock.now()), Action::Use, "fresh");
        clock.set(80_000.0);
        assert_eq!(decide(&t, lead, idle, false, clock.now()), Action::UseAndRefresh, "inside lead time");
        assert_eq!(
            decide(&t, lead, idle, true, clock.now()),
            Action::Use,
            "inside lead time, refreshing: no second refresh"
        );
        clock.set(96_000.0);
        assert_eq!(decide(&t, lead, idle, false, clock.now()), Action::RefreshFirst, "inside expiry margin");
        assert_eq!(decide(&t, lead, idle, true, clock.now()), Action::RefreshFirst, "expired, refreshing: wait for it");
        clock.set(500_000.0);
        assert_eq!(decide(&t, lead, idle, false, clock.now()), Action::RefreshFirst, "expired long ago (slept)");
        let backing_off = Retry { attempts: 2, not_before: 600_000.0 };
        assert_eq!(decide(&t, lead, backing_off, false, clock.now()), Action::Unavailable, "expired while backing off");
        assert_eq!(
            decide(&t, lead, backing_off, true, clock.now()),
            Action::RefreshFirst,
            "expired, backing off, but a refresh runs"
        );
        clock.set(80_000.0);
        assert_eq!(decide(&t, lead, backing_off, false, clock.now()), Action::Use, "due but backing off");
        clock.set(700_000.0);
        assert_eq!(decide(&t, lead, backing_off, false, clock.now()), Action::RefreshFirst, "backoff over");
    }

    #[test]
    fn wakeup_is_refresh_time_then_backoff_then_expiry() {
        let t = token(0.0, 100.0);
        assert_eq!(next_wakeup(&t, 60_000.0, Retry::default(), false), 75_000.0);
        let r = Retry { attempts: 1, not_before: 90_000.0 };
        assert_eq!(next_wakeup(&t, 60_000.0, r, false), 90_000.0);
        let r = Retry { attempts: 5, not_before: 130_000.0 };
        assert_eq!(next_wakeup(&t, 60_000.0, r, false), 100_000.0, "announce expiry first");
        assert_eq!(next_wakeup(&t, 60_000.0, r, true), 130_000.0);
    }

    #[test]
    fn backoff_grows_then_caps_with_jitter_in_range() {
        let b = Backoff { base_ms: 1_000.0, max_ms: 30_000.0 };
        assert_eq!(b.delay(1, 1.0), 1_000.0);
        assert_eq!(b.delay(2, 1.0), 2_000.0);
        assert_eq!(b.delay(3, 1.0), 4_000.0);
        assert_eq!(b.delay(6, 1.0), 30_000.0);
        assert_eq!(b.delay(1000, 1.0), 30_000.0);
        assert_eq!(b.delay(3, 0.0), 2_000.0);
        assert_eq!(b.delay(3, f64::NAN), 3_000.0);
        for attempt in 1..40 {
            let d = b.delay(attempt, 0.37);
            assert!((500.0..=30_000.0).contains(&d));
        }
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(classify(503, None), Failure::Transient);
        assert_eq!(classify(500, Some("invalid_grant")), Failure::Transient);
        assert_eq!(classify(429, None), Failure::Transient);
        assert_eq!(classify(400, Some("invalid_grant")), Failure::Rejected);
        assert_eq!(classify(401, Some("invalid_client")), Failure::Rejected);
        assert_eq!(classify(400, None), Failure::Rejected);
        assert_eq!(classify(404, None), Failure::Transient);
        assert_eq!(classify(200, None), Failure::Transient);
    }
}
