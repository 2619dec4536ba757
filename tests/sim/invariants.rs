//! The invariants: one pass, [`Invariants::check`], run by the world after every step (in
//! `World::judge`, the only caller). It judges what happened during the step (the [`Fact`]s
//! the world recorded as it carried effects out, each with what an observer saw at that
//! moment) and the state of every tab; it remembers what it must (logouts still to reach
//! every tab, the newest tokens each tab held).

use std::collections::BTreeMap;

use wasm_session::core::machine::{Answer, Ticket};

use crate::app::Call;
use crate::world::World;

/// A logout must have reached every live tab this long after it started.
pub const LOGOUT_BOUND: f64 = 1_000.0;

/// The invariants, by name (a violation names the one it broke).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// No refresh token is sent again after its rotation reached a tab (reuse after a lost
    /// answer, a tab that died mid-request, is counted apart).
    RefreshTokenUsedOnce,
    /// At most one refresh request with a refresh token in flight across the live tabs.
    OneRefreshInFlight,
    /// No scheduled refresh sooner than half a lifetime after the previous one.
    RefreshNotTooSoon,
    /// A tab never goes back to an older token set of the session it holds.
    TokensOnlyMoveForward,
    /// A logout reaches every live tab within [`LOGOUT_BOUND`] (of it waking, if frozen), and
    /// no tab holds that session afterwards.
    LogoutReachesEveryTab,
    /// Every token set holds its sign-in's ID token, through refreshes without one.
    IdTokenKept,
    /// Without activity in any tab for `idleTimeoutMs`, no awake tab holds the session.
    IdleEndsSession,
    /// Past `maxSessionMs`, no awake tab holds the session.
    AbsoluteLimit,
    /// A cookie session ends as `expired` only when the server no longer has it.
    CookieEndsOnlyWhenGone,
    /// No expired or unknown token is handed to a request.
    NoExpiredToken,
    /// Every caller is answered in bounded time.
    CallersAnswered,
    /// Every answer goes to a caller that waits for it, of a kind that fits its call.
    AnswersFitCallers,
    /// Memory mode writes nothing to storage.
    MemoryModeStoresNothing,
    /// An authorization code is exchanged once, however often its callback is handled.
    CodeExchangedOnce,
    /// A sign-in answered as done leaves its tab signed in.
    SignInSignsIn,
    /// DPoP: a refresh is signed with the key its session is bound to (a tab without it
    /// does not refresh).
    DpopRefreshWithTheKey,
}

/// Something that happened during a step, recorded for the pass to judge.
#[derive(Debug)]
pub enum Fact {
    /// A tab sent a refresh request while these requests (tab, id) of other awake tabs, with
    /// the same refresh token, were in flight.
    RefreshSent {
        tab: usize,
        overlapping: Vec<(usize, u32)>,
    },
    /// The auth server saw a spent refresh token again (and revoked its family).
    RefreshTokenReused {
        token: String,
        /// When the request carrying it was sent.
        sent_at: f64,
        /// When the answer of its rotation reached a tab's machine, if it did.
        delivered_at: Option<f64>,
        /// The sender closed or crashed after sending, before the first rotation.
        died_mid_request: bool,
    },
    /// The auth server rotated a family's tokens, this long after the last ones; `asked`:
    /// `refresh()` or a 401 asked for new ones since.
    Rotated {
        family: u64,
        since_last_ms: f64,
        asked: bool,
    },
    /// A tab posted a logout of every session at or below `seq`, at `at`.
    LogoutPosted {
        seq: u64,
        at: f64,
    },
    /// A tab ended a cookie session as expired.
    CookieSessionEnded {
        tab: usize,
        server_has_it: bool,
    },
    /// A tab handed `token` to a request; `expires_at` is its expiry if it is the tab's
    /// current token, `wall` the tab's clock.
    TokenHandedOut {
        tab: usize,
        token: String,
        expires_at: Option<f64>,
        wall: f64,
    },
    UnknownTicket {
        tab: usize,
        ticket: Ticket,
    },
    WrongAnswer {
        tab: usize,
        call: Call,
        answer: Answer,
    },
    StoredInMemoryMode {
        tab: usize,
    },
    /// The provider saw an exchanged code again.
    CodeExchangedAgain {
        tab: usize,
        code: String,
    },
    /// A sign-in answered the app with its app state while the tab held no session.
    SignInLost {
        tab: usize,
    },
    /// DPoP: tab `tab` sent a refresh of `family` signed without that family's key.
    DpopWrongKey {
        tab: usize,
        family: u64,
    },
}

type Verdict = Result<(), (Invariant, String)>;

/// What the pass remembers between steps.
#[derive(Default)]
pub struct Invariants {
    /// Logouts (counter, when) still to be judged.
    logouts: Vec<(u64, f64)>,
    /// The highest issue number of each family each tab held: (tab, family) -> n.
    newest: BTreeMap<(usize, u64), u64>,
    /// The token each tab held at the last pass (to skip tabs whose set did not change).
    seen: Vec<Option<String>>,
}

fn broken(invariant: Invariant, why: String) -> Verdict {
    Err((invariant, why))
}

/// The family and issue number of a token the model servers issued: `at-{family}-{n}` or
/// `csrf-{family}-{n}`.
fn issue_of(token: &str) -> Option<(u64, u64)> {
    let rest = token.strip_prefix("at-").or_else(|| token.strip_prefix("csrf-"))?;
    let (family, n) = rest.split_once('-')?;
    Some((family.parse().ok()?, n.parse().ok()?))
}

impl Invariants {
    /// The one pass: every invariant, over the step's facts and every tab.
    pub fn check(&mut self, w: &World, facts: &[Fact]) -> Verdict {
        let verdict = self.facts(w, facts).and_then(|()| self.tabs(w));
        let now = w.now;
        self.logouts.retain(|&(_, at)| now < at + 3_600_000.0);
        verdict
    }

    fn facts(&mut self, w: &World, facts: &[Fact]) -> Verdict {
        use Invariant::*;
        for fact in facts {
            match fact {
                Fact::RefreshSent { tab, overlapping } => {
                    if let Some((u, rid)) = overlapping.first() {
                        return broken(
                            OneRefreshInFlight,
                            format!("tab {tab} sent a refresh while tab {u}'s request {rid} was in flight"),
                        );
                    }
                }
                Fact::RefreshTokenReused { token, sent_at, delivered_at, died_mid_request } => {
                    // Excused: the earlier answer had not reached a live tab when this one was
                    // sent (its tab crashed or froze mid-request, or the answer came after its
                    // timeout), or this request's tab died mid-request: no client can know.
                    if delivered_at.is_some_and(|d| d <= *sent_at) && !died_mid_request {
                        return broken(
                            RefreshTokenUsedOnce,
                            format!("refresh token {token} sent again after its rotation reached a tab"),
                        );
                    }
                }
                Fact::Rotated { family, since_last_ms, asked } => {
                    if !asked && *since_last_ms < 0.5 * w.setup.ttl_s * 1000.0 {
                        return broken(
                            RefreshNotTooSoon,
                            format!("family {family} refreshed {since_last_ms:.0} ms after its last tokens"),
                        );
                    }
                }
                Fact::LogoutPosted { seq, at } => self.logouts.push((*seq, *at)),
                Fact::CookieSessionEnded { tab, server_has_it } => {
                    if *server_has_it {
                        return broken(
                            CookieEndsOnlyWhenGone,
                            format!("tab {tab} ended a cookie session that the server still has"),
                        );
                    }
                }
                Fact::TokenHandedOut { tab, token, expires_at, wall } => {
                    if !expires_at.is_some_and(|e| *wall < e) {
                        return broken(
                            NoExpiredToken,
                            format!(
                                "tab {tab} handed out an expired or unknown token {token} (expiry {expires_at:?}, \
                                 clock {wall})"
                            ),
                        );
                    }
                }
                Fact::UnknownTicket { tab, ticket } => {
                    return broken(AnswersFitCallers, format!("tab {tab} answered unknown ticket {ticket}"));
                }
                Fact::WrongAnswer { tab, call, answer } => {
                    return broken(AnswersFitCallers, format!("tab {tab}: {answer:?} does not answer {call:?}"));
                }
                Fact::CodeExchangedAgain { tab, code } => {
                    return broken(CodeExchangedOnce, format!("tab {tab} exchanged {code} again"));
                }
                Fact::SignInLost { tab } => {
                    return broken(SignInSignsIn, format!("tab {tab} answered a sign-in without a session"));
                }
                Fact::DpopWrongKey { tab, family } => {
                    return broken(
                        DpopRefreshWithTheKey,
                        format!("tab {tab} refreshed family {family} without its key"),
                    );
                }
                Fact::StoredInMemoryMode { tab } => {
                    return broken(MemoryModeStoresNothing, format!("tab {tab} wrote storage in memory mode"));
                }
            }
        }
        Ok(())
    }

    fn tabs(&mut self, w: &World) -> Verdict {
        use Invariant::*;
        let now = w.now;
        let c = &w.setup.config;
        // Logout reaches every live tab within a bounded time, and afterwards no tab holds a
        // token set of that session (a counter at or below the logout's).
        for &(seq, at) in &self.logouts {
            for (t, tab) in w.tabs.iter().enumerate() {
                let awake_since = at.max(tab.thawed_at);
                // Tabs opened after the logout never held that session.
                if !tab.alive || tab.frozen || tab.opened_at > at || now < awake_since + LOGOUT_BOUND {
                    continue;
                }
                if tab.machine.stamp().is_some_and(|s| s.seq <= seq) {
                    let held = tab.machine.stamp();
                    return broken(
                        LogoutReachesEveryTab,
                        format!("tab {t} still holds tokens {held:?} after the logout at {seq}"),
                    );
                }
            }
        }
        self.seen.resize(w.tabs.len(), None);
        for (t, tab) in w.tabs.iter().enumerate() {
            let Some(tokens) = tab.machine.tokens().filter(|_| tab.alive) else { continue };
            // Every token set holds its sign-in's ID token (`at-{family}-n` goes with
            // `id-{family}`), through refreshes without one and in tabs that adopted it.
            if !w.cookie_mode() {
                let family = tokens.access_token.strip_prefix("at-").and_then(|r| r.split('-').next());
                if let Some(family) = family {
                    if tokens.id_token.as_deref().and_then(|i| i.strip_prefix("id-")) != Some(family) {
                        return broken(
                            IdTokenKept,
                            format!("tab {t} holds {} with ID token {:?}", tokens.access_token, tokens.id_token),
                        );
                    }
                }
            }
            // A tab only moves forward within a session: never back to a set issued before
            // one it held (a spent refresh token, or a CSRF token the server replaced).
            if self.seen[t].as_deref() != Some(tokens.access_token.as_str()) {
                if let Some((family, n)) = issue_of(&tokens.access_token) {
                    let newest = self.newest.entry((t, family)).or_insert(n);
                    if n < *newest {
                        return broken(
                            TokensOnlyMoveForward,
                            format!("tab {t} went back to {} after holding issue {newest}", tokens.access_token),
                        );
                    }
                    *newest = n;
                }
                self.seen[t] = Some(tokens.access_token.clone());
            }
        }
        // Without user activity anywhere for `idleTimeoutMs`, and past `maxSessionMs`, no tab
        // holds the session (once awake, within the bound, plus the activity-sharing delay).
        let wall = w.wall();
        for (t, tab) in w.tabs.iter().enumerate() {
            let Some(tokens) = tab.machine.tokens().filter(|_| tab.alive && !tab.frozen) else { continue };
            let awake = tab.thawed_at;
            if let Some(idle) = c.idle_timeout_ms {
                if now > w.last_activity.max(awake) + idle + LOGOUT_BOUND {
                    let quiet = now - w.last_activity;
                    return broken(
                        IdleEndsSession,
                        format!("tab {t} still signed in {quiet:.0} ms after the last activity"),
                    );
                }
            }
            if let (Some(max), Some(login)) = (c.max_session_ms, tokens.login_at) {
                if wall > login + max + LOGOUT_BOUND && now > awake + LOGOUT_BOUND {
                    return broken(
                        AbsoluteLimit,
                        format!("tab {t} still signed in {:.0} ms after login", wall - login),
                    );
                }
            }
        }
        // Every caller is answered in bounded time (unless its tab was frozen meanwhile).
        let bound = c.lock_timeout_ms + 3.0 * (c.request_timeout_ms + 1_000.0) + c.retry_max_ms + 5_000.0;
        for (t, tab) in w.tabs.iter().enumerate() {
            if !tab.alive || tab.frozen {
                continue;
            }
            for (ticket, call) in &tab.calls {
                let since = match call {
                    Call::Fetch { since }
                    | Call::Retry { since, .. }
                    | Call::Refused { since, .. }
                    | Call::Refresh { since }
                    | Call::Logout { since }
                    | Call::Authorize { since }
                    | Call::Callback { since, .. }
                    | Call::Popup { since, .. } => *since,
                    Call::SignIn => continue,
                };
                if now > since.max(tab.thawed_at) + bound {
                    return broken(
                        CallersAnswered,
                        format!("tab {t}: caller {ticket} ({call:?}) unanswered after {bound} ms"),
                    );
                }
            }
        }
        Ok(())
    }
}
