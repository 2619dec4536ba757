//! The refresh: one in flight per tab (every caller awaits the same [`Flight`]), one per
//! namespace across tabs (Web Lock, then re-check whether another tab already refreshed).
//! Browser only.

use alloc::rc::Rc;

use crate::config::StorageMode;
use crate::error::Error;
use crate::events::LogoutReason;
use crate::flight::{Flight, Wait};
use crate::http;
use crate::policy::{self, Backoff, Failure};
use crate::session::{self, Inner, Source};
use crate::tabs::{self, Message};
use crate::timers;
use crate::token::TokenSet;

/// Without Web Locks: how long competing refresh claims get to reach each other.
const CLAIM_SETTLE_MS: f64 = 60.0;

/// Without BroadcastChannel: how long the lock is held after a refresh, so that the stored
/// result reaches the other tabs before one of them takes the lock.
const STORAGE_SETTLE_MS: f64 = 150.0;

/// With the lock in hand, how long to wait for the result of a refresh another tab announced
/// before releasing the lock (its message is normally a few ms behind the lock release).
const PEER_RESULT_GRACE_MS: f64 = 1_000.0;

/// Starts a refresh, or joins the one in flight.
pub fn start(inner: &Rc<Inner>) -> Flight<Result<(), Error>> {
    if let Some(f) = inner.flight.borrow().as_ref() {
        return f.clone();
    }
    let flight = Flight::new();
    *inner.flight.borrow_mut() = Some(flight.clone());
    let (inner, landed) = (inner.clone(), flight.clone());
    crate::flight::spawn(async move {
        let result = run(&inner).await;
        inner.flight.borrow_mut().take();
        landed.complete(result);
        timers::schedule(&inner);
    });
    flight
}

/// Refreshes (or joins the refresh in flight); the future resolves to the outcome.
pub fn refresh(inner: &Rc<Inner>) -> Wait<Result<(), Error>> {
    start(inner).wait()
}

/// Counts a failed attempt (here or in another tab) and sets the next retry time.
pub fn back_off(inner: &Inner) {
    let now = inner.now();
    let mut st = inner.state.borrow_mut();
    st.retry.attempts = st.retry.attempts.saturating_add(1);
    let backoff = Backoff { base_ms: inner.config.retry_base_ms, max_ms: inner.config.retry_max_ms };
    st.retry.not_before = now + backoff.delay(st.retry.attempts, js_sys::Math::random());
}

/// Records a failure that leaves the session alive: backoff, tell peers, `error` event.
fn failed(inner: &Inner, err: Error) -> Result<(), Error> {
    back_off(inner);
    inner.post(Message::RefreshFailed);
    inner.emit_error(&err);
    Err(err)
}

async fn run(inner: &Rc<Inner>) -> Result<(), Error> {
    let (refresh_token, generation, issued_at, attempts) = {
        let st = inner.state.borrow();
        let t = st.tokens.as_ref().ok_or(Error::NotAuthenticated)?;
        (t.refresh_token.clone().ok_or(Error::NotAuthenticated)?, st.generation, t.issued_at, st.retry.attempts)
    };
    if !timers::online() {
        return Err(Error::Network); // the `online` event re-checks
    }
    let has_channel = inner.channel.borrow().is_some();
    let broadcast = inner.channel.borrow().as_ref().is_some_and(|c| !c.via_storage());
    let lock = if has_channel {
        tabs::acquire(&tabs::lock_name(&inner.config.namespace), inner.config.lock_timeout_ms).await
    } else {
        None
    };
    // Without Web Locks, claim the refresh over the channel instead: announce, let the
    // other claims arrive, and leave it to the claimant with the lowest tab id.
    let claim_by_message = lock.is_none() && has_channel;
    if claim_by_message {
        inner.post(Message::Refreshing);
        timers::sleep(CLAIM_SETTLE_MS).await;
    }
    // While we waited another tab may have refreshed (its message arrived) ...
    if inner.generation() != generation || inner.disposed.get() {
        return Ok(());
    }
    // ... or failed just now: then back off with it rather than try again at once ...
    if inner.state.borrow().retry.attempts > attempts {
        return Err(Error::RefreshFailed("another tab's refresh just failed; backing off"));
    }
    // ... or stored its result (local storage is shared) ...
    if inner.store.mode() == StorageMode::Local {
        if let Ok(Some(stored)) = inner.store.load() {
            if stored.issued_at > issued_at {
                session::install(inner, stored, Source::Peer);
                return Ok(());
            }
        }
    }
    // ... or announced that it is refreshing and its result is still on the way.
    let peer = inner.state.borrow().peer_refresh.clone();
    if let Some(peer) = peer.filter(|p| !claim_by_message || p.from < inner.tab_id) {
        // Holding the lock means the announcing tab let go of it: it either posted its
        // result just before (the message is a few ms away) or it was closed mid-refresh
        // (no result will ever come). Without a lock it may still be mid-request.
        let wait = if lock.is_some() {
            PEER_RESULT_GRACE_MS.min(inner.config.lock_timeout_ms)
        } else {
            inner.config.lock_timeout_ms
        };
        timers::complete_after(wait, &peer.done);
        peer.done.wait().await;
        if inner.generation() != generation {
            return Ok(());
        }
        inner.state.borrow_mut().peer_refresh = None;
    }
    if !claim_by_message {
        inner.post(Message::Refreshing);
    }
    let client_id = inner.config.client_id.as_deref().unwrap_or_default();
    let body =
        http::form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", client_id)]);
    let reply = http::post(&inner.endpoints.token_url, &body, None, inner.config.request_timeout_ms).await;
    if inner.generation() != generation {
        return Ok(()); // logged out (or replaced) meanwhile: the answer is moot
    }
    let now = inner.now();
    match reply {
        Ok(reply) if reply.ok() => {
            match TokenSet::from_response(&|k| reply.field(k), now, reply.date, Some(&refresh_token)) {
                Ok(tokens) => {
                    session::install(inner, tokens, Source::Refreshed);
                    if lock.is_some() && !broadcast {
                        // Other tabs learn of the new tokens through storage alone, which
                        // reaches them asynchronously: hold the lock until it has.
                        timers::sleep(STORAGE_SETTLE_MS).await;
                    }
                    Ok(())
                }
                Err(_) => {
                    failed(inner, Error::RefreshFailed("the token endpoint's reply is not a valid token response"))
                }
            }
        }
        Ok(reply) => match policy::classify(reply.status, reply.oauth_error().as_deref()) {
            Failure::Rejected => {
                session::end(inner, LogoutReason::RefreshRejected, true);
                Err(Error::RefreshRejected)
            }
            Failure::Transient => {
                failed(inner, Error::RefreshFailed("the token endpoint answered with an error status"))
            }
        },
        Err(Error::Timeout) => failed(inner, Error::RefreshFailed("the token endpoint did not answer in time")),
        Err(_) => failed(inner, Error::RefreshFailed("the token endpoint could not be reached")),
    }
}
