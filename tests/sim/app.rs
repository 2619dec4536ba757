//! The app and its user: callers of `session.fetch`, `refresh()`, `logout()` and sign-in,
//! each waiting on a ticket until the machine answers it; the user's activity; and the random
//! schedule of all of these.

use wasm_session::core::machine::{Answer, Input, Ticket};
use wasm_session::core::policy::{self, Refusal};
use wasm_session::core::token::{TokenResponse, TokenSet};
use wasm_session::core::Field;

use crate::auth_server::response;
use crate::invariants::Fact;
use crate::world::{Act, Ev, World};

/// A caller waiting for an answer, and since when.
#[derive(Clone, Debug)]
pub enum Call {
    Fetch {
        since: f64,
    },
    /// The request, sent with a token, waiting for the API (a 401 may come back); `retried`:
    /// this is its one retry, whose answer goes to the app whatever it is.
    Retry {
        since: f64,
        retried: bool,
    },
    /// The API refused the token of set `refused` (401, or cookie mode's CSRF 403): waiting
    /// for the machine to offer another.
    Refused {
        since: f64,
        refused: u64,
    },
    Refresh {
        since: f64,
    },
    Logout {
        since: f64,
    },
    SignIn,
    /// `loginWithRedirect`.
    Authorize {
        since: f64,
    },
    /// `loginWithPopup`, with the app state it passed.
    Popup {
        since: f64,
        app_state: Option<String>,
    },
    /// `handleRedirectCallback`, with the app state of the login this page kept (if any).
    Callback {
        since: f64,
        app_state: Option<String>,
    },
}

impl World {
    /// A new caller of tab `t`.
    pub fn ticket(&mut self, t: usize, call: Call) -> Ticket {
        let tab = &mut self.tabs[t];
        tab.next_ticket += 1;
        tab.calls.insert(tab.next_ticket, call);
        tab.next_ticket
    }

    /// A caller of tab `t` hands its input to the machine: `input` gets the caller's ticket.
    /// Scenarios drive a tab this way (`w.call(0, Call::Logout { since: w.now }, |ticket|
    /// Input::Logout { ticket })`).
    pub fn call(&mut self, t: usize, call: Call, input: impl FnOnce(Ticket) -> Input) -> Ticket {
        let ticket = self.ticket(t, call);
        self.deliver(t, input(ticket));
        ticket
    }

    /// The machine answers caller `ticket`.
    pub fn answered(&mut self, t: usize, ticket: Ticket, answer: Answer) {
        let Some(call) = self.tabs[t].calls.remove(&ticket) else {
            return self.facts.push(Fact::UnknownTicket { tab: t, ticket });
        };
        match (call, answer) {
            (Call::Fetch { .. }, Answer::Token { token, seq }) => self.send_to_api(t, token, seq, false),
            // The driver retries once, and only with another set's token (`session.fetch`'s
            // rule); in cookie mode with whatever fresh CSRF token the machine offers.
            (Call::Refused { refused, .. }, Answer::Token { token, seq })
                if self.cookie_mode() || policy::retry_after_401(refused, seq) =>
            {
                self.send_to_api(t, token, seq, true)
            }
            (Call::Refused { .. }, Answer::Token { .. } | Answer::NoToken) => self.stats.api_401_to_app += 1,
            (Call::Fetch { .. }, Answer::NoToken) => {}
            (Call::Fetch { .. } | Call::Refused { .. }, Answer::Failed(_)) => self.stats.fetch_errors += 1,
            (Call::Refresh { .. } | Call::Logout { .. } | Call::SignIn, Answer::Done | Answer::Failed(_)) => {}
            (Call::Authorize { .. }, Answer::Done | Answer::Failed(_)) => {}
            (Call::Popup { .. } | Call::Callback { .. }, Answer::Failed(_)) => {}
            (Call::Popup { app_state, .. } | Call::Callback { app_state, .. }, Answer::AppState(got))
                if app_state.is_none() || app_state == got =>
            {
                // Signing in is activity, as the machine counts it: when it completes.
                self.last_activity = self.now;
                self.stats.oidc_sign_ins += 1;
                // Answered as signed in: the tab holds the new session.
                if self.tabs[t].machine.tokens().is_none() {
                    self.facts.push(Fact::SignInLost { tab: t });
                }
            }
            (call, answer) => self.facts.push(Fact::WrongAnswer { tab: t, call, answer }),
        }
    }

    /// The request goes to the API with `token` of set `seq` (`retried`: its one retry).
    fn send_to_api(&mut self, t: usize, token: String, seq: u64, retried: bool) {
        let expires_at = self.tabs[t].machine.tokens().filter(|s| s.access_token == token).map(|s| s.expires_at);
        self.facts.push(Fact::TokenHandedOut { tab: t, token: token.clone(), expires_at, wall: self.wall() });
        let next = self.ticket(t, Call::Retry { since: self.now, retried });
        let d = self.rng.range(2.0, 30.0);
        self.at(d, Ev::Api(t, next, Some(format!("{token} {seq}"))));
    }

    /// The API refused request `ticket` (of set `seq`) with `status`: the driver's rules
    /// ([`policy::refusal`], [`policy::names_csrf`]) say whether the machine is asked
    /// (`ask` makes the input for a new caller), or the app gets the refusal (a retry's, or
    /// a 403 for another reason).
    pub fn refused(&mut self, t: usize, ticket: Ticket, seq: u64, status: u16, error: Option<&str>) {
        let Some(Call::Retry { since, retried }) = self.tabs[t].calls.remove(&ticket) else { return };
        let cookie = self.cookie_mode();
        let input = match policy::refusal(status, cookie, true) {
            _ if retried => None,
            Refusal::Unauthorized => Some(Input::Unauthorized { ticket: 0, seq }),
            Refusal::Forbidden if policy::names_csrf(error) => Some(Input::CsrfRejected { ticket: 0 }),
            Refusal::Forbidden | Refusal::None => None,
        };
        let Some(input) = input else {
            self.stats.api_401_to_app += 1;
            return;
        };
        let next = self.ticket(t, Call::Refused { since, refused: seq });
        let input = match input {
            Input::Unauthorized { seq, .. } => Input::Unauthorized { ticket: next, seq },
            _ => Input::CsrfRejected { ticket: next },
        };
        self.deliver(t, input);
    }

    /// The request reaches the API with `token` and its set's counter.
    pub fn api(&mut self, t: usize, ticket: Ticket, carried: Option<String>) {
        // The retry ticket was created with the request; it is answered here or handed on.
        let Some(carried) = carried else { return };
        let (token, seq) = carried.split_once(' ').expect("token and counter");
        let seq: u64 = seq.parse().expect("counter");
        if self.cookie_mode() {
            self.api_with_cookie(t, ticket, token, seq)
        } else {
            self.api_with_token(t, ticket, token, seq)
        }
    }

    /// The user signs in in tab `t` (a new family, or a new cookie session).
    pub fn login(&mut self, t: usize) {
        if self.setup.oidc {
            return self.oidc_login(t);
        }
        self.stats.logins += 1;
        self.last_activity = self.now;
        let family = self.serial();
        if self.cookie_mode() {
            let tokens = self.start_cookie_session(family);
            let ticket = self.ticket(t, Call::SignIn);
            return self.deliver(t, Input::SignIn { tokens, ticket: Some(ticket) });
        }
        let (at, rt) = self.issue(family);
        self.dpop_sign_in(t, family);
        // An OpenID Connect sign-in brings an ID token; the model server's refreshes do not.
        let r = TokenResponse {
            id_token: Field::Valid(format!("id-{family}")),
            ..response(&at, Some(&rt), self.setup.ttl_s)
        };
        let tokens = TokenSet::from_response(r, None, self.wall(), None, None).expect("valid login response");
        let ticket = self.ticket(t, Call::SignIn);
        self.deliver(t, Input::SignIn { tokens, ticket: Some(ticket) });
    }

    /// The app calls `session.fetch(url)`: only the page's own origin gets a token, by the
    /// rule the driver uses.
    pub fn fetch_url(&mut self, t: usize, url: &str) {
        if policy::url_in_origins(url, &["https://app.example".to_string()]) {
            let ticket = self.ticket(t, Call::Fetch { since: self.now });
            self.deliver(t, Input::TokenWanted { ticket });
        } else {
            self.stats.foreign_requests += 1;
        }
    }

    pub fn fetch(&mut self, t: usize) {
        self.fetch_url(t, "https://app.example/api/me");
    }

    /// The user does one thing in tab `t` (named scenarios; random runs use `Act::Activity`).
    pub fn touch(&mut self, t: usize) {
        self.last_activity = self.now;
        self.deliver(t, Input::Activity);
    }

    // ---- the acts -------------------------------------------------------------------------------

    pub(crate) fn user_activity(&mut self, t: usize) {
        if self.live(t) && !self.tabs[t].frozen {
            self.last_activity = self.now;
            self.deliver(t, Input::Activity);
        }
        // The user moves on, to any tab.
        let next = self.rng.below(self.tabs.len());
        let d = self.rng.range(0.2, 1.8) * self.setup.activity_every_ms;
        self.at(d, Ev::Act(Act::Activity(next)));
    }

    pub(crate) fn app_fetch(&mut self, t: usize) {
        if self.live(t) && !self.tabs[t].frozen {
            let foreign = self.rng.chance(0.2);
            let url = if foreign { "https://app.example.evil.com/x" } else { "https://app.example/api/me" };
            self.fetch_url(t, url);
        }
        if self.live(t) {
            let d = self.rng.range(0.2, 1.8) * self.setup.fetch_every_ms;
            self.at(d, Ev::Act(Act::Fetch(t)));
        }
    }

    pub(crate) fn app_login(&mut self, t: usize) {
        if self.live(t) && !self.tabs[t].frozen && self.tabs[t].machine.tokens().is_none() {
            self.login(t);
        }
    }

    pub(crate) fn app_logout(&mut self, t: usize) {
        if self.live(t) && !self.tabs[t].frozen {
            self.call(t, Call::Logout { since: self.now }, |ticket| Input::Logout { ticket });
        }
    }

    /// `refresh()`: the server counts it as asked for (not a refresh too soon).
    pub(crate) fn app_refresh(&mut self, t: usize) {
        if self.live(t) && !self.tabs[t].frozen {
            let family = self.tabs[t].machine.tokens().and_then(|s| self.family_of_token(&s.access_token));
            if let Some(i) = family.and_then(|f| self.server.issued.get_mut(&f)) {
                i.1 = true;
            }
            self.call(t, Call::Refresh { since: self.now }, |ticket| Input::Refresh { ticket });
        }
    }

    /// Each tab's fetches, from now on.
    pub fn schedule_random_fetches(&mut self) {
        for t in 0..self.tabs.len() {
            let d = self.rng.range(0.0, self.setup.fetch_every_ms);
            self.at(d, Ev::Act(Act::Fetch(t)));
        }
    }

    /// The random schedule: each tab's fetches, a first sign-in, the user, and chaos.
    pub fn schedule_random(&mut self) {
        self.schedule_random_fetches();
        let d = self.rng.range(0.0, 200.0);
        self.at(d, Ev::Act(Act::Login(0)));
        let d = self.rng.range(0.0, self.setup.activity_every_ms);
        self.at(d, Ev::Act(Act::Activity(0)));
        if self.setup.chaos {
            let d = self.rng.range(1_000.0, 10_000.0);
            self.at(d, Ev::Act(Act::Chaos));
        }
    }
}
