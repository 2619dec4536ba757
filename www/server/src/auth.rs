//! The auth backend's state: users, token families, rotation with reuse detection, JWTs.
//!
//! Refresh tokens rotate on every use. Each login starts a *family*; a refresh token presented a
//! second time is reuse, which revokes the whole family (OAuth 2.0 Security BCP §4.14.2).
//!
//! DPoP ([`crate::dpop`]): a sign-in with a proof binds its family to the proof's key; every
//! access token issued with a proof carries that key's thumbprint in `cnf.jkt` and is a `DPoP`
//! token; a bound family's refresh token is refused without a proof from the same key.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Demo accounts: `(username, password, display name)`.
const USERS: &[(&str, &str, &str)] = &[("demo", "demo", "Demo User"), ("alice", "wonderland", "Alice")];

/// Counters served by `GET /__stats`.
#[derive(Clone, Copy, Default, Serialize, Debug, PartialEq, Eq)]
pub struct Stats {
    pub logins: u64,
    pub refreshes: u64,
    pub refresh_reuse: u64,
    pub revocations: u64,
    pub api_ok: u64,
    pub api_unauthorized: u64,
    pub authorization_seen: u64,
    /// Requests whose URL contained a token issued here (tokens must never go in URLs).
    pub token_in_url: u64,
    /// Calls to the token endpoint, whatever their outcome.
    pub token_requests: u64,
    /// Refresh calls answered by a fault instead of the real handler.
    pub faults_applied: u64,
    /// Token and revocation requests that sent a `client_id`, and those whose `client_id`
    /// was not the demo's registered client, `demo-spa`.
    pub client_id_sent: u64,
    pub client_id_unknown: u64,
    /// Cookie sessions: unsafe requests refused for a missing or wrong CSRF token, session
    /// extensions, sessions alive now, and `Cookie` headers seen (by the foreign origin).
    pub csrf_rejected: u64,
    pub session_refreshes: u64,
    pub sessions_active: u64,
    pub cookie_seen: u64,
    /// DPoP: proofs that passed every check; requests refused for DPoP's sake (a bad proof,
    /// a bound token without its key's proof); `use_dpop_nonce` answers (not refusals: the
    /// client retries with the nonce).
    pub dpop_ok: u64,
    pub dpop_rejected: u64,
    pub dpop_nonce_challenges: u64,
}

/// An RFC 6749 §5.1 token response.
#[derive(Serialize, Debug, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key.
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// An RFC 6749 §5.2 error: the `error` code and a human description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub code: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    const fn new(status: u16, code: &'static str, description: &'static str) -> Self {
        Self { status, code, description }
    }
}

/// What a valid access token says.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub name: String,
    pub jti: String,
    pub fam: u64,
    pub exp: u64,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Family {
    sub: String,
    revoked: bool,
    /// The DPoP key its refresh tokens are bound to (a sign-in with a proof).
    #[serde(default)]
    jkt: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RefreshEntry {
    family: u64,
    used: bool,
    expires_at_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// All auth state. Time is passed in so tests can drive it.
pub struct Auth {
    pub access_ttl_s: u64,
    pub refresh_ttl_s: u64,
    secret: [u8; 32],
    counter: u64,
    families: HashMap<u64, Family>,
    refresh: HashMap<String, RefreshEntry>,
    pub stats: Stats,
}

/// 32 unpredictable-enough bytes for a dev server's keys and ids.
pub fn random_seed() -> [u8; 32] {
    let mut seed = Sha256::new();
    seed.update(now_ms().to_le_bytes());
    seed.update(std::process::id().to_le_bytes());
    let addr = &seed as *const _ as usize;
    seed.update(addr.to_le_bytes());
    if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
        seed.update(bytes);
    }
    seed.finalize().into()
}

/// The demo account with these credentials: `(username, display name)`.
pub fn check_credentials(username: &str, password: &str) -> Option<(&'static str, &'static str)> {
    USERS.iter().find(|(u, p, _)| *u == username && *p == password).map(|&(u, _, name)| (u, name))
}

impl Auth {
    /// A fresh backend with a random signing key.
    pub fn new(access_ttl_s: u64, refresh_ttl_s: u64) -> Self {
        Self {
            access_ttl_s,
            refresh_ttl_s,
            secret: random_seed(),
            counter: 0,
            families: HashMap::new(),
            refresh: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// The sessions and signing key as JSON, so that a restarted server keeps them
    /// (`STATE_FILE`). Counters are not kept.
    pub fn snapshot(&self) -> String {
        let families: Vec<(&u64, &Family)> = self.families.iter().collect();
        let refresh: Vec<(&String, &RefreshEntry)> = self.refresh.iter().collect();
        serde_json::json!({"secret": self.secret, "counter": self.counter, "families": families, "refresh": refresh})
            .to_string()
    }

    /// Restores sessions and key from [`Auth::snapshot`] output; `None` if it is unreadable.
    pub fn restore(&mut self, json: &str) -> Option<()> {
        #[derive(Deserialize)]
        struct Snapshot {
            secret: [u8; 32],
            counter: u64,
            families: Vec<(u64, Family)>,
            refresh: Vec<(String, RefreshEntry)>,
        }
        let s: Snapshot = serde_json::from_str(json).ok()?;
        self.secret = s.secret;
        self.counter = s.counter;
        self.families = s.families.into_iter().collect();
        self.refresh = s.refresh.into_iter().collect();
        Some(())
    }

    /// Forgets every session and zeroes the counters (`POST /__reset`).
    pub fn reset(&mut self) {
        self.families.clear();
        self.refresh.clear();
        self.stats = Stats::default();
    }

    fn random_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(self.counter.to_le_bytes());
        h.update(now_ms().to_le_bytes());
        let digest = h.finalize();
        let mut out = String::from(prefix);
        out.push_str(&B64.encode(&digest[..18]));
        out
    }

    /// `POST /auth/login`: checks the credentials and starts a token family, bound to the
    /// DPoP key `jkt` if the request had a proof.
    pub fn login(
        &mut self,
        username: &str,
        password: &str,
        jkt: Option<&str>,
        now_ms: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let Some((user, _)) = check_credentials(username, password) else {
            return Err(OAuthError::new(401, "invalid_credentials", "wrong username or password"));
        };
        self.counter += 1;
        let family = self.counter;
        self.families.insert(family, Family { sub: user.to_string(), revoked: false, jkt: jkt.map(str::to_owned) });
        self.stats.logins += 1;
        Ok(self.issue(family, jkt, now_ms))
    }

    /// `POST /auth/token` with `grant_type=refresh_token`: rotates the refresh token. `jkt` is
    /// the key of the request's DPoP proof: a bound family needs its own key's proof, and
    /// the new access token is bound to the proof's key (an unbound family stays unbound,
    /// as in oidc-provider).
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        jkt: Option<&str>,
        now_ms: u64,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid = OAuthError::new(400, "invalid_grant", "refresh token is invalid, expired or revoked");
        let Some(family) = self.refresh.get(refresh_token).map(|e| e.family) else { return Err(invalid) };
        let bound = self.families.get(&family).and_then(|f| f.jkt.as_deref());
        if bound.is_some() && bound != jkt {
            // Checked before the token counts as used: whoever stole it without the key can
            // neither use it nor, by trying, make the owner's next refresh look like reuse.
            self.stats.dpop_rejected += 1;
            return Err(OAuthError::new(
                400,
                "invalid_grant",
                "the refresh token is bound to a DPoP key: send a proof signed with it",
            ));
        }
        let Some(entry) = self.refresh.get_mut(refresh_token) else { return Err(invalid) };
        if entry.used {
            self.stats.refresh_reuse += 1;
            self.revoke_family(family);
            return Err(OAuthError::new(400, "invalid_grant", "refresh token reuse detected; session revoked"));
        }
        entry.used = true;
        if entry.expires_at_ms <= now_ms || self.families.get(&family).is_none_or(|f| f.revoked) {
            return Err(invalid);
        }
        self.stats.refreshes += 1;
        Ok(self.issue(family, jkt, now_ms))
    }

    /// `POST /auth/revoke` (RFC 7009): revokes the family of a refresh or access token.
    /// Unknown tokens are not an error, as the RFC requires.
    pub fn revoke(&mut self, token: &str) {
        let family = match self.refresh.get(token) {
            Some(e) => Some(e.family),
            None => self.verify_signature(token).map(|c| c.fam),
        };
        if let Some(family) = family {
            if self.families.get(&family).is_some_and(|f| !f.revoked) {
                self.stats.revocations += 1;
                self.revoke_family(family);
            }
        }
    }

    fn revoke_family(&mut self, family: u64) {
        if let Some(f) = self.families.get_mut(&family) {
            f.revoked = true;
        }
    }

    /// True when `text` (a request URL) contains a token issued here.
    pub fn contains_token(&self, text: &str) -> bool {
        // Every access token starts with the same encoded JWT header.
        text.contains(&B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#))
            || (text.contains("rt_") && self.refresh.keys().any(|t| text.contains(t.as_str())))
    }

    /// Checks a bearer token for the API: signature, expiry, family not revoked.
    pub fn authorize(&self, access_token: &str, now_ms: u64) -> Option<Principal> {
        let p = self.verify_signature(access_token)?;
        let live = p.exp.saturating_mul(1000) > now_ms && self.families.get(&p.fam).is_some_and(|f| !f.revoked);
        live.then_some(p)
    }

    fn issue(&mut self, family: u64, jkt: Option<&str>, now_ms: u64) -> TokenResponse {
        let sub = self.families.get(&family).map(|f| f.sub.clone()).unwrap_or_default();
        let name = USERS.iter().find(|(u, _, _)| *u == sub).map(|u| u.2).unwrap_or("");
        let iat = now_ms / 1000;
        // Round up so the token lives at least `expires_in` seconds from now.
        let exp = now_ms.div_ceil(1000) + self.access_ttl_s;
        let jti = self.random_id("at_");
        let mut claims =
            serde_json::json!({"sub": sub, "name": name, "iat": iat, "exp": exp, "jti": jti, "fam": family});
        if let Some(jkt) = jkt {
            claims["cnf"] = serde_json::json!({ "jkt": jkt });
        }
        let access_token = self.sign(&claims);
        let refresh_token = self.random_id("rt_");
        let expires_at_ms = now_ms + self.refresh_ttl_s * 1000;
        self.refresh.insert(refresh_token.clone(), RefreshEntry { family, used: false, expires_at_ms });
        let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
        TokenResponse { access_token, token_type, expires_in: self.access_ttl_s, refresh_token }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!())
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64.encode(claims.to_string());
        let mut input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        input.push('.');
        input.push_str(&sig);
        input
    }

    fn verify_signature(&self, token: &str) -> Option<Principal> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&B64.decode(s).ok()?).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&B64.decode(p).ok()?).ok()?;
        Some(Principal {
            sub: claims["sub"].as_str()?.to_string(),
            name: claims["name"].as_str().unwrap_or_default().to_string(),
            jti: claims["jti"].as_str()?.to_string(),
            fam: claims["fam"].as_u64()?,
            exp: claims["exp"].as_u64()?,
            jkt: claims["cnf"]["jkt"].as_str().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn auth() -> Auth {
        Auth::new(30, 3600)
    }

    #[test]
    fn login_checks_credentials() {
        let mut a = auth();
        assert_eq!(a.login("demo", "nope", None, T0).unwrap_err().status, 401);
        let t = a.login("demo", "demo", None, T0).unwrap();
        assert_eq!(t.expires_in, 30);
        assert_eq!(a.authorize(&t.access_token, T0).unwrap().sub, "demo");
        assert_eq!(a.stats.logins, 1);
    }

    #[test]
    fn access_token_expires_no_earlier_than_expires_in() {
        let mut a = auth();
        let t = a.login("demo", "demo", None, T0 + 999).unwrap();
        assert!(a.authorize(&t.access_token, T0 + 999 + 30_000).is_some());
        assert!(a.authorize(&t.access_token, T0 + 999 + 31_001).is_none());
    }

    #[test]
    fn tampered_token_is_refused() {
        let mut a = auth();
        let t = a.login("demo", "demo", None, T0).unwrap();
        let mut bad = t.access_token.clone();
        bad.pop();
        bad.push('A');
        assert!(a.authorize(&bad, T0).is_none() || bad == t.access_token);
        assert!(a.authorize("a.b.c", T0).is_none());
        assert!(a.authorize("", T0).is_none());
    }

    #[test]
    fn refresh_rotates_and_reuse_revokes_family() {
        let mut a = auth();
        let t1 = a.login("demo", "demo", None, T0).unwrap();
        let t2 = a.refresh(&t1.refresh_token, None, T0 + 1).unwrap();
        assert_ne!(t1.refresh_token, t2.refresh_token);
        assert!(a.authorize(&t2.access_token, T0 + 2).is_some());
        // Reuse of t1's refresh token: rejected, and the whole family dies.
        let err = a.refresh(&t1.refresh_token, None, T0 + 3).unwrap_err();
        assert_eq!((err.status, err.code), (400, "invalid_grant"));
        assert_eq!(a.stats.refresh_reuse, 1);
        assert!(a.authorize(&t2.access_token, T0 + 4).is_none());
        assert!(a.refresh(&t2.refresh_token, None, T0 + 5).is_err());
        assert_eq!(a.stats.refreshes, 1);
    }

    #[test]
    fn revoke_kills_family_and_ignores_unknown_tokens() {
        let mut a = auth();
        let t = a.login("demo", "demo", None, T0).unwrap();
        a.revoke("not-a-token");
        assert_eq!(a.stats.revocations, 0);
        a.revoke(&t.refresh_token);
        assert_eq!(a.stats.revocations, 1);
        assert!(a.authorize(&t.access_token, T0).is_none());
        assert_eq!(a.refresh(&t.refresh_token, None, T0).unwrap_err().code, "invalid_grant");
    }

    #[test]
    fn snapshot_restores_sessions_and_key() {
        let mut a = auth();
        let t = a.login("demo", "demo", None, T0).unwrap();
        let mut b = auth();
        b.restore(&a.snapshot()).unwrap();
        assert!(b.authorize(&t.access_token, T0).is_some(), "same signing key");
        assert!(b.refresh(&t.refresh_token, None, T0).is_ok(), "same refresh tokens");
        assert!(auth().restore("garbage").is_none());
    }

    #[test]
    fn expired_refresh_token_is_invalid_grant() {
        let mut a = Auth::new(30, 10);
        let t = a.login("demo", "demo", None, T0).unwrap();
        assert_eq!(a.refresh(&t.refresh_token, None, T0 + 10_001).unwrap_err().code, "invalid_grant");
    }
}
