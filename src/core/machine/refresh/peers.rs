//! What this tab knows of the other tabs' refreshes: announced (`refreshing`) or claimed,
//! each until it is given up on, and the claims that rank tabs without Web Locks.

use super::CLAIM_SETTLE_MS;

/// Another tab's refresh: claimed, or announced as sent (`sending`).
#[derive(Clone, Debug, PartialEq)]
struct Peer {
    from: String,
    until: f64,
    sending: bool,
}

/// Other tabs' refreshes under way (one entry per tab) and their recent claims.
#[derive(Debug, Default)]
pub(super) struct Peers {
    refreshing: Vec<Peer>,
    /// Claims from other tabs: sender and when it arrived.
    claims: Vec<(String, f64)>,
}

impl Peers {
    /// Until when the other tabs' refreshes under way may still report back, if any is.
    pub fn until(&self, now: f64) -> Option<f64> {
        self.refreshing.iter().filter(|p| now < p.until).map(|p| p.until).reduce(f64::max)
    }

    /// The same, for refreshes announced as sent.
    pub fn sending(&self, now: f64) -> Option<f64> {
        self.refreshing.iter().filter(|p| p.sending && now < p.until).map(|p| p.until).reduce(f64::max)
    }

    /// The earliest time a refresh is given up on.
    pub fn deadline(&self) -> Option<f64> {
        self.refreshing.iter().map(|p| p.until).reduce(f64::min)
    }

    /// Gives up on the refreshes past their time.
    pub fn prune(&mut self, now: f64) {
        self.refreshing.retain(|p| now < p.until);
    }

    /// Notes `from`'s refresh until `until`.
    pub fn note(&mut self, from: &str, until: f64, sending: bool) {
        match self.refreshing.iter_mut().find(|p| p.from == from) {
            Some(p) => {
                p.until = until;
                p.sending |= sending;
            }
            None => self.refreshing.push(Peer { from: from.to_string(), until, sending }),
        }
    }

    /// `from`'s refresh ended (it failed).
    pub fn forget(&mut self, from: &str) {
        self.refreshing.retain(|p| p.from != from);
    }

    /// New tokens or a logout: the refreshes under way are answered.
    pub fn clear(&mut self) {
        self.refreshing.clear();
    }

    /// Notes `from`'s claim, arrived at `now`.
    pub fn claim(&mut self, from: String, now: f64) {
        self.claims.retain(|(_, at)| now - *at < 4.0 * CLAIM_SETTLE_MS);
        self.claims.push((from, now));
    }

    /// Did a tab with a lower id than `tab` claim within the window of its claim (settled at
    /// `settled`)?
    pub fn outrank(&self, tab: &str, settled: f64) -> bool {
        let since = settled - 2.0 * CLAIM_SETTLE_MS;
        self.claims.iter().any(|(from, at)| (since..=settled).contains(at) && from.as_str() < tab)
    }

    /// The wall clock stepped back by `step` ms.
    pub fn shift(&mut self, step: f64) {
        for p in &mut self.refreshing {
            p.until -= step;
        }
        for (_, at) in &mut self.claims {
            *at -= step;
        }
    }
}
