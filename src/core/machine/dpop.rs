//! DPoP (RFC 9449): what the machine knows of this tab's key, and the servers' nonces.
//!
//! The key itself (a non-extractable `CryptoKey`) stays in the driver; the machine sees only
//! whether this tab has one ([`Key`], an input) and says what to do with it ([`KeyOp`], an
//! effect): read it from IndexedDB at start-up, adopt the one that came with a sign-in or
//! with another tab's tokens, drop it when the session ends (after the revocation that
//! signs with it). A tab without the key cannot renew a bound session: it waits for a tab
//! that has it, and a session nobody can renew ends at expiry, never stuck.
//!
//! Nonces: the latest `DPoP-Nonce` of each origin, reported by the driver from any answer
//! that carries one, kept here and shared with the other tabs, so that a proof is signed
//! with the current nonce without a round trip in every tab.

use super::io::{Effect, Key, KeyOp, Out};
use crate::core::error::Error;
use crate::core::events::Event;
use crate::core::protocol::Message;

/// A DPoP sign-in answered with unbound tokens (`token_type: "Bearer"`).
pub const DPOP_UNBOUND: &str =
    "the token endpoint answered token_type Bearer to a DPoP request: it does not bind tokens (turn DPoP on there, or dpop off here)";

/// At most this many origins' nonces are kept (the page's, the auth server's, a few APIs).
pub const MAX_NONCE_ORIGINS: usize = 16;

/// What a report on the key means for the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KeyNews {
    /// Start-up restore waited for it: it may finish now.
    pub ready: bool,
    /// Read at start-up, the key of a stored session is gone or unusable: that session
    /// cannot be used or renewed.
    pub lost: bool,
}

/// The key state and the nonces.
#[derive(Debug, Default)]
pub(super) struct Dpop {
    on: bool,
    /// The stored key is being read (answered by [`Dpop::key`]).
    loading: bool,
    /// That read is start-up's: the session is not ready before it is done.
    at_start: bool,
    present: bool,
    /// Start-up restore was done while the key was still being read.
    ready_held: bool,
    /// The session ended here and its revocation (which signs with the key) is under way:
    /// the stored key is deleted when it is done.
    drop_after_revoke: bool,
    nonces: Vec<(String, String)>,
}

impl Dpop {
    pub fn new(on: bool) -> Dpop {
        Dpop { on, ..Dpop::default() }
    }

    /// DPoP is on. A build without the `dpop` feature refuses `dpop: true` in the config;
    /// saying so here too lets the compiler leave the key and nonce paths out of it.
    fn on(&self) -> bool {
        cfg!(feature = "dpop") && self.on
    }

    /// Start-up: read the stored key (when the session may be stored).
    pub fn start(&mut self, stored: bool, out: &mut Out) {
        if self.on() && stored {
            self.loading = true;
            self.at_start = true;
            out.push(Effect::Key(KeyOp::Load));
        }
    }

    /// Start-up restore would be done: may it? Not while the key is being read (remembered,
    /// and done by [`Dpop::key`]).
    pub fn hold_ready(&mut self) -> bool {
        self.ready_held |= self.at_start;
        self.at_start
    }

    /// This tab can sign proofs for its session (always true without DPoP).
    pub fn can_sign(&self) -> bool {
        !self.on() || self.present
    }

    /// The driver's report on the key. A stored key that cannot be used is an `error`
    /// event and is deleted: the next sign-in makes a fresh one.
    pub fn key(&mut self, key: Key, out: &mut Out) -> KeyNews {
        if !std::mem::take(&mut self.loading) {
            // A read overtaken by a sign-in: its key is the session's now.
            return KeyNews { ready: false, lost: false };
        }
        let at_start = std::mem::take(&mut self.at_start);
        self.present = key == Key::Present;
        if key == Key::Unusable {
            out.emit(Event::Error(Error::Dpop("the stored DPoP key cannot be used; sign in again")));
            out.push(Effect::Key(KeyOp::Drop { stored: true }));
        }
        KeyNews { ready: std::mem::take(&mut self.ready_held), lost: at_start && !self.present }
    }

    /// A sign-in landed: its key (made for it) is this tab's now.
    pub fn signed_in(&mut self, out: &mut Out) {
        if self.on() {
            // What storage held, still being read, is superseded by the sign-in's key.
            self.loading = false;
            self.at_start = false;
            self.present = true;
            out.push(Effect::Key(KeyOp::AdoptSignIn));
        }
    }

    /// Tokens from another tab were adopted; `with_key`: its key came with them.
    pub fn adopted(&mut self, with_key: bool, out: &mut Out) {
        if self.on() && with_key {
            self.present = true;
            out.push(Effect::Key(KeyOp::AdoptSent));
        }
    }

    /// Tokens from shared storage were adopted: read their key from storage too.
    pub fn adopted_stored(&mut self, out: &mut Out) {
        if self.on() {
            // Until it is read, the key held may be the previous sign-in's.
            self.present = false;
            self.loading = true;
            out.push(Effect::Key(KeyOp::Load));
        }
    }

    /// The session ended: forget the key (`stored`: and delete it, which the tab where the
    /// logout started does once its revocation is done).
    pub fn ended(&mut self, stored: bool, out: &mut Out) {
        if self.on() && (self.present || stored) {
            self.present = false;
            out.push(Effect::Key(KeyOp::Drop { stored }));
        }
    }

    /// The session ended here; `revoking`: its revocation is under way, and the key is
    /// deleted once it is done ([`Dpop::revoked`]).
    pub fn ended_here(&mut self, revoking: bool, out: &mut Out) {
        if revoking && self.on() {
            self.present = false;
            self.drop_after_revoke = true;
        } else {
            self.ended(true, out);
        }
    }

    /// A revocation is done (or failed): the key it needed goes, if the session ended.
    pub fn revoked(&mut self, out: &mut Out) {
        if std::mem::take(&mut self.drop_after_revoke) {
            out.push(Effect::Key(KeyOp::Drop { stored: true }));
        }
    }

    /// The latest nonce of `origin`.
    pub fn nonce(&self, origin: &str) -> Option<&str> {
        self.nonces.iter().find(|(o, _)| o == origin).map(|(_, n)| n.as_str())
    }

    /// A server gave a nonce (`shared`: another tab passed it on). A new one is passed on
    /// to the other tabs.
    pub fn note_nonce(&mut self, origin: String, nonce: String, shared: bool, out: &mut Out) {
        if !self.on() || self.nonce(&origin) == Some(nonce.as_str()) {
            return;
        }
        self.nonces.retain(|(o, _)| *o != origin);
        if self.nonces.len() >= MAX_NONCE_ORIGINS {
            self.nonces.remove(0);
        }
        if !shared {
            out.post(Message::Nonce { origin: origin.clone(), nonce: nonce.clone() });
        }
        self.nonces.push((origin, nonce));
    }
}
