//! Waiting to refresh: the Web Lock (taken, stolen after a claim, handed over, lost, held
//! a moment after a refresh), claims without Web Locks, and waits for another tab's result.

use super::{Current, Flight, Grant, Outcome, Refresh, CLAIM_SETTLE_MS, LATE_MS, PEER_GRACE_MS, SETTLE_MS};
use crate::core::error::Error;
use crate::core::machine::io::{Effect, Out};
use crate::core::protocol::Message;

impl Refresh {
    /// The deadline of the refresh being prepared passed.
    pub fn flight_due(&mut self, now: f64, cur: Current, out: &mut Out) -> Outcome {
        match self.flight.clone() {
            Flight::Locking { plan, steal_at, claim_until: None, stealing: false } => {
                if let Some(until) = self.peer_until(now) {
                    // The holder announced a refresh: never take the lock from a tab that
                    // may be sending; wait for its result or its timeout.
                    self.flight = Flight::Locking { plan, steal_at: until, claim_until: None, stealing: false };
                } else {
                    // A holder frozen or stuck must not stall every tab; but of the tabs
                    // whose wait ran out together only one may take over.
                    out.post(Message::Claim);
                    let claim_until = Some(now + CLAIM_SETTLE_MS);
                    self.flight = Flight::Locking { plan, steal_at, claim_until, stealing: false };
                }
            }
            Flight::Locking { plan, claim_until: Some(until), .. } => {
                if now > until + LATE_MS {
                    // Frozen while claiming: read the news, then claim afresh.
                    let steal_at = now + PEER_GRACE_MS;
                    self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
                } else if let Some(sending) = self.peers.sending(now) {
                    self.flight = Flight::Locking { plan, steal_at: sending, claim_until: None, stealing: false };
                } else if self.peers.outrank(&self.tab, until) {
                    let steal_at = now + self.lock_timeout_ms;
                    self.flight = Flight::Locking { plan, steal_at, claim_until: None, stealing: false };
                } else {
                    self.flight = Flight::Locking { plan, steal_at: now, claim_until: None, stealing: true };
                    self.acquire_lock(true, out);
                }
            }
            Flight::Claiming { plan, until } => {
                if !cur.signed_in || cur.seq != plan.seq {
                    self.flight = Flight::Idle;
                } else if now > until + LATE_MS {
                    // Frozen while claiming: read the news, then claim afresh.
                    self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked: false, late: true };
                } else if let Some(sending) = self.peers.sending(now) {
                    self.flight = Flight::AwaitPeer { plan, until: sending, locked: false, late: false };
                } else if self.peers.outrank(&self.tab, until) {
                    // The winner announces its request shortly: wait for it.
                    self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked: false, late: false };
                } else {
                    self.send(now, plan, false, cur, out);
                }
            }
            Flight::AwaitPeer { .. } => return self.after_peer(now, cur, out),
            Flight::Locking { stealing: true, .. } | Flight::Idle | Flight::Sending { .. } => {}
        }
        Outcome::Nothing
    }

    /// The lock hold ended: let it go.
    pub fn settle_done(&mut self, out: &mut Out) {
        if self.settle_until.take().is_some() {
            self.release_lock(out);
        }
    }

    /// A lock grant for request `id`: the refresh it is for, or `None` if it answers a
    /// request this tab gave up (the lock is let go).
    pub fn grant(&self, id: u32, out: &mut Out) -> Option<Grant> {
        match self.flight {
            Flight::Locking { plan, steal_at, .. } if id == self.lock_id => Some(Grant { plan, steal_at }),
            Flight::Locking { .. }
            | Flight::Idle
            | Flight::Claiming { .. }
            | Flight::AwaitPeer { .. }
            | Flight::Sending { .. } => {
                out.push(Effect::ReleaseLock { id });
                None
            }
        }
    }

    /// Granted the lock (after the top machine adopted what storage held at the grant):
    /// refresh, or find that it is no longer needed, or wait for news first.
    pub fn granted(
        &mut self,
        now: f64,
        grant: Grant,
        stolen: bool,
        waited: bool,
        cur: Current,
        out: &mut Out,
    ) -> Outcome {
        let Grant { plan, steal_at } = grant;
        if !cur.signed_in || cur.seq != plan.seq {
            // Another tab refreshed (or the session ended) while this one waited.
            self.release_lock(out);
            self.flight = Flight::Idle;
            return Outcome::Settle(None);
        }
        if self.attempts > plan.attempts {
            self.release_lock(out);
            self.flight = Flight::Idle;
            return Outcome::Settle(Some(Error::RefreshFailed("another tab's refresh just failed; backing off")));
        }
        if let Some(peer_until) = self.peers.sending(now) {
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
            self.send(now, plan, true, cur, out);
        }
        Outcome::Nothing
    }

    /// Another tab stole the lock held by request `id`.
    pub fn lock_lost(&mut self, id: u32) {
        if id != self.lock_id {
            return;
        }
        self.settle_until = None;
        if let Flight::Sending { locked, .. } | Flight::AwaitPeer { locked, .. } = &mut self.flight {
            *locked = false;
        }
    }

    /// A wait for another tab's refresh ended without its result.
    pub(super) fn after_peer(&mut self, now: f64, cur: Current, out: &mut Out) -> Outcome {
        let Flight::AwaitPeer { plan, locked, until, late } = self.flight else { return Outcome::Nothing };
        let pending = self.peer_until(now);
        if !cur.signed_in || cur.seq != plan.seq {
            self.release_if(locked, out);
            self.flight = Flight::Idle;
        } else if self.attempts > plan.attempts {
            self.release_if(locked, out);
            self.flight = Flight::Idle;
            return Outcome::Settle(Some(Error::RefreshFailed("another tab's refresh just failed; backing off")));
        } else if let Some(until) = pending.filter(|_| !locked) {
            // Another tab announced a refresh meanwhile: wait for that one too. (Holding the
            // lock, an announcement is from a tab that let it go: done, or closed.)
            self.flight = Flight::AwaitPeer { plan, until, locked, late: false };
        } else if locked && !late && now > until + LATE_MS {
            // This timer fired late (a frozen or throttled tab): read the news first, once.
            self.flight = Flight::AwaitPeer { plan, until: now + PEER_GRACE_MS, locked, late: true };
        } else if locked {
            self.send(now, plan, true, cur, out);
        } else {
            self.lock_or_send(now, plan, cur, out);
        }
        Outcome::Nothing
    }

    /// Requests the lock; a steal gives up the pending request first.
    pub(super) fn acquire_lock(&mut self, steal: bool, out: &mut Out) {
        if steal {
            self.release_lock(out);
        }
        self.lock_id = self.lock_id.wrapping_add(1);
        out.push(Effect::AcquireLock { id: self.lock_id, steal });
    }

    pub(super) fn release_lock(&mut self, out: &mut Out) {
        out.push(Effect::ReleaseLock { id: self.lock_id });
    }

    pub(super) fn release_if(&mut self, locked: bool, out: &mut Out) {
        if locked {
            self.release_lock(out);
        }
    }

    /// Keeps the lock for [`SETTLE_MS`] after a refresh under it.
    pub fn hold(&mut self, now: f64, locked: bool, out: &mut Out) {
        if locked && !out.disposed {
            self.settle_until = Some(now + SETTLE_MS);
        } else {
            self.release_if(locked, out);
        }
    }
}
