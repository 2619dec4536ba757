//! The token set this tab holds: how a set is installed (signed in, renewed, adopted from
//! another tab, restored), stored and shared, and how the session ends.

use super::io::{Answer, Credential, Effect, Ticket, Transport};
use super::refresh::Current;
use super::{next_seq, Machine};
use crate::core::config::{Mode, StorageMode};
use crate::core::error::Error;
use crate::core::events::{Event, LogoutReason};
use crate::core::protocol::{Message, Stamp, Why};
use crate::core::store::{Record, STORE_VERSION};
use crate::core::token::TokenSet;

/// The token set this tab holds.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Session {
    pub tokens: TokenSet,
    pub stamp: Stamp,
    /// The set came from a refresh forced by a 401: a 401 on it is final.
    pub after_401: bool,
    /// A 401 on this set already forced a refresh.
    pub refreshed_on_401: bool,
}

/// How a token set came to be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    SignIn,
    Refreshed,
    /// Another tab's sign-in or refresh (its message, or its write to shared storage).
    Peer,
    /// Another tab's copy of its session, in answer to this tab's hello: news only to a tab
    /// that does not hold that session yet.
    Copy,
    Restored,
}

impl Machine {
    /// Token mode: the access token held, expired or not (for its claims).
    pub fn held_access_token(&self) -> Option<&str> {
        self.tokens().filter(|_| self.cfg.mode() == Mode::Token).map(|t| t.access_token.as_str())
    }

    /// Token mode: the access token if it has not expired at `now`. Nothing is refreshed.
    pub fn access_token(&self, now: f64) -> Option<&str> {
        self.held_access_token().filter(|_| self.tokens().is_some_and(|t| t.expires_at > now))
    }

    /// Cookie mode: the session's CSRF token (kept where token mode keeps the access token).
    pub fn csrf_token(&self) -> Option<&str> {
        self.tokens().filter(|_| self.cfg.mode() == Mode::Cookie).map(|t| t.access_token.as_str())
    }

    pub(super) fn next_stamp(&self, now: f64) -> Stamp {
        Stamp { seq: next_seq(self.seq, now), origin: self.tab.clone() }
    }

    /// Is a token set stamped `stamp` newer than what this tab has (tokens or a logout)?
    pub(super) fn accepts(&self, stamp: &Stamp) -> bool {
        stamp.seq > self.seq || (stamp.seq == self.seq && self.session.as_ref().is_some_and(|s| *stamp > s.stamp))
    }

    pub(super) fn install(&mut self, now: f64, mut tokens: TokenSet, stamp: Stamp, source: Source, after_401: bool) {
        // The session's start stays the one of its sign-in, across refreshes.
        let previous_login = self.tokens().and_then(|t| t.login_at);
        match source {
            Source::SignIn => {
                tokens.login_at.get_or_insert(now);
                self.activity(now, 0.0, true);
            }
            Source::Refreshed => tokens.login_at = tokens.login_at.or(previous_login),
            Source::Peer | Source::Copy | Source::Restored => {}
        }
        self.refresh.renewed(matches!(source, Source::SignIn | Source::Peer | Source::Copy), &mut self.out);
        let was_signed_in = self.session.is_some();
        // Another tab's view of the session held already (a new tab's own read of the cookie
        // session and the peers' answer crossing) never shortens it; a copy of it is no news
        // to the app even with a later end (the tabs computed it from the server's answers at
        // different moments, in whole seconds).
        let held = self.tokens().filter(|t| t.access_token == tokens.access_token).map(|t| t.expires_at);
        if let (Some(held), Source::Peer | Source::Copy) = (held, source) {
            tokens.expires_at = tokens.expires_at.max(held);
        }
        let news = match source {
            Source::Copy => held.is_none(),
            Source::SignIn | Source::Refreshed | Source::Peer | Source::Restored => held != Some(tokens.expires_at),
        };
        let expires_at = tokens.expires_at;
        self.seq = stamp.seq;
        self.session = Some(Session { tokens, stamp, after_401, refreshed_on_401: false });
        self.expiry_announced = false;
        // Tokens from another tab in shared storage are already stored, perhaps already
        // replaced by newer ones: writing them back could resurrect a spent refresh token.
        let save = match source {
            Source::SignIn | Source::Refreshed => true,
            Source::Peer | Source::Copy => self.storage != StorageMode::Local,
            Source::Restored => false,
        };
        if save && self.storage != StorageMode::Memory {
            if let Some(record) = self.record() {
                self.out.push(Effect::Save(record));
            }
        }
        match source {
            Source::SignIn => self.share(Why::Login),
            Source::Refreshed => self.share(Why::Refresh),
            Source::Peer | Source::Copy | Source::Restored => {}
        }
        self.settle_callers(now, None);
        if source != Source::Restored && news {
            self.out.emit(if was_signed_in { Event::Refresh { expires_at } } else { Event::Login { expires_at } });
        }
        self.become_ready(now);
    }

    pub(super) fn record(&self) -> Option<Record> {
        let s = self.session.as_ref()?;
        Some(Record {
            v: STORE_VERSION,
            ns: self.cfg.namespace.clone(),
            stamp: s.stamp.clone(),
            tokens: s.tokens.clone(),
            after_401: s.after_401,
        })
    }

    /// Sends the current tokens to the other tabs (over BroadcastChannel only: tokens never
    /// go through storage events).
    pub(super) fn share(&mut self, why: Why) {
        if self.transport != Transport::Broadcast {
            return;
        }
        if let Some(s) = &self.session {
            let msg = Message::Tokens { stamp: s.stamp.clone(), tokens: s.tokens.clone(), why, after_401: s.after_401 };
            self.out.post(msg);
        }
    }

    /// Ends the session here and tells the other tabs; revokes what can be revoked (the
    /// refresh token, or the server's session); answers `ticket` once that was tried.
    pub(super) fn end_here(&mut self, now: f64, reason: LogoutReason, ticket: Option<Ticket>) {
        let ended = self.end(now, reason, None);
        let credential = ended.map(|s| match (self.cfg.mode(), s.tokens.refresh_token) {
            (Mode::Cookie, _) => Credential::Csrf(s.tokens.access_token),
            (Mode::Token, Some(rt)) => Credential::RefreshToken(rt),
            (Mode::Token, None) => Credential::AccessToken(s.tokens.access_token),
        });
        let credential = credential.filter(|_| self.cfg.revokes());
        self.dpop.ended_here(credential.is_some(), &mut self.out);
        match credential {
            Some(credential) => self.out.push(Effect::Revoke { credential, ticket }),
            None => {
                if let Some(t) = ticket {
                    self.out.answer(t, Answer::Done);
                }
            }
        }
    }

    /// Ends the session in this tab: forgets the tokens, clears storage, abandons a refresh
    /// under way, answers callers, emits `logout`. `from_peer` is the counter of another
    /// tab's logout; without it the logout starts here and goes to the other tabs.
    pub(super) fn end(&mut self, now: f64, reason: LogoutReason, from_peer: Option<u64>) -> Option<Session> {
        let ended = self.session.take();
        self.seq = from_peer.unwrap_or(next_seq(self.seq, now)).max(self.seq);
        self.expiry_announced = false;
        self.refresh.ended(&mut self.out);
        // Shared storage is cleared by the tab where the logout started: another tab may
        // have stored a newer login by the time the message arrives here.
        if from_peer.is_none() || self.storage != StorageMode::Local {
            self.out.push(Effect::Clear);
        }
        if from_peer.is_none() {
            self.out.post(Message::Logout { seq: self.seq, reason });
        } else {
            // Another tab ended it: that tab deletes the stored key after its revocation.
            self.dpop.ended(false, &mut self.out);
        }
        let failure =
            if reason == LogoutReason::RefreshRejected { Error::RefreshRejected } else { Error::NotAuthenticated };
        self.settle_callers(now, Some(&failure));
        if ended.is_some() {
            self.out.emit(Event::Logout { reason });
        }
        ended
    }

    /// Cookie mode: the server no longer has the session this tab holds. It ends here and in
    /// the tabs holding the same one (the logout carries that session's counter), not in a
    /// tab whose sign-in crossed the 401 on its way.
    pub(super) fn server_ended(&mut self, now: f64) {
        let seq = self.session.as_ref().map_or(self.seq, |s| s.stamp.seq);
        if self.end(now, LogoutReason::Expired, Some(seq)).is_some() {
            self.out.post(Message::Logout { seq, reason: LogoutReason::Expired });
        }
    }
}

/// What the refresh protocol sees of `session`: the counter, and what a refresh sends (the
/// refresh token, or in cookie mode the CSRF token).
pub(super) fn current(session: &Option<Session>, seq: u64, mode: Mode) -> Current<'_> {
    let t = session.as_ref().map(|s| &s.tokens);
    let credential = t.and_then(|t| match mode {
        Mode::Token => t.refresh_token.as_deref(),
        Mode::Cookie => Some(t.refresh_token.as_deref().unwrap_or(&t.access_token)),
    });
    Current { seq, credential, signed_in: t.is_some() }
}
