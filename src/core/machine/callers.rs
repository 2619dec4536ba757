//! The callers waiting on the machine: requests that want a token, `refresh()` calls and
//! retries after a 401, answered when the tokens change or a refresh ends.

use super::io::{Answer, Out, Ticket};
use super::refresh::Cause;
use super::{Machine, Phase};
use crate::core::config::Mode;
use crate::core::error::Error;
use crate::core::policy;
use crate::core::token::TokenSet;

/// What a caller waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Want {
    /// A token for a request.
    Token,
    /// `refresh()`.
    Refresh,
    /// A request that got a 401 with the token of counter `seq`.
    Retry401 { seq: u64 },
}

/// Callers waiting for a refresh, and callers that came before start-up restore was done.
#[derive(Debug, Default)]
pub(super) struct Callers {
    waiting: Vec<(Ticket, Want)>,
    early: Vec<(Ticket, Want)>,
}

impl Callers {
    /// Waits for the refresh under way (or about to start).
    pub fn wait(&mut self, ticket: Ticket, want: Want) {
        self.waiting.push((ticket, want));
    }

    /// Waits for start-up restore.
    pub fn wait_for_ready(&mut self, ticket: Ticket, want: Want) {
        self.early.push((ticket, want));
    }

    /// The callers that waited for start-up restore, to be asked again.
    pub fn take_early(&mut self) -> Vec<(Ticket, Want)> {
        std::mem::take(&mut self.early)
    }

    /// Answers `ticket` with `e` if it still waits (a refresh that could not start).
    pub fn fail(&mut self, ticket: Ticket, e: Error, out: &mut Out) {
        if let Some(i) = self.waiting.iter().position(|(t, _)| *t == ticket) {
            let (_, want) = self.waiting.remove(i);
            let answer = match want {
                Want::Retry401 { .. } => Answer::NoToken,
                Want::Token | Want::Refresh => Answer::Failed(e),
            };
            out.answer(ticket, answer);
        }
    }

    /// Answers every waiting caller after the tokens changed or a refresh ended (`failure`
    /// says how, if it did not succeed); `current` is the token set now held and its counter.
    pub fn settle(&mut self, now: f64, current: Option<(&TokenSet, u64)>, failure: Option<&Error>, out: &mut Out) {
        for (ticket, want) in std::mem::take(&mut self.waiting) {
            let token = current
                .filter(|(t, _)| now < policy::usable_until(t))
                .map(|(t, seq)| Answer::Token { token: t.access_token.clone(), seq });
            let answer = match (want, failure) {
                (Want::Refresh, Some(e)) => Answer::Failed(e.clone()),
                (Want::Refresh, None) if current.is_some() => Answer::Done,
                (Want::Refresh, None) => Answer::Failed(Error::NotAuthenticated),
                // The 401 stays a 401.
                (Want::Retry401 { .. }, Some(_)) => Answer::NoToken,
                (Want::Token | Want::Retry401 { .. }, None) => token.unwrap_or(Answer::NoToken),
                (Want::Token, Some(e)) => match token {
                    Some(token) => token,
                    // Signed out: the request goes without a token.
                    None if current.is_none() && *e != Error::RefreshRejected => Answer::NoToken,
                    None => Answer::Failed(e.clone()),
                },
            };
            out.answer(ticket, answer);
        }
    }

    /// `dispose()`: every caller gets `disposed`.
    pub fn dispose(&mut self, out: &mut Out) {
        let waiting = std::mem::take(&mut self.waiting).into_iter().chain(std::mem::take(&mut self.early));
        for (ticket, _) in waiting {
            out.answer(ticket, Answer::Failed(Error::Disposed));
        }
    }
}

impl Machine {
    pub(super) fn want(&mut self, now: f64, ticket: Ticket, want: Want) {
        if self.phase != Phase::Ready {
            self.callers.wait_for_ready(ticket, want);
            return;
        }
        let Some(s) = self.session.as_ref() else {
            let answer = if want == Want::Refresh { Answer::Failed(Error::NotAuthenticated) } else { Answer::NoToken };
            return self.out.answer(ticket, answer);
        };
        let t = &s.tokens;
        let renewable = self.renewable(t);
        // Without a refresh token the token is used while it lasts: nothing can replace it.
        let usable = now < policy::usable_until(t) || (!renewable && now < t.expires_at);
        let due = renewable && now >= self.refresh.due(t);
        let token = Answer::Token { token: t.access_token.clone(), seq: s.stamp.seq };
        let (seq, after_401, refreshed_on_401) = (s.stamp.seq, s.after_401, s.refreshed_on_401);
        let idle = self.refresh.idle();
        match want {
            Want::Token if usable => {
                self.out.answer(ticket, token);
                if due {
                    let _ = self.start_refresh(now, Cause::Scheduled);
                }
            }
            Want::Token if !renewable => self.out.answer(ticket, Answer::NoToken),
            Want::Token if self.refresh.backing_off(now) && idle && self.refresh.peer_until(now).is_none() => {
                // Expired, and the token endpoint is failing: don't hammer it.
                let e = Error::RefreshFailed("the token endpoint is failing; backing off");
                self.out.answer(ticket, Answer::Failed(e));
            }
            Want::Token | Want::Refresh => {
                self.callers.wait(ticket, want);
                let cause = if want == Want::Refresh { Cause::Explicit } else { Cause::Needed };
                if let Err(e) = self.start_refresh(now, cause) {
                    self.callers.fail(ticket, e, &mut self.out);
                }
            }
            // Newer tokens arrived meanwhile: retry with them.
            Want::Retry401 { seq: used } if used != seq => self.want(now, ticket, Want::Token),
            // Cookie mode: the server no longer knows the session. It ends in every tab.
            Want::Retry401 { .. } if self.cfg.mode() == Mode::Cookie => {
                self.server_ended(now);
                self.out.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } if after_401 || !renewable || (refreshed_on_401 && idle) => {
                // Refreshing cannot fix this 401 (or already did not): the app gets it.
                self.out.answer(ticket, Answer::NoToken)
            }
            Want::Retry401 { .. } => {
                if let Some(s) = self.session.as_mut() {
                    s.refreshed_on_401 = true;
                }
                self.callers.wait(ticket, want);
                if let Err(e) = self.start_refresh(now, Cause::Unauthorized) {
                    self.callers.fail(ticket, e, &mut self.out);
                }
            }
        }
    }

    /// Answers every waiting caller after the tokens changed or a refresh ended.
    pub(super) fn settle_callers(&mut self, now: f64, failure: Option<&Error>) {
        let current = self.session.as_ref().map(|s| (&s.tokens, s.stamp.seq));
        self.callers.settle(now, current, failure, &mut self.out);
    }
}
