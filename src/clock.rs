//! Time: a [`Clock`] you pass in, and the client/server clock skew estimate.
//!
//! Every decision takes `now` from a clock, so tests drive time by hand. The browser clock is
//! `Date.now()`, which Playwright's `page.clock` also controls.

use core::cell::Cell;

/// Milliseconds since the Unix epoch, from some source.
pub trait Clock {
    /// The current time in epoch milliseconds.
    fn now(&self) -> f64;
}

/// The real clock: `Date.now()` in the browser, the system clock on the host.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[cfg(target_arch = "wasm32")]
    fn now(&self) -> f64 {
        js_sys::Date::now()
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn now(&self) -> f64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(Cell<f64>);

impl ManualClock {
    /// A clock standing at `now` (epoch ms).
    pub fn at(now: f64) -> Self {
        Self(Cell::new(now))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: f64) {
        self.0.set(self.0.get() + ms);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: f64) {
        self.0.set(now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> f64 {
        self.0.get()
    }
}

/// Skews larger than this are taken as bad data rather than a wrong clock.
const MAX_SKEW_MS: f64 = 366.0 * 24.0 * 3600.0 * 1000.0;

/// How far the client clock is ahead of the server's (ms; negative when behind).
///
/// `server_now` is the server's idea of the moment the response was produced: a JWT's `iat`
/// or the response's `Date` header. Without one, or with an absurd one, the skew is 0.
pub fn skew(client_now: f64, server_now: Option<f64>) -> f64 {
    match server_now {
        Some(s) if s.is_finite() && (client_now - s).abs() < MAX_SKEW_MS => client_now - s,
        _ => 0.0,
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1000.0);
        assert_eq!(c.now(), 1000.0);
        c.advance(500.0);
        assert_eq!(c.now(), 1500.0);
        c.set(10.0);
        assert_eq!(c.now(), 10.0);
    }

    #[test]
    fn skew_is_client_minus_server_and_ignores_nonsense() {
        assert_eq!(skew(10_000.0, Some(4_000.0)), 6_000.0);
        assert_eq!(skew(4_000.0, Some(10_000.0)), -6_000.0);
        assert_eq!(skew(4_000.0, None), 0.0);
        assert_eq!(skew(4_000.0, Some(f64::NAN)), 0.0);
        assert_eq!(skew(0.0, Some(1e15)), 0.0);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800_000.0);
    }
}
