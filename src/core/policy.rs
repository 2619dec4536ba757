//! Pure rules: when to refresh, until when a token may be sent, backoff with jitter, what a
//! failed refresh means, which origins may receive the token, timer delay clamping, what
//! `session.fetch` does with a refused request, and how the refresh lock is asked for.

use super::config::check_transport;
use super::token::TokenSet;

/// The refresh lead never exceeds this fraction of the token's lifetime, so a 30 s token
/// with the default 60 s lead is refreshed at 22.5 s, not in a loop.
pub const MAX_LEAD_FRACTION: f64 = 0.25;

/// A token this close to expiry is not sent: it could expire in flight.
pub const MAX_EXPIRY_MARGIN_MS: f64 = 5_000.0;

/// The expiry margin never exceeds this fraction of the lifetime.
pub const MAX_MARGIN_FRACTION: f64 = 0.1;

/// No scheduled refresh sooner than this after the tokens it replaces were issued: a server
/// answering `expires_in: 1` (or 0.001) must not drive a refresh loop.
pub const MIN_REFRESH_INTERVAL_MS: f64 = 1_000.0;

/// When to refresh `t`: `lead_ms` before expiry, capped by [`MAX_LEAD_FRACTION`], and not
/// before [`MIN_REFRESH_INTERVAL_MS`] after issue.
pub fn refresh_at(t: &TokenSet, lead_ms: f64) -> f64 {
    let at = t.expires_at - lead_ms.min(t.lifetime() * MAX_LEAD_FRACTION).max(0.0);
    at.max(t.issued_at + MIN_REFRESH_INTERVAL_MS)
}

/// Until when `t` may be attached to a request.
pub fn usable_until(t: &TokenSet) -> f64 {
    t.expires_at - MAX_EXPIRY_MARGIN_MS.min(t.lifetime() * MAX_MARGIN_FRACTION).max(0.0)
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, capped at `max`, then scaled by
/// a random factor in [0.5, 1) so that many clients don't retry in lockstep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure, before jitter.
    pub base_ms: f64,
    /// Largest delay, before jitter.
    pub max_ms: f64,
}

impl Backoff {
    /// The delay after `attempt` failures (`attempt` >= 1); `rand` is uniform in [0, 1).
    pub fn delay(&self, attempt: u32, rand: f64) -> f64 {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = (self.base_ms * f64::from(1u32 << exp)).min(self.max_ms);
        let rand = if rand.is_finite() { rand.clamp(0.0, 1.0) } else { 0.5 };
        raw * (0.5 + 0.5 * rand)
    }
}

/// What a failed refresh means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying later: network, timeout, 5xx, a proxy's page, a garbled reply.
    Transient,
    /// The server refused the grant: the session is over.
    Rejected,
    /// DPoP: the server wants a proof with its nonce (`use_dpop_nonce`, RFC 9449 §8): send
    /// the same request once more, signed with the nonce its `DPoP-Nonce` header gave.
    UseNonce,
}

/// Classifies a token endpoint answer that was not a success. Only an OAuth error response
/// (RFC 6749 §5.2: status 400, or 401 for client authentication, with a JSON body naming
/// the `error`) ends the session. Anything else (a WAF's 403 page, a captive portal, a 5xx,
/// a 400 without an OAuth body) may pass, so it is retried with backoff.
pub fn classify(status: u16, oauth_error: Option<&str>) -> Failure {
    match (status, oauth_error) {
        (400 | 401, Some("use_dpop_nonce")) => Failure::UseNonce,
        (400 | 401, Some(_)) => Failure::Rejected,
        _ => Failure::Transient,
    }
}

/// DPoP: did the token endpoint bind the tokens it answered a proof with? A server that
/// answers `token_type: "Bearer"` to a DPoP request does not do DPoP; a DPoP session refuses
/// such tokens (README, DPoP) rather than carry on with tokens that work without the key.
pub fn dpop_bound(token_type: Option<&str>) -> bool {
    token_type.is_some_and(|t| t.eq_ignore_ascii_case("dpop"))
}

/// DPoP: does a resource server's `WWW-Authenticate` ask for a proof with its nonce (RFC
/// 9449 §9: the `DPoP` scheme with `error="use_dpop_nonce"`)? Parameters come in any order
/// (`realm` first, as oidc-provider sends them), quoted or not.
pub fn asks_dpop_nonce(www_authenticate: &str) -> bool {
    let mut in_dpop = false;
    for part in www_authenticate.split(',') {
        let mut part = part.trim();
        // A new challenge starts with its scheme: `DPoP error="…"`, `Bearer realm="…"`.
        if let Some((first, rest)) = part.split_once(' ').filter(|(f, _)| !f.contains('=')) {
            in_dpop = first.eq_ignore_ascii_case("dpop");
            part = rest.trim();
        } else if !part.contains('=') {
            in_dpop = part.eq_ignore_ascii_case("dpop");
            continue;
        }
        let Some((name, value)) = part.split_once('=') else { continue };
        if in_dpop && name.trim().eq_ignore_ascii_case("error") && value.trim().trim_matches('"') == "use_dpop_nonce" {
            return true;
        }
    }
    false
}

/// May a request to `url_origin` (scheme `protocol`, host `host`) carry the token? Only the
/// page's own origin and listed origins, and never over plain http off this machine.
pub fn may_carry_token(url_origin: &str, protocol: &str, host: &str, page_origin: &str, allowed: &[String]) -> bool {
    let listed = url_origin == page_origin || allowed.iter().any(|o| o == url_origin);
    listed && check_transport("", protocol, host).is_ok()
}

/// Does the normalized absolute `url` (a `Request`'s `url`) belong to one of `origins`
/// (serialized origins like `https://api.example.com:8443`, each already checked with
/// [`may_carry_token`])? A normalized URL starts with its serialized origin followed by
/// `/`, and carries no credentials (`new Request` refuses them), so a prefix compare is
/// exact and spares parsing the URL on every request.
pub fn url_in_origins(url: &str, origins: &[String]) -> bool {
    origins.iter().any(|o| url.strip_prefix(o.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

/// A delay for `setTimeout`: browsers treat delays above `i32::MAX` ms (about 24.8 days) as 0
/// and fire at once, so clamp; NaN and negatives become 0.
pub fn clamp_delay(ms: f64) -> u32 {
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= f64::from(i32::MAX) {
        i32::MAX as u32
    } else {
        ms as u32
    }
}

/// Cookie mode: does a request with this method carry the CSRF token? Every method but the
/// safe ones a browser sends without asking (GET, HEAD, OPTIONS).
pub fn sends_csrf(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// What a response to a request that carried the session's token (or CSRF token) means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a refusal of the session: the app gets the response.
    None,
    /// 401: the token (or the cookie session) was refused; the machine decides what follows
    /// ([`retry_after_401`] in token mode; the session is over in cookie mode).
    Unauthorized,
    /// Cookie mode: a 403 to an unsafe request, a CSRF failure if its body says so
    /// ([`names_csrf`]).
    Forbidden,
}

/// Classifies the status of a response to a request sent with the session (`cookie`: in
/// cookie mode; `csrf_sent`: the request carried the CSRF token).
pub fn refusal(status: u16, cookie: bool, csrf_sent: bool) -> Refusal {
    match status {
        401 => Refusal::Unauthorized,
        403 if cookie && csrf_sent => Refusal::Forbidden,
        _ => Refusal::None,
    }
}

/// Does a 403's JSON `error` say the CSRF token was refused? Servers spell it variously
/// (`csrf_invalid`, `"CSRF token mismatch"`); a 403 for any other reason is the app's.
pub fn names_csrf(error: Option<&str>) -> bool {
    error.is_some_and(|e| e.to_ascii_lowercase().contains("csrf"))
}

/// After a 401 on the token of set `refused`, the machine offers a token of set `offered`:
/// retry only with another set (the same token would be refused again).
pub fn retry_after_401(refused: u64, offered: u64) -> bool {
    offered != refused
}

/// Cookie mode: the logout request got this status: is the server session over? A 401 says
/// there was none left to end.
pub fn session_ended(status: u16) -> bool {
    (200..300).contains(&status) || status == 401
}

/// How a request for the refresh lock (Web Locks) asks, so that its grant tells the machine
/// how the lock came ([`LockAsk::stolen`], [`LockAsk::waited`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockAsk {
    /// Only if free at once (`ifAvailable`).
    IfFree,
    /// In the queue, after the holder.
    Queue,
    /// Taken from the holder (`steal`).
    Steal,
}

impl LockAsk {
    /// The first request: taken from the holder if `steal`, else only if free, so that a
    /// free lock is told from one handed over by another tab.
    pub fn first(steal: bool) -> LockAsk {
        if steal {
            LockAsk::Steal
        } else {
            LockAsk::IfFree
        }
    }

    /// The next request after this one found the lock held by another tab: wait in the
    /// queue. `None` for requests that cannot find it held (they wait, or take it).
    pub fn when_held(self) -> Option<LockAsk> {
        match self {
            LockAsk::IfFree => Some(LockAsk::Queue),
            LockAsk::Queue | LockAsk::Steal => None,
        }
    }

    /// A grant of this request was taken from a holder that did not release it.
    pub fn stolen(self) -> bool {
        self == LockAsk::Steal
    }

    /// A grant of this request came after another tab's hold: handed over, not found free.
    pub fn waited(self) -> bool {
        self == LockAsk::Queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued: f64, lifetime_s: f64) -> TokenSet {
        TokenSet {
            access_token: "a".into(),
            refresh_token: Some("r".into()),
            id_token: None,
            scope: None,
            issued_at: issued,
            expires_at: issued + lifetime_s * 1000.0,
            login_at: None,
            user: None,
        }
    }

    #[test]
    fn lead_is_capped_for_short_tokens_and_floored() {
        assert_eq!(refresh_at(&token(0.0, 3600.0), 60_000.0), 3_540_000.0);
        assert_eq!(refresh_at(&token(0.0, 30.0), 60_000.0), 22_500.0);
        assert_eq!(refresh_at(&token(0.0, 30.0), 0.0), 30_000.0);
        assert_eq!(refresh_at(&token(0.0, 0.001), 60_000.0), MIN_REFRESH_INTERVAL_MS, "expires_in 0.001: floor");
        assert_eq!(usable_until(&token(0.0, 100.0)), 95_000.0);
        assert_eq!(usable_until(&token(0.0, 10.0)), 9_000.0);
    }

    #[test]
    fn backoff_grows_then_caps_with_jitter_in_range() {
        let b = Backoff { base_ms: 1_000.0, max_ms: 30_000.0 };
        assert_eq!(b.delay(1, 1.0), 1_000.0);
        assert_eq!(b.delay(3, 1.0), 4_000.0);
        assert_eq!(b.delay(6, 1.0), 30_000.0);
        assert_eq!(b.delay(1000, 1.0), 30_000.0);
        assert_eq!(b.delay(3, 0.0), 2_000.0);
        assert_eq!(b.delay(3, f64::NAN), 3_000.0);
    }

    #[test]
    fn only_oauth_error_responses_end_the_session() {
        assert_eq!(classify(400, Some("invalid_grant")), Failure::Rejected);
        assert_eq!(classify(401, Some("invalid_client")), Failure::Rejected);
        assert_eq!(classify(400, Some("use_dpop_nonce")), Failure::UseNonce, "DPoP: never ends the session");
        assert_eq!(classify(403, None), Failure::Transient, "a WAF's HTML page");
        assert_eq!(classify(400, None), Failure::Transient, "a 400 without an OAuth body");
        assert_eq!(classify(401, None), Failure::Transient);
        assert_eq!(classify(503, Some("temporarily_unavailable")), Failure::Transient);
        assert_eq!(classify(429, None), Failure::Transient);
    }

    #[test]
    fn a_dpop_nonce_challenge_is_read_in_any_parameter_order() {
        assert!(asks_dpop_nonce(r#"DPoP error="use_dpop_nonce", error_description="x""#));
        assert!(asks_dpop_nonce(r#"DPoP realm="api", algs="ES256", error="use_dpop_nonce""#), "oidc-provider");
        assert!(asks_dpop_nonce(r#"Bearer realm="a", DPoP error=use_dpop_nonce"#), "second challenge, unquoted");
        assert!(!asks_dpop_nonce(r#"Bearer error="use_dpop_nonce""#), "another scheme");
        assert!(!asks_dpop_nonce(r#"DPoP error="invalid_token""#));
        assert!(!asks_dpop_nonce(""));
    }

    #[test]
    fn only_own_and_listed_origins_over_safe_transport() {
        let page = "https://app.example.com";
        let allowed = vec!["https://api.example.com".to_string(), "http://intranet.example".to_string()];
        let ok = |origin: &str, proto: &str, host: &str| may_carry_token(origin, proto, host, page, &allowed);
        assert!(ok("https://app.example.com", "https:", "app.example.com"));
        assert!(ok("https://api.example.com", "https:", "api.example.com"));
        assert!(!ok("https://evil.example.com", "https:", "evil.example.com"));
        assert!(!ok("https://api.example.com.evil.com", "https:", "api.example.com.evil.com"));
        assert!(!ok("http://intranet.example", "http:", "intranet.example"), "plain http off-machine");
        assert!(may_carry_token("http://127.0.0.1:8080", "http:", "127.0.0.1", "http://127.0.0.1:8080", &[]));
        assert!(!may_carry_token("http://127.0.0.1:9090", "http:", "127.0.0.1", "http://127.0.0.1:8080", &[]));
    }

    #[test]
    fn urls_match_origins_exactly() {
        let origins = vec!["https://api.example.com".to_string(), "http://127.0.0.1:8080".to_string()];
        assert!(url_in_origins("https://api.example.com/v1/me", &origins));
        assert!(url_in_origins("http://127.0.0.1:8080/", &origins));
        assert!(!url_in_origins("https://api.example.com.evil.com/", &origins));
        assert!(!url_in_origins("https://api.example.com:8443/", &origins));
        assert!(!url_in_origins("http://127.0.0.1:80801/", &origins));
        assert!(!url_in_origins("https://evil.com/https://api.example.com/", &origins));
    }

    #[test]
    fn delays_are_clamped_to_what_set_timeout_accepts() {
        assert_eq!(clamp_delay(-5.0), 0);
        assert_eq!(clamp_delay(f64::NAN), 0);
        assert_eq!(clamp_delay(1500.7), 1500);
        assert_eq!(clamp_delay(30.0 * 86_400_000.0), i32::MAX as u32);
        assert_eq!(clamp_delay(f64::INFINITY), i32::MAX as u32);
    }

    #[test]
    fn csrf_goes_with_unsafe_methods_only() {
        for safe in ["GET", "HEAD", "OPTIONS"] {
            assert!(!sends_csrf(safe), "{safe}");
        }
        for unsafe_method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(sends_csrf(unsafe_method), "{unsafe_method}");
        }
    }

    #[test]
    fn refusals_of_the_session() {
        assert_eq!(refusal(401, false, false), Refusal::Unauthorized);
        assert_eq!(refusal(401, true, true), Refusal::Unauthorized);
        assert_eq!(refusal(403, true, true), Refusal::Forbidden, "cookie mode, CSRF token sent");
        assert_eq!(refusal(403, true, false), Refusal::None, "a safe request: no CSRF token to refuse");
        assert_eq!(refusal(403, false, false), Refusal::None, "token mode: the app's 403");
        assert_eq!(refusal(200, true, true), Refusal::None);
        assert_eq!(refusal(500, false, false), Refusal::None);
    }

    #[test]
    fn a_403_is_a_csrf_failure_only_when_it_says_so() {
        assert!(names_csrf(Some("csrf_invalid")));
        assert!(names_csrf(Some("CSRF token mismatch")));
        assert!(!names_csrf(Some("forbidden")));
        assert!(!names_csrf(None), "no JSON error: the app's 403");
    }

    #[test]
    fn a_401_is_retried_only_with_another_token_set() {
        assert!(retry_after_401(7, 8), "refreshed meanwhile: retry with the new token");
        assert!(!retry_after_401(7, 7), "the same set: the 401 goes to the app");
    }

    #[test]
    fn a_cookie_logout_is_done_when_the_server_has_no_session_left() {
        assert!(session_ended(200) && session_ended(204));
        assert!(session_ended(401), "already over");
        assert!(!session_ended(403) && !session_ended(500) && !session_ended(302));
    }

    #[test]
    fn the_lock_is_asked_for_if_free_first_then_in_the_queue() {
        let first = LockAsk::first(false);
        assert_eq!(first, LockAsk::IfFree);
        assert!(!first.stolen() && !first.waited(), "found free");
        let next = first.when_held();
        assert_eq!(next, Some(LockAsk::Queue));
        assert!(next.is_some_and(|n| n.waited() && !n.stolen()), "a hand-over");
        assert_eq!(LockAsk::Queue.when_held(), None);
        let steal = LockAsk::first(true);
        assert!(steal.stolen() && !steal.waited());
        assert_eq!(steal.when_held(), None);
    }
}
