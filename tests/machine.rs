//! Unit-level scenarios for [`Machine`]: one tab driven input by input through its public
//! API, with the other tabs, the lock and the auth server played by the test. Each pins down
//! a decision of the refresh protocol that the short simulation of `make mutants` did not
//! notice when cargo-mutants changed it (README, Mutation testing).
#![cfg(not(target_arch = "wasm32"))]

use wasm_session::core::config::{Config, Server, StorageMode};
use wasm_session::core::error::Error;
use wasm_session::core::events::{Event, LogoutReason};
use wasm_session::core::machine::{
    Answer, Boot, Credential, Effect, Input, Key, KeyOp, Machine, Reply, Transport, CLAIM_SETTLE_MS, LATE_MS,
    PEER_GRACE_MS, PEER_MARGIN_MS, SETTLE_MS,
};
use wasm_session::core::policy::MIN_REFRESH_INTERVAL_MS;
use wasm_session::core::protocol::{Envelope, Message, Stamp, Why};
use wasm_session::core::store::{Record, Stored, STORE_VERSION};
use wasm_session::core::token::{Seconds, TokenResponse, TokenSet};
use wasm_session::core::Field;

/// The backoff jitter's seed.
const SEED: u64 = 7;

/// Sign-in time: far from zero, so that nothing hides behind a clock at 0.
const T0: f64 = 1_000_000.0;

fn config() -> Config {
    Config::with_token_url("https://app.example/token")
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

/// One tab under test, its clocks (wall and monotonic), and the effects of its last input.
struct Tab {
    m: Machine,
    now: f64,
    mono: f64,
    last: Vec<Effect>,
}

impl Tab {
    /// Started in memory mode with `transport` (and Web Locks if `locks`), signed in at
    /// `T0` with a 120 s token (refresh due at [`DUE`]).
    fn signed_in(cfg: Config, transport: Transport, locks: bool) -> Tab {
        Tab::seeded(cfg, transport, locks, SEED)
    }

    fn seeded(cfg: Config, transport: Transport, locks: bool, seed: u64) -> Tab {
        let mut tab = Tab { m: Machine::new(cfg, "tab-m".into(), seed), now: T0, mono: 0.0, last: Vec::new() };
        let boot = Boot {
            stored: Stored::Empty,
            storage: StorageMode::Memory,
            storage_error: None,
            transport,
            locks,
            online: true,
        };
        tab.input(Input::Start(boot));
        tab.input(Input::Presence { others: false });
        tab.input(Input::SignIn { tokens: tokens("at-0", "rt-0", T0, 120.0), ticket: None });
        tab
    }

    fn input(&mut self, input: Input) -> &[Effect] {
        self.last = self.m.handle(self.now, self.mono, input);
        &self.last
    }

    /// Moves both clocks on to wall time `at`.
    fn at(&mut self, at: f64) -> &mut Tab {
        self.mono += at - self.now;
        self.now = at;
        self
    }

    /// Moves the clocks to `at` and fires the timer.
    fn tick_at(&mut self, at: f64) -> &[Effect] {
        self.at(at).input(Input::Tick)
    }

    /// The wall clock steps back by `ms` (an NTP correction); the monotonic one does not.
    fn step_back(&mut self, ms: f64) {
        self.now -= ms;
    }

    fn message(&mut self, from: &str, msg: Message) -> &[Effect] {
        self.input(Input::Message(Envelope { from: from.into(), msg, with_key: false }))
    }

    /// The refresh requests of the last input: (id, refresh token).
    fn sent(&self) -> Vec<(u32, String)> {
        self.last
            .iter()
            .filter_map(|e| match e {
                Effect::Refresh { id, credential } => Some((*id, credential.secret().to_string())),
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

    fn emitted(&self) -> Vec<Event> {
        self.last.iter().filter_map(|e| if let Effect::Emit(ev) = e { Some(ev.clone()) } else { None }).collect()
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
    assert!(
        tab.acquired().is_empty() && tab.released().is_empty() && tab.posted().is_empty() && tab.answers().is_empty()
    );
    assert!(tab.timer().is_some());
}

/// A refresh under the lock, the lock played by the test: due at [`DUE`], the lock
/// requested, granted free, the request sent. Returns (lock id, refresh request id).
fn refresh_under_lock(tab: &mut Tab) -> (u32, u32) {
    tab.tick_at(DUE);
    let acquired = tab.acquired();
    assert_eq!(acquired.len(), 1, "{:?}", tab.last);
    let lock = acquired[0].0;
    tab.input(Input::LockGranted { id: lock, stolen: false, waited: false, stored: None });
    let sent = tab.sent();
    assert_eq!(sent.len(), 1, "{:?}", tab.last);
    (lock, sent[0].0)
}

#[test]
fn alone_by_config_a_refresh_takes_no_lock_even_where_web_locks_exist() {
    let cfg = Config { cross_tab: false, ..config() };
    let mut tab = Tab::signed_in(cfg, Transport::Broadcast, true);
    tab.tick_at(DUE);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
    assert!(tab.acquired().is_empty(), "{:?}", tab.last);
}

#[test]
fn a_refresh_under_way_leaves_the_current_token_on_the_fast_path() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    let seq = tab.m.stamp().map(|s| s.seq);
    tab.tick_at(DUE);
    assert_eq!(tab.sent().len(), 1);
    // Past due but far from expiry: requests keep using the token while the refresh runs.
    assert_eq!(
        tab.m.token_now(DUE + 1_000.0).map(|(t, s)| (t.to_string(), s)),
        Some(("at-0".to_string(), seq.unwrap_or(0)))
    );
}

#[test]
fn expired_and_backing_off_a_request_fails_at_once_until_the_backoff_ends() {
    // Backoff of 30 to 60 s: a failure at DUE (30 s before expiry) backs off past expiry.
    let cfg = Config { retry_base_ms: 60_000.0, retry_max_ms: 60_000.0, ..config() };
    let mut tab = Tab::signed_in(cfg, Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Network });
    let retry = tab.m.refresh_at().unwrap_or(0.0);
    let expires = T0 + 120_000.0;
    assert!(retry >= expires, "backoff ends at {retry}");

    // Expired, backing off: the request fails now rather than sending another refresh.
    tab.at(expires - 1.0).input(Input::TokenWanted { ticket: 1 });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    assert_eq!(
        tab.answers(),
        vec![(1, Answer::Failed(Error::RefreshFailed("the token endpoint is failing; backing off")))]
    );

    // Offline from then on: once the backoff has ended, a request fails because the network
    // is down, not because of the backoff (right at its end, and after).
    tab.input(Input::Online(false));
    for (ticket, at) in [(2, retry), (3, retry + 1.0)] {
        tab.at(at).input(Input::TokenWanted { ticket });
        assert_eq!(tab.answers(), vec![(ticket, Answer::Failed(Error::Network))], "at {at}");
    }
}

#[test]
fn after_a_failure_the_retry_goes_out_when_the_backoff_ends() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Network });
    let retry = tab.m.refresh_at().unwrap_or(0.0);
    assert!(retry > DUE);
    assert_eq!(tab.timer(), Some(Some(retry)));
    tab.tick_at(retry);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn without_web_locks_a_due_refresh_waits_for_the_refresh_another_tab_announced() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    tab.at(DUE - 1_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    // B gives up after its timeout and the margin.
    let given_up = DUE - 1_000.0 + 10_000.0 + PEER_MARGIN_MS;
    tab.tick_at(DUE);
    assert!(tab.posted().is_empty() && tab.sent().is_empty(), "{:?}", tab.last);
    // B never reports back: this tab claims the refresh itself.
    tab.tick_at(given_up);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

#[test]
fn with_web_locks_a_due_refresh_queues_for_the_lock_even_while_another_tab_refreshes() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.at(DUE - 1_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.tick_at(DUE);
    assert_eq!(tab.acquired().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_lock_never_granted_is_claimed_after_the_lock_timeout() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    assert_eq!(tab.acquired().len(), 1);
    tab.tick_at(DUE + config().lock_timeout_ms);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

#[test]
fn the_lock_is_kept_for_the_settle_time_after_a_refresh_then_let_go() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let (lock, id) = refresh_under_lock(&mut tab);
    tab.at(DUE + 50.0).input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    assert!(tab.released().is_empty(), "{:?}", tab.last);
    assert_eq!(tab.timer(), Some(Some(DUE + 50.0 + SETTLE_MS)));
    tab.tick_at(DUE + 50.0 + SETTLE_MS);
    assert_eq!(tab.released(), vec![lock], "{:?}", tab.last);
}

#[test]
fn a_clock_step_back_keeps_the_settle_time_and_the_backoff_as_long() {
    let settle = SETTLE_MS;
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let (lock, id) = refresh_under_lock(&mut tab);
    tab.input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    tab.step_back(10_000.0);
    // 100 ms later on the monotonic clock: the hold is over.
    tab.tick_at(DUE - 10_000.0 + settle);
    assert_eq!(tab.released(), vec![lock], "{:?}", tab.last);

    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Network });
    let retry = tab.m.refresh_at().unwrap_or(0.0);
    assert!(retry > DUE);
    // A step shorter than the backoff, so that the retry stays after the token's due time.
    let step = (retry - DUE) / 2.0;
    tab.step_back(step);
    tab.input(Input::Tick);
    assert_eq!(tab.m.refresh_at(), Some(retry - step));
}

#[test]
fn a_401_that_joined_a_refresh_marks_its_tokens_so_the_next_401_is_final() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    let seq = tab.m.stamp().map_or(0, |s| s.seq);
    tab.input(Input::Unauthorized { ticket: 1, seq });
    assert!(tab.sent().is_empty());
    tab.input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    let seq = tab.m.stamp().map_or(0, |s| s.seq);
    assert_eq!(tab.answers(), vec![(1, Answer::Token { token: "at-1".into(), seq })]);
    // The API refuses the new token too: refreshing cannot fix it; the app gets the 401.
    tab.input(Input::Unauthorized { ticket: 2, seq });
    assert_eq!(tab.answers(), vec![(2, Answer::NoToken)]);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
}

#[test]
fn the_late_answer_to_an_abandoned_refresh_is_revoked_not_installed() {
    let server = Server::OAuth {
        token_url: "https://app.example/token".into(),
        revoke_url: Some("https://app.example/revoke".into()),
    };
    let cfg = Config { server, ..config() };
    let mut tab = Tab::signed_in(cfg, Transport::None, false);
    tab.tick_at(DUE);
    let old = tab.sent()[0].0;
    // A new sign-in while the refresh is on the wire, then a refresh of the new session.
    tab.at(DUE + 10.0).input(Input::SignIn { tokens: tokens("at-s", "rt-s", DUE + 10.0, 120.0), ticket: None });
    tab.input(Input::Refresh { ticket: 5 });
    let sent = tab.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, "rt-s");
    tab.input(Input::RefreshReply { id: old, reply: reply("at-x", "rt-x", 120.0) });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-s"));
    let revoke = Effect::Revoke { credential: Credential::RefreshToken("rt-x".into()), ticket: None };
    assert!(tab.last.contains(&revoke), "{:?}", tab.last);
    tab.input(Input::RefreshReply { id: sent[0].0, reply: reply("at-2", "rt-2", 120.0) });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-2"));
    assert_eq!(tab.answers(), vec![(5, Answer::Done)]);
}

/// splitmix64's first output for `seed`, as a number in [0, 1): the reference the backoff
/// jitter is held to.
fn splitmix_unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn the_backoff_is_jittered_by_the_seed_between_half_and_all_of_the_base() {
    // Tabs seeded differently retry at different times (no lockstep), each replayable.
    let mut retries = Vec::new();
    for seed in [SEED, 1, 2, 3, u64::MAX] {
        let mut tab = Tab::seeded(config(), Transport::None, false, seed);
        tab.tick_at(DUE);
        let id = tab.sent()[0].0;
        tab.input(Input::RefreshReply { id, reply: Reply::Network });
        let delay = tab.m.refresh_at().unwrap_or(0.0) - DUE;
        let base = config().retry_base_ms;
        let want = base * (0.5 + 0.5 * splitmix_unit(seed));
        assert!((delay - want).abs() < 1e-6, "seed {seed}: {delay}, not {want}");
        assert!(delay >= base / 2.0 && delay < base, "seed {seed}: {delay}");
        retries.push(delay);
    }
    retries.sort_by(f64::total_cmp);
    retries.dedup();
    assert_eq!(retries.len(), 5);
}

#[test]
fn a_401_without_an_oauth_error_from_the_token_endpoint_is_retried_later() {
    // A proxy's or gateway's 401 says nothing about the grant: keep the session, back off.
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Status { status: 401, oauth_error: None } });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-0"));
    assert!(tab.m.refresh_at().is_some_and(|at| at > DUE));
    assert!(!tab.last.iter().any(|e| matches!(e, Effect::Emit(Event::Logout { .. }))), "{:?}", tab.last);
}

fn cookie_session(csrf: &str, now: f64, ttl_s: f64) -> TokenSet {
    TokenSet {
        access_token: csrf.into(),
        refresh_token: None,
        id_token: None,
        scope: None,
        issued_at: now,
        expires_at: now + ttl_s * 1_000.0,
        login_at: None,
        user: None,
    }
}

/// Cookie mode: started, the server's session read (CSRF token `csrf-1`, 120 s), and the
/// user active since, so that the session is extended when due.
fn cookie_tab(transport: Transport, locks: bool) -> Tab {
    let server =
        Server::Cookie { session_url: "https://app.example/session".into(), csrf_header: "X-CSRF-Token".into() };
    let cfg = Config { server, ..Config::default() };
    let mut tab = Tab { m: Machine::new(cfg, "tab-m".into(), SEED), now: T0, mono: 0.0, last: Vec::new() };
    let boot = Boot {
        stored: Stored::Empty,
        storage: StorageMode::Memory,
        storage_error: None,
        transport,
        locks,
        online: true,
    };
    tab.input(Input::Start(boot));
    assert!(tab.last.contains(&Effect::ReadSession));
    tab.input(Input::SessionRead { reply: Reply::Session(cookie_session("csrf-1", T0, 120.0)) });
    assert!(tab.m.tokens().is_some());
    tab.at(T0 + 5_000.0).input(Input::Activity);
    tab
}

#[test]
fn cookie_mode_a_csrf_token_read_afresh_during_a_wait_for_the_lock_holders_news_ends_that_refresh() {
    let mut tab = cookie_tab(Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.input(Input::LockGranted { id: lock, stolen: false, waited: true, stored: None });
    // A request's CSRF token was refused: the session is read again, with a new token.
    tab.at(DUE + 10.0).input(Input::CsrfRejected { ticket: 3 });
    assert!(tab.last.contains(&Effect::ReadSession));
    tab.at(DUE + 20.0).input(Input::SessionRead { reply: Reply::Session(cookie_session("csrf-2", DUE + 20.0, 120.0)) });
    assert!(tab
        .answers()
        .iter()
        .any(|(t, a)| *t == 3 && matches!(a, Answer::Token { token, .. } if token == "csrf-2")));
    // The wait ends: the session is as good as new, nothing is sent, the lock goes back.
    tab.tick_at(DUE + SETTLE_MS);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    assert!(tab.released().contains(&lock), "{:?}", tab.last);
}

#[test]
fn cookie_mode_another_tabs_copy_of_the_session_just_read_is_no_refresh_but_a_new_one_is() {
    // A new tab's own read of the session and an open tab's answer to its hello cross.
    let mut tab = cookie_tab(Transport::Broadcast, true);
    let share = |csrf: &str, seq: u64, at: f64| Message::Tokens {
        stamp: Stamp { seq, origin: "tab-b".into() },
        tokens: TokenSet { issued_at: at, ..cookie_session(csrf, T0, 120.0) },
        why: Why::Share,
        after_401: false,
    };
    let refreshed = |tab: &Tab| tab.last.iter().any(|e| matches!(e, Effect::Emit(Event::Refresh { .. })));
    tab.at(T0 + 6_000.0).message("tab-b", share("csrf-1", 5, T0 - 50.0));
    assert!(!refreshed(&tab), "the same session: {:?}", tab.last);
    // Read before this tab's own read, with an earlier end: still the same session, not shortened.
    let earlier = Message::Tokens {
        stamp: Stamp { seq: 6, origin: "tab-b".into() },
        tokens: cookie_session("csrf-1", T0 - 1_000.0, 120.0),
        why: Why::Share,
        after_401: false,
    };
    tab.at(T0 + 6_500.0).message("tab-b", earlier);
    assert!(!refreshed(&tab), "an older copy: {:?}", tab.last);
    assert_eq!(tab.m.tokens().map(|t| t.expires_at), Some(T0 + 120_000.0));
    // Read a moment later, its end a second later (whole seconds): a copy, still no news,
    // and the later end is kept.
    let later = Message::Tokens {
        stamp: Stamp { seq: 7, origin: "tab-b".into() },
        tokens: cookie_session("csrf-1", T0 + 1_000.0, 120.0),
        why: Why::Share,
        after_401: false,
    };
    tab.at(T0 + 6_600.0).message("tab-b", later);
    assert!(!refreshed(&tab), "a later copy: {:?}", tab.last);
    assert_eq!(tab.m.tokens().map(|t| t.expires_at), Some(T0 + 121_000.0));
    // The other tab extended the session (same CSRF token, later end): news.
    let extended = Message::Tokens {
        stamp: Stamp { seq: 8, origin: "tab-b".into() },
        tokens: cookie_session("csrf-1", T0 + 6_700.0, 120.0),
        why: Why::Refresh,
        after_401: false,
    };
    tab.at(T0 + 6_700.0).message("tab-b", extended);
    assert!(refreshed(&tab), "an extension: {:?}", tab.last);
    // A session the tab did not hold is news.
    tab.at(T0 + 7_000.0).message("tab-b", share("csrf-2", 9, T0 + 7_000.0));
    assert!(refreshed(&tab), "a new session: {:?}", tab.last);
}

#[test]
fn cookie_mode_a_401_from_the_session_endpoint_ends_the_session() {
    let mut tab = cookie_tab(Transport::None, false);
    tab.tick_at(DUE);
    let sent = tab.sent();
    assert_eq!(sent.len(), 1, "{:?}", tab.last);
    tab.input(Input::RefreshReply { id: sent[0].0, reply: Reply::Status { status: 401, oauth_error: None } });
    assert_eq!(tab.m.tokens(), None);
    assert!(tab.last.contains(&Effect::Emit(Event::Logout { reason: LogoutReason::Expired })), "{:?}", tab.last);
}

#[test]
fn back_online_a_backed_off_refresh_goes_out_at_once() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Network });
    tab.input(Input::Online(false));
    assert!(tab.m.refresh_at().is_some_and(|at| at > DUE + 100.0));
    tab.at(DUE + 100.0).input(Input::Online(true));
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn dispose_gives_back_a_lock_being_waited_for() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.input(Input::Dispose);
    assert_eq!(tab.released(), vec![lock], "{:?}", tab.last);
}

#[test]
fn holding_the_lock_a_tab_answers_a_claim_with_the_time_its_refresh_has_left() {
    let timeout = config().request_timeout_ms;
    // Sending since DUE: 2 s later, 8 s left.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    refresh_under_lock(&mut tab);
    tab.at(DUE + 2_000.0).message("tab-a", Message::Claim);
    assert_eq!(tab.posted(), vec![Message::Refreshing { timeout_ms: timeout - 2_000.0 }]);

    // Handed the lock by a holder: it waits SETTLE_MS for that holder's news, then sends.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.input(Input::LockGranted { id: lock, stolen: false, waited: true, stored: None });
    assert!(tab.sent().is_empty());
    tab.at(DUE + 40.0).message("tab-a", Message::Claim);
    assert_eq!(tab.posted(), vec![Message::Refreshing { timeout_ms: SETTLE_MS - 40.0 + timeout }]);
}

#[test]
fn a_new_tab_hears_of_the_refresh_under_way_and_the_time_it_has_left() {
    let timeout = config().request_timeout_ms;
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    refresh_under_lock(&mut tab);
    tab.at(DUE + 3_000.0).message("tab-c", Message::Hello);
    assert!(tab.posted().contains(&Message::Refreshing { timeout_ms: timeout - 3_000.0 }), "{:?}", tab.last);
}

#[test]
fn without_web_locks_another_tabs_claim_holds_a_due_refresh_for_the_claims_settle_time() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    tab.at(DUE - 500.0).message("tab-z", Message::Claim);
    tab.tick_at(DUE);
    assert!(tab.posted().is_empty() && tab.sent().is_empty(), "{:?}", tab.last);
    let waited = DUE - 500.0 + CLAIM_SETTLE_MS + PEER_GRACE_MS;
    assert_eq!(tab.timer(), Some(Some(waited)));
    tab.tick_at(waited);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

/// A tab waiting for a lock that is never granted, until its lock timeout: it claims.
/// Returns the time of the claim.
fn claim_for_stuck_lock(tab: &mut Tab) -> f64 {
    tab.tick_at(DUE);
    assert_eq!(tab.acquired().len(), 1);
    let at = DUE + config().lock_timeout_ms;
    tab.tick_at(at);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
    assert!(tab.acquired().is_empty(), "{:?}", tab.last);
    at
}

#[test]
fn a_stuck_lock_is_stolen_once_the_claim_settled_unchallenged() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let claimed = claim_for_stuck_lock(&mut tab);
    assert_eq!(tab.timer(), Some(Some(claimed + CLAIM_SETTLE_MS)));
    tab.tick_at(claimed + CLAIM_SETTLE_MS);
    assert_eq!(tab.acquired().iter().map(|a| a.1).collect::<Vec<_>>(), vec![true], "{:?}", tab.last);
    // The request given up for the steal is granted after all: let go, not used.
    let (old, steal) = (tab.released()[0], tab.acquired()[0].0);
    assert_ne!(old, steal);
    tab.input(Input::LockGranted { id: old, stolen: false, waited: true, stored: None });
    assert_eq!(tab.released(), vec![old], "{:?}", tab.last);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.input(Input::LockGranted { id: steal, stolen: true, waited: true, stored: None });
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_stuck_lock_is_stolen_when_the_claim_settles_however_late_within_a_freeze() {
    // Right at the edge of a freeze: still a timely settle.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let claimed = claim_for_stuck_lock(&mut tab);
    tab.tick_at(claimed + CLAIM_SETTLE_MS + LATE_MS);
    assert_eq!(tab.acquired().iter().map(|a| a.1).collect::<Vec<_>>(), vec![true], "{:?}", tab.last);
}

#[test]
fn frozen_while_claiming_a_tab_reads_the_news_then_claims_afresh() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let claimed = claim_for_stuck_lock(&mut tab);
    let thawed = claimed + CLAIM_SETTLE_MS + LATE_MS + 1.0;
    tab.tick_at(thawed);
    assert!(tab.acquired().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    assert_eq!(tab.timer(), Some(Some(thawed + PEER_GRACE_MS)));
    tab.tick_at(thawed + PEER_GRACE_MS);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

#[test]
fn outranked_in_a_claim_a_tab_waits_another_lock_timeout_before_claiming_again() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let claimed = claim_for_stuck_lock(&mut tab);
    tab.at(claimed + 10.0).message("tab-a", Message::Claim);
    let settled = claimed + CLAIM_SETTLE_MS;
    tab.tick_at(settled);
    assert!(tab.acquired().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    let again = settled + config().lock_timeout_ms;
    tab.tick_at(again - 1.0);
    assert!(tab.acquired().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    tab.tick_at(again);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

/// Without Web Locks: due at [`DUE`], the tab claims the refresh; returns when the claim settles.
fn claim_without_locks(tab: &mut Tab) -> f64 {
    tab.tick_at(DUE);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
    assert!(tab.sent().is_empty());
    DUE + CLAIM_SETTLE_MS
}

#[test]
fn without_web_locks_an_unchallenged_claim_sends_when_it_settles_even_at_the_edge_of_a_freeze() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    let settled = claim_without_locks(&mut tab);
    tab.tick_at(settled + LATE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn without_web_locks_frozen_while_claiming_a_tab_reads_the_news_then_claims_afresh() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    let settled = claim_without_locks(&mut tab);
    let thawed = settled + LATE_MS + 1.0;
    tab.tick_at(thawed);
    assert!(tab.sent().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    assert_eq!(tab.timer(), Some(Some(thawed + PEER_GRACE_MS)));
    tab.tick_at(thawed + PEER_GRACE_MS);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

#[test]
fn without_web_locks_an_outranked_claim_waits_for_the_winner_then_claims_again() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    let settled = claim_without_locks(&mut tab);
    tab.at(DUE + 10.0).message("tab-a", Message::Claim);
    tab.tick_at(settled);
    assert!(tab.sent().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    // The winner never announces its request: after its claim's settle time and a grace,
    // this tab claims again.
    tab.tick_at(DUE + 10.0 + CLAIM_SETTLE_MS + PEER_GRACE_MS);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

/// With an idle timeout a refresh nobody asked for waits for activity: a fresh sign-in has
/// none since its tokens were issued, so only requests start refreshes here.
fn on_request_only() -> Config {
    Config { idle_timeout_ms: Some(600_000.0), ..config() }
}

#[test]
fn a_token_due_at_the_minimum_interval_is_refreshed_right_then() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.input(Input::SignIn { tokens: tokens("at-1s", "rt-1s", T0, 1.0), ticket: None });
    assert_eq!(tab.m.refresh_at(), Some(T0 + MIN_REFRESH_INTERVAL_MS));
    tab.tick_at(T0 + MIN_REFRESH_INTERVAL_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_request_refreshes_a_worn_token_no_sooner_than_the_minimum_interval_after_issue() {
    let min = MIN_REFRESH_INTERVAL_MS;
    let mut tab = Tab::signed_in(on_request_only(), Transport::None, false);
    // A 1 s token is past its usable part at 900 ms.
    tab.input(Input::SignIn { tokens: tokens("at-1s", "rt-1s", T0, 1.0), ticket: None });
    tab.at(T0 + min - 50.0).input(Input::TokenWanted { ticket: 1 });
    assert!(tab.sent().is_empty() && tab.answers().is_empty(), "{:?}", tab.last);
    tab.at(T0 + min).input(Input::TokenWanted { ticket: 2 });
    let sent = tab.sent();
    assert_eq!(sent.len(), 1, "{:?}", tab.last);
    tab.input(Input::RefreshReply { id: sent[0].0, reply: reply("at-2", "rt-2", 120.0) });
    let seq = tab.m.stamp().map_or(0, |s| s.seq);
    let token = Answer::Token { token: "at-2".into(), seq };
    assert_eq!(tab.answers(), vec![(1, token.clone()), (2, token)]);
}

/// Signed in with refreshes on request only; `refresh()` at T0 + 85 s fails and backs off
/// 30 to 60 s (past the due time). Returns the end of the backoff.
fn backed_off_by_a_failed_refresh(tab: &mut Tab) -> f64 {
    tab.at(T0 + 85_000.0).input(Input::Refresh { ticket: 9 });
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: Reply::Network });
    let retry = tab.m.refresh_at().unwrap_or(0.0);
    assert!(retry > DUE);
    retry
}

#[test]
fn a_401_during_the_backoff_fails_and_right_after_it_refreshes() {
    let cfg = Config { retry_base_ms: 60_000.0, retry_max_ms: 60_000.0, ..on_request_only() };
    let mut tab = Tab::signed_in(cfg.clone(), Transport::None, false);
    let retry = backed_off_by_a_failed_refresh(&mut tab);
    let seq = tab.m.stamp().map_or(0, |s| s.seq);
    tab.at(retry - 1.0).input(Input::Unauthorized { ticket: 1, seq });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    // The refresh may not run yet: the request keeps its 401.
    assert_eq!(tab.answers(), vec![(1, Answer::NoToken)]);

    let mut tab = Tab::signed_in(cfg, Transport::None, false);
    assert_eq!(backed_off_by_a_failed_refresh(&mut tab), retry);
    tab.at(retry).input(Input::Unauthorized { ticket: 1, seq });
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn another_tabs_refresh_given_up_on_is_forgotten_so_its_later_claim_is_only_a_claim() {
    // B announced a refresh and never reported back: given up on at `gave_up`.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.at(T0 + 10_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    let gave_up = T0 + 10_000.0 + 10_000.0 + PEER_MARGIN_MS;
    tab.tick_at(gave_up);
    // Nothing left to wake up for before the refresh is due.
    assert_eq!(tab.timer(), Some(Some(DUE)));
    // Later this tab's lock wait runs out and it claims; B claims too, and outranks it.
    let claimed = claim_for_stuck_lock(&mut tab);
    tab.at(claimed + 10.0).message("tab-b", Message::Claim);
    tab.tick_at(claimed + CLAIM_SETTLE_MS);
    // B's claim is not a request under way: this tab waits a whole lock timeout, and does
    // not claim again when B's claim times out.
    tab.tick_at(claimed + 10.0 + CLAIM_SETTLE_MS + PEER_GRACE_MS);
    assert!(tab.posted().is_empty() && tab.acquired().is_empty(), "{:?}", tab.last);
    assert!(tab.timer().is_none_or(|t| t.is_none_or(|t| t > tab.now + 1.0)), "{:?}", tab.last);
}

#[test]
fn granted_the_lock_a_tab_that_finds_newer_tokens_in_shared_storage_adopts_them_and_sends_nothing() {
    let mut tab = Tab { m: Machine::new(config(), "tab-m".into(), SEED), now: T0, mono: 0.0, last: Vec::new() };
    let boot = Boot {
        stored: Stored::Empty,
        storage: StorageMode::Local,
        storage_error: None,
        transport: Transport::Broadcast,
        locks: true,
        online: true,
    };
    tab.input(Input::Start(boot));
    tab.input(Input::SignIn { tokens: tokens("at-0", "rt-0", T0, 120.0), ticket: None });
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    // The last holder refreshed, stored its result and let go (the lock was free when
    // granted); its message is still on the way.
    let seq = tab.m.stamp().map_or(0, |s| s.seq) + 1;
    let newer = Record {
        v: STORE_VERSION,
        ns: "default".into(),
        stamp: Stamp { seq, origin: "tab-b".into() },
        tokens: tokens("at-b", "rt-b", DUE, 120.0),
        after_401: false,
    };
    tab.at(DUE + 20.0).input(Input::LockGranted {
        id: lock,
        stolen: false,
        waited: false,
        stored: Some(Stored::Valid(newer)),
    });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-b"));
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    assert!(tab.released().contains(&lock), "{:?}", tab.last);
}

#[test]
fn granted_the_lock_after_another_tab_failed_a_tab_backs_off_with_it() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.at(DUE + 10.0).message("tab-b", Message::RefreshFailed);
    tab.at(DUE + 20.0).input(Input::LockGranted { id: lock, stolen: false, waited: true, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    assert_eq!(tab.released(), vec![lock]);
    assert!(tab.m.refresh_at().is_some_and(|at| at > DUE + 20.0));
}

#[test]
fn waiting_for_another_tabs_refresh_a_tab_backs_off_when_it_fails() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    tab.at(DUE - 1_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.tick_at(DUE);
    tab.at(DUE + 10.0).message("tab-b", Message::RefreshFailed);
    assert!(tab.sent().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
    assert!(tab.m.refresh_at().is_some_and(|at| at > DUE + 10.0));
}

/// With Web Locks: due at [`DUE`], the lock requested; another tab announces its request at
/// DUE + 100 ms (10 s timeout), and the lock comes free at DUE + 200 ms. Returns the lock id.
fn granted_while_another_tab_sends(tab: &mut Tab) -> u32 {
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.at(DUE + 100.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.at(DUE + 200.0).input(Input::LockGranted { id: lock, stolen: false, waited: false, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    lock
}

#[test]
fn granted_while_another_tab_announced_a_request_a_tab_waits_a_grace_for_its_result() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    granted_while_another_tab_sends(&mut tab);
    // The lock was let go: that tab's result is a message away, or it was closed.
    tab.tick_at(DUE + 200.0 + PEER_GRACE_MS - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(DUE + 200.0 + PEER_GRACE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_grace_wait_acted_on_late_reads_the_news_first_once() {
    let end = DUE + 200.0 + PEER_GRACE_MS;
    // Right at the edge of a freeze: sent.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    granted_while_another_tab_sends(&mut tab);
    tab.tick_at(end + LATE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
    // Past it: a grace for the news, then sent.
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    granted_while_another_tab_sends(&mut tab);
    let thawed = end + LATE_MS + 1.0;
    tab.tick_at(thawed);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(thawed + PEER_GRACE_MS - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(thawed + PEER_GRACE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

/// Due at [`DUE`] with Web Locks; the lock is granted free at `at` without the tab having
/// ticked since (frozen, or just before its lock timeout). Returns whether it sent at once.
fn granted_free_at(at: f64) -> (Tab, bool) {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.at(at).input(Input::LockGranted { id: lock, stolen: false, waited: false, stored: None });
    let sent = !tab.sent().is_empty();
    (tab, sent)
}

#[test]
fn a_lock_granted_long_after_it_was_asked_for_waits_for_the_news_first() {
    let steal_at = DUE + config().lock_timeout_ms;
    assert!(granted_free_at(steal_at - 1_000.0).1);
    assert!(granted_free_at(steal_at + LATE_MS).1);
    let late = steal_at + LATE_MS + 1.0;
    let (mut tab, sent) = granted_free_at(late);
    assert!(!sent, "{:?}", tab.last);
    tab.tick_at(late + PEER_GRACE_MS - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(late + PEER_GRACE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_lock_handed_over_waits_the_settle_time_for_the_holders_news_then_sends() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.input(Input::LockGranted { id: lock, stolen: false, waited: true, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(DUE + SETTLE_MS - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(DUE + SETTLE_MS);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_lock_stolen_from_this_tab_is_not_held_any_more() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let (lock, id) = refresh_under_lock(&mut tab);
    tab.at(DUE + 10.0).input(Input::LockLost { id: lock });
    // No longer the holder: a claim is not answered, and after the reply nothing is let go.
    tab.at(DUE + 20.0).message("tab-a", Message::Claim);
    assert!(tab.posted().is_empty(), "{:?}", tab.last);
    tab.input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    tab.tick_at(DUE + 20.0 + SETTLE_MS);
    assert!(tab.released().is_empty(), "{:?}", tab.last);
}

#[test]
fn a_refresh_rejected_under_the_lock_lets_it_go_at_once() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let (lock, id) = refresh_under_lock(&mut tab);
    let rejected = Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) };
    tab.input(Input::RefreshReply { id, reply: rejected });
    assert_eq!(tab.m.tokens(), None);
    assert_eq!(tab.released(), vec![lock], "{:?}", tab.last);
}

#[test]
fn disposed_mid_refresh_the_reply_lands_and_the_lock_is_let_go_at_once() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let (lock, id) = refresh_under_lock(&mut tab);
    tab.input(Input::Dispose);
    assert!(tab.released().is_empty(), "{:?}", tab.last);
    tab.input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    assert_eq!(tab.m.tokens().map(|t| t.access_token.as_str()), Some("at-1"));
    assert_eq!(tab.released(), vec![lock], "{:?}", tab.last);
}

#[test]
fn alone_a_refresh_holds_no_lock_to_let_go() {
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    tab.tick_at(DUE);
    let id = tab.sent()[0].0;
    tab.input(Input::RefreshReply { id, reply: reply("at-1", "rt-1", 120.0) });
    assert_ne!(tab.timer(), Some(Some(DUE + SETTLE_MS)));
    tab.tick_at(DUE + SETTLE_MS);
    assert!(tab.released().is_empty(), "{:?}", tab.last);
}

#[test]
fn another_tabs_refresh_is_awaited_to_its_end_though_an_earlier_one_was_given_up_on() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    // B's refresh is given up on at DUE + 16 s; C's (20 s timeout) runs to DUE + 27 s.
    tab.at(DUE + 5_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.at(DUE + 6_000.0).message("tab-c", Message::Refreshing { timeout_ms: 20_000.0 });
    tab.tick_at(DUE + 16_000.0);
    tab.at(DUE + 20_000.0).input(Input::LockGranted { id: lock, stolen: false, waited: false, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
}

#[test]
fn another_tabs_failure_ends_the_wait_for_its_refresh() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, false);
    tab.at(DUE - 1_000.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.at(DUE - 500.0).message("tab-b", Message::RefreshFailed);
    // Backing off with B, then claiming the refresh: B's is over.
    let retry = tab.m.refresh_at().unwrap_or(0.0);
    tab.tick_at(retry);
    assert_eq!(tab.posted(), vec![Message::Claim], "{:?}", tab.last);
}

#[test]
fn a_tab_that_announced_its_request_and_then_claims_is_awaited_to_its_claims_end() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.at(DUE + 100.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.at(DUE + 150.0).message("tab-b", Message::Claim);
    // Stolen: the holder may still be sending; wait for it as long as its last word says.
    tab.at(DUE + 200.0).input(Input::LockGranted { id: lock, stolen: true, waited: true, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    let end = DUE + 150.0 + CLAIM_SETTLE_MS + PEER_GRACE_MS;
    tab.tick_at(end - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(end);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_clock_step_back_keeps_the_wait_for_another_tabs_refresh_as_long() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    tab.tick_at(DUE);
    let lock = tab.acquired()[0].0;
    tab.at(DUE + 100.0).message("tab-b", Message::Refreshing { timeout_ms: 10_000.0 });
    tab.at(DUE + 150.0);
    tab.step_back(5_000.0);
    // 50 ms later by the monotonic clock, the lock is stolen: wait for B's request's end,
    // 5 s earlier by the wall clock than announced.
    tab.at(DUE + 200.0 - 5_000.0).input(Input::LockGranted { id: lock, stolen: true, waited: true, stored: None });
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    let end = DUE + 100.0 + 10_000.0 + PEER_MARGIN_MS - 5_000.0;
    tab.tick_at(end - 1.0);
    assert!(tab.sent().is_empty(), "{:?}", tab.last);
    tab.tick_at(end);
    assert_eq!(tab.sent().len(), 1, "{:?}", tab.last);
}

#[test]
fn a_clock_step_back_during_a_claim_keeps_the_claims_that_outrank_this_tab() {
    let mut tab = Tab::signed_in(config(), Transport::Broadcast, true);
    let claimed = claim_for_stuck_lock(&mut tab);
    tab.at(claimed + 10.0).message("tab-a", Message::Claim);
    tab.at(claimed + 20.0);
    tab.step_back(5_000.0);
    tab.tick_at(claimed + CLAIM_SETTLE_MS - 5_000.0);
    assert!(tab.acquired().is_empty() && tab.posted().is_empty(), "{:?}", tab.last);
}

#[test]
fn the_getters_views_name_the_token_of_each_mode() {
    // Token mode: the access token while it lasts, its claims' token even after expiry.
    let mut tab = Tab::signed_in(config(), Transport::None, false);
    assert_eq!(
        (tab.m.access_token(T0), tab.m.held_access_token(), tab.m.csrf_token()),
        (Some("at-0"), Some("at-0"), None)
    );
    let expired = T0 + 120_001.0;
    assert_eq!((tab.m.access_token(expired), tab.m.held_access_token()), (None, Some("at-0")));
    // Cookie mode: the CSRF token, and never an access token.
    let cookie = cookie_tab(Transport::None, false);
    assert_eq!(
        (cookie.m.csrf_token(), cookie.m.access_token(T0), cookie.m.held_access_token()),
        (Some("csrf-1"), None, None)
    );
    tab.input(Input::Logout { ticket: 1 });
    assert_eq!((tab.m.access_token(T0), tab.m.held_access_token()), (None, None));
}

// ---- DPoP ----------------------------------------------------------------------------------

fn dpop_config() -> Config {
    Config { dpop: true, ..config() }
}

fn use_dpop_nonce() -> Reply {
    Reply::Status { status: 400, oauth_error: Some("use_dpop_nonce".into()) }
}

#[test]
fn use_dpop_nonce_sends_the_same_refresh_once_more_and_never_ends_the_session() {
    let mut tab = Tab::signed_in(dpop_config(), Transport::Broadcast, false);
    tab.tick_at(DUE);
    tab.at(DUE + CLAIM_SETTLE_MS);
    tab.input(Input::Tick);
    let sent = tab.sent();
    assert_eq!(sent.len(), 1, "{:?}", tab.last);
    // The driver reports the answer's DPoP-Nonce before the answer: kept and shared.
    tab.input(Input::Nonce { origin: "https://app.example".into(), nonce: "n-1".into() });
    assert_eq!(tab.m.dpop_nonce("https://app.example"), Some("n-1"));
    assert!(tab.posted().contains(&Message::Nonce { origin: "https://app.example".into(), nonce: "n-1".into() }));
    tab.input(Input::RefreshReply { id: sent[0].0, reply: use_dpop_nonce() });
    let again = tab.sent();
    assert_eq!(again.len(), 1, "sent once more: {:?}", tab.last);
    assert_eq!(again[0].1, "rt-0", "the same refresh token (the refusal did not spend it)");
    assert!(tab.m.tokens().is_some());
    assert!(!tab.emitted().iter().any(|e| matches!(e, Event::Logout { .. })));
    // Refused again: a transient failure, retried after a backoff; still signed in.
    tab.input(Input::RefreshReply { id: again[0].0, reply: use_dpop_nonce() });
    assert!(tab.sent().is_empty());
    assert!(tab.emitted().iter().any(|e| matches!(e, Event::Error(Error::RefreshFailed(_)))), "{:?}", tab.last);
    assert!(tab.m.tokens().is_some(), "use_dpop_nonce never logs out");
}

#[test]
fn a_nonce_from_another_tab_is_kept_not_echoed() {
    let mut tab = Tab::signed_in(dpop_config(), Transport::Broadcast, false);
    tab.message("tab-x", Message::Nonce { origin: "https://api.example".into(), nonce: "n-9".into() });
    assert_eq!(tab.m.dpop_nonce("https://api.example"), Some("n-9"));
    assert!(tab.posted().is_empty());
    // Without DPoP, nonces are none of the session's business.
    let mut plain = Tab::signed_in(config(), Transport::Broadcast, false);
    plain.input(Input::Nonce { origin: "https://app.example".into(), nonce: "n-1".into() });
    assert_eq!(plain.m.dpop_nonce("https://app.example"), None);
}

fn key_ops(tab: &Tab) -> Vec<KeyOp> {
    tab.last.iter().filter_map(|e| if let Effect::Key(op) = e { Some(*op) } else { None }).collect()
}

#[test]
fn a_sign_in_adopts_its_key_and_logout_deletes_it_after_the_revocation() {
    let cfg = Config {
        server: Server::OAuth { token_url: "https://app.example/token".into(), revoke_url: Some("/revoke".into()) },
        ..dpop_config()
    };
    let mut tab = Tab { m: Machine::new(cfg, "tab-m".into(), SEED), now: T0, mono: 0.0, last: Vec::new() };
    let boot = Boot {
        stored: Stored::Empty,
        storage: StorageMode::Memory,
        storage_error: None,
        transport: Transport::None,
        locks: false,
        online: true,
    };
    tab.input(Input::Start(boot));
    assert!(key_ops(&tab).is_empty(), "memory mode reads no stored key");
    tab.input(Input::SignIn { tokens: tokens("at-0", "rt-0", T0, 120.0), ticket: None });
    assert_eq!(key_ops(&tab), vec![KeyOp::AdoptSignIn]);
    tab.input(Input::Logout { ticket: 1 });
    assert!(tab.last.iter().any(|e| matches!(e, Effect::Revoke { .. })));
    assert!(key_ops(&tab).is_empty(), "the revocation signs with the key: kept until it is done");
    tab.input(Input::RevokeReply { ticket: Some(1), error: None });
    assert_eq!(key_ops(&tab), vec![KeyOp::Drop { stored: true }]);
}

#[test]
fn a_stored_session_waits_for_its_key_and_a_lost_key_ends_it() {
    for (found, signed_in) in [(Key::Present, true), (Key::Unusable, false), (Key::Missing, false)] {
        let mut tab =
            Tab { m: Machine::new(dpop_config(), "tab-m".into(), SEED), now: T0, mono: 0.0, last: Vec::new() };
        let record = Record {
            v: STORE_VERSION,
            ns: "default".into(),
            stamp: Stamp { seq: 5, origin: "tab-a".into() },
            tokens: tokens("at-0", "rt-0", T0, 120.0),
            after_401: false,
        };
        let boot = Boot {
            stored: Stored::Valid(record),
            storage: StorageMode::Local,
            storage_error: None,
            transport: Transport::Broadcast,
            locks: true,
            online: true,
        };
        tab.input(Input::Start(boot));
        assert_eq!(key_ops(&tab), vec![KeyOp::Load]);
        assert!(!tab.last.iter().any(|e| matches!(e, Effect::Ready(_))), "not ready before the key is read");
        tab.input(Input::Key(found));
        assert!(tab.last.contains(&Effect::Ready(signed_in)), "{found:?}: {:?}", tab.last);
        assert_eq!(tab.m.tokens().is_some(), signed_in, "{found:?}");
        let error = tab.emitted().iter().any(|e| matches!(e, Event::Error(Error::Dpop(_))));
        assert_eq!(error, found == Key::Unusable, "{found:?}: an unusable key is an error event");
    }
}

#[test]
fn a_sign_in_during_the_read_of_the_stored_key_is_not_undone_by_its_answer() {
    let mut tab = Tab { m: Machine::new(dpop_config(), "tab-m".into(), SEED), now: T0, mono: 0.0, last: Vec::new() };
    let boot = Boot {
        stored: Stored::Empty,
        storage: StorageMode::Local,
        storage_error: None,
        transport: Transport::Broadcast,
        locks: true,
        online: true,
    };
    tab.input(Input::Start(boot));
    assert_eq!(key_ops(&tab), vec![KeyOp::Load]);
    tab.input(Input::SignIn { tokens: tokens("at-0", "rt-0", T0, 120.0), ticket: None });
    assert!(tab.last.contains(&Effect::Ready(true)), "the sign-in does not wait for the read");
    tab.input(Input::Key(Key::Missing));
    assert!(tab.m.tokens().is_some(), "the late answer (no stored key) does not end the new session");
    assert!(tab.emitted().is_empty(), "{:?}", tab.last);
}
