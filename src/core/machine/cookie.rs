//! Cookie mode's session reads: `GET {sessionUrl}` tells whether the server still has the
//! session, and hands out a fresh CSRF token (after a 403 naming a CSRF failure).
//!
//! In cookie mode the machine's token set holds the CSRF token where token mode holds the
//! access token; the session itself is the HttpOnly cookie, never seen here.

use super::io::{Answer, Effect, Out, Reply, Ticket};
use super::session::Source;
use super::{next_seq, Machine, Phase};
use crate::core::error::Error;
use crate::core::events::Event;
use crate::core::protocol::Stamp;
use crate::core::token::TokenSet;

/// A read under way: the state counter and clock when it was sent.
#[derive(Clone, Copy, Debug)]
struct Read {
    seq: u64,
    at: f64,
}

/// What a landed read says.
#[derive(Debug)]
pub(super) enum News {
    /// Sent before a sign-in, a logout or another tab's news: it describes a session that is
    /// no longer the question (a 401 from before a sign-in must not end it).
    Stale,
    /// The server's session: its CSRF token and expiry. `seq` and `at` are the counter and
    /// clock when the read was sent, so that news from after it still wins.
    Session { session: TokenSet, seq: u64, at: f64 },
    /// The server has no session (401).
    Gone,
    /// Nothing usable (network, timeout, another status).
    Unreadable,
}

/// The session read under way, and the callers waiting for its CSRF token.
#[derive(Debug, Default)]
pub(super) struct CookieSession {
    reading: Option<Read>,
    waiting: Vec<Ticket>,
}

impl CookieSession {
    /// Reads the session unless a read is under way.
    pub fn read(&mut self, seq: u64, now: f64, out: &mut Out) {
        if self.reading.is_none() {
            self.reading = Some(Read { seq, at: now });
            out.push(Effect::ReadSession);
        }
    }

    /// A read is under way.
    pub fn reading(&self) -> bool {
        self.reading.is_some()
    }

    /// `ticket` waits for a fresh CSRF token (its request got a CSRF 403).
    pub fn wait(&mut self, ticket: Ticket) {
        self.waiting.push(ticket);
    }

    /// The answer to the read under way, given the counter `seq` now: `None` when there was
    /// no read or the read was sent again; else the news and the callers to answer.
    pub fn land(&mut self, now: f64, seq: u64, reply: Reply, out: &mut Out) -> Option<(News, Vec<Ticket>)> {
        let read = self.reading.take()?;
        let stale = read.seq != seq;
        if !stale && matches!(&reply, Reply::Session(t) if t.expires_at <= now) {
            // An answer held up past its own expiry (a frozen tab): ask again.
            self.read(seq, now, out);
            return None;
        }
        let news = match reply {
            _ if stale => News::Stale,
            Reply::Session(session) => News::Session { session, seq: read.seq, at: read.at },
            Reply::Status { status: 401, .. } => News::Gone,
            Reply::Status { .. } | Reply::Tokens { .. } | Reply::Garbled | Reply::Network | Reply::Timeout => {
                News::Unreadable
            }
        };
        Some((news, std::mem::take(&mut self.waiting)))
    }

    /// Answers the callers of a read: a CSRF token other than the one they were refused
    /// with (`before`) is worth a retry; anything else is not.
    pub fn answer(waiting: Vec<Ticket>, before: Option<&str>, after: Option<(&str, u64)>, out: &mut Out) {
        for ticket in waiting {
            let answer = match after {
                Some((csrf, seq)) if Some(csrf) != before => Answer::Token { token: csrf.to_string(), seq },
                _ => Answer::NoToken,
            };
            out.answer(ticket, answer);
        }
    }
}

impl Machine {
    /// What the session endpoint said: the session (a new CSRF token, a new expiry), no
    /// session (401), or nothing usable.
    pub(super) fn session_read(&mut self, now: f64, reply: Reply) {
        let Some((news, waiting)) = self.cookie.land(now, self.seq, reply, &mut self.out) else { return };
        let before = match news {
            News::Stale => None,
            News::Session { .. } | News::Gone | News::Unreadable => self.tokens().map(|t| t.access_token.clone()),
        };
        match news {
            News::Stale => {}
            News::Session { session: mut tokens, seq: sent_seq, at: sent_at } => {
                tokens.login_at = self.tokens().and_then(|t| t.login_at).or(tokens.login_at);
                if self.phase == Phase::Restoring {
                    let stamp = Stamp { seq: 0, origin: String::new() };
                    self.install(now, tokens, stamp, Source::Restored, false);
                } else if let Some(s) = self.session.as_mut().filter(|s| s.tokens.access_token == tokens.access_token) {
                    // The same session, perhaps extended by another tab whose news has not
                    // come yet: take the later expiry; nothing to tell anyone.
                    if tokens.expires_at > s.tokens.expires_at {
                        s.tokens.expires_at = tokens.expires_at;
                        s.tokens.issued_at = tokens.issued_at;
                        self.expiry_announced = false;
                    }
                } else {
                    // A fresh CSRF token (after a 403): the other tabs take it too. Stamped
                    // as of the read, so that news from after it still wins.
                    let stamp = Stamp { seq: next_seq(sent_seq, sent_at), origin: self.tab.clone() };
                    self.install(now, tokens, stamp, Source::Refreshed, false);
                }
            }
            News::Gone => {
                if self.session.is_some() {
                    self.server_ended(now);
                }
            }
            News::Unreadable => {
                if self.phase == Phase::Restoring {
                    self.out.emit(Event::Error(Error::RefreshFailed("the session endpoint could not be read")));
                }
            }
        }
        self.become_ready(now);
        let after = self.session.as_ref().map(|s| (s.tokens.access_token.as_str(), s.stamp.seq));
        CookieSession::answer(waiting, before.as_deref(), after, &mut self.out);
    }
}
