//! Tokens: the OAuth 2.0 token response (RFC 6749 §5.1) as serde reads it
//! ([`TokenResponse`]), the validated [`TokenSet`] with absolute expiry that the session
//! holds, stores and shares, and the JWT payload segment (base64url) for `exp`/`iat`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::error::Error;
use super::Field;

/// Longest token accepted. Servers reject headers much smaller than this anyway.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest access token lifetime accepted: one year.
pub const MAX_LIFETIME_S: f64 = 366.0 * 24.0 * 3600.0;

/// Skews larger than this are taken as bad data rather than a wrong clock.
const MAX_SKEW_MS: f64 = MAX_LIFETIME_S * 1000.0;

/// A token response as serde reads it, before validation.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct TokenResponse {
    pub access_token: Field<String>,
    pub token_type: Field<String>,
    pub expires_in: Field<Seconds>,
    pub refresh_token: Field<String>,
    pub id_token: Field<String>,
    pub scope: Field<String>,
}

/// `expires_in`: a number of seconds, or a string of digits as some servers send. `None`
/// for a string that is not a whole number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Option<f64>);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("seconds")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                // Whole seconds only: an integer parse (a float parser costs every user ~16 KB).
                let v = v.trim();
                let digits = !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit());
                Ok(Seconds(if digits { v.parse::<u64>().ok().map(|n| n as f64) } else { None }))
            }
        }
        d.deserialize_any(V)
    }
}

/// The JWT claims that matter for timing, read with serde from the decoded payload.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct JwtTimes {
    /// `exp` in seconds.
    pub exp: Field<f64>,
    /// `iat` in seconds.
    pub iat: Field<f64>,
}

/// The tokens of one session, with times in epoch milliseconds on the client's clock. Also
/// the stored and shared form (inside a [`crate::core::store::Record`] or a tab message).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The bearer token sent to APIs.
    pub access_token: String,
    /// The refresh token, if the server issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, if the server sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted scope, if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the response arrived.
    pub issued_at: f64,
    /// When the access token expires.
    pub expires_at: f64,
    /// When the user signed in (epoch ms), for `maxSessionMs`: kept across refreshes.
    #[serde(default, rename = "loginAt", skip_serializing_if = "Option::is_none")]
    pub login_at: Option<f64>,
    /// Cookie mode: the signed-in user as the server described it (JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A cookie session's body (`POST {sessionUrl}/…`, `GET {sessionUrl}`), as serde reads it.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct SessionResponse {
    pub csrf_token: Field<String>,
    pub expires_at: Field<f64>,
    /// Optional: when the session began (epoch ms), so that `maxSessionMs` counts from the
    /// sign-in across reloads.
    pub login_at: Field<f64>,
}

/// True when `s` can go into an HTTP header and a form body unchanged: visible ASCII only.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn token(field: Field<String>, name: &'static str, required: bool) -> Result<Option<String>, Error> {
    match field {
        Field::Valid(s) if header_safe(&s) => Ok(Some(s)),
        Field::Valid(s) if s.len() > MAX_TOKEN_LEN => Err(Error::TokenResponse(name, "is longer than 16 KB")),
        Field::Valid(s) if s.is_empty() && required => Err(Error::TokenResponse(name, "is empty")),
        Field::Valid(_) => Err(Error::TokenResponse(name, "contains spaces or non-ASCII characters")),
        Field::Absent if !required => Ok(None),
        Field::Absent => Err(Error::TokenResponse(name, "is missing")),
        Field::Invalid => Err(Error::TokenResponse(name, "must be a string")),
    }
}

/// Issued and expiry times that a real token set can have: finite, expiring after issue,
/// within a year.
fn times_ok(issued_at: f64, expires_at: f64) -> bool {
    let lifetime = expires_at - issued_at;
    issued_at.is_finite() && expires_at.is_finite() && lifetime > 0.0 && lifetime <= MAX_LIFETIME_S * 1000.0
}

fn expires_in(field: Field<Seconds>) -> Result<Option<f64>, Error> {
    let secs = match field {
        Field::Absent => return Ok(None),
        Field::Valid(Seconds(Some(n))) => n,
        Field::Valid(Seconds(None)) => {
            return Err(Error::TokenResponse("expires_in", "must be a whole number of seconds"))
        }
        Field::Invalid => return Err(Error::TokenResponse("expires_in", "must be a number of seconds")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(Error::TokenResponse("expires_in", "must be a positive number of seconds"));
    }
    if secs > MAX_LIFETIME_S {
        return Err(Error::TokenResponse("expires_in", "is longer than a year"));
    }
    Ok(Some(secs))
}

/// How far the client clock is ahead of the server's (ms; negative when behind), from the
/// server's idea of "now" (a JWT's `iat` or the response's `Date` header). 0 without one,
/// or with an absurd one.
pub fn skew(client_now: f64, server_now: Option<f64>) -> f64 {
    match server_now {
        Some(s) if s.is_finite() && (client_now - s).abs() < MAX_SKEW_MS => client_now - s,
        _ => 0.0,
    }
}

impl TokenSet {
    /// Validates a token response that arrived at `now`.
    ///
    /// Expiry comes from `expires_in` counted from `now` (immune to a wrong client clock);
    /// only without it is the JWT `exp` (`jwt`, read by the driver from the access token)
    /// used, corrected by the skew seen in `iat` or in `server_date` (the `Date` header, ms).
    /// `previous_refresh` is kept when the server sent no new refresh token (RFC 6749 §6).
    pub fn from_response(
        r: TokenResponse,
        jwt: Option<JwtTimes>,
        now: f64,
        server_date: Option<f64>,
        previous_refresh: Option<&str>,
    ) -> Result<TokenSet, Error> {
        // `Bearer` and `DPoP` (RFC 9449) are the types supported, so it is checked here and
        // not stored; whether a DPoP session got DPoP is [`crate::core::policy::dpop_bound`].
        match r.token_type {
            Field::Valid(t) if t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("dpop") => {}
            Field::Absent => {}
            Field::Valid(_) => {
                return Err(Error::TokenResponse(
                    "token_type",
                    "must be \"Bearer\" or \"DPoP\" (other types are not supported)",
                ))
            }
            Field::Invalid => return Err(Error::TokenResponse("token_type", "must be a string")),
        }
        let access_token = token(r.access_token, "access_token", true)?.unwrap_or_default();
        let refresh_token =
            token(r.refresh_token, "refresh_token", false)?.or_else(|| previous_refresh.map(str::to_string));
        let id_token = token(r.id_token, "id_token", false)?;
        let scope = match r.scope {
            Field::Valid(s) if s.len() <= MAX_TOKEN_LEN => Some(s),
            Field::Absent => None,
            _ => return Err(Error::TokenResponse("scope", "must be a string")),
        };
        let expires_at = match expires_in(r.expires_in)? {
            Some(secs) => now + secs * 1000.0,
            None => {
                let times = jwt.unwrap_or_default();
                let exp = times
                    .exp
                    .valid()
                    .filter(|e| e.is_finite())
                    .ok_or(Error::TokenResponse("expires_in", "is missing and the access token has no exp claim"))?;
                let server_now = times.iat.valid().map(|s| s * 1000.0).or(server_date);
                let at = exp * 1000.0 + skew(now, server_now);
                if at.is_nan() || at <= now {
                    return Err(Error::TokenResponse("access_token", "is already expired (exp)"));
                }
                at.min(now + MAX_LIFETIME_S * 1000.0)
            }
        };
        Ok(TokenSet {
            access_token,
            refresh_token,
            id_token,
            scope,
            issued_at: now,
            expires_at,
            login_at: None,
            user: None,
        })
    }

    /// A sign-in's token reply (`login()`, the authorization code exchange) that arrived at
    /// `now`: a status other than 2xx is `login_failed` (with the OAuth `error` if the body
    /// named one); a 2xx `body` must be a token response object (read with its access
    /// token's JWT times), validated by [`TokenSet::from_response`].
    pub fn from_sign_in(
        status: u16,
        oauth_error: Option<String>,
        body: Option<(TokenResponse, Option<JwtTimes>)>,
        now: f64,
        server_date: Option<f64>,
    ) -> Result<TokenSet, Error> {
        if !(200..300).contains(&status) {
            return Err(Error::LoginFailed(status, oauth_error));
        }
        let (response, jwt) = body.ok_or(Error::TokenResponse("(body)", "is not a JSON object"))?;
        TokenSet::from_response(response, jwt, now, server_date, None)
    }

    /// Validates a cookie session's body that arrived at `now`: the CSRF token (kept in
    /// memory as this set's `access_token`; the session itself is the HttpOnly cookie), the
    /// server's `expiresAt` (its clock: corrected by the skew seen in `server_date`), and the
    /// user (JSON text, at most 16 KB).
    pub fn from_session(
        r: SessionResponse,
        user: Option<String>,
        now: f64,
        server_date: Option<f64>,
    ) -> Result<TokenSet, Error> {
        let csrf = match r.csrf_token {
            Field::Valid(s) if header_safe(&s) => s,
            Field::Absent => return Err(Error::TokenResponse("csrfToken", "is missing")),
            _ => return Err(Error::TokenResponse("csrfToken", "must be a short string of visible ASCII")),
        };
        let server_expiry = r
            .expires_at
            .valid()
            .filter(|e| e.is_finite())
            .ok_or(Error::TokenResponse("expiresAt", "must be epoch milliseconds"))?;
        let shift = skew(now, server_date);
        let expires_at = server_expiry + shift;
        if !times_ok(now, expires_at) {
            return Err(Error::TokenResponse("expiresAt", "is not a time in the next year"));
        }
        if user.as_ref().is_some_and(|u| u.len() > MAX_TOKEN_LEN) {
            return Err(Error::TokenResponse("user", "is longer than 16 KB"));
        }
        let login_at = match r.login_at {
            Field::Absent => None,
            Field::Valid(t) if t.is_finite() && t + shift <= now + 60_000.0 && times_ok(t + shift, expires_at) => {
                Some(t + shift)
            }
            _ => return Err(Error::TokenResponse("loginAt", "must be epoch milliseconds in the past year")),
        };
        Ok(TokenSet {
            access_token: csrf,
            refresh_token: None,
            id_token: None,
            scope: None,
            issued_at: now,
            expires_at,
            login_at,
            user,
        })
    }

    /// Checks a token set read from storage or another tab with the rules of a fresh
    /// response: header-safe tokens, sane times.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field| Error::TokenResponse(field, "is invalid");
        if !header_safe(&self.access_token) {
            return Err(bad("access_token"));
        }
        for (field, t) in [("refresh_token", &self.refresh_token), ("id_token", &self.id_token)] {
            if t.as_deref().is_some_and(|t| !header_safe(t)) {
                return Err(bad(field));
            }
        }
        if self.scope.as_ref().is_some_and(|s| s.len() > MAX_TOKEN_LEN) {
            return Err(bad("scope"));
        }
        if !times_ok(self.issued_at, self.expires_at) {
            return Err(bad("expires_at"));
        }
        if self.login_at.is_some_and(|l| !l.is_finite()) {
            return Err(bad("loginAt"));
        }
        if self.user.as_ref().is_some_and(|u| u.len() > MAX_TOKEN_LEN) {
            return Err(bad("user"));
        }
        Ok(())
    }

    /// Milliseconds from issue to expiry.
    pub fn lifetime(&self) -> f64 {
        self.expires_at - self.issued_at
    }
}

/// The decoded payload segment of a JWT (its claims as UTF-8 JSON bytes), or `None` if
/// `token` is not a compact JWS/JWT with a base64url payload.
pub fn jwt_payload(token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() {
        return None;
    }
    // Some issuers pad; base64url in JWTs is unpadded (RFC 7515 §2).
    URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
}

#[cfg(test)]
pub(crate) fn sample(issued_at: f64) -> TokenSet {
    TokenSet {
        access_token: "at".into(),
        refresh_token: Some("rt".into()),
        id_token: None,
        scope: None,
        issued_at,
        expires_at: issued_at + 30_000.0,
        login_at: None,
        user: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: f64 = 1_700_000_000_000.0;

    fn jwt(payload: &str) -> String {
        ["eyJhbGciOiJIUzI1NiJ9", &URL_SAFE_NO_PAD.encode(payload), "c2ln"].join(".")
    }

    /// What the driver does: claims are a JSON object (an array is not claims).
    fn times(token: &str) -> Option<JwtTimes> {
        let v: Value = serde_json::from_slice(&jwt_payload(token)?).ok()?;
        v.is_object().then(|| serde_json::from_value(v).ok())?
    }

    fn parse_with(v: Value, server_date: Option<f64>, prev: Option<&str>) -> Result<TokenSet, Error> {
        let r: TokenResponse = serde_json::from_value(v).unwrap();
        let jwt = r.access_token.clone().valid().and_then(|t| times(&t));
        TokenSet::from_response(r, jwt, NOW, server_date, prev)
    }

    fn parse(v: Value) -> Result<TokenSet, Error> {
        parse_with(v, None, None)
    }

    fn field(r: Result<TokenSet, Error>) -> &'static str {
        match r.unwrap_err() {
            Error::TokenResponse(f, _) => f,
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn good_response_with_opaque_token() {
        let t = parse(json!({ "access_token": "opaque123", "token_type": "bearer", "expires_in": 30,
            "refresh_token": "r1", "scope": "read" }))
        .unwrap();
        assert_eq!(t.access_token, "opaque123");
        assert_eq!(t.refresh_token.as_deref(), Some("r1"));
        assert_eq!((t.issued_at, t.expires_at), (NOW, NOW + 30_000.0));
        assert_eq!(t.scope.as_deref(), Some("read"));
        assert!(t.validate().is_ok());
    }

    #[test]
    fn expires_in_wins_over_exp_and_numeric_strings_are_accepted() {
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW / 1000.0 + 9999.0));
        let t = parse(json!({ "access_token": token, "expires_in": "60" })).unwrap();
        assert_eq!(t.expires_at, NOW + 60_000.0);
    }

    #[test]
    fn jwt_exp_is_corrected_by_the_skew_seen_in_iat_or_date() {
        // The server's clock is 10 s behind ours: iat = its "now".
        let server = NOW / 1000.0 - 10.0;
        let token = jwt(&format!(r#"{{"iat":{},"exp":{}}}"#, server, server + 100.0));
        assert_eq!(parse(json!({ "access_token": token })).unwrap().expires_at, NOW + 100_000.0);
        let server_now = NOW + 5_000.0;
        let token = jwt(&format!(r#"{{"exp":{}}}"#, server_now / 1000.0 + 100.0));
        let t = parse_with(json!({ "access_token": token }), Some(server_now), None).unwrap();
        assert_eq!(t.expires_at, NOW + 100_000.0);
    }

    #[test]
    fn missing_expiry_everywhere_is_an_error() {
        assert_eq!(
            parse(json!({ "access_token": "opaque" })).unwrap_err(),
            Error::TokenResponse("expires_in", "is missing and the access token has no exp claim")
        );
        let expired = jwt(&format!(r#"{{"exp":{},"iat":{}}}"#, NOW / 1000.0 - 10.0, NOW / 1000.0));
        assert!(parse(json!({ "access_token": expired })).is_err());
        let stale = jwt(&format!(r#"{{"exp":{}}}"#, NOW / 1000.0 - 1.0));
        assert!(parse(json!({ "access_token": stale })).is_err());
        assert!(parse(json!({ "access_token": jwt(r#"{"exp":"soon"}"#) })).is_err());
    }

    #[test]
    fn missing_and_wrongly_typed_fields_are_named() {
        assert_eq!(field(parse(json!({ "expires_in": 1 }))), "access_token");
        assert_eq!(field(parse(json!({ "access_token": 1, "expires_in": 1 }))), "access_token");
        assert_eq!(field(parse(json!({ "access_token": "", "expires_in": 1 }))), "access_token");
        assert_eq!(field(parse(json!({ "access_token": "a b", "expires_in": 1 }))), "access_token");
        assert_eq!(field(parse(json!({ "access_token": "a", "expires_in": 1, "token_type": "MAC" }))), "token_type");
        assert_eq!(
            field(parse(json!({ "access_token": "a", "expires_in": 1, "refresh_token": true }))),
            "refresh_token"
        );
        assert_eq!(field(parse(json!({ "access_token": "a", "expires_in": 1, "scope": 2 }))), "scope");
        assert_eq!(
            field(parse(json!({ "access_token": "x".repeat(MAX_TOKEN_LEN + 1), "expires_in": 1 }))),
            "access_token"
        );
    }

    #[test]
    fn absurd_expires_in_is_refused() {
        for bad in [
            json!(0),
            json!(-5),
            json!(1e12),
            json!("soon"),
            json!("1.5"),
            json!("-3"),
            json!("99999999999999"),
            json!(true),
        ] {
            assert_eq!(field(parse(json!({ "access_token": "a", "expires_in": bad.clone() }))), "expires_in", "{bad}");
        }
    }

    #[test]
    fn previous_refresh_token_is_kept_only_when_none_is_sent() {
        let base = json!({ "access_token": "a", "expires_in": 1 });
        assert_eq!(parse_with(base, None, Some("old")).unwrap().refresh_token.as_deref(), Some("old"));
        let rotated = json!({ "access_token": "a", "expires_in": 1, "refresh_token": "new" });
        assert_eq!(parse_with(rotated, None, Some("old")).unwrap().refresh_token.as_deref(), Some("new"));
    }

    #[test]
    fn jwt_payloads_are_decoded_and_garbage_refused() {
        let payload = r#"{"sub":"x"}"#;
        let padded = format!("h.{}==.s", URL_SAFE_NO_PAD.encode(payload));
        assert_eq!(jwt_payload(&padded).as_deref(), Some(payload.as_bytes()));
        for bad in ["not-a-jwt", "a.b", "a.b.c.d", "a..c", "a.!!!.c"] {
            assert_eq!(jwt_payload(bad), None, "{bad}");
        }
        assert_eq!(times(&jwt("[1,2]")), None);
        assert_eq!(times(&jwt("not json")), None);
        let t = parse(json!({ "access_token": "a.!!!.c", "expires_in": 5 })).unwrap();
        assert_eq!(t.expires_at, NOW + 5_000.0, "a bad JWT is an opaque token");
    }

    #[test]
    fn sign_in_replies_are_refusals_or_validated_tokens() {
        let reply = |status, error: Option<&str>, body: Option<Value>| {
            let body = body.map(|v| (serde_json::from_value::<TokenResponse>(v).unwrap(), None));
            TokenSet::from_sign_in(status, error.map(str::to_string), body, NOW, None)
        };
        let good = json!({ "access_token": "a1", "expires_in": 60, "refresh_token": "r1" });
        let t = reply(200, None, Some(good.clone())).unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_at), ("a1", NOW + 60_000.0));
        assert_eq!(
            reply(401, Some("invalid_grant"), Some(good)).unwrap_err(),
            Error::LoginFailed(401, Some("invalid_grant".into())),
            "a refusal, whatever the body"
        );
        assert_eq!(reply(500, None, None).unwrap_err(), Error::LoginFailed(500, None));
        assert_eq!(field(reply(200, None, None)), "(body)", "2xx without a JSON object");
        assert_eq!(field(reply(201, None, Some(json!({ "expires_in": 5 })))), "access_token");
    }

    #[test]
    fn cookie_sessions_are_read_with_the_servers_clock_corrected() {
        let body = |v: Value| serde_json::from_value::<SessionResponse>(v).unwrap();
        let server_now = NOW - 60_000.0; // the server's clock is a minute behind ours
        let t = TokenSet::from_session(
            body(json!({ "csrfToken": "c1", "expiresAt": server_now + 900_000.0 })),
            Some(r#"{"name":"Demo"}"#.into()),
            NOW,
            Some(server_now),
        )
        .unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_at, t.refresh_token.as_deref()), ("c1", NOW + 900_000.0, None));
        assert!(t.validate().is_ok());
        for bad in [
            json!({ "expiresAt": NOW + 1.0 }),
            json!({ "csrfToken": "a b", "expiresAt": NOW + 1.0 }),
            json!({ "csrfToken": "c" }),
            json!({ "csrfToken": "c", "expiresAt": "soon" }),
            json!({ "csrfToken": "c", "expiresAt": NOW - 5.0 }),
        ] {
            assert!(TokenSet::from_session(body(bad.clone()), None, NOW, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn stored_sets_round_trip_and_tampered_ones_fail_validation() {
        let t = sample(1.0);
        let back: TokenSet = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        let mut bad = t.clone();
        bad.expires_at = f64::NAN;
        assert!(bad.validate().is_err());
        let mut bad = t.clone();
        bad.expires_at = bad.issued_at - 1.0;
        assert!(bad.validate().is_err());
        let mut bad = t;
        bad.refresh_token = Some("line\nbreak".into());
        assert!(bad.validate().is_err());
    }
}
