//! [`TokenSet`]: what an OAuth 2.0 token response (RFC 6749 §5.1) gives us, validated, with
//! absolute expiry. Also JWT payload decoding (base64url) for claims and `exp`/`iat`.

use crate::prelude::*;

use crate::clock;
use crate::error::Error;
use crate::value::Value;

/// Longest token accepted. Servers reject headers much smaller than this anyway.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest access token lifetime accepted: one year.
pub const MAX_LIFETIME_S: f64 = 366.0 * 24.0 * 3600.0;

/// The tokens of one session, with times in epoch milliseconds on the client's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    /// The bearer token sent to APIs.
    pub access_token: String,
    /// The refresh token, if the server issued one.
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, if the server sent one.
    pub id_token: Option<String>,
    /// Granted scope, if the server said.
    pub scope: Option<String>,
    /// When the response arrived.
    pub issued_at: f64,
    /// When the access token expires.
    pub expires_at: f64,
}

/// The JWT claims that matter for timing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JwtTimes {
    /// `exp` in seconds, if present and numeric.
    pub exp: Option<f64>,
    /// `iat` in seconds, if present and numeric.
    pub iat: Option<f64>,
}

/// True when `s` can go into an HTTP header and a form body unchanged: visible ASCII only.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn token_field(get: &dyn Fn(&str) -> Value, field: &'static str, required: bool) -> Result<Option<String>, Error> {
    match get(field) {
        Value::Str(s) if header_safe(&s) => Ok(Some(s)),
        Value::Str(s) if s.len() > MAX_TOKEN_LEN => Err(Error::TokenResponse(field, "is longer than 16 KB")),
        Value::Str(s) if s.is_empty() && required => Err(Error::TokenResponse(field, "is empty")),
        Value::Str(_) => Err(Error::TokenResponse(field, "contains spaces or non-ASCII characters")),
        v if v.is_absent() && !required => Ok(None),
        v if v.is_absent() => Err(Error::TokenResponse(field, "is missing")),
        _ => Err(Error::TokenResponse(field, "must be a string")),
    }
}

fn scope(get: &dyn Fn(&str) -> Value) -> Result<Option<String>, Error> {
    match get("scope") {
        Value::Str(s) if s.len() <= MAX_TOKEN_LEN => Ok(Some(s)),
        v if v.is_absent() => Ok(None),
        _ => Err(Error::TokenResponse("scope", "must be a string")),
    }
}

/// Issued and expiry times that a real token set can have: finite, expiring after issue,
/// within a year.
fn times_ok(issued_at: f64, expires_at: f64) -> bool {
    let lifetime = expires_at - issued_at;
    issued_at.is_finite() && expires_at.is_finite() && lifetime > 0.0 && lifetime <= MAX_LIFETIME_S * 1000.0
}

/// Whole seconds from a decimal string, without float parsing (which costs ~16 KB of wasm).
fn whole_seconds(s: &str) -> Option<f64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 12 digits: no overflow, and no `FromStr` machinery.
    Some(s.bytes().fold(0.0, |n, b| n * 10.0 + f64::from(b - b'0')))
}

/// `expires_in` in seconds: a positive number (or numeric string, as some servers send).
fn expires_in(get: &dyn Fn(&str) -> Value) -> Result<Option<f64>, Error> {
    let secs = match get("expires_in") {
        v if v.is_absent() => return Ok(None),
        Value::Num(n) => n,
        Value::Str(s) => {
            whole_seconds(&s).ok_or(Error::TokenResponse("expires_in", "must be a whole number of seconds"))?
        }
        _ => return Err(Error::TokenResponse("expires_in", "must be a number of seconds")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(Error::TokenResponse("expires_in", "must be a positive number of seconds"));
    }
    if secs > MAX_LIFETIME_S {
        return Err(Error::TokenResponse("expires_in", "is longer than a year"));
    }
    Ok(Some(secs))
}

impl TokenSet {
    /// Reads a token response through `get` (field name -> value).
    ///
    /// `now` is when the response arrived; `server_date` the response's `Date` header (ms) if
    /// readable. Expiry comes from `expires_in` counted from `now`; only without it is a JWT
    /// `exp` used, corrected by the skew seen in `iat` or `server_date`. `previous_refresh` is
    /// kept when the server sent no new refresh token (RFC 6749 §6).
    pub fn from_response(
        get: &dyn Fn(&str) -> Value,
        now: f64,
        server_date: Option<f64>,
        previous_refresh: Option<&str>,
    ) -> Result<TokenSet, Error> {
        // `Bearer` is the only type supported, so it is checked here and not stored.
        match get("token_type") {
            Value::Str(t) if t.eq_ignore_ascii_case("bearer") => {}
            v if v.is_absent() => {}
            Value::Str(_) => {
                return Err(Error::TokenResponse("token_type", "must be \"Bearer\" (other types are not supported)"))
            }
            _ => return Err(Error::TokenResponse("token_type", "must be a string")),
        }
        let access_token = token_field(get, "access_token", true)?.unwrap_or_default();
        let refresh_token = token_field(get, "refresh_token", false)?.or_else(|| previous_refresh.map(str::to_string));
        let id_token = token_field(get, "id_token", false)?;
        let scope = scope(get)?;
        let expires_at = match expires_in(get)? {
            Some(secs) => now + secs * 1000.0,
            None => {
                let times = jwt_times(&access_token).unwrap_or_default();
                let exp = times
                    .exp
                    .ok_or(Error::TokenResponse("expires_in", "is missing and the access token has no exp claim"))?;
                let server_now = times.iat.map(|s| s * 1000.0).or(server_date);
                let at = exp * 1000.0 + clock::skew(now, server_now);
                if at <= now {
                    return Err(Error::TokenResponse("access_token", "is already expired (exp)"));
                }
                at.min(now + MAX_LIFETIME_S * 1000.0)
            }
        };
        Ok(TokenSet { access_token, refresh_token, id_token, scope, issued_at: now, expires_at })
    }

    /// Checks the invariants every parsed token set holds. The parsers enforce them field by
    /// field; this whole-set check is what the tests and the fuzzer hold their output to.
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
        Ok(())
    }

    /// The flat fields used in storage and cross-tab messages.
    pub fn to_fields(&self, out: &mut Vec<(&'static str, Value)>) {
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Str);
        out.push(("access_token", Value::Str(self.access_token.clone())));
        out.push(("token_type", Value::Str("Bearer".into())));
        out.push(("refresh_token", opt(&self.refresh_token)));
        out.push(("id_token", opt(&self.id_token)));
        out.push(("scope", opt(&self.scope)));
        out.push(("issued_at", Value::Num(self.issued_at)));
        out.push(("expires_at", Value::Num(self.expires_at)));
    }

    /// Reads the fields written by [`TokenSet::to_fields`], strictly, with the rules of a
    /// fresh response (the same field readers).
    pub fn from_fields(get: &dyn Fn(&str) -> Value) -> Result<TokenSet, Error> {
        let bad = |field| Error::TokenResponse(field, "is invalid");
        let num = |field| match get(field) {
            Value::Num(n) => Ok(n),
            _ => Err(bad(field)),
        };
        match get("token_type") {
            Value::Str(t) if t == "Bearer" => {}
            _ => return Err(bad("token_type")),
        }
        let (issued_at, expires_at) = (num("issued_at")?, num("expires_at")?);
        if !times_ok(issued_at, expires_at) {
            return Err(bad("expires_at"));
        }
        Ok(TokenSet {
            access_token: token_field(get, "access_token", true)?.unwrap_or_default(),
            refresh_token: token_field(get, "refresh_token", false)?,
            id_token: token_field(get, "id_token", false)?,
            scope: scope(get)?,
            issued_at,
            expires_at,
        })
    }

    /// Milliseconds from issue to expiry.
    pub fn lifetime(&self) -> f64 {
        self.expires_at - self.issued_at
    }
}

/// A token set for unit tests: 30 s lifetime, refresh token `rt`.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) fn sample(issued_at: f64) -> TokenSet {
    TokenSet {
        access_token: "at".into(),
        refresh_token: Some("rt".into()),
        id_token: None,
        scope: None,
        issued_at,
        expires_at: issued_at + 30_000.0,
    }
}

/// Decodes unpadded base64url (RFC 4648 §5), as in JWTs. `None` on any invalid input.
/// Hand-written: the base64 crate costs about 4 KB of wasm for this one call.
pub fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    let bytes = input.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | sextet(c)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let n = bits / 8;
        // Leftover bits past the last whole byte must be zero (canonical encoding).
        if acc & ((1 << (24 - n * 8)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..=n]);
    }
    Some(out)
}

/// The decoded payload bytes of a JWT, or `None` if `token` is not a readable JWT.
fn jwt_payload_bytes(token: &str) -> Option<Vec<u8>> {
    // Byte loops rather than `split`/`trim_matches`: the pattern machinery costs ~1 KB of wasm.
    let dot = |s: &str| s.bytes().position(|b| b == b'.');
    let rest = token.get(dot(token)? + 1..)?;
    let end = dot(rest)?;
    let payload = rest.get(..end)?;
    if dot(rest.get(end + 1..)?).is_some() || payload.is_empty() {
        return None;
    }
    let unpadded = payload.bytes().rposition(|b| b != b'=').map_or(0, |i| i + 1);
    base64url_decode(payload.get(..unpadded)?)
}

#[cfg(target_arch = "wasm32")]
pub use js::{jwt_object, jwt_times};

#[cfg(target_arch = "wasm32")]
mod js {
    use super::{jwt_payload_bytes, JwtTimes};
    use crate::value::Value;
    use wasm_bindgen::prelude::*;

    // UTF-8 check and JSON in one call to the browser's own decoders: Rust's `from_utf8`
    // costs about 1 KB of wasm, and JSON.parse is needed anyway.
    #[wasm_bindgen(module = "/src/browser.js")]
    extern "C" {
        /// The value of UTF-8 JSON `bytes`; `undefined` if they are not.
        fn ws_json(bytes: &[u8]) -> JsValue;
    }

    /// The payload of a JWT as a JS object (its claims), or `None` if `token` is not a JWT
    /// with a JSON object payload.
    pub fn jwt_object(token: &str) -> Option<JsValue> {
        Some(ws_json(&jwt_payload_bytes(token)?)).filter(JsValue::is_object)
    }

    /// `exp` and `iat` of a JWT, or `None` if `token` is not a JWT with a JSON object payload.
    pub fn jwt_times(token: &str) -> Option<JwtTimes> {
        let obj = jwt_object(token)?;
        let num = |k| match Value::field(&obj, k) {
            Value::Num(n) if n.is_finite() => Some(n),
            _ => None,
        };
        Some(JwtTimes { exp: num("exp"), iat: num("iat") })
    }
}

/// The decoded JSON payload of a JWT, or `None` if `token` is not a readable JWT.
#[cfg(not(target_arch = "wasm32"))]
pub fn jwt_payload(token: &str) -> Option<String> {
    String::from_utf8(jwt_payload_bytes(token)?).ok()
}

/// `exp` and `iat` of a JWT, or `None` if `token` is not a JWT with a JSON object payload.
#[cfg(not(target_arch = "wasm32"))]
pub fn jwt_times(token: &str) -> Option<JwtTimes> {
    let v: serde_json::Value = serde_json::from_str(&jwt_payload(token)?).ok()?;
    let obj = v.as_object()?;
    let num = |k: &str| obj.get(k).and_then(serde_json::Value::as_f64);
    Some(JwtTimes { exp: num("exp"), iat: num("iat") })
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NOW: f64 = 1_700_000_000_000.0;

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn jwt(payload: &str) -> String {
        ["eyJhbGciOiJIUzI1NiJ9", &b64(payload), "c2ln"].join(".")
    }

    #[test]
    fn base64url_matches_the_reference_decoder() {
        use base64::Engine;
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for len in 0..40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            assert_eq!(base64url_decode(&b64(&data)).as_deref(), Some(&data[..]), "len {len}");
        }
        for bad in ["a", "ab=c", "a+b/", "abcde", "ab c", "QQ", "QR"] {
            assert_eq!(base64url_decode(bad).is_some(), reference.decode(bad).is_ok(), "{bad}");
        }
    }

    fn parse_with(fields: &[(&str, Value)], server_date: Option<f64>, prev: Option<&str>) -> Result<TokenSet, Error> {
        let map: HashMap<String, Value> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let get = move |k: &str| map.get(k).cloned().unwrap_or(Value::Missing);
        TokenSet::from_response(&get, NOW, server_date, prev)
    }

    fn parse(fields: &[(&str, Value)]) -> Result<TokenSet, Error> {
        parse_with(fields, None, None)
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    #[test]
    fn good_response_with_opaque_token() {
        let t = parse(&[
            ("access_token", s("opaque123")),
            ("token_type", s("bearer")),
            ("expires_in", Value::Num(30.0)),
            ("refresh_token", s("rt1")),
        ])
        .unwrap();
        assert_eq!(t.expires_at, NOW + 30_000.0);
        assert_eq!(t.issued_at, NOW);
        assert_eq!(t.refresh_token.as_deref(), Some("rt1"));
        assert!(t.validate().is_ok());
    }

    #[test]
    fn expires_in_as_numeric_string_is_accepted() {
        let t = parse(&[("access_token", s("a")), ("expires_in", s("3600"))]).unwrap();
        assert_eq!(t.expires_at, NOW + 3_600_000.0);
    }

    #[test]
    fn expires_in_wins_over_jwt_exp() {
        let token = jwt(r#"{"exp":1,"iat":0}"#);
        let t = parse(&[("access_token", s(&token)), ("expires_in", Value::Num(60.0))]).unwrap();
        assert_eq!(t.expires_at, NOW + 60_000.0);
    }

    #[test]
    fn jwt_exp_is_corrected_by_iat_skew() {
        // Server clock 10 s behind the client: iat = client now - 10 s.
        let iat = (NOW - 10_000.0) / 1000.0;
        let token = jwt(&format!(r#"{{"sub":"u","iat":{iat},"exp":{}}}"#, iat + 300.0));
        let t = parse(&[("access_token", s(&token))]).unwrap();
        assert_eq!(t.expires_at, NOW + 300_000.0);
    }

    #[test]
    fn jwt_exp_without_iat_uses_the_date_header() {
        let server_now = NOW + 5_000.0; // server 5 s ahead
        let token = jwt(&format!(r#"{{"exp":{}}}"#, server_now / 1000.0 + 100.0));
        let t = parse_with(&[("access_token", s(&token))], Some(server_now), None).unwrap();
        assert_eq!(t.expires_at, NOW + 100_000.0);
    }

    #[test]
    fn missing_expiry_everywhere_is_an_error() {
        let e = parse(&[("access_token", s("opaque"))]).unwrap_err();
        assert_eq!(e, Error::TokenResponse("expires_in", "is missing and the access token has no exp claim"));
        // exp before iat: expired whatever the skew.
        let expired = jwt(&format!(r#"{{"exp":{},"iat":{}}}"#, NOW / 1000.0 - 10.0, NOW / 1000.0));
        assert!(parse(&[("access_token", s(&expired))]).is_err());
        // No iat, no Date header: exp taken as is.
        let stale = jwt(&format!(r#"{{"exp":{}}}"#, NOW / 1000.0 - 1.0));
        assert!(parse(&[("access_token", s(&stale))]).is_err());
    }

    #[test]
    fn missing_and_wrongly_typed_fields_are_named() {
        let field = |r: Result<TokenSet, Error>| match r.unwrap_err() {
            Error::TokenResponse(f, _) => f,
            e => panic!("unexpected {e:?}"),
        };
        assert_eq!(field(parse(&[("expires_in", Value::Num(1.0))])), "access_token");
        assert_eq!(field(parse(&[("access_token", Value::Num(1.0)), ("expires_in", Value::Num(1.0))])), "access_token");
        assert_eq!(field(parse(&[("access_token", s("")), ("expires_in", Value::Num(1.0))])), "access_token");
        assert_eq!(field(parse(&[("access_token", s("a b")), ("expires_in", Value::Num(1.0))])), "access_token");
        assert_eq!(
            field(parse(&[("access_token", s("a")), ("expires_in", Value::Num(1.0)), ("token_type", s("MAC"))])),
            "token_type"
        );
        assert_eq!(
            field(parse(&[
                ("access_token", s("a")),
                ("expires_in", Value::Num(1.0)),
                ("refresh_token", Value::Bool(true))
            ])),
            "refresh_token"
        );
        assert_eq!(
            field(parse(&[("access_token", s("a")), ("expires_in", Value::Num(1.0)), ("scope", Value::Num(2.0))])),
            "scope"
        );
    }

    #[test]
    fn absurd_expires_in_is_refused() {
        for bad in [
            Value::Num(0.0),
            Value::Num(-5.0),
            Value::Num(f64::NAN),
            Value::Num(f64::INFINITY),
            Value::Num(1e12),
            s("soon"),
            s("1.5"),
            s("-3"),
            s("99999999999999"),
            Value::Bool(true),
        ] {
            assert!(parse(&[("access_token", s("a")), ("expires_in", bad.clone())]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn huge_token_is_refused() {
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            parse(&[("access_token", s(&big)), ("expires_in", Value::Num(1.0))]).unwrap_err(),
            Error::TokenResponse("access_token", "is longer than 16 KB")
        );
    }

    #[test]
    fn previous_refresh_token_is_kept_only_when_none_is_sent() {
        let base = [("access_token", s("a")), ("expires_in", Value::Num(1.0))];
        assert_eq!(parse_with(&base, None, Some("old")).unwrap().refresh_token.as_deref(), Some("old"));
        let mut rotated = base.to_vec();
        rotated.push(("refresh_token", s("new")));
        assert_eq!(parse_with(&rotated, None, Some("old")).unwrap().refresh_token.as_deref(), Some("new"));
    }

    #[test]
    fn jwt_decoding_tolerates_padding_and_refuses_garbage() {
        let payload = r#"{"sub":"x"}"#;
        let padded = format!("h.{}==.s", b64(payload));
        assert_eq!(jwt_payload(&padded).as_deref(), Some(payload));
        assert_eq!(jwt_payload("not-a-jwt"), None);
        assert_eq!(jwt_payload("a.b"), None);
        assert_eq!(jwt_payload("a.b.c.d"), None);
        assert_eq!(jwt_payload("a..c"), None, "empty payload");
        assert_eq!(jwt_payload(&format!("h.{}.", b64(payload))).as_deref(), Some(payload), "unsigned");
        assert_eq!(jwt_payload(&format!("h.{}=", b64(payload))), None, "two parts");
        assert_eq!(jwt_payload("a.!!!.c"), None);
        assert_eq!(jwt_payload(&format!("a.{}.c", b64([0xff, 0xfe]))), None);
        assert_eq!(jwt_times(&jwt("[1,2]")), None);
        assert_eq!(jwt_times(&jwt("not json")), None);
        assert_eq!(jwt_times(&jwt(r#"{"exp":"soon"}"#)), Some(JwtTimes { exp: None, iat: None }));
    }

    #[test]
    fn jwt_with_bad_claims_is_treated_as_opaque() {
        let t = parse(&[("access_token", s("a.!!!.c")), ("expires_in", Value::Num(5.0))]).unwrap();
        assert_eq!(t.expires_at, NOW + 5_000.0);
    }

    #[test]
    fn fields_round_trip_and_wrong_types_are_refused() {
        let t =
            parse(&[("access_token", s("a")), ("expires_in", Value::Num(10.0)), ("refresh_token", s("r"))]).unwrap();
        let mut fields = Vec::new();
        t.to_fields(&mut fields);
        let map: HashMap<&str, Value> = fields.iter().cloned().collect();
        assert_eq!(TokenSet::from_fields(&|k| map.get(k).cloned().unwrap_or(Value::Missing)).unwrap(), t);
        for (field, wrong) in [
            ("access_token", Value::Num(1.0)),
            ("issued_at", s("1")),
            ("refresh_token", Value::Bool(true)),
            ("expires_at", Value::Missing),
            ("token_type", s("MAC")),
            ("token_type", Value::Missing),
        ] {
            let mut m = map.clone();
            m.insert(field, wrong);
            assert!(TokenSet::from_fields(&|k| m.get(k).cloned().unwrap_or(Value::Missing)).is_err(), "{field}");
        }
    }

    #[test]
    fn validate_refuses_tampered_sets() {
        let good = parse(&[("access_token", s("a")), ("expires_in", Value::Num(10.0))]).unwrap();
        let mut t = good.clone();
        t.expires_at = f64::NAN;
        assert!(t.validate().is_err());
        let mut t = good.clone();
        t.expires_at = t.issued_at - 1.0;
        assert!(t.validate().is_err());
        let mut t = good;
        t.refresh_token = Some("line\nbreak".into());
        assert!(t.validate().is_err());
    }
}
