//! The server's HTTP contract, over real sockets.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn login_gives_an_oauth_token_response_with_a_jwt() {
    let s = start(30).await;
    let t = login(s.main).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 30);
    assert!(t["refresh_token"].as_str().unwrap().len() > 10);
    let parts: Vec<&str> = t["access_token"].as_str().unwrap().split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    for k in ["sub", "iat", "exp", "jti"] {
        assert!(claims.get(k).is_some(), "claim {k} missing");
    }
    let bad = http(s.main, "POST", "/auth/login", &[JSON], r#"{"username":"demo","password":"x"}"#).await.unwrap();
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_credentials");
    let garbage = http(s.main, "POST", "/auth/login", &[JSON], "not json").await.unwrap();
    assert_eq!(garbage.status, 400);
}

#[tokio::test]
async fn api_needs_a_valid_bearer_token() {
    let s = start(30).await;
    let r = http(s.main, "GET", "/api/me", &[], "").await.unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let bad = http(s.main, "GET", "/api/me", &[("Authorization", "Bearer x.y.z")], "").await.unwrap();
    assert_eq!(bad.header("www-authenticate").unwrap(), "Bearer error=\"invalid_token\"");
    let t = login(s.main).await;
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let me = http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["sub"], "demo");
    assert_eq!(http(s.main, "GET", "/api/ping", &[("Authorization", &bearer)], "").await.unwrap().body, "pong");
    let st = stats(s.main).await;
    assert_eq!((st["api_ok"].as_u64(), st["api_unauthorized"].as_u64()), (Some(2), Some(2)));
    assert_eq!(st["authorization_seen"], 3);
}

#[tokio::test]
async fn access_token_expires() {
    let s = start(1).await;
    let t = login(s.main).await;
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap().status, 401);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let s = start(30).await;
    let t1 = login(s.main).await;
    let rt1 = t1["refresh_token"].as_str().unwrap();
    let r2 = refresh(s.main, rt1).await;
    assert_eq!(r2.status, 200);
    let t2 = r2.json();
    assert_ne!(t2["refresh_token"], t1["refresh_token"]);
    let reuse = refresh(s.main, rt1).await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json()["error"], "invalid_grant");
    // The family is gone: the newest tokens die too.
    assert_eq!(refresh(s.main, t2["refresh_token"].as_str().unwrap()).await.status, 400);
    let bearer = format!("Bearer {}", t2["access_token"].as_str().unwrap());
    assert_eq!(http(s.main, "GET", "/api/me", &[("Authorization", &bearer)], "").await.unwrap().status, 401);
    let st = stats(s.main).await;
    assert_eq!((st["refreshes"].as_u64(), st["refresh_reuse"].as_u64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn token_endpoint_follows_rfc6749_errors() {
    let s = start(30).await;
    let wrong_grant = http(s.main, "POST", "/auth/token", &[FORM], "grant_type=password").await.unwrap();
    assert_eq!(wrong_grant.json()["error"], "unsupported_grant_type");
    let missing = http(s.main, "POST", "/auth/token", &[FORM], "grant_type=refresh_token").await.unwrap();
    assert_eq!(missing.json()["error"], "invalid_request");
    let json_body = http(s.main, "POST", "/auth/token", &[JSON], "{}").await.unwrap();
    assert_eq!(json_body.status, 400);
    assert_eq!(refresh(s.main, "unknown").await.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn revoke_ends_the_family() {
    let s = start(30).await;
    let t = login(s.main).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let r = http(s.main, "POST", "/auth/revoke", &[FORM], &format!("token={rt}")).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(refresh(s.main, rt).await.status, 400);
    assert_eq!(stats(s.main).await["revocations"], 1);
    // RFC 7009: unknown tokens still get 200.
    assert_eq!(http(s.main, "POST", "/auth/revoke", &[FORM], "token=nope").await.unwrap().status, 200);
}

#[tokio::test]
async fn faults_fail_hang_and_drop_the_next_refreshes() {
    let s = start(30).await;
    let t = login(s.main).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let set = |body: &'static str| http(s.main, "POST", "/__faults", &[JSON], body);
    assert_eq!(set(r#"{"count":2,"status":503}"#).await.unwrap().status, 204);
    for _ in 0..2 {
        let r = refresh(s.main, rt).await;
        assert_eq!(r.status, 503);
        assert!(r.body.contains("<html>"));
    }
    set(r#"{"count":1,"drop":true}"#).await.unwrap();
    assert!(try_refresh(s.main, rt).await.is_none(), "connection should be dropped");
    set(r#"{"count":1,"hang_ms":300}"#).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(refresh(s.main, rt).await.status, 503);
    assert!(started.elapsed() >= Duration::from_millis(300));
    set(r#"{"count":1,"status":400}"#).await.unwrap();
    assert_eq!(refresh(s.main, rt).await.json()["error"], "invalid_grant");
    // Faults consumed: the untouched refresh token still works exactly once.
    assert_eq!(refresh(s.main, rt).await.status, 200);
    let st = stats(s.main).await;
    assert_eq!(
        (st["faults_applied"].as_u64(), st["refreshes"].as_u64(), st["refresh_reuse"].as_u64()),
        (Some(5), Some(1), Some(0))
    );
    assert_eq!(set(r#"{"count":1}"#).await.unwrap().status, 400);
    assert_eq!(set(r#"{"count":1,"bogus":1}"#).await.unwrap().status, 400);
}

#[tokio::test]
async fn reset_clears_sessions_and_counters() {
    let s = start(30).await;
    let t = login(s.main).await;
    http(s.main, "POST", "/__reset", &[], "").await.unwrap();
    assert_eq!(stats(s.main).await["logins"], 0);
    assert_eq!(refresh(s.main, t["refresh_token"].as_str().unwrap()).await.status, 400);
}

#[tokio::test]
async fn tokens_in_urls_are_counted() {
    let s = start(30).await;
    let t = login(s.main).await;
    http(s.main, "GET", "/api/ping?x=1", &[], "").await.unwrap();
    assert_eq!(stats(s.main).await["token_in_url"], 0);
    let rt = t["refresh_token"].as_str().unwrap();
    http(s.main, "GET", &format!("/api/ping?t={rt}"), &[], "").await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    http(s.main, "GET", &format!("/x/{at}"), &[], "").await.unwrap();
    assert_eq!(stats(s.main).await["token_in_url"], 2);
}

#[tokio::test]
async fn redirect_answers_302() {
    let s = start(30).await;
    let r = http(s.main, "GET", "/__redirect?to=http://127.0.0.1:1/x", &[], "").await.unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").unwrap(), "http://127.0.0.1:1/x");
}

#[tokio::test]
async fn api_origin_shares_state_and_allows_cors_with_authorization() {
    let s = start(30).await;
    let t = login(s.main).await;
    let origin = format!("http://127.0.0.1:{}", s.main);
    let pre = http(
        s.api,
        "OPTIONS",
        "/api/me",
        &[("Origin", &origin), ("Access-Control-Request-Headers", "authorization")],
        "",
    )
    .await
    .unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin").unwrap(), origin);
    assert!(pre.header("access-control-allow-headers").unwrap().contains("authorization"));
    let bearer = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let me = http(s.api, "GET", "/api/me", &[("Origin", &origin), ("Authorization", &bearer)], "").await.unwrap();
    assert_eq!(me.status, 200);
    let other = http(s.api, "OPTIONS", "/api/me", &[("Origin", "https://evil.example")], "").await.unwrap();
    assert!(other.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn foreign_origin_counts_authorization_headers() {
    let s = start(30).await;
    assert_eq!(http(s.foreign, "GET", "/anything", &[], "").await.unwrap().status, 200);
    assert_eq!(stats(s.foreign).await["authorization_seen"], 0);
    http(s.foreign, "GET", "/leak", &[("Authorization", "Bearer t")], "").await.unwrap();
    assert_eq!(stats(s.foreign).await["authorization_seen"], 1);
    http(s.foreign, "POST", "/__reset", &[], "").await.unwrap();
    assert_eq!(stats(s.foreign).await["authorization_seen"], 0);
}

/// `ws_sid=<id>` from a reply's `Set-Cookie`, and the whole header.
fn session_cookie(r: &Reply) -> (String, String) {
    let set = r.header("set-cookie").expect("a Set-Cookie header");
    let pair = set.split(';').next().unwrap_or_default().to_string();
    (pair, set)
}

async fn cookie_login(port: u16, cookie: Option<&str>) -> (String, serde_json::Value) {
    let mut headers = vec![JSON];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    let r = http(port, "POST", "/session/login", &headers, r#"{"username":"demo","password":"demo"}"#).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    (session_cookie(&r).0, r.json())
}

#[tokio::test]
async fn cookie_login_sets_an_httponly_cookie_and_answers_the_session() {
    let s = start(30).await;
    let r = http(s.main, "POST", "/session/login", &[JSON], r#"{"username":"demo","password":"demo"}"#).await.unwrap();
    let (pair, set) = session_cookie(&r);
    assert!(pair.starts_with("ws_sid=") && pair.len() > 20, "{set}");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Secure"), "loopback is served over plain HTTP: {set}");
    let body = r.json();
    assert!(body["csrfToken"].as_str().is_some_and(|t| t.len() >= 20), "{body}");
    assert!(body["expiresAt"].as_u64().unwrap() > body["loginAt"].as_u64().unwrap());
    assert_eq!(body["user"]["name"], "Demo User");
    let bad = http(s.main, "POST", "/session/login", &[JSON], r#"{"username":"demo","password":"x"}"#).await.unwrap();
    assert_eq!(bad.status, 401);
    assert!(bad.header("set-cookie").is_none());
    // Anywhere but loopback the cookie is Secure.
    let far_host = [JSON, ("Host", "app.example")];
    let far =
        http(s.main, "POST", "/session/login", &far_host, r#"{"username":"demo","password":"demo"}"#).await.unwrap();
    assert!(session_cookie(&far).1.ends_with("Secure"));
}

#[tokio::test]
async fn cookie_session_reads_and_unsafe_api_calls_need_the_csrf_header() {
    let s = start(30).await;
    let (cookie, body) = cookie_login(s.main, None).await;
    let csrf = body["csrfToken"].as_str().unwrap();
    let read = http(s.main, "GET", "/session", &[("Cookie", &cookie)], "").await.unwrap();
    assert_eq!((read.status, read.json()["csrfToken"].as_str()), (200, Some(csrf)));
    assert_eq!(http(s.main, "GET", "/session", &[], "").await.unwrap().status, 401);
    // Safe methods need only the cookie.
    let me = http(s.main, "GET", "/api/me", &[("Cookie", &cookie)], "").await.unwrap();
    assert_eq!((me.status, me.json()["sub"].as_str()), (200, Some("demo")));
    // Unsafe methods without (or with a wrong) CSRF header: 403, nothing changes.
    for headers in [vec![("Cookie", cookie.as_str())], vec![("Cookie", cookie.as_str()), ("X-CSRF-Token", "forged")]] {
        let r = http(s.main, "POST", "/api/counter", &headers, "").await.unwrap();
        assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("csrf_failed")));
    }
    let with = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf)];
    let r = http(s.main, "POST", "/api/counter", &with, "").await.unwrap();
    assert_eq!((r.status, r.json()["count"].as_u64()), (200, Some(1)), "the first change is the one with the header");
    let st = stats(s.main).await;
    assert_eq!((st["csrf_rejected"].as_u64(), st["sessions_active"].as_u64()), (Some(2), Some(1)));
    // No cookie at all: 401.
    assert_eq!(http(s.main, "POST", "/api/counter", &[("X-CSRF-Token", csrf)], "").await.unwrap().status, 401);
}

#[tokio::test]
async fn cookie_session_refresh_rotates_the_id_and_logout_ends_it() {
    let s = start(30).await;
    // A cookie planted before sign-in is never the session's id (no fixation).
    let (cookie, body) = cookie_login(s.main, Some("ws_sid=planted-by-attacker")).await;
    assert_ne!(cookie, "ws_sid=planted-by-attacker");
    let csrf = body["csrfToken"].as_str().unwrap();
    let no_csrf = http(s.main, "POST", "/session/refresh", &[("Cookie", &cookie)], "").await.unwrap();
    assert_eq!(no_csrf.status, 403);
    let r = http(s.main, "POST", "/session/refresh", &[("Cookie", &cookie), ("X-CSRF-Token", csrf)], "").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (rotated, _) = session_cookie(&r);
    assert_ne!(rotated, cookie, "the id rotates");
    assert_eq!(r.json()["loginAt"], body["loginAt"]);
    assert_eq!(stats(s.main).await["session_refreshes"], 1);
    // The old id still works for a moment (requests in flight), then logout ends both.
    assert_eq!(http(s.main, "GET", "/api/me", &[("Cookie", &cookie)], "").await.unwrap().status, 200);
    let out =
        http(s.main, "POST", "/session/logout", &[("Cookie", &rotated), ("X-CSRF-Token", csrf)], "").await.unwrap();
    assert_eq!(out.status, 204);
    assert!(session_cookie(&out).1.contains("Max-Age=0"));
    for c in [&cookie, &rotated] {
        assert_eq!(http(s.main, "GET", "/session", &[("Cookie", c)], "").await.unwrap().status, 401);
    }
    assert_eq!(stats(s.main).await["sessions_active"], 0);
}

#[tokio::test]
async fn api_origin_takes_the_cookie_with_credentials_cors() {
    let s = start(30).await;
    let (cookie, body) = cookie_login(s.main, None).await;
    let origin = format!("http://127.0.0.1:{}", s.main);
    let ask = [("Origin", origin.as_str()), ("Access-Control-Request-Headers", "x-csrf-token")];
    let pre = http(s.api, "OPTIONS", "/api/counter", &ask, "").await.unwrap();
    assert!(pre.header("access-control-allow-headers").unwrap().contains("x-csrf-token"));
    assert_eq!(pre.header("access-control-allow-credentials").as_deref(), Some("true"));
    let csrf = body["csrfToken"].as_str().unwrap();
    let headers = [("Origin", origin.as_str()), ("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf)];
    assert_eq!(http(s.api, "POST", "/api/counter", &headers, "").await.unwrap().status, 200);
}

#[tokio::test]
async fn foreign_origin_counts_cookies_and_serves_a_forging_page() {
    let s = start(30).await;
    http(s.foreign, "GET", "/x", &[("Cookie", "ws_sid=stolen")], "").await.unwrap();
    assert_eq!(stats(s.foreign).await["cookie_seen"], 1);
    let page = http(s.foreign, "GET", "/attack.html?to=http://127.0.0.1:1/api/counter%22%3E%3Cscript%3E", &[], "")
        .await
        .unwrap();
    assert!(page.body.contains(r#"action="http://127.0.0.1:1/api/counterscript""#), "{} {}", page.status, page.body);
    assert!(page.body.contains("submit()"));
}
