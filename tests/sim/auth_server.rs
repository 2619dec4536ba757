//! The model auth server (OAuth 2.0 refresh grant, RFC 6749 §6; revocation, RFC 7009):
//! rotating refresh tokens, reuse detection that revokes the whole family, revocation, and
//! faults (5xx, a proxy's HTML 403, hangs, dropped connections processed or not, slow
//! success, success after the client's timeout). Also the API that accepts its access tokens.

use std::collections::{BTreeMap, BTreeSet};

use wasm_session::core::machine::{Input, Reply, Ticket};
use wasm_session::core::token::{Seconds, TokenResponse};
use wasm_session::core::Field;

use crate::invariants::Fact;
use crate::tab::Request;
use crate::world::{Ev, World};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    None,
    Status503,
    Html403,
    Hang,
    Drop { processed: bool },
    Slow,
    Late,
}

/// A refresh token the server issued.
#[derive(Debug, Default)]
pub struct Rt {
    pub family: u64,
    pub used: bool,
    /// When a rotation of this token was answered and the answer reached its tab's machine.
    pub delivered_at: Option<f64>,
    /// When the server rotated it.
    pub rotated_at: f64,
}

#[derive(Default)]
pub struct AuthServer {
    pub rts: BTreeMap<String, Rt>,
    /// Access tokens: their family and expiry (true time).
    pub ats: BTreeMap<String, (u64, f64)>,
    pub revoked: BTreeSet<u64>,
    /// Per family: when its tokens were last issued (true time), and whether an explicit
    /// refresh or a 401 asked for a new one since.
    pub issued: BTreeMap<u64, (f64, bool)>,
    /// The API refuses every token (a 401 that refreshing cannot fix).
    pub always_401: bool,
    /// Faults for the next refresh requests, in order, before any random one.
    pub forced: Vec<Fault>,
    /// Extra delay before a request reaches the server, and before its answer comes back.
    pub slow_ms: f64,
    pub slow_answer_ms: f64,
}

/// A token response as the server sends it.
pub fn response(at: &str, rt: Option<&str>, ttl_s: f64) -> TokenResponse {
    TokenResponse {
        access_token: Field::Valid(at.into()),
        token_type: Field::Valid("Bearer".into()),
        expires_in: Field::Valid(Seconds(Some(ttl_s))),
        refresh_token: rt.map_or(Field::Absent, |r| Field::Valid(r.into())),
        ..TokenResponse::default()
    }
}

impl World {
    /// Tab `t` sends refresh request `id`: through the network (maybe offline) to the server,
    /// meeting a forced or random fault on the way.
    pub fn send_refresh(&mut self, t: usize, id: u32, refresh_token: String) {
        self.stats.token_requests += 1;
        // Which other requests with this refresh token are in flight, from sending until their
        // answer or their timeout, whichever comes first. A frozen tab is, to the others, as
        // good as closed until it thaws (nobody can hear from it); the reuse invariant still
        // holds for its requests.
        let timeout = self.setup.config.request_timeout_ms;
        let mut overlapping = Vec::new();
        for (u, tab) in self.tabs.iter().enumerate() {
            if u == t || !tab.alive || tab.frozen {
                continue;
            }
            for (&rid, r) in &tab.requests {
                if r.refresh_token == refresh_token && !r.done && self.now < r.sent_at + timeout {
                    overlapping.push((u, rid));
                }
            }
        }
        self.facts.push(Fact::RefreshSent { tab: t, overlapping });
        let proof = self.dpop_proof(t);
        self.tabs[t]
            .requests
            .insert(id, Request { refresh_token: refresh_token.clone(), sent_at: self.now, done: false, proof });
        self.at(timeout, Ev::ClientTimeout(t, id));
        if !self.browser.online {
            let d = self.rng.range(0.0, 2.0);
            self.at(d, Ev::Input(t, Input::RefreshReply { id, reply: Reply::Network }));
            return;
        }
        let fault = if !self.server.forced.is_empty() {
            self.server.forced.remove(0)
        } else if self.rng.chance(self.setup.fault_rate) {
            match self.rng.below(6) {
                0 => Fault::Status503,
                1 => Fault::Html403,
                2 => Fault::Hang,
                3 => Fault::Drop { processed: self.rng.chance(0.5) },
                4 => Fault::Slow,
                _ => Fault::Late,
            }
        } else {
            Fault::None
        };
        let up = match fault {
            Fault::Slow => timeout * self.rng.range(0.3, 0.8),
            _ => self.server.slow_ms + self.rng.range(1.0, 30.0),
        };
        self.at(up, Ev::Server(t, id, refresh_token, fault));
    }

    /// The request reaches the server, which answers (or not) as the fault says.
    pub fn server_refresh(&mut self, t: usize, id: u32, rt: String, fault: Fault) {
        let reply = match fault {
            Fault::Status503 => Some(Reply::Status { status: 503, oauth_error: None }),
            Fault::Html403 => Some(Reply::Status { status: 403, oauth_error: None }),
            Fault::Hang => None,
            Fault::Drop { processed } => {
                if processed {
                    let _ = self.rotate(t, id, &rt);
                }
                Some(Reply::Network)
            }
            Fault::Late => {
                let _ = self.rotate(t, id, &rt);
                None
            }
            Fault::None | Fault::Slow => Some(self.dpop_check(t, &rt).unwrap_or_else(|| self.rotate(t, id, &rt))),
        };
        if let Some(reply) = reply {
            let d = self.server.slow_answer_ms + self.rng.range(1.0, 20.0);
            // DPoP: the answer's `DPoP-Nonce`, reported by the driver before the reply.
            if let Some(nonce) =
                self.dpop_answer_nonce().filter(|_| matches!(reply, Reply::Tokens { .. } | Reply::Status { .. }))
            {
                self.at(d, Ev::Input(t, Input::Nonce { origin: crate::dpop::AS_ORIGIN.into(), nonce }));
            }
            self.at(d, Ev::Input(t, Input::RefreshReply { id, reply }));
        }
    }

    /// The refresh grant: rotation, reuse detection, revoked families.
    fn rotate(&mut self, t: usize, id: u32, rt: &str) -> Reply {
        let rejected = Reply::Status { status: 400, oauth_error: Some("invalid_grant".into()) };
        let Some(state) = self.server.rts.get(rt) else { return rejected };
        let family = state.family;
        if self.server.revoked.contains(&family) {
            return rejected;
        }
        if state.used {
            let sent_at = self.tabs[t].requests.get(&id).map_or(f64::INFINITY, |r| r.sent_at);
            let died_mid_request = !self.tabs[t].alive && sent_at < state.rotated_at;
            let reuse = Fact::RefreshTokenReused {
                token: rt.into(),
                sent_at,
                delivered_at: state.delivered_at,
                died_mid_request,
            };
            self.facts.push(reuse);
            self.stats.excused_reuse += 1;
            self.log(format!("server: reuse of {rt} (answer lost); family {family} revoked"));
            self.server.revoked.insert(family);
            return rejected;
        }
        let (last, asked) = self.server.issued.get(&family).copied().unwrap_or((0.0, true));
        self.facts.push(Fact::Rotated { family, since_last_ms: self.now - last, asked });
        if let Some(s) = self.server.rts.get_mut(rt) {
            s.used = true;
            s.rotated_at = self.now;
        }
        self.stats.refreshes += 1;
        let (at, new_rt) = self.issue(family);
        Reply::Tokens { response: response(&at, Some(&new_rt), self.setup.ttl_s), jwt: None, date: None }
    }

    /// New tokens of `family`.
    pub fn issue(&mut self, family: u64) -> (String, String) {
        let n = self.serial();
        let (at, rt) = (format!("at-{family}-{n}"), format!("rt-{family}-{n}"));
        self.server.rts.insert(rt.clone(), Rt { family, ..Rt::default() });
        self.server.ats.insert(at.clone(), (family, self.now + self.setup.ttl_s * 1000.0));
        self.server.issued.insert(family, (self.now, false));
        (at, rt)
    }

    /// RFC 7009 (cookie mode: `POST /session/logout`).
    pub fn revoke(&mut self, token: &str) {
        if self.cookie_mode() {
            return self.end_cookie_session();
        }
        let family = self.server.rts.get(token).map(|r| r.family).or(self.server.ats.get(token).map(|a| a.0));
        if let Some(f) = family {
            self.server.revoked.insert(f);
            self.stats.revocations += 1;
        }
    }

    /// A token's family, as the server knows it.
    pub fn family_of_token(&self, at: &str) -> Option<u64> {
        self.server.ats.get(at).map(|a| a.0)
    }

    /// The API answers a request carrying access token `token` (of set `seq`).
    pub fn api_with_token(&mut self, t: usize, ticket: Ticket, token: &str, seq: u64) {
        let valid = self
            .server
            .ats
            .get(token)
            .is_some_and(|(family, expiry)| self.now < *expiry && !self.server.revoked.contains(family));
        if valid && !self.server.always_401 {
            self.stats.api_ok += 1;
            self.tabs[t].calls.remove(&ticket);
            return;
        }
        if let Some((family, _)) = self.server.ats.get(token) {
            if let Some(i) = self.server.issued.get_mut(family) {
                i.1 = true;
            }
        }
        self.refused(t, ticket, seq, 401, None);
    }
}
