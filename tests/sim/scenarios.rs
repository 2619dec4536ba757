//! The named scenarios: each defect the simulation was built to catch (`defect_1_...` to
//! `defect_8_...`, issue 13), the timeouts and cookie sessions (`idle_...`, `absolute_...`,
//! `cookie_...`, issue 15), and properties shown on one schedule. A scenario builds a world
//! with [`world`], drives it (`w.login`, `w.fetch`, `w.act(Act::...)`, or a tab's inputs
//! directly with `w.call` and `w.deliver`), runs it with `w.run_for` (a broken invariant
//! fails the test) and asserts what a user would notice. `SIM_TRACE=1` prints its trace
//! where it calls [`dump`].

use wasm_session::core::config::{Config, StorageMode};
use wasm_session::core::events::{Event, LogoutReason};
use wasm_session::core::machine::{Boot, Effect, Input, Machine, Transport, CLAIM_SETTLE_MS};
use wasm_session::core::store::Stored;
use wasm_session::core::token::TokenSet;

use crate::app::Call;
use crate::auth_server::{response, Fault};
use crate::browser::MSG_DELAY_MAX;
use crate::provider::oidc_mode;
use crate::setup::{cookie_mode, Setup};
use crate::world::{Act, World, EPOCH};

fn world(tabs: usize, storage: StorageMode, f: impl FnOnce(&mut Setup)) -> World {
    let mut s = Setup::new(tabs, storage);
    f(&mut s);
    let mut w = World::new(s, 1);
    w.run_for(500.0);
    w
}

/// Prints the trace when `SIM_TRACE` is set (for debugging a named scenario).
fn dump(w: &World) {
    if std::env::var("SIM_TRACE").is_ok() {
        println!("{}", w.trace.join("\n"));
    }
}

fn signed_in_everywhere(w: &World) -> bool {
    w.tabs.iter().filter(|t| t.alive).all(|t| t.machine.tokens().is_some())
}

#[test]
fn defect_1_a_401_that_refreshing_cannot_fix_refreshes_once() {
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.server.always_401 = true;
    for _ in 0..10 {
        w.fetch(0);
        w.run_for(200.0);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.token_requests, 1, "one refresh for the first 401, none after");
    assert_eq!(w.stats.api_401_to_app, 10);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_2_a_proxys_403_page_is_transient() {
    let mut w = world(2, StorageMode::Memory, |s| s.config.retry_base_ms = 100.0);
    w.login(0);
    w.run_for(100.0);
    w.server.forced = vec![Fault::Html403, Fault::Html403];
    w.run_for(25_000.0);
    assert!(signed_in_everywhere(&w), "a 403 without an OAuth error body ended the session");
    assert_eq!(w.stats.refreshes, 1);
    let errors = w.tabs[0].events.iter().chain(&w.tabs[1].events).filter(|e| matches!(e, Event::Error(_))).count();
    assert_eq!(errors, 2, "each failed attempt is an error event in the tab that made it");
}

#[test]
fn defect_3_a_newer_releases_stored_record_is_left_alone() {
    let mut m = Machine::new(Config::default(), "t".into(), 1);
    let effects = m.handle(
        EPOCH,
        0.0,
        Input::Start(Boot {
            stored: Stored::OtherVersion,
            storage: StorageMode::Local,
            storage_error: None,
            transport: Transport::Broadcast,
            locks: true,
            online: true,
        }),
    );
    assert!(!effects.contains(&Effect::Clear), "{effects:?}");
    assert!(effects.iter().any(|e| matches!(e, Effect::Emit(Event::Error(_)))));
    assert!(effects.contains(&Effect::Ready(false)));
}

#[test]
fn defect_4_a_stolen_lock_waits_for_the_holders_refresh() {
    // The holder's request is slow (3 s) but within its timeout (10 s); the other tab's lock
    // wait (1 s) runs out first. It must not send the same refresh token.
    let mut w = world(2, StorageMode::Memory, |s| s.config.lock_timeout_ms = 1_000.0);
    w.login(0);
    w.run_for(100.0);
    w.server.slow_ms = 3_000.0;
    w.act(Act::Refresh(0));
    w.run_for(50.0);
    w.act(Act::Refresh(1));
    w.run_for(15_000.0);
    dump(&w);
    assert_eq!(w.stats.excused_reuse, 0);
    assert_eq!(w.stats.token_requests, 1, "tab 1 waited for tab 0's refresh and adopted it");
    assert_eq!(w.tabs[0].machine.stamp(), w.tabs[1].machine.stamp());
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_5_logout_during_a_refresh_revokes_the_late_tokens() {
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.server.slow_answer_ms = 500.0;
    w.act(Act::Refresh(0));
    w.run_for(100.0);
    w.call(0, Call::Logout { since: w.now }, |ticket| Input::Logout { ticket });
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 1);
    assert_eq!(w.stats.revocations, 2, "the refresh token at logout, then the one in the late reply");
    let late: Vec<&String> = w.server.rts.iter().filter(|(_, r)| !r.used).map(|(k, _)| k).collect();
    for rt in late {
        let family = w.server.rts[rt].family;
        assert!(w.server.revoked.contains(&family), "{rt} is still valid");
    }
}

#[test]
fn defect_6_newer_tokens_are_ordered_by_counter_not_clock() {
    let mut w = world(3, StorageMode::Local, |s| s.ttl_s = 10.0);
    w.login(0);
    w.run_for(100.0);
    w.act(Act::ClockBack(3_600_000.0));
    // Three refreshes, each stamped after the clock stepped back an hour.
    for i in 0..3 {
        w.act(Act::Refresh(i));
        w.run_for(1_000.0);
    }
    let stamps: Vec<_> = w.tabs.iter().map(|t| t.machine.stamp().cloned()).collect();
    assert!(stamps.windows(2).all(|p| p[0] == p[1]), "tabs disagree: {stamps:?}");
    w.run_for(60_000.0);
    assert_eq!(w.stats.excused_reuse, 0);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn defect_7_tiny_lifetimes_and_many_waiting_callers_stay_bounded() {
    let mut w = world(1, StorageMode::Memory, |s| s.ttl_s = 0.001);
    w.login(0);
    w.run_for(10_000.0);
    assert!(w.stats.refreshes <= 11, "{} refreshes in 10 s for expires_in 0.001", w.stats.refreshes);
    // 100 callers waiting on one refresh arm one timer, not one each.
    let mut m = Machine::new(Config::default(), "t".into(), 1);
    let start = Input::Start(Boot {
        stored: Stored::Empty,
        storage: StorageMode::Memory,
        storage_error: None,
        transport: Transport::None,
        locks: false,
        online: true,
    });
    m.handle(EPOCH, 0.0, start);
    let tokens = TokenSet::from_response(response("a", Some("r"), 60.0), None, EPOCH, None, None).unwrap();
    m.handle(EPOCH, 0.0, Input::SignIn { tokens, ticket: None });
    let later = EPOCH + 59_900.0;
    let mut timers = 0;
    for ticket in 0..100 {
        let effects = m.handle(later, later - EPOCH, Input::TokenWanted { ticket });
        timers += effects.iter().filter(|e| matches!(e, Effect::Timer(_))).count();
    }
    assert!(timers <= 1, "{timers} timers armed for 100 waiting callers");
}

#[test]
fn defect_8_the_first_tab_is_ready_at_once() {
    for storage in [StorageMode::Memory, StorageMode::Session] {
        let mut w = world(1, storage, |_| {});
        assert_eq!(w.tabs[0].ready_at, Some(1.0), "{storage:?}: ready when presence says no other tab");
        w.run_for(10.0);
    }
    let w = world(1, StorageMode::Local, |_| {});
    assert_eq!(w.tabs[0].ready_at, Some(0.0), "local: storage answers at once");
    // With another tab open, ready comes with its answer, before the restore timeout.
    let mut w = world(1, StorageMode::Memory, |_| {});
    w.login(0);
    w.run_for(100.0);
    let t = w.open_tab();
    w.run_for(100.0);
    let ready = w.tabs[t].ready_at.expect("ready");
    assert!(ready - 600.0 < MSG_DELAY_MAX * 2.0 + 1.0, "ready after {} ms", ready - 600.0);
    assert!(w.tabs[t].machine.tokens().is_some());
}

#[test]
fn logout_reaches_every_tab_and_ends_the_session() {
    for storage in [StorageMode::Memory, StorageMode::Session, StorageMode::Local] {
        let mut w = world(4, storage, |_| {});
        w.login(2);
        w.run_for(200.0);
        assert!(signed_in_everywhere(&w), "{storage:?}: login reached every tab");
        w.act(Act::Logout(1));
        w.run_for(200.0);
        for t in &w.tabs {
            assert!(t.machine.tokens().is_none());
            assert!(t
                .events
                .iter()
                .any(|e| matches!(e, Event::Logout { reason: LogoutReason::User | LogoutReason::OtherTab })));
        }
        assert!(
            w.browser.local.is_none() && w.tabs.iter().all(|t| t.session_store.is_none()),
            "{storage:?}: storage cleared"
        );
        assert_eq!(w.stats.revocations, 1);
    }
}

#[test]
fn one_refresh_per_lifetime_across_tabs() {
    for (locks, transport, storage) in [
        (true, Transport::Broadcast, StorageMode::Memory),
        (false, Transport::Broadcast, StorageMode::Memory),
        (true, Transport::StorageBus, StorageMode::Local),
    ] {
        let mut w = world(4, storage, |s| {
            s.ttl_s = 2.0;
            s.locks = locks;
            s.transport = transport;
            s.fetch_every_ms = 50.0;
        });
        w.schedule_random();
        w.run_for(24_000.0);
        // A 2 s token is refreshed at 1.5 s: 16 lifetimes in 24 s; without Web Locks the
        // claim window comes first (fewer, longer lifetimes).
        let lifetime_ms = 1_500.0 + if locks || transport != Transport::Broadcast { 0.0 } else { CLAIM_SETTLE_MS };
        let expected = (24_000.0 / lifetime_ms) as u64;
        assert!(
            (expected - 1..=expected + 1).contains(&w.stats.refreshes),
            "{locks} {transport:?}: {} refreshes, {expected} expected",
            w.stats.refreshes
        );
        assert_eq!(w.stats.token_requests, w.stats.refreshes, "{locks} {transport:?}");
        assert_eq!(w.stats.api_401_to_app, 0);
        assert_eq!(w.stats.fetch_errors, 0);
    }
}

#[test]
fn a_sleep_past_expiry_refreshes_before_the_next_request() {
    let mut w = world(3, StorageMode::Memory, |s| s.ttl_s = 30.0);
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Sleep(600_000.0));
    w.run_for(600_010.0);
    for t in 0..3 {
        w.fetch(t);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 1);
    assert_eq!(w.stats.api_ok, 3);
    assert_eq!(w.stats.api_401_to_app, 0);
}

// ---- idle and absolute timeouts, cookie sessions (issue 15) ---------------------------------

fn idle_world(mode_cookie: bool) -> World {
    world(3, StorageMode::Memory, |s| {
        s.ttl_s = 300.0;
        s.config.idle_timeout_ms = Some(60_000.0);
        s.config.idle_warning_ms = Some(10_000.0);
        if mode_cookie {
            cookie_mode(s);
        }
    })
}

#[test]
fn idle_activity_in_one_tab_keeps_every_tab_signed_in_then_idle_ends_all() {
    for cookie in [false, true] {
        let mut w = idle_world(cookie);
        w.login(0);
        w.run_for(40_000.0);
        w.touch(2); // only tab 2 sees the user
        w.run_for(55_000.0); // 95 s after sign-in: past the first deadline, not the second
        assert!(signed_in_everywhere(&w), "cookie {cookie}: activity in tab 2 did not reach the others");
        w.run_for(10_000.0); // 105 s: 65 s after the activity
        dump(&w);
        for t in 0..3 {
            assert_eq!(w.tabs[t].machine.tokens(), None, "cookie {cookie}: tab {t} still signed in");
            let reasons = w.logouts(t);
            assert!(reasons.contains(&LogoutReason::Idle) || reasons.contains(&LogoutReason::OtherTab), "{reasons:?}");
        }
        // Each tab's deadline is the same: more than one may revoke (a harmless repeat).
        assert!(w.stats.revocations >= 1, "cookie {cookie}: the session (or refresh token) was not revoked");
        if cookie {
            assert!(w.cookie_server.sessions.is_empty(), "the server session outlived the idle logout");
        }
    }
}

#[test]
fn idle_warning_then_activity_cancels_it_in_every_tab() {
    let mut w = idle_world(false);
    w.login(0);
    w.run_for(51_000.0);
    for t in 0..3 {
        assert!(w.tabs[t].events.iter().any(|e| matches!(e, Event::IdleWarning { .. })), "tab {t} got no warning");
    }
    w.touch(1);
    w.run_for(6_000.0);
    for t in 0..3 {
        assert!(w.tabs[t].events.iter().any(|e| matches!(e, Event::Active)), "tab {t} did not hear the activity");
    }
    w.run_for(40_000.0); // 97 s: would have been idle at 60 s
    dump(&w);
    assert!(signed_in_everywhere(&w));
}

#[test]
fn idle_a_sleep_past_the_deadline_ends_the_session_on_wake() {
    let mut w = idle_world(false);
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Sleep(3_600_000.0));
    w.run_for(3_600_100.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 0, "an idle session was refreshed on wake");
    for t in 0..3 {
        assert_eq!(w.tabs[t].machine.tokens(), None, "tab {t} survived the sleep");
    }
}

#[test]
fn idle_no_background_refresh_keeps_an_idle_session_alive() {
    let mut w = world(2, StorageMode::Memory, |s| {
        s.ttl_s = 30.0;
        s.config.idle_timeout_ms = Some(300_000.0);
    });
    w.login(0);
    w.run_for(200_000.0);
    dump(&w);
    assert_eq!(w.stats.refreshes, 0, "a refresh ran without user activity");
    assert!(signed_in_everywhere(&w), "expired tokens are not a logout: the next request refreshes");
    w.touch(1);
    w.fetch(1);
    w.run_for(1_000.0);
    assert_eq!((w.stats.refreshes, w.stats.api_ok), (1, 1));
}

#[test]
fn absolute_the_session_ends_on_time_across_refreshes_and_new_tabs() {
    let mut w = world(2, StorageMode::Local, |s| {
        s.ttl_s = 20.0;
        s.config.max_session_ms = Some(100_000.0);
    });
    w.login(0);
    for _ in 0..9 {
        w.touch(1);
        w.fetch(1);
        w.run_for(10_000.0);
    }
    let t = w.open_tab(); // a reload: the stored session carries the sign-in time
    w.run_for(5_000.0);
    assert!(signed_in_everywhere(&w), "signed out before the absolute limit");
    assert!(w.stats.refreshes >= 3);
    w.run_for(7_000.0); // 102 s
    dump(&w);
    for tab in [0, 1, t] {
        assert_eq!(w.tabs[tab].machine.tokens(), None, "tab {tab} outlived maxSessionMs");
    }
    assert!(w.logouts(0).contains(&LogoutReason::Absolute) || w.logouts(1).contains(&LogoutReason::Absolute));
}

#[test]
fn cookie_a_read_sent_before_sign_in_does_not_end_the_new_session() {
    let mut w = world(0, StorageMode::Memory, cookie_mode);
    // A new tab reads the session (none yet); sign-in lands before the 401 comes back.
    let t = w.open_tab();
    w.login(t);
    w.run_for(1_000.0);
    dump(&w);
    assert!(signed_in_everywhere(&w), "a 401 from before the sign-in ended it");
}

#[test]
fn cookie_a_thawed_tab_with_a_lapsed_copy_asks_the_server_before_ending_anything() {
    let mut w = world(2, StorageMode::Memory, |s| {
        cookie_mode(s);
        s.ttl_s = 30.0;
        s.csrf_rotates = false;
    });
    w.login(0);
    w.run_for(1_000.0);
    w.act(Act::Freeze(1, 60_000.0));
    for _ in 0..6 {
        w.touch(0);
        w.fetch(0);
        w.run_for(10_000.0);
    }
    w.run_for(2_000.0);
    dump(&w);
    assert!(w.stats.refreshes >= 1, "tab 0 extended the session");
    assert!(signed_in_everywhere(&w), "the thawed tab ended a session the server still has");
    assert!(w.logouts(0).is_empty() && w.logouts(1).is_empty());
}

#[test]
fn cookie_a_401_ends_the_session_in_every_tab_and_a_csrf_403_rereads_once() {
    let mut w = world(3, StorageMode::Memory, |s| {
        cookie_mode(s);
        s.ttl_s = 600.0;
    });
    w.login(0);
    w.run_for(1_000.0);
    // The server forgets the CSRF token it issued (say, a restart): one re-read, one retry.
    let family = w.browser.cookie.expect("a session cookie");
    if let Some(session) = w.cookie_server.sessions.get_mut(&family) {
        session.0 = "csrf-after-restart".into();
    }
    w.fetch(1);
    w.run_for(1_000.0);
    assert_eq!(w.stats.api_ok, 1, "the retry with the re-read token went through");
    assert!(signed_in_everywhere(&w));
    // The server ends the session: the next call's 401 ends it everywhere.
    w.cookie_server.sessions.clear();
    w.fetch(2);
    w.run_for(1_000.0);
    dump(&w);
    for t in 0..3 {
        assert_eq!(w.tabs[t].machine.tokens(), None, "tab {t} kept a session the server ended");
    }
}

#[test]
fn oidc_the_sign_ins_id_token_outlives_refreshes_in_every_tab_and_new_tabs() {
    // An OpenID Connect sign-in in one tab; the provider's refreshes carry no ID token.
    // Logout from any tab, now or after a reload, needs it for `id_token_hint`.
    for storage in [StorageMode::Memory, StorageMode::Session, StorageMode::Local] {
        let mut w = world(3, storage, |s| {
            s.ttl_s = 2.0;
            s.fetch_every_ms = 100.0;
        });
        w.login(1);
        w.schedule_random();
        w.run_for(10_000.0);
        let t = w.open_tab();
        w.run_for(2_000.0);
        dump(&w);
        assert!(w.stats.refreshes >= 6, "{storage:?}: {} refreshes", w.stats.refreshes);
        for tab in [0, 1, 2, t] {
            let id = w.tabs[tab].machine.tokens().and_then(|s| s.id_token.clone());
            assert_eq!(id.as_deref(), Some("id-1"), "{storage:?}: tab {tab}");
        }
    }
}

#[test]
fn oidc_a_sign_in_survives_a_failed_discovery_a_doubled_callback_and_a_replay_in_every_tab() {
    for storage in [StorageMode::Memory, StorageMode::Session, StorageMode::Local] {
        let mut w = world(3, storage, |s| {
            oidc_mode(s);
            s.ttl_s = 5.0;
            s.fetch_every_ms = 200.0;
        });
        w.schedule_random_fetches();
        // Discovery fails once: loginWithRedirect fails, nothing navigates.
        w.provider.fail_discovery = 1;
        w.sign_in_with(0, false);
        w.run_for(500.0);
        assert!(w.live(0) && w.tabs[0].machine.tokens().is_none(), "{storage:?}: the failed sign-in stays put");
        // The next call discovers again and goes to the provider and back.
        w.sign_in_with(0, false);
        w.run_for(4_000.0);
        assert!(!w.live(0), "{storage:?}: the page left for the provider");
        let back = w.tabs.len() - 1;
        assert_eq!(w.provider.exchanges, 1, "{storage:?}");
        assert!(signed_in_everywhere(&w), "{storage:?}: every tab adopts the sign-in");
        // The app handles the same callback again (a component mounted twice): no new exchange.
        let url = w.provider.last_callback.clone().expect("a callback");
        w.handle_callback(back, &url);
        // The URL loaded again in a new page: no login in progress there, refused.
        let replay = w.open_tab();
        w.handle_callback(replay, &url);
        w.run_for(3_000.0);
        dump(&w);
        assert_eq!(w.provider.exchanges, 1, "{storage:?}: one exchange per code");
        assert!(signed_in_everywhere(&w), "{storage:?}");
        // Logout, then a popup sign-in from another tab.
        w.app_logout(1);
        w.run_for(500.0);
        assert!(w.tabs.iter().all(|t| !t.alive || t.machine.tokens().is_none()), "{storage:?}");
        w.sign_in_with(1, true);
        w.run_for(4_000.0);
        assert_eq!(w.provider.exchanges, 2, "{storage:?}");
        assert!(signed_in_everywhere(&w), "{storage:?}: the popup's sign-in reaches every tab");
        assert!(w.stats.refreshes >= 1, "{storage:?}: refreshes go on after the sign-in");
    }
}
