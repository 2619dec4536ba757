//! DPoP (RFC 9449): tokens bound to a key that never leaves the browser.
//!
//! With every request the client sends a *proof* in the `DPoP` header: a JWT signed with its
//! P-256 key (ES256), the public key in the header, and claims naming the request (`htm`,
//! `htu`), when it was made (`iat`), a unique id (`jti`), the hash of the access token it
//! carries (`ath`) and, when the server asks for one, the server's `nonce`. [`Verifier::check`]
//! checks a proof against the request it came with and answers the key's RFC 7638 thumbprint,
//! which the server binds tokens to (`cnf.jkt`): a stolen token is useless without the key.
//!
//! Nonces (§8, §9): with [`Config::nonce`] set, a proof must carry the current nonce, or the
//! one it replaced while that one's grace period lasts (tabs that share a nonce do not all
//! learn the new one at once). Nonces rotate every [`NoncePolicy::rotate_ms`].

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Proofs longer than this are refused before parsing (a real one is about 600 bytes).
const MAX_PROOF_LEN: usize = 4096;
/// Longest `jti` kept in the replay cache.
const MAX_JTI_LEN: usize = 256;
/// Most `jti`s remembered at once; when full after forgetting the expired ones, new proofs
/// are refused rather than let a replay through.
const MAX_SEEN: usize = 100_000;

/// How proofs are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How far a proof's `iat` may be from the server's clock, either way (`DPOP_IAT_WINDOW`).
    pub iat_window_ms: u64,
    /// Demand server nonces (`DPOP_NONCE=1`); `None` accepts proofs without one.
    pub nonce: Option<NoncePolicy>,
}

impl Default for Config {
    fn default() -> Self {
        Self { iat_window_ms: 60_000, nonce: None }
    }
}

/// When nonces change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoncePolicy {
    /// A nonce is replaced this long after it was made (`DPOP_NONCE_ROTATE`).
    pub rotate_ms: u64,
    /// The replaced nonce is still accepted this long after it was due (`DPOP_NONCE_GRACE`).
    pub grace_ms: u64,
}

impl Default for NoncePolicy {
    fn default() -> Self {
        Self { rotate_ms: 30_000, grace_ms: 10_000 }
    }
}

/// The request a proof must name.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The HTTP method, as sent (`GET`, `POST`).
    pub method: &'a str,
    /// The request's URL without query or fragment, as the server sees it.
    pub url: &'a str,
    /// The access token sent with the proof (resource requests): the proof's `ath` must be
    /// its hash.
    pub access_token: Option<&'a str>,
}

/// Why a proof was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `invalid_dpop_proof`, with what was wrong.
    Invalid(&'static str),
    /// `use_dpop_nonce`: retry with the current nonce.
    UseNonce,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// Present only in a private key, which a proof must never carry.
    d: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<f64>,
    jti: Option<String>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks proofs, remembers the `jti`s it accepted, and keeps the nonces.
pub struct Verifier {
    config: Config,
    /// `jkt.jti` of accepted proofs, with when they may be forgotten (their `iat` is then
    /// outside the window, so the proof would be refused anyway).
    seen: HashMap<String, u64>,
    nonces: Option<Nonces>,
}

impl Verifier {
    /// A verifier with nothing seen; `seed` makes the nonces unpredictable.
    pub fn new(config: Config, seed: [u8; 32], now_ms: u64) -> Self {
        let nonces = config.nonce.map(|policy| Nonces::new(policy, seed, now_ms));
        Self { config, seen: HashMap::new(), nonces }
    }

    /// Checks `proof` for `target` and records its `jti`; answers the key's thumbprint.
    pub fn check(&mut self, proof: &str, target: &Target, now_ms: u64) -> Result<String, Refusal> {
        use Refusal::Invalid;
        if proof.len() > MAX_PROOF_LEN {
            return Err(Invalid("the DPoP proof is too long"));
        }
        let mut parts = proof.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Invalid("the DPoP proof is not a compact JWS"));
        };
        let header: Header = decode_json(h).ok_or(Invalid("the DPoP proof header is not base64url JSON"))?;
        if header.typ.as_deref() != Some("dpop+jwt") {
            return Err(Invalid("the DPoP proof's typ must be dpop+jwt"));
        }
        if header.alg.as_deref() != Some("ES256") {
            return Err(Invalid("the DPoP proof's alg must be ES256"));
        }
        let jwk = header.jwk.ok_or(Invalid("the DPoP proof header has no jwk"))?;
        let (key, jkt) = public_key(&jwk)?;
        let sig = B64.decode(s).ok().and_then(|b| Signature::from_slice(&b).ok());
        let sig = sig.ok_or(Invalid("the DPoP proof's signature is not a raw 64-byte ES256 signature"))?;
        // JWS signs the encoded header and payload as they were sent (RFC 7515 §5.2).
        key.verify(format!("{h}.{p}").as_bytes(), &sig).map_err(|_| Invalid("the DPoP proof's signature is wrong"))?;

        let claims: Claims = decode_json(p).ok_or(Invalid("the DPoP proof payload is not base64url JSON"))?;
        if claims.htm.as_deref() != Some(target.method) {
            return Err(Invalid("the DPoP proof's htm is not the request's method"));
        }
        let htu = claims.htu.as_deref().and_then(normalize_url);
        if htu.is_none() || htu != normalize_url(target.url) {
            return Err(Invalid("the DPoP proof's htu is not the request's URL"));
        }
        let iat_ms = claims.iat.filter(|t| t.is_finite() && *t > 0.0).map(|t| (t * 1000.0) as u64);
        let iat_ms = iat_ms.ok_or(Invalid("the DPoP proof has no iat"))?;
        if iat_ms.abs_diff(now_ms) > self.config.iat_window_ms {
            return Err(Invalid("the DPoP proof's iat is too far from the server's clock"));
        }
        let jti = claims.jti.filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN);
        let jti = jti.ok_or(Invalid("the DPoP proof needs a jti of 1 to 256 characters"))?;
        if let Some(token) = target.access_token {
            if claims.ath.as_deref() != Some(ath(token).as_str()) {
                return Err(Invalid("the DPoP proof's ath is not the hash of the access token"));
            }
        }
        if let Some(nonces) = &mut self.nonces {
            if !claims.nonce.is_some_and(|n| nonces.accepts(&n, now_ms)) {
                return Err(Refusal::UseNonce);
            }
        }
        self.remember(format!("{jkt}.{jti}"), iat_ms.max(now_ms) + self.config.iat_window_ms, now_ms)?;
        Ok(jkt)
    }

    fn remember(&mut self, key: String, forget_at: u64, now_ms: u64) -> Result<(), Refusal> {
        if self.seen.get(&key).is_some_and(|until| *until > now_ms) {
            return Err(Refusal::Invalid("the DPoP proof was used before (its jti is not new)"));
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.retain(|_, until| *until > now_ms);
            if self.seen.len() >= MAX_SEEN {
                return Err(Refusal::Invalid("too many DPoP proofs at once; try again later"));
            }
        }
        self.seen.insert(key, forget_at);
        Ok(())
    }

    /// The nonce to hand out now, if nonces are demanded.
    pub fn nonce(&mut self, now_ms: u64) -> Option<String> {
        self.nonces.as_mut().map(|n| n.current(now_ms).to_string())
    }

    /// Replaces the nonce now (`POST /__dpop/rotate`); the old one keeps its grace period.
    pub fn rotate_nonce(&mut self, now_ms: u64) {
        if let Some(n) = &mut self.nonces {
            n.rotate(now_ms);
        }
    }

    /// Forgets every `jti` seen (`POST /__reset`).
    pub fn reset(&mut self) {
        self.seen.clear();
    }
}

/// The current nonce and the one it replaced.
struct Nonces {
    policy: NoncePolicy,
    seed: [u8; 32],
    counter: u64,
    current: String,
    since_ms: u64,
    /// The replaced nonce and until when it is accepted.
    previous: Option<(String, u64)>,
}

impl Nonces {
    fn new(policy: NoncePolicy, seed: [u8; 32], now_ms: u64) -> Self {
        let mut n = Self { policy, seed, counter: 0, current: String::new(), since_ms: now_ms, previous: None };
        n.current = n.fresh();
        n
    }

    fn fresh(&mut self) -> String {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        B64.encode(&h.finalize()[..16])
    }

    fn current(&mut self, now_ms: u64) -> &str {
        if now_ms >= self.since_ms.saturating_add(self.policy.rotate_ms) {
            self.rotate(now_ms);
        }
        &self.current
    }

    fn rotate(&mut self, now_ms: u64) {
        // The grace counts from when the nonce was due, so after an idle spell a long-stale
        // nonce is not revived.
        let due = self.since_ms.saturating_add(self.policy.rotate_ms).min(now_ms);
        let fresh = self.fresh();
        let old = std::mem::replace(&mut self.current, fresh);
        self.previous = Some((old, due.saturating_add(self.policy.grace_ms)));
        self.since_ms = now_ms;
    }

    fn accepts(&mut self, nonce: &str, now_ms: u64) -> bool {
        nonce == self.current(now_ms) || self.previous.as_ref().is_some_and(|(p, until)| p == nonce && now_ms < *until)
    }
}

/// The public key of a JWK and its RFC 7638 thumbprint; only EC P-256 public keys pass.
fn public_key(jwk: &Jwk) -> Result<(VerifyingKey, String), Refusal> {
    if jwk.d.is_some() {
        return Err(Refusal::Invalid("the DPoP proof's jwk holds a private key"));
    }
    if jwk.kty.as_deref() != Some("EC") || jwk.crv.as_deref() != Some("P-256") {
        return Err(Refusal::Invalid("the DPoP proof's jwk must be an EC P-256 key"));
    }
    let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
        return Err(Refusal::Invalid("the DPoP proof's jwk has no x or y"));
    };
    let coordinate = |c: &str| B64.decode(c).ok().filter(|b| b.len() == 32);
    let (Some(xb), Some(yb)) = (coordinate(x), coordinate(y)) else {
        return Err(Refusal::Invalid("the DPoP proof's jwk x and y must be 32 bytes in base64url"));
    };
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&xb);
    sec1.extend_from_slice(&yb);
    let key =
        VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| Refusal::Invalid("the DPoP proof's jwk is not on P-256"))?;
    Ok((key, thumbprint(x, y)))
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&B64.decode(part).ok()?).ok()
}

/// RFC 7638 thumbprint of an EC P-256 public key: SHA-256 of its required members in
/// lexicographic order, no whitespace, in base64url.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// The `ath` claim for an access token: base64url(SHA-256(token)).
pub fn ath(access_token: &str) -> String {
    B64.encode(Sha256::digest(access_token.as_bytes()))
}

/// A URL without query and fragment, scheme and host lowercased and the default port
/// dropped (RFC 3986 §6.2.2-3 normalization), so equal URLs compare equal.
fn normalize_url(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn policy() -> NoncePolicy {
        NoncePolicy { rotate_ms: 30_000, grace_ms: 10_000 }
    }

    /// A proof for `GET http://h/x` signed with the key made from `n`, at `iat_s`.
    fn proof(n: u8, iat_s: u64, jti: &str, nonce: Option<&str>) -> String {
        use p256::ecdsa::signature::Signer;
        let key = p256::ecdsa::SigningKey::from_bytes(&[n; 32].into()).unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        let (x, y) = (B64.encode(point.x().unwrap()), B64.encode(point.y().unwrap()));
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256",
            "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y}});
        let claims = serde_json::json!({"htm": "GET", "htu": "http://h/x", "iat": iat_s, "jti": jti, "nonce": nonce});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig: Signature = key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    const GET_X: Target = Target { method: "GET", url: "http://h/x", access_token: None };

    #[test]
    fn iat_must_be_within_the_window_of_the_servers_clock() {
        let mut v = Verifier::new(Config { iat_window_ms: 10_000, nonce: None }, [1; 32], T0);
        let t0_s = T0 / 1000;
        assert!(v.check(&proof(1, t0_s, "a", None), &GET_X, T0 + 10_000).is_ok());
        assert!(v.check(&proof(1, t0_s, "b", None), &GET_X, T0 - 10_000).is_ok(), "a client clock ahead");
        let late = v.check(&proof(1, t0_s, "c", None), &GET_X, T0 + 10_001);
        assert!(matches!(late, Err(Refusal::Invalid(why)) if why.contains("iat")));
    }

    #[test]
    fn a_jti_is_remembered_per_key_while_its_proof_could_pass() {
        let mut v = Verifier::new(Config { iat_window_ms: 10_000, nonce: None }, [1; 32], T0);
        let p = proof(1, T0 / 1000, "same", None);
        assert!(v.check(&p, &GET_X, T0).is_ok());
        assert!(matches!(v.check(&p, &GET_X, T0 + 9_000), Err(Refusal::Invalid(why)) if why.contains("jti")));
        assert!(v.check(&proof(2, T0 / 1000, "same", None), &GET_X, T0).is_ok(), "another key's jti space");
        // Once the proof is too old to pass, its jti may be forgotten (the iat check refuses it).
        assert!(v.seen.values().all(|until| *until <= T0 + 10_000));
    }

    #[test]
    fn the_verifier_rotates_nonces_on_its_clock() {
        let config = Config { iat_window_ms: 600_000, nonce: Some(policy()) };
        let mut v = Verifier::new(config, [1; 32], T0);
        let first = v.nonce(T0).unwrap();
        assert_eq!(v.check(&proof(1, T0 / 1000, "a", None), &GET_X, T0), Err(Refusal::UseNonce));
        assert!(v.check(&proof(1, T0 / 1000, "b", Some(&first)), &GET_X, T0).is_ok());
        let second = v.nonce(T0 + 30_000).unwrap();
        assert_ne!(first, second);
        assert!(v.check(&proof(1, T0 / 1000, "c", Some(&first)), &GET_X, T0 + 39_999).is_ok(), "grace");
        assert_eq!(v.check(&proof(1, T0 / 1000, "d", Some(&first)), &GET_X, T0 + 40_000), Err(Refusal::UseNonce));
        assert!(v.check(&proof(1, T0 / 1000, "e", Some(&second)), &GET_X, T0 + 40_000).is_ok());
    }

    #[test]
    fn urls_compare_after_normalization() {
        assert_eq!(normalize_url("HTTP://Example.COM:80/a/B?q=1#f").as_deref(), Some("http://example.com/a/B"));
        assert_eq!(normalize_url("https://h:443").as_deref(), Some("https://h/"));
        assert_eq!(normalize_url("http://127.0.0.1:8080/x").as_deref(), Some("http://127.0.0.1:8080/x"));
        assert_eq!(normalize_url("ftp://h/x"), None);
        assert_eq!(normalize_url("/relative"), None);
        assert_eq!(normalize_url("http://user@h/x"), None);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example_shape() {
        // RFC 7638 §3.1 uses an RSA key; this checks the member order and encoding instead.
        let t = thumbprint("AAAA", "BBBB");
        let expected = B64.encode(Sha256::digest(br#"{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}"#));
        assert_eq!(t, expected);
        assert_eq!(t.len(), 43);
    }

    #[test]
    fn nonce_rotates_and_the_previous_one_has_a_grace_period() {
        let mut n = Nonces::new(policy(), [7; 32], T0);
        let first = n.current(T0).to_string();
        assert!(n.accepts(&first, T0 + 29_999));
        let second = n.current(T0 + 30_000).to_string();
        assert_ne!(first, second, "due after rotate_ms");
        assert!(n.accepts(&first, T0 + 39_999), "grace");
        assert!(!n.accepts(&first, T0 + 40_000), "grace over");
        assert!(n.accepts(&second, T0 + 40_000));
        assert!(!n.accepts("made-up", T0 + 40_000));
    }

    #[test]
    fn a_nonce_left_long_unused_gets_no_fresh_grace() {
        let mut n = Nonces::new(policy(), [7; 32], T0);
        let first = n.current(T0).to_string();
        // Nobody asked for ten minutes: the first nonce was due at 30 s, its grace ended at 40 s.
        assert!(!n.accepts(&first, T0 + 600_000));
    }

    #[test]
    fn a_forced_rotation_keeps_the_old_nonce_for_the_grace_period() {
        let mut n = Nonces::new(policy(), [7; 32], T0);
        let first = n.current(T0).to_string();
        n.rotate(T0 + 5_000);
        assert_ne!(n.current(T0 + 5_000), first);
        assert!(n.accepts(&first, T0 + 14_999));
        assert!(!n.accepts(&first, T0 + 15_000));
    }
}
