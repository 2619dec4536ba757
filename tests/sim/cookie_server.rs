//! The model cookie-session server (`mode: "cookie"`): a session behind the browser's cookie,
//! read with `GET /session`, extended under its CSRF token with `POST /session/refresh`
//! (a new CSRF token each time, or the same, as `Setup::csrf_rotates` says), ended with
//! `POST /session/logout`; and the API that checks the cookie and the CSRF header.

use std::collections::BTreeMap;

use wasm_session::core::config::Mode;
use wasm_session::core::machine::{Input, Reply, Ticket};
use wasm_session::core::token::{SessionResponse, TokenSet};
use wasm_session::core::Field;

use crate::tab::Request;
use crate::world::{Ev, World, EPOCH};

#[derive(Default)]
pub struct CookieServer {
    /// Each session's current CSRF token and expiry (true time), by family.
    pub sessions: BTreeMap<u64, (String, f64)>,
    /// When each session began (wall clock), for `loginAt`.
    pub login_at: BTreeMap<u64, f64>,
}

impl World {
    pub fn cookie_mode(&self) -> bool {
        self.setup.config.mode() == Mode::Cookie
    }

    /// Is the cookie session that issued this CSRF token (`csrf-<family>-<n>`) alive?
    pub fn cookie_session_live(&self, csrf: &str) -> bool {
        let family = csrf.split('-').nth(1).and_then(|f| f.parse::<u64>().ok());
        // Only the session behind the browser's cookie can be reached at all.
        family.is_some() && family == self.browser.cookie && self.cookie_session_expiry().is_some_and(|e| self.now < e)
    }

    fn cookie_session_expiry(&self) -> Option<f64> {
        self.cookie_server.sessions.get(&self.browser.cookie?).map(|(_, e)| *e)
    }

    /// The session behind the browser's cookie, as `GET /session` answers it.
    pub fn cookie_session(&mut self) -> Option<Reply> {
        let family = self.browser.cookie?;
        let (csrf, expiry) = self.cookie_server.sessions.get(&family).filter(|(_, e)| self.now < *e)?.clone();
        // The server's clock keeps true time; its `Date` header lets the client adjust.
        let server_now = EPOCH + self.now;
        let login_at = self.cookie_server.login_at.get(&family).map_or(Field::Absent, |&l| Field::Valid(l));
        let body =
            SessionResponse { csrf_token: Field::Valid(csrf), expires_at: Field::Valid(EPOCH + expiry), login_at };
        TokenSet::from_session(body, Some("{}".into()), self.wall(), Some(server_now)).ok().map(Reply::Session)
    }

    /// `GET /session` for tab `t`.
    pub fn read_session(&mut self, t: usize) {
        let reply = self.cookie_session().unwrap_or(Reply::Status { status: 401, oauth_error: None });
        let d = self.rng.range(2.0, 30.0);
        self.at(d, Ev::Input(t, Input::SessionRead { reply }));
    }

    /// `POST /session/refresh` under `csrf` extends the session and rotates it.
    pub fn extend(&mut self, t: usize, id: u32, csrf: String) {
        self.stats.token_requests += 1;
        let family =
            self.browser.cookie.filter(|f| self.cookie_server.sessions.get(f).is_some_and(|(_, e)| self.now < *e));
        let reply = match family {
            None => Reply::Status { status: 401, oauth_error: None },
            Some(f) if self.cookie_server.sessions[&f].0 != csrf => Reply::Status { status: 403, oauth_error: None },
            Some(f) => {
                self.stats.refreshes += 1;
                let n = self.serial();
                let csrf = if self.setup.csrf_rotates { format!("csrf-{f}-{n}") } else { csrf.clone() };
                let fresh = (csrf, self.now + self.setup.ttl_s * 1000.0);
                self.cookie_server.sessions.insert(f, fresh);
                self.cookie_session().unwrap_or(Reply::Network)
            }
        };
        self.tabs[t]
            .requests
            .insert(id, Request { refresh_token: csrf, sent_at: self.now, done: false, proof: (None, None) });
        let d = self.rng.range(2.0, 30.0);
        self.at(d, Ev::Input(t, Input::RefreshReply { id, reply }));
    }

    /// `POST /session/logout`: the session ends, the cookie goes.
    pub fn end_cookie_session(&mut self) {
        if let Some(f) = self.browser.cookie.take() {
            self.cookie_server.sessions.remove(&f);
            self.stats.revocations += 1;
        }
    }

    /// A sign-in: ends the session the browser had (no fixation) and starts family `family`.
    pub fn start_cookie_session(&mut self, family: u64) -> TokenSet {
        let expiry = self.now + self.setup.ttl_s * 1000.0;
        if let Some(old) = self.browser.cookie {
            self.cookie_server.sessions.remove(&old);
        }
        self.cookie_server.sessions.insert(family, (format!("csrf-{family}-0"), expiry));
        self.cookie_server.login_at.insert(family, EPOCH + self.now);
        self.browser.cookie = Some(family);
        let Some(Reply::Session(tokens)) = self.cookie_session() else { panic!("a fresh cookie session") };
        tokens
    }

    /// The API answers a request with the cookie and CSRF header `csrf`.
    pub fn api_with_cookie(&mut self, t: usize, ticket: Ticket, csrf: &str, seq: u64) {
        let session =
            self.browser.cookie.and_then(|f| self.cookie_server.sessions.get(&f)).filter(|(_, e)| self.now < *e);
        match session {
            Some((current, _)) if current == csrf => {
                self.stats.api_ok += 1;
                self.tabs[t].calls.remove(&ticket);
            }
            // A stale CSRF token: 403, and the driver asks to re-read the session.
            Some(_) => self.refused(t, ticket, seq, 403, Some("csrf_invalid")),
            None => self.refused(t, ticket, seq, 401, None),
        }
    }
}
