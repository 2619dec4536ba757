//! Unit-level scenarios for [`Machine`]: one tab driven input by input through its public
//! API, with the other tabs, the lock and the auth server played by the test. Each pins down
//! a decision of the refresh protocol that the simulation (`tests/sim.rs`) does not reach
//! often enough to notice when it changes; `make mutants` found them.
#![cfg(not(target_arch = "wasm32"))]

use wasm_session::core::config::{Config, StorageMode};
use wasm_session::core::machine::{Answer, Boot, Effect, Input, Machine, Reply, Transport};
use wasm_session::core::protocol::{Envelope, Message};
use wasm_session::core::store::Stored;
use wasm_session::core::token::{Seconds, TokenResponse, TokenSet};
use wasm_session::core::Field;

/// Sign-in time: far from zero, so that nothing hides behind a clock at 0.
const T0: f64 = 1_000_000.0;

fn config() -> Config {
    Config { token_url: "https://app.example/token".into(), ..Config::default() }
}

fn response(at: &str, rt: Option<&str>, ttl_s: f64) -> TokenResponse {
    TokenResponse {
        access_token: Field::Valid(at.into()),
        token_type: Field::Valid("Bearer".into()),
        expires_in: Field::Valid(Seconds(Some(ttl_s))),
        refresh_token: rt.map_or(Field::Absent, |r| Field::Valid(r.into())),
        ..TokenResponse::default()
    }
}

fn tokens(at: &str, rt: &str, now: f64, ttl_s: f64) -> TokenSet {
    match TokenSet::from_response(response(at, Some(rt), ttl_s), None, now, None, None) {
        Ok(t) => t,
        Err(e) => panic!("test tokens: {e:?}"),
    }
}

fn reply(at: &str, rt: &str, ttl_s: f64) -> Reply {
    Reply::Tokens { response: response(at, Some(rt), ttl_s), jwt: None, date: None }
}

/// One tab under test, its clock, and the effects of its last input.
struct Tab {
    m: Machine,
    now: f64,
    last: Vec<Effect>,
}

impl Tab {
    /// Started in memory mode with `transport` (and Web Locks if `locks`), signed in at
    /// `T0` with a 120 s token (refresh due at [`DUE`]).
    fn signed_in(cfg: Config, transport: Transport, locks: bool) -> Tab {
        let mut tab = Tab { m: Machine::new(cfg, "tab-m".into(), 7), now: T0, last: Vec::new() };
        let boot =
            Boot { stored: Stored::Empty, storage: StorageMode::Memory, storage_error: None, transport, locks, online: true };
        tab.input(Input::Start(boot));
        tab.input(Input::Presence { others: false });
        tab.input(Input::SignIn { tokens: tokens("at-0", "rt-0", T0, 120.0), ticket: None });
        tab
    }

    fn input(&mut self, input: Input) -> &[Effect] {
        self.last = self.m.handle(self.now, self.now, input);
        &self.last
    }

    /// Moves the clock to `at` and fires the timer.
    fn tick_at(&mut self, at: f64) -> &[Effect] {
        self.now = at;
        self.input(Input::Tick)
    }

    fn message(&mut self, from: &str, msg: Message) -> &[Effect] {
        self.input(Input::Message(Envelope { from: from.into(), msg }))
    }

    /// The refresh requests of the last input: (id, refresh token).
    fn sent(&self) -> Vec<(u32, String)> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::Refresh { id, refresh_token } => Some((*id, refresh_token.clone())),
                _ => None,
            })
            .collect()
    }

    /// The lock requests of the last input: (id, steal).
    fn acquired(&self) -> Vec<(u32, bool)> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::AcquireLock { id, steal } => Some((*id, *steal)),
                _ => None,
            })
            .collect()
    }

    fn released(&self) -> Vec<u32> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::ReleaseLock { id } => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn posted(&self) -> Vec<Message> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::Post(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    fn answers(&self) -> Vec<(u32, Answer)> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::Answer(t, a) => Some((*t, a.clone())),
                _ => None,
            })
            .collect()
    }

    fn timer(&self) -> Option<Option<f64>> {
        self.last.iter().rev().find_map(|e| match e {
            Effect::Timer(t) => Some(*t),
            _ => None,
        })
    }
}

/// Due time of the sign-in set: the 60 s lead capped at a quarter of the 120 s lifetime.
const DUE: f64 = T0 + 90_000.0;

#[test]
fn alone_a_due_refresh_is_sent_and_its_tokens_are_installed() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    assert_eq!(tab.m.refresh_at(), Some(DUE));
    tab.tick_at(DUE);
    let sent = tab.sent();
    assert_eq!(sent.len(), 1, "{:?}", tab.last);
    assert_eq!(sent[0].1, "rt-0");
    tab.input(Input::RefreshReply { id: sent[0].0, reply: reply("at-1", "rt-1", 120.0) });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-1"));
    assert!(tab.acquired().is_empty() && tab.released().is_empty() && tab.posted().is_empty() && tab.answers().is_empty());
    assert!(tab.timer().is_some());
}
