//! Cookie sessions: the server holds the session, the browser an HttpOnly cookie, and unsafe
//! requests must carry the session's CSRF token in a header (OWASP's synchronizer token).
//!
//! A session ends after `idle` without an extension (`POST /session/refresh`, which the SDK
//! sends only while the user is active; API calls do not extend it, so background polling
//! cannot keep it alive) or `max` after sign-in, whichever comes first. Every extension
//! rotates the session id; the old id keeps working for [`GRACE_MS`] so that requests
//! already in flight with it do not fail.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "ws_sid";

/// How long a rotated-out session id still leads to its session.
pub const GRACE_MS: u64 = 10_000;

/// The body of `POST /session/login`, `GET /session` and `POST /session/refresh`.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    pub csrf_token: String,
    /// When the session ends unless extended (epoch ms).
    pub expires_at: u64,
    /// When it began (epoch ms): the absolute limit counts from here.
    pub login_at: u64,
    pub user: User,
}

/// The signed-in user, as the API describes it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub sub: String,
    pub name: String,
}

struct Live {
    user: User,
    csrf: String,
    login_ms: u64,
    extended_ms: u64,
}

/// Every cookie session, by id.
pub struct Sessions {
    pub idle_ms: u64,
    pub max_ms: u64,
    live: HashMap<String, Live>,
    /// Rotated-out ids: (the current id, until when the old one is honoured).
    moved: HashMap<String, (String, u64)>,
    seed: [u8; 32],
    counter: u64,
}

impl Sessions {
    /// No sessions; limits in seconds.
    pub fn new(idle_s: u64, max_s: u64, seed: [u8; 32]) -> Self {
        Self {
            idle_ms: idle_s.saturating_mul(1000),
            max_ms: max_s.saturating_mul(1000),
            live: HashMap::new(),
            moved: HashMap::new(),
            seed,
            counter: 0,
        }
    }

    /// Forgets every session.
    pub fn reset(&mut self) {
        self.live.clear();
        self.moved.clear();
    }

    fn random(&mut self) -> String {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        h.update(crate::auth::now_ms().to_le_bytes());
        B64.encode(&h.finalize()[..24])
    }

    /// Starts a session for `user` and returns its id. A session the browser already had
    /// (`previous`) ends: sign-in always issues a new id (no session fixation).
    pub fn start(&mut self, user: User, previous: Option<&str>, now_ms: u64) -> (String, SessionBody) {
        if let Some(old) = previous {
            self.end(old, now_ms);
        }
        let id = self.random();
        let csrf = self.random();
        self.live.insert(id.clone(), Live { user, csrf, login_ms: now_ms, extended_ms: now_ms });
        let body = self.body(&id).unwrap_or_else(|| unreachable!("just inserted"));
        (id, body)
    }

    /// The id a cookie value stands for now, if its session is live.
    fn resolve(&mut self, id: &str, now_ms: u64) -> Option<String> {
        let id = match self.moved.get(id) {
            Some((current, until)) if *until > now_ms => current.clone(),
            _ => id.to_string(),
        };
        let live = self.live.get(&id)?;
        if now_ms >= self.ends_at(live) {
            self.live.remove(&id);
            return None;
        }
        Some(id)
    }

    fn ends_at(&self, s: &Live) -> u64 {
        (s.extended_ms + self.idle_ms).min(s.login_ms + self.max_ms)
    }

    fn body(&self, id: &str) -> Option<SessionBody> {
        let s = self.live.get(id)?;
        Some(SessionBody {
            csrf_token: s.csrf.clone(),
            expires_at: self.ends_at(s),
            login_at: s.login_ms,
            user: s.user.clone(),
        })
    }

    /// `GET /session`: the live session behind a cookie, without extending it.
    pub fn read(&mut self, id: &str, now_ms: u64) -> Option<SessionBody> {
        let id = self.resolve(id, now_ms)?;
        self.body(&id)
    }

    /// Checks a request's cookie and, for unsafe methods, its CSRF header.
    pub fn check(&mut self, id: &str, csrf: Option<&str>, unsafe_method: bool, now_ms: u64) -> Check {
        let Some(id) = self.resolve(id, now_ms) else { return Check::NoSession };
        let Some(s) = self.live.get(&id) else { return Check::NoSession };
        if unsafe_method && csrf != Some(s.csrf.as_str()) {
            return Check::CsrfFailed;
        }
        Check::Ok(s.user.clone())
    }

    /// `POST /session/refresh`: extends the session and rotates its id (the CSRF token stays).
    pub fn extend(&mut self, id: &str, now_ms: u64) -> Option<(String, SessionBody)> {
        let current = self.resolve(id, now_ms)?;
        let mut live = self.live.remove(&current)?;
        live.extended_ms = now_ms;
        let new_id = self.random();
        self.live.insert(new_id.clone(), live);
        self.moved.retain(|_, (_, until)| *until > now_ms);
        self.moved.insert(current, (new_id.clone(), now_ms + GRACE_MS));
        let body = self.body(&new_id)?;
        Some((new_id, body))
    }

    /// `POST /session/logout`: ends the session; false when there was none.
    pub fn end(&mut self, id: &str, now_ms: u64) -> bool {
        let Some(id) = self.resolve(id, now_ms) else { return false };
        self.moved.retain(|_, (current, _)| *current != id);
        self.live.remove(&id).is_some()
    }

    /// Sessions alive at `now_ms`.
    pub fn active(&self, now_ms: u64) -> u64 {
        self.live.values().filter(|s| now_ms < self.ends_at(s)).count() as u64
    }
}

/// What [`Sessions::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Ok(User),
    NoSession,
    CsrfFailed,
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then_some(value)
    })
}

/// The `Set-Cookie` for a session id: HttpOnly (no script reads it), SameSite=Strict (no
/// cross-site request carries it), and Secure unless the site is served from loopback
/// (browsers keep Secure cookies only over HTTPS, which the local demo does not have).
pub fn set_cookie(id: &str, loopback: bool) -> String {
    let secure = if loopback { "" } else { "; Secure" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(loopback: bool) -> String {
    let secure = if loopback { "" } else { "; Secure" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn user() -> User {
        User { sub: "demo".into(), name: "Demo User".into() }
    }

    #[test]
    fn login_issues_a_new_id_and_ends_the_previous_one() {
        let mut s = Sessions::new(60, 600, [1; 32]);
        let (a, body) = s.start(user(), None, T0);
        assert_eq!(body.expires_at, T0 + 60_000);
        let (b, _) = s.start(user(), Some(&a), T0 + 1);
        assert_ne!(a, b);
        assert!(s.read(&a, T0 + 2).is_none(), "the old session is gone");
        assert!(s.read(&b, T0 + 2).is_some());
        assert_eq!(s.active(T0 + 2), 1);
    }

    #[test]
    fn unsafe_methods_need_the_csrf_token() {
        let mut s = Sessions::new(60, 600, [2; 32]);
        let (id, body) = s.start(user(), None, T0);
        assert_eq!(s.check(&id, None, false, T0), Check::Ok(user()));
        assert_eq!(s.check(&id, None, true, T0), Check::CsrfFailed);
        assert_eq!(s.check(&id, Some("wrong"), true, T0), Check::CsrfFailed);
        assert_eq!(s.check(&id, Some(&body.csrf_token), true, T0), Check::Ok(user()));
        assert_eq!(s.check("nope", Some(&body.csrf_token), true, T0), Check::NoSession);
    }

    #[test]
    fn idle_and_absolute_limits_end_the_session() {
        let mut s = Sessions::new(60, 100, [3; 32]);
        let (id, _) = s.start(user(), None, T0);
        // Extended at 50 s: idle now ends at 110 s, but the absolute limit is 100 s.
        let (id, body) = s.extend(&id, T0 + 50_000).unwrap();
        assert_eq!(body.expires_at, T0 + 100_000);
        assert_eq!(body.login_at, T0);
        assert!(s.read(&id, T0 + 99_999).is_some());
        assert!(s.read(&id, T0 + 100_000).is_none());
        // Without an extension the idle limit ends it.
        let (id, _) = s.start(user(), None, T0);
        assert!(s.read(&id, T0 + 60_000).is_none());
    }

    #[test]
    fn extension_rotates_the_id_with_a_grace_period() {
        let mut s = Sessions::new(60, 600, [4; 32]);
        let (old, body) = s.start(user(), None, T0);
        let (new, again) = s.extend(&old, T0 + 1_000).unwrap();
        assert_ne!(old, new);
        assert_eq!(again.csrf_token, body.csrf_token, "the CSRF token stays with the session");
        assert!(s.read(&old, T0 + 1_000 + GRACE_MS - 1).is_some(), "in-flight requests still work");
        assert!(s.read(&old, T0 + 1_000 + GRACE_MS).is_none());
        assert!(s.end(&new, T0 + 2_000));
        assert!(s.read(&old, T0 + 2_000).is_none(), "logout ends the old id too");
    }

    #[test]
    fn cookie_header_parsing() {
        assert_eq!(cookie_value("a=1; ws_sid=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_value("ws_sid="), None);
        assert_eq!(cookie_value("other=ws_sid"), None);
        assert!(set_cookie("x", true).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("x", false).ends_with("; Secure"));
    }
}
