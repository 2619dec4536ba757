//! The one way into a session from the browser side: an input sink. Adapters (HTTP, tabs,
//! timers, storage, sign-in) get a [`Sink`] and hand what happened to the session's machine
//! through it; none of them knows the driver, which implements [`Feed`].

use std::rc::{Rc, Weak};

use js_sys::Promise;
use wasm_bindgen_futures::JsFuture;

use crate::core::error::Error;
use crate::core::machine::{Answer, Input, Ticket};

/// What a session offers its adapters (implemented by the driver).
pub trait Feed {
    /// Hands `input` to the machine and carries out what it says.
    fn input(&self, input: Input);
    /// A new ticket for a caller, and a promise that resolves once the machine answered it.
    fn ticket(&self) -> (Ticket, Promise);
    /// Takes the machine's answer to `ticket`, once it came.
    fn answer(&self, ticket: Ticket) -> Option<Answer>;
    /// DPoP: the nonce the machine keeps for `origin` (a read, no input).
    fn nonce(&self, origin: &str) -> Option<String>;
}

/// Feeds a session without keeping it alive: listeners, timers and messages of a dropped
/// session go nowhere.
#[derive(Clone)]
pub struct Sink(Weak<dyn Feed>);

impl Sink {
    /// A sink into `feed`.
    pub fn new(feed: Weak<dyn Feed>) -> Sink {
        Sink(feed)
    }

    /// Hands `input` to the session, if it still exists.
    pub fn send(&self, input: Input) {
        if let Some(feed) = self.0.upgrade() {
            feed.input(input);
        }
    }

    /// The session, kept alive for a request under way (see [`Kept`]); `None` once dropped.
    pub fn keep(&self) -> Option<Kept> {
        self.0.upgrade().map(Kept)
    }
}

/// Keeps the session alive while held: by a request under way, whose answer must reach
/// the machine (a refresh may have used up a rotating refresh token, and its lock is the
/// machine's to release), and by a caller waiting for an answer.
#[derive(Clone)]
pub struct Kept(Rc<dyn Feed>);

impl Kept {
    /// Keeps `feed`.
    pub fn new(feed: Rc<dyn Feed>) -> Kept {
        Kept(feed)
    }

    /// Hands `input` to the session.
    pub fn send(&self, input: Input) {
        self.0.input(input);
    }

    /// DPoP: the nonce the machine keeps for `origin`.
    pub fn nonce(&self, origin: &str) -> Option<String> {
        self.0.nonce(origin)
    }

    /// Sends the input `make(ticket)` and waits for the machine's answer to that ticket.
    pub async fn ask(&self, make: impl FnOnce(Ticket) -> Input) -> Answer {
        let (ticket, answered) = self.0.ticket();
        self.0.input(make(ticket));
        if let Some(answer) = self.0.answer(ticket) {
            return answer;
        }
        let _ = JsFuture::from(answered).await;
        self.0.answer(ticket).unwrap_or(Answer::Failed(Error::Disposed))
    }
}
