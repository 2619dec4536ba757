//! DPoP (RFC 9449) over real sockets: proofs made here with p256, as a browser would make
//! them with WebCrypto, checked by the server rule by rule.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::scalar::IsHigh;
use serde_json::{json, Value};
use wasm_session_server::dpop::{self, NoncePolicy};

/// A client's key pair.
struct Key(SigningKey);

impl Key {
    fn new(n: u8) -> Self {
        Key(SigningKey::from_bytes(&[n; 32].into()).unwrap())
    }

    fn jwk(&self) -> Value {
        let point = self.0.verifying_key().to_encoded_point(false);
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())})
    }

    fn jkt(&self) -> String {
        let jwk = self.jwk();
        dpop::thumbprint(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
    }

    /// A compact JWS of `header` and `claims` with this key's raw r‖s signature.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig: Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    /// A valid proof for `method url`, carrying `token`'s hash and `nonce` if given.
    fn proof(&self, method: &str, url: &str, token: Option<&str>, nonce: Option<&str>) -> String {
        self.sign(&header(self), &claims(method, url, token, nonce))
    }
}

fn header(key: &Key) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk()})
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(method: &str, url: &str, token: Option<&str>, nonce: Option<&str>) -> Value {
    static JTI: AtomicU64 = AtomicU64::new(0);
    let mut c = json!({"htm": method, "htu": url, "iat": now_s(), "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed))});
    if let Some(t) = token {
        c["ath"] = json!(dpop::ath(t));
    }
    if let Some(n) = nonce {
        c["nonce"] = json!(n);
    }
    c
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

const CREDENTIALS: &str = r#"{"username":"demo","password":"demo"}"#;

/// `POST /auth/login` with a proof from `key`.
async fn login_with(port: u16, key: &Key, nonce: Option<&str>) -> Reply {
    let proof = key.proof("POST", &url(port, "/auth/login"), None, nonce);
    http(port, "POST", "/auth/login", &[JSON, ("DPoP", &proof)], CREDENTIALS).await.unwrap()
}

/// A bound sign-in: the token response.
async fn bound_login(port: u16, key: &Key) -> Value {
    let r = login_with(port, key, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// `GET path` with `Authorization: DPoP <token>` and `proof`.
async fn get_dpop(port: u16, path: &str, token: &str, proof: &str) -> Reply {
    let auth = format!("DPoP {token}");
    http(port, "GET", path, &[("Authorization", &auth), ("DPoP", proof)], "").await.unwrap()
}

/// `GET /api/me` as a client holding `key` would send it.
async fn me(port: u16, key: &Key, token: &str) -> Reply {
    get_dpop(port, "/api/me", token, &key.proof("GET", &url(port, "/api/me"), Some(token), None)).await
}

async fn refresh_with(port: u16, rt: &str, proof: Option<&str>) -> Reply {
    let body = format!("grant_type=refresh_token&refresh_token={rt}&client_id=demo-spa");
    let mut headers = vec![FORM];
    if let Some(p) = proof {
        headers.push(("DPoP", p));
    }
    http(port, "POST", "/auth/token", &headers, &body).await.unwrap()
}

fn challenge(r: &Reply) -> String {
    r.header("www-authenticate").unwrap_or_default()
}

#[tokio::test]
async fn a_sign_in_with_a_proof_gets_a_token_bound_to_its_key() {
    let s = start(30).await;
    let key = Key::new(1);
    let t = bound_login(s.main, &key).await;
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt());
    let r = me(s.main, &key, at).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.json()["sub"].as_str(), r.json()["jkt"].as_str()), (Some("demo"), Some(key.jkt().as_str())));
    // POST, on the second origin, through the same check.
    let proof = key.proof("POST", &url(s.api, "/api/counter"), Some(at), None);
    let auth = format!("DPoP {at}");
    let r = http(s.api, "POST", "/api/counter", &[("Authorization", &auth), ("DPoP", &proof)], "").await.unwrap();
    assert_eq!((r.status, r.json()["count"].as_u64()), (200, Some(1)));
    let st = stats(s.main).await;
    assert_eq!((st["dpop_ok"].as_u64(), st["dpop_rejected"].as_u64()), (Some(3), Some(0)));
    assert_eq!(st["api_ok"], 2);
}

#[tokio::test]
async fn without_a_proof_everything_stays_bearer() {
    let s = start(30).await;
    let t = login(s.main).await;
    assert_eq!(t["token_type"], "Bearer");
    let at = t["access_token"].as_str().unwrap();
    assert!(jwt_claims(at).get("cnf").is_none());
    let bearer = format!("Bearer {at}");
    let r = http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.json().get("jkt").is_none(), "{}", r.body);
    assert!(r.header("dpop-nonce").is_none());
    let r2 = refresh_with(s.main, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!((r2.status, r2.json()["token_type"].as_str()), (200, Some("Bearer")));
    let st = stats(s.main).await;
    assert_eq!((st["dpop_ok"].as_u64(), st["dpop_rejected"].as_u64()), (Some(0), Some(0)));
}

#[tokio::test]
async fn proofs_that_break_a_rule_are_refused() {
    let s = start(30).await;
    let key = Key::new(2);
    let other = Key::new(3);
    let t = bound_login(s.main, &key).await;
    let at = t["access_token"].as_str().unwrap();
    let me_url = url(s.main, "/api/me");
    let good = || claims("GET", &me_url, Some(at), None);
    let with = |k: &str, v: Value| {
        let mut c = good();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let head = header(&key);
    let head_with = |k: &str, v: Value| {
        let mut h = header(&key);
        h[k] = v;
        h
    };
    let mut private_jwk = key.jwk();
    private_jwk["d"] = json!(B64.encode([2u8; 32]));
    let mut untyped = header(&key);
    untyped.as_object_mut().unwrap().remove("typ");
    let now = now_s();
    let cases: Vec<(&str, String)> = vec![
        ("htm is another method", key.sign(&head, &with("htm", json!("POST")))),
        ("htm in lower case", key.sign(&head, &with("htm", json!("get")))),
        ("htu is another path", key.sign(&head, &with("htu", json!(url(s.main, "/api/ping"))))),
        ("htu is another origin", key.sign(&head, &with("htu", json!(url(s.api, "/api/me"))))),
        (
            "htu names localhost, the request 127.0.0.1",
            key.sign(&head, &with("htu", json!(me_url.replace("127.0.0.1", "localhost")))),
        ),
        ("htu missing", key.sign(&head, &without("htu"))),
        ("iat two minutes old", key.sign(&head, &with("iat", json!(now - 120)))),
        ("iat two minutes ahead", key.sign(&head, &with("iat", json!(now + 120)))),
        ("iat missing", key.sign(&head, &without("iat"))),
        ("jti missing", key.sign(&head, &without("jti"))),
        ("jti empty", key.sign(&head, &with("jti", json!("")))),
        ("ath of another token", key.sign(&head, &with("ath", json!(dpop::ath("another token"))))),
        ("ath missing", key.sign(&head, &without("ath"))),
        ("typ JWT", key.sign(&head_with("typ", json!("JWT")), &good())),
        ("typ missing", key.sign(&untyped, &good())),
        ("alg ES384", key.sign(&head_with("alg", json!("ES384")), &good())),
        ("alg none", key.sign(&head_with("alg", json!("none")), &good())),
        ("jwk holds the private key", key.sign(&head_with("jwk", private_jwk), &good())),
        (
            "jwk of another curve",
            key.sign(&head_with("jwk", json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"})), &good()),
        ),
        ("jwk of another key than the signer's", other.sign(&head, &good())),
        ("signature cut short", {
            let p = key.sign(&head, &good());
            p[..p.len() - 4].to_string()
        }),
        ("not a JWS", "not.a.jws".to_string()),
        ("two parts", "a.b".to_string()),
    ];
    for (why, proof) in &cases {
        let r = get_dpop(s.main, "/api/me", at, proof).await;
        assert_eq!(r.status, 401, "{why}: {}", r.body);
        assert!(challenge(&r).starts_with(r#"DPoP error="invalid_dpop_proof""#), "{why}: {}", challenge(&r));
        assert_eq!(r.json()["error"], "invalid_dpop_proof", "{why}");
    }
    // Two DPoP headers: refused even if each is valid.
    let (p1, p2) = (key.proof("GET", &me_url, Some(at), None), key.proof("GET", &me_url, Some(at), None));
    let auth = format!("DPoP {at}");
    let r =
        http(s.main, "GET", "/api/me", &[("Authorization", &auth), ("DPoP", &p1), ("DPoP", &p2)], "").await.unwrap();
    assert_eq!(r.status, 401);
    // The same rules hold at the token endpoint, as 400 invalid_dpop_proof.
    let login_url = url(s.main, "/auth/login");
    let mut wrong_htu = claims("POST", &login_url, None, None);
    wrong_htu["htu"] = json!(url(s.main, "/auth/token"));
    for proof in [
        key.sign(&head, &wrong_htu),
        key.sign(&head_with("typ", json!("JWT")), &claims("POST", &login_url, None, None)),
    ] {
        let r = http(s.main, "POST", "/auth/login", &[JSON, ("DPoP", &proof)], CREDENTIALS).await.unwrap();
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_dpop_proof")), "{}", r.body);
    }
    let st = stats(s.main).await;
    assert_eq!(st["dpop_rejected"].as_u64(), Some(cases.len() as u64 + 3));
    assert_eq!(st["logins"], 1, "refused sign-ins issue nothing");
    // A valid proof still works after all that.
    assert_eq!(me(s.main, &key, at).await.status, 200);
}

#[tokio::test]
async fn loose_but_equal_forms_of_the_url_and_any_signature_form_pass() {
    let s = start(30).await;
    let key = Key::new(4);
    let t = bound_login(s.main, &key).await;
    let at = t["access_token"].as_str().unwrap();
    let me_url = url(s.main, "/api/me");
    // htu is compared without query and fragment, scheme and host in any case (RFC 9449 §4.3).
    let variants = [format!("{me_url}?x=1#top"), me_url.replace("http://", "HTTP://")];
    for htu in variants {
        let r = get_dpop(s.main, "/api/me?x=1", at, &key.proof("GET", &htu, Some(at), None)).await;
        assert_eq!(r.status, 200, "{htu}: {}", r.body);
    }
    // WebCrypto does not normalize S: both halves of the curve order must verify.
    let input = format!(
        "{}.{}",
        B64.encode(header(&key).to_string()),
        B64.encode(claims("GET", &me_url, Some(at), None).to_string())
    );
    let sig: Signature = key.0.sign(input.as_bytes());
    let (r, s_) = sig.split_scalars();
    let flipped = Signature::from_scalars(r.to_bytes(), (-*s_).to_bytes()).unwrap();
    assert!(bool::from(sig.s().is_high()) != bool::from(flipped.s().is_high()));
    let proof = format!("{input}.{}", B64.encode(flipped.to_bytes()));
    assert_eq!(get_dpop(s.main, "/api/me", at, &proof).await.status, 200, "the other S");
    // iat within the window either way.
    for iat in [now_s() - 30, now_s() + 30] {
        let mut c = claims("GET", &me_url, Some(at), None);
        c["iat"] = json!(iat);
        assert_eq!(get_dpop(s.main, "/api/me", at, &key.sign(&header(&key), &c)).await.status, 200, "iat {iat}");
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let s = start(30).await;
    let key = Key::new(5);
    let t = bound_login(s.main, &key).await;
    let at = t["access_token"].as_str().unwrap();
    let proof = key.proof("GET", &url(s.main, "/api/me"), Some(at), None);
    assert_eq!(get_dpop(s.main, "/api/me", at, &proof).await.status, 200);
    let again = get_dpop(s.main, "/api/me", at, &proof).await;
    assert_eq!(again.status, 401);
    assert!(challenge(&again).starts_with(r#"DPoP error="invalid_dpop_proof""#));
    // At the token endpoint too: a captured refresh proof does not refresh twice.
    let rt = t["refresh_token"].as_str().unwrap();
    let proof = key.proof("POST", &url(s.main, "/auth/token"), None, None);
    assert_eq!(refresh_with(s.main, rt, Some(&proof)).await.status, 200);
    let r = refresh_with(s.main, rt, Some(&proof)).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_dpop_proof")));
    let st = stats(s.main).await;
    assert_eq!((st["dpop_rejected"].as_u64(), st["refresh_reuse"].as_u64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn a_bound_access_token_is_useless_without_its_key() {
    let s = start(30).await;
    let key = Key::new(6);
    let thief = Key::new(7);
    let t = bound_login(s.main, &key).await;
    let at = t["access_token"].as_str().unwrap();
    // Taken out of the page and sent as a bearer token.
    let bearer = format!("Bearer {at}");
    let r = http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert!(challenge(&r).starts_with(r#"DPoP error="invalid_token""#), "{}", challenge(&r));
    // As DPoP without a proof.
    let auth = format!("DPoP {at}");
    let r = http(s.main, "GET", "/api/me", &[("Authorization", &auth)], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert!(challenge(&r).starts_with(r#"DPoP error="invalid_dpop_proof""#), "{}", challenge(&r));
    // With a perfectly good proof from the thief's own key.
    let r = me(s.main, &thief, at).await;
    assert_eq!(r.status, 401);
    assert!(challenge(&r).starts_with(r#"DPoP error="invalid_token""#), "{}", challenge(&r));
    // An unbound token does not become DPoP by sending it with a proof.
    let plain = login(s.main).await;
    let r = me(s.main, &key, plain["access_token"].as_str().unwrap()).await;
    assert!(r.status == 401 && challenge(&r).starts_with(r#"DPoP error="invalid_token""#), "{}", r.body);
    let st = stats(s.main).await;
    assert_eq!((st["dpop_rejected"].as_u64(), st["api_ok"].as_u64()), (Some(4), Some(0)));
    // The owner is unaffected.
    assert_eq!(me(s.main, &key, at).await.status, 200);
}

#[tokio::test]
async fn a_bound_refresh_token_is_useless_without_its_key() {
    let s = start(30).await;
    let key = Key::new(8);
    let thief = Key::new(9);
    let t = bound_login(s.main, &key).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let token_url = url(s.main, "/auth/token");
    for proof in [None, Some(thief.proof("POST", &token_url, None, None))] {
        let r = refresh_with(s.main, rt, proof.as_deref()).await;
        assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "{}", r.body);
    }
    // The thief's tries did not use the token up: the owner refreshes, still bound.
    let r = refresh_with(s.main, rt, Some(&key.proof("POST", &token_url, None, None))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json();
    assert_eq!(t2["token_type"], "DPoP");
    assert_eq!(jwt_claims(t2["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt());
    let rt2 = t2["refresh_token"].as_str().unwrap();
    assert_eq!(refresh_with(s.main, rt2, None).await.status, 400, "the rotated token is bound too");
    let st = stats(s.main).await;
    assert_eq!(
        (st["refreshes"].as_u64(), st["refresh_reuse"].as_u64(), st["dpop_rejected"].as_u64()),
        (Some(1), Some(0), Some(3))
    );
}

#[tokio::test]
async fn revocation_checks_a_proof_it_is_given() {
    let s = start(30).await;
    let key = Key::new(10);
    let t = bound_login(s.main, &key).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let body = format!("token={rt}&client_id=demo-spa");
    let revoke_url = url(s.main, "/auth/revoke");
    let mut stale = claims("POST", &revoke_url, None, None);
    stale["iat"] = json!(now_s() - 600);
    let r =
        http(s.main, "POST", "/auth/revoke", &[FORM, ("DPoP", &key.sign(&header(&key), &stale))], &body).await.unwrap();
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_dpop_proof")));
    assert_eq!(stats(s.main).await["revocations"], 0, "a refused revocation revokes nothing");
    let proof = key.proof("POST", &revoke_url, None, None);
    let r = http(s.main, "POST", "/auth/revoke", &[FORM, ("DPoP", &proof)], &body).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(stats(s.main).await["revocations"], 1);
    assert_eq!(me(s.main, &key, t["access_token"].as_str().unwrap()).await.status, 401, "the family is over");
}

fn nonces(grace_ms: u64) -> dpop::Config {
    dpop::Config { nonce: Some(NoncePolicy { rotate_ms: 3_600_000, grace_ms }), ..dpop::Config::default() }
}

#[tokio::test]
async fn with_nonces_on_a_proof_needs_the_servers_nonce() {
    let s = start_with(30, nonces(600_000)).await;
    let key = Key::new(11);
    // Token endpoint: 400 use_dpop_nonce with the nonce, then success with it.
    let r = login_with(s.main, &key, None).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("use_dpop_nonce")), "{}", r.body);
    let nonce = r.header("dpop-nonce").expect("DPoP-Nonce on use_dpop_nonce");
    let r = login_with(s.main, &key, Some("made-up")).await;
    assert_eq!(r.json()["error"], "use_dpop_nonce", "an unknown nonce is as good as none");
    let r = login_with(s.main, &key, Some(&nonce)).await;
    assert_eq!((r.status, r.json()["token_type"].as_str()), (200, Some("DPoP")), "{}", r.body);
    assert_eq!(r.header("dpop-nonce").as_deref(), Some(nonce.as_str()), "success names the nonce too");
    let at = r.json()["access_token"].as_str().unwrap().to_string();
    // Resource: 401 with the DPoP challenge and the nonce, then success with it.
    let me_url = url(s.main, "/api/me");
    let r = get_dpop(s.main, "/api/me", &at, &key.proof("GET", &me_url, Some(&at), None)).await;
    assert_eq!(r.status, 401);
    assert!(challenge(&r).starts_with(r#"DPoP error="use_dpop_nonce""#), "{}", challenge(&r));
    assert_eq!(r.header("dpop-nonce").as_deref(), Some(nonce.as_str()));
    let r = get_dpop(s.main, "/api/me", &at, &key.proof("GET", &me_url, Some(&at), Some(&nonce))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Bearer clients are not asked for anything.
    let plain = login(s.main).await;
    let bearer = format!("Bearer {}", plain["access_token"].as_str().unwrap());
    assert_eq!(http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap().status, 200);
    let st = stats(s.main).await;
    assert_eq!(st["dpop_nonce_challenges"], 3);
    assert_eq!(
        (st["dpop_rejected"].as_u64(), st["dpop_ok"].as_u64()),
        (Some(0), Some(2)),
        "a nonce challenge is not a refusal"
    );
}

#[tokio::test]
async fn a_rotated_nonce_keeps_working_for_the_grace_period() {
    let s = start_with(30, nonces(600_000)).await;
    let key = Key::new(12);
    let first = login_with(s.main, &key, None).await.header("dpop-nonce").unwrap();
    let t = login_with(s.main, &key, Some(&first)).await.json();
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(http(s.main, "POST", "/__dpop/rotate", &[], "").await.unwrap().status, 204);
    let me_url = url(s.main, "/api/me");
    // A tab that has not heard of the new nonce yet is still served, and told the new one.
    let r = get_dpop(s.main, "/api/me", at, &key.proof("GET", &me_url, Some(at), Some(&first))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = r.header("dpop-nonce").unwrap();
    assert_ne!(second, first);
    let r = get_dpop(s.main, "/api/me", at, &key.proof("GET", &me_url, Some(at), Some(&second))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_rotated_nonce_without_grace_is_refused_at_once() {
    let s = start_with(30, nonces(0)).await;
    let key = Key::new(13);
    let first = login_with(s.main, &key, None).await.header("dpop-nonce").unwrap();
    let t = login_with(s.main, &key, Some(&first)).await.json();
    let rt = t["refresh_token"].as_str().unwrap();
    http(s.main, "POST", "/__dpop/rotate", &[], "").await.unwrap();
    let token_url = url(s.main, "/auth/token");
    let r = refresh_with(s.main, rt, Some(&key.proof("POST", &token_url, None, Some(&first)))).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("use_dpop_nonce")));
    let second = r.header("dpop-nonce").unwrap();
    assert_ne!(second, first);
    // The nonce answer did not use the refresh token up.
    let r = refresh_with(s.main, rt, Some(&key.proof("POST", &token_url, None, Some(&second)))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn cors_lets_a_page_send_proofs_and_read_nonces() {
    let s = start_with(30, nonces(600_000)).await;
    let origin = url(s.main, "");
    let ask = [("Origin", origin.as_str()), ("Access-Control-Request-Headers", "authorization, dpop")];
    let pre = http(s.api, "OPTIONS", "/api/me", &ask, "").await.unwrap();
    assert!(pre.header("access-control-allow-headers").unwrap().split(", ").any(|h| h == "dpop"));
    let key = Key::new(14);
    let proof = key.proof("POST", &url(s.api, "/auth/login"), None, None);
    let r =
        http(s.api, "POST", "/auth/login", &[JSON, ("Origin", &origin), ("DPoP", &proof)], CREDENTIALS).await.unwrap();
    assert!(r.header("dpop-nonce").is_some());
    assert!(r.header("access-control-expose-headers").unwrap().split(", ").any(|h| h == "dpop-nonce"));
}
