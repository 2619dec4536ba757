//! DPoP in the simulation: a key model and a nonce-demanding auth server.
//!
//! Keys are numbers. Each tab's driver holds at most one (what the machine's `KeyOp`s say to
//! do with it), a sign-in makes a new one and the server binds the session's family to it,
//! a key travels beside a tokens message (the model of the structured clone), and the
//! origin's IndexedDB holds one. A refresh is signed with the key its tab holds when it is
//! sent, and with the nonce the tab's machine knows for the auth server; the server demands
//! its current nonce (rotating every [`NONCE_ROTATE_MS`], the previous one still good), and
//! refuses a proof from any key but the family's, as `invalid_grant` without spending the
//! token (the demo server's behaviour).

use std::collections::BTreeMap;

use wasm_session::core::machine::{Input, Key, KeyOp, Reply};

use crate::invariants::Fact;
use crate::world::{Ev, World};

/// The model auth server's origin, as the driver reports nonces.
pub const AS_ORIGIN: &str = "https://app.example";

/// The server rotates its nonce this often (shorter than a token's lifetime in the runs).
pub const NONCE_ROTATE_MS: f64 = 7_000.0;

/// The keys and the server's DPoP state.
#[derive(Debug, Default)]
pub struct DpopModel {
    next_key: u64,
    /// The key each tab's driver holds.
    pub keys: BTreeMap<usize, u64>,
    /// The key made for a tab's sign-in in progress.
    signing_in: BTreeMap<usize, u64>,
    /// The key that came with the message being delivered to a tab.
    incoming: BTreeMap<usize, u64>,
    /// The origin's IndexedDB (session and local modes).
    pub stored: Option<u64>,
    /// The server: the key each family is bound to.
    pub bound: BTreeMap<u64, u64>,
    /// `use_dpop_nonce` answers, and proofs refused for their key.
    pub nonce_challenges: u64,
    pub wrong_key: u64,
}

impl World {
    pub fn dpop_on(&self) -> bool {
        self.setup.config.dpop
    }

    /// A sign-in in tab `t` for `family`: its driver makes a key, the server binds the family.
    pub fn dpop_sign_in(&mut self, t: usize, family: u64) {
        if !self.dpop_on() {
            return;
        }
        self.dpop.next_key += 1;
        let key = self.dpop.next_key;
        self.dpop.signing_in.insert(t, key);
        self.dpop.bound.insert(family, key);
    }

    /// The key tab `t` posts beside a tokens message, if it holds one.
    pub fn dpop_key_of(&self, t: usize) -> Option<u64> {
        self.dpop.keys.get(&t).copied().filter(|_| self.dpop_on())
    }

    /// Delivers a message that came with `key`.
    pub fn deliver_keyed(&mut self, t: usize, input: Input, key: u64) {
        self.dpop.incoming.insert(t, key);
        self.deliver(t, input);
        self.dpop.incoming.remove(&t);
    }

    /// Carries out a machine's `KeyOp`.
    pub fn key_op(&mut self, t: usize, op: KeyOp) {
        match op {
            KeyOp::Load => {
                let found = if self.dpop.stored.is_some() { Key::Present } else { Key::Missing };
                if let Some(k) = self.dpop.stored {
                    self.dpop.keys.insert(t, k);
                }
                let d = self.rng.range(1.0, 10.0);
                self.at(d, Ev::Input(t, Input::Key(found)));
            }
            KeyOp::AdoptSignIn => {
                if let Some(k) = self.dpop.signing_in.remove(&t) {
                    self.dpop.keys.insert(t, k);
                    self.store_key(k);
                }
            }
            KeyOp::AdoptSent => {
                if let Some(&k) = self.dpop.incoming.get(&t) {
                    self.dpop.keys.insert(t, k);
                    self.store_key(k);
                }
            }
            KeyOp::Drop { stored } => {
                self.dpop.keys.remove(&t);
                if stored {
                    self.dpop.stored = None;
                }
            }
        }
    }

    fn store_key(&mut self, k: u64) {
        if self.setup.storage != wasm_session::core::config::StorageMode::Memory {
            self.dpop.stored = Some(k);
        }
    }

    /// The proof a refresh request of tab `t` carries: its key and the nonce it knows.
    pub fn dpop_proof(&self, t: usize) -> (Option<u64>, Option<String>) {
        let nonce = self.tabs[t].machine.dpop_nonce(AS_ORIGIN).map(str::to_string);
        (self.dpop_key_of(t), nonce)
    }

    fn server_nonce(&self, back: u64) -> String {
        let epoch = (self.now / NONCE_ROTATE_MS) as u64;
        format!("n{}", epoch.saturating_sub(back))
    }

    /// The nonce the server's answers carry in `DPoP-Nonce` (the driver reports it before
    /// the reply it came with).
    pub fn dpop_answer_nonce(&self) -> Option<String> {
        self.dpop_on().then(|| self.server_nonce(0))
    }

    /// The server checks a refresh's proof before the grant: `Some` answer when it refuses.
    /// A stale nonce gets `use_dpop_nonce` (the current one comes in its `DPoP-Nonce`); a
    /// proof from another key than the family's is refused without spending the token.
    pub fn dpop_check(&mut self, t: usize, rt: &str) -> Option<Reply> {
        if !self.dpop_on() {
            return None;
        }
        let proof = self.tabs[t].requests.values().find(|r| r.refresh_token == rt && !r.done).map(|r| r.proof.clone());
        let proof = proof.unwrap_or_default();
        let fresh = [self.server_nonce(0), self.server_nonce(1)];
        if !proof.1.as_ref().is_some_and(|n| fresh.contains(n)) {
            self.dpop.nonce_challenges += 1;
            return Some(Reply::Status { status: 400, oauth_error: Some("use_dpop_nonce".into()) });
        }
        let family = self.server.rts.get(rt).map(|r| r.family)?;
        let bound = self.dpop.bound.get(&family).copied();
        if bound.is_some() && bound != proof.0 {
            self.dpop.wrong_key += 1;
            self.facts.push(Fact::DpopWrongKey { tab: t, family });
            return Some(Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) });
        }
        None
    }
}

#[cfg(test)]
mod scenarios {
    use wasm_session::core::config::StorageMode;
    use wasm_session::core::events::LogoutReason;
    use wasm_session::core::machine::Transport;

    use crate::setup::Setup;
    use crate::world::{Act, World};

    fn dpop_world(tabs: usize, storage: StorageMode, f: impl FnOnce(&mut Setup)) -> World {
        let mut s = Setup::new(tabs, storage);
        s.config.dpop = true;
        f(&mut s);
        let mut w = World::new(s, 1);
        w.run_for(500.0);
        w
    }

    fn no_rejected_refresh(w: &World) {
        for t in 0..w.tabs.len() {
            assert!(
                !w.logouts(t).contains(&LogoutReason::RefreshRejected),
                "tab {t} was logged out by a refused refresh: {:?}",
                w.logouts(t)
            );
        }
    }

    #[test]
    fn rotating_nonces_never_end_the_session_in_any_storage_mode() {
        for (storage, transport) in [
            (StorageMode::Memory, Transport::Broadcast),
            (StorageMode::Session, Transport::Broadcast),
            (StorageMode::Local, Transport::Broadcast),
            (StorageMode::Local, Transport::StorageBus),
        ] {
            let mut w = dpop_world(3, storage, |s| {
                s.ttl_s = 5.0;
                s.transport = transport;
                s.fetch_every_ms = 300.0;
            });
            w.schedule_random();
            w.run_for(60_000.0);
            assert!(w.violation.is_none(), "{storage:?} {transport:?}: {:?}", w.violation);
            // A 5 s token is refreshed at 3.75 s: 16 lifetimes in 60 s; the nonce rotates
            // every 7 s, so some refreshes meet a stale one and are sent again with the new.
            assert!(w.stats.refreshes >= 12, "{storage:?} {transport:?}: {} refreshes", w.stats.refreshes);
            assert!(w.dpop.nonce_challenges > 0, "{storage:?}: the nonce never rotated under a refresh");
            assert_eq!(w.dpop.wrong_key, 0, "{storage:?} {transport:?}");
            assert_eq!(w.stats.api_401_to_app, 0);
            assert_eq!(w.stats.fetch_errors, 0);
            no_rejected_refresh(&w);
            for t in 0..3 {
                assert!(w.tabs[t].machine.tokens().is_some(), "{storage:?} {transport:?}: tab {t} signed out");
            }
        }
    }

    #[test]
    fn a_new_tab_gets_the_key_with_the_session_and_logout_drops_it_everywhere() {
        let mut w = dpop_world(2, StorageMode::Memory, |s| s.ttl_s = 5.0);
        w.login(0);
        w.run_for(1_000.0);
        w.act(Act::Open);
        w.run_for(1_000.0);
        let key = w.dpop.keys.get(&0).copied();
        assert!(key.is_some());
        assert!((1..3).all(|t| w.dpop.keys.get(&t).copied() == key), "every tab holds the session's key");
        w.act(Act::Close(0));
        w.run_for(20_000.0);
        assert!(w.violation.is_none(), "{:?}", w.violation);
        assert!(w.stats.refreshes >= 3, "the other tabs refresh with the shared key");
        assert_eq!(w.dpop.stored, None, "memory mode stores no key");
        w.act(Act::Logout(1));
        w.run_for(1_000.0);
        let held: Vec<usize> = w.dpop.keys.keys().copied().filter(|&t| w.tabs[t].alive).collect();
        assert!(held.is_empty(), "tabs {held:?} still hold a key after logout");
        no_rejected_refresh(&w);
    }

    #[test]
    fn a_reload_in_local_mode_reads_the_key_and_keeps_the_session() {
        let mut w = dpop_world(1, StorageMode::Local, |s| s.ttl_s = 5.0);
        w.login(0);
        w.run_for(1_000.0);
        let stored = w.dpop.stored;
        assert!(stored.is_some(), "local mode stores the key");
        w.act(Act::Close(0));
        w.act(Act::Open);
        w.run_for(20_000.0);
        assert!(w.violation.is_none(), "{:?}", w.violation);
        assert_eq!(w.dpop.keys.get(&1).copied(), stored);
        assert!(w.tabs[1].machine.tokens().is_some());
        assert!(w.stats.refreshes >= 3);
        no_rejected_refresh(&w);
        w.act(Act::Logout(1));
        w.run_for(1_000.0);
        assert_eq!(w.dpop.stored, None, "logout deletes the stored key");
    }

    #[test]
    fn a_lost_stored_key_ends_the_restored_session_never_stuck() {
        let mut w = dpop_world(1, StorageMode::Local, |s| s.ttl_s = 5.0);
        w.login(0);
        w.run_for(1_000.0);
        w.act(Act::Close(0));
        w.dpop.stored = None; // IndexedDB cleared while the page was closed
        w.act(Act::Open);
        w.run_for(20_000.0);
        assert!(w.violation.is_none(), "{:?}", w.violation);
        assert!(w.tabs[1].machine.tokens().is_none(), "the session without its key is over");
        assert_eq!(w.dpop.wrong_key, 0, "nothing was sent without the key");
    }
}
