//! Planted bugs: each makes every tab misbehave in one way a real bug would, in the tab model
//! (the machine itself is untouched), and each has a test asserting that the invariants
//! catch it within a number of random seeds. A saboteur is switched on by
//! `Setup::saboteur`; normal runs have none. To watch one caught:
//! `cargo test --test sim saboteur -- --nocapture` prints the seed, and
//! `SIM_SEED=<seed> SIM_SABOTEUR=<name> cargo test --test sim replay -- --ignored --nocapture`
//! replays it.

use std::collections::BTreeMap;

use wasm_session::core::machine::{Effect, Input};
use wasm_session::core::protocol::{Message, Stamp};
use wasm_session::core::token::TokenSet;

use crate::app::Call;
use crate::invariants::Invariant;
use crate::schedules::run_seed;
use crate::world::{Ev, World};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saboteur {
    /// A tab drops the logout messages it receives.
    DropsLogoutMessages,
    /// A tab answers its own lock request at once, without the lock: it refreshes unguarded.
    RefreshesWithoutLock,
    /// A tab that posts new tokens re-posts the set before them, stamped newer than the new
    /// one: the others accept an older token set as newer.
    ReplaysOlderTokensAsNewer,
    /// A tab loses its answers to `refresh()` callers: their promise never settles.
    LosesRefreshAnswers,
    /// A tab sends each code exchange twice (a callback handled twice without sharing).
    ExchangesCodesTwice,
}

impl Saboteur {
    pub const ALL: [Saboteur; 5] = [
        Saboteur::DropsLogoutMessages,
        Saboteur::RefreshesWithoutLock,
        Saboteur::ReplaysOlderTokensAsNewer,
        Saboteur::LosesRefreshAnswers,
        Saboteur::ExchangesCodesTwice,
    ];

    /// The name `SIM_SABOTEUR` takes.
    pub fn name(self) -> &'static str {
        match self {
            Saboteur::DropsLogoutMessages => "drops_logout_messages",
            Saboteur::RefreshesWithoutLock => "refreshes_without_lock",
            Saboteur::ReplaysOlderTokensAsNewer => "replays_older_tokens_as_newer",
            Saboteur::LosesRefreshAnswers => "loses_refresh_answers",
            Saboteur::ExchangesCodesTwice => "exchanges_codes_twice",
        }
    }

    pub fn parse(name: &str) -> Option<Saboteur> {
        Saboteur::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What the saboteurs remember.
#[derive(Default)]
pub struct Planted {
    /// The last token set each tab posted.
    posted: BTreeMap<usize, TokenSet>,
}

impl World {
    /// The input tab `t`'s machine gets instead of `input` (`None`: dropped).
    pub fn sabotage_input(&mut self, t: usize, input: Input) -> Option<Input> {
        match (self.setup.saboteur, &input) {
            (Some(Saboteur::DropsLogoutMessages), Input::Message(env)) if matches!(env.msg, Message::Logout { .. }) => {
                self.log(format!("tab {t} drops {:?} (planted bug)", env.msg));
                None
            }
            _ => Some(input),
        }
    }

    /// The effects carried out instead of `effect` of tab `t`'s machine.
    pub fn sabotage_effect(&mut self, t: usize, effect: Effect) -> Vec<Effect> {
        match (self.setup.saboteur, effect) {
            (Some(Saboteur::RefreshesWithoutLock), Effect::AcquireLock { id, .. }) => {
                self.log(format!("tab {t} grants itself lock request {id} (planted bug)"));
                let stored = self.stored_for_lock();
                self.at(0.0, Ev::Input(t, Input::LockGranted { id, stolen: false, waited: false, stored }));
                Vec::new()
            }
            (
                Some(Saboteur::ReplaysOlderTokensAsNewer),
                Effect::Post(Message::Tokens { stamp, tokens, why, after_401 }),
            ) => {
                let older = self.planted.posted.insert(t, tokens.clone());
                let same_session = |old: &TokenSet| {
                    old.access_token != tokens.access_token
                        && self.family_of_token(&old.access_token) == self.family_of_token(&tokens.access_token)
                };
                let replay = older.filter(same_session).map(|old| {
                    let newer = Stamp { seq: stamp.seq + 1, origin: stamp.origin.clone() };
                    Effect::Post(Message::Tokens { stamp: newer, tokens: old, why, after_401 })
                });
                let mut effects = vec![Effect::Post(Message::Tokens { stamp, tokens, why, after_401 })];
                if let Some(replay) = replay {
                    self.log(format!("tab {t} re-posts its older tokens as newer (planted bug)"));
                    effects.push(replay);
                }
                effects
            }
            (Some(Saboteur::LosesRefreshAnswers), Effect::Answer(ticket, answer))
                if matches!(self.tabs[t].calls.get(&ticket), Some(Call::Refresh { .. })) =>
            {
                self.log(format!("tab {t} loses {answer:?} to caller {ticket} (planted bug)"));
                Vec::new()
            }
            (Some(Saboteur::ExchangesCodesTwice), e @ Effect::ExchangeCode { .. }) => {
                self.log(format!("tab {t} sends the exchange twice (planted bug)"));
                vec![e.clone(), e]
            }
            (_, effect) => vec![effect],
        }
    }
}

/// Runs random schedules with `saboteur` on until an invariant breaks, and asserts that one
/// does within `within` seeds, and that it is one of `expected`.
fn caught(saboteur: Saboteur, within: u64, expected: &[Invariant]) {
    for seed in 0..within {
        if let Err(v) = run_seed(seed, Some(saboteur)) {
            println!("{saboteur:?} caught at seed {} by {:?}: {}", v.seed, v.invariant, v.why);
            assert!(
                expected.contains(&v.invariant),
                "{saboteur:?} caught by {:?}, not by {expected:?}:\n{v}",
                v.invariant
            );
            return;
        }
    }
    panic!("{saboteur:?} went unnoticed through {within} seeds");
}

#[test]
fn saboteur_a_tab_that_drops_logout_messages_is_caught() {
    caught(Saboteur::DropsLogoutMessages, 50, &[Invariant::LogoutReachesEveryTab]);
}

#[test]
fn saboteur_a_refresh_without_the_lock_is_caught() {
    // In cookie mode two tabs may also extend at once, and one ends the session as expired
    // while the other's extension keeps it on the server.
    let expected = [Invariant::OneRefreshInFlight, Invariant::RefreshTokenUsedOnce, Invariant::CookieEndsOnlyWhenGone];
    caught(Saboteur::RefreshesWithoutLock, 50, &expected);
}

#[test]
fn saboteur_an_older_token_set_accepted_as_newer_is_caught() {
    // Caught on adoption; without that invariant, when the spent refresh token is sent.
    caught(
        Saboteur::ReplaysOlderTokensAsNewer,
        50,
        &[Invariant::TokensOnlyMoveForward, Invariant::RefreshTokenUsedOnce],
    );
}

#[test]
fn saboteur_a_code_exchanged_twice_is_caught() {
    caught(Saboteur::ExchangesCodesTwice, 50, &[Invariant::CodeExchangedOnce]);
}

#[test]
fn saboteur_a_lost_callback_answer_is_caught() {
    caught(Saboteur::LosesRefreshAnswers, 50, &[Invariant::CallersAnswered]);
}
