//! Local auth + API server for the wasm-session demo and tests.
//!
//! One shared [`auth::Auth`] backs up to three listeners: the main origin (demo page, `pkg/`,
//! auth and API), an optional second API origin (CORS for loopback origins), and an optional
//! "foreign" origin that only counts the `Authorization` headers it receives, to prove that
//! tokens never leak there. Cookie sessions ([`session`]) live beside the token backend:
//! `/session/*`, and the API takes either a bearer token or the session cookie plus, on
//! unsafe methods, the CSRF header. Tokens may be bound to a DPoP key ([`dpop`]): a request
//! with a `DPoP` proof gets bound tokens, which then work only with proofs from that key.
//! Dev-only endpoints (`/__stats`, `/__reset`, `/__faults`, `/__redirect`, `/__dpop/rotate`)
//! drive the tests. Not for production.

pub mod auth;
pub mod dpop;
pub mod faults;
pub mod session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_http::services::ServeDir;

use auth::{now_ms, Auth, OAuthError, Stats};
use dpop::Refusal;
use faults::{Fault, FaultAction, Faults};
use session::{Check, Sessions};

/// Settings read from the environment by `main`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub access_ttl_s: u64,
    pub refresh_ttl_s: u64,
    pub www_dir: PathBuf,
    pub pkg_dir: PathBuf,
    /// Where sessions are kept across restarts (`STATE_FILE`); none by default.
    pub state_file: Option<PathBuf>,
    /// Cookie sessions end after this long without an extension (`SESSION_IDLE`, 900 s)…
    pub session_idle_s: u64,
    /// …and this long after sign-in (`SESSION_MAX`, 28800 s).
    pub session_max_s: u64,
    /// How DPoP proofs are checked (`DPOP_IAT_WINDOW`, `DPOP_NONCE`, `DPOP_NONCE_ROTATE`,
    /// `DPOP_NONCE_GRACE`).
    pub dpop: dpop::Config,
}

/// State shared by the main and API origins.
pub struct Shared {
    pub auth: Mutex<Auth>,
    pub faults: Mutex<Faults>,
    pub state_file: Option<PathBuf>,
    pub sessions: Mutex<Sessions>,
    /// `/api/counter`: one number per user that unsafe requests change.
    pub counters: Mutex<HashMap<String, u64>>,
    /// DPoP proof checks: seen `jti`s and the nonces.
    pub dpop: Mutex<dpop::Verifier>,
}

impl Shared {
    /// Writes the sessions to `STATE_FILE`, if set.
    fn persist(&self) {
        if let Some(path) = &self.state_file {
            let json = lock(&self.auth).snapshot();
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("wasm-session-server: cannot write {}: {e}", path.display());
            }
        }
    }
}

/// Handle passed to the handlers.
pub type AppState = Arc<Shared>;

/// Locks a mutex even if a previous holder panicked (the drop fault unwinds on purpose).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// New shared state for the given settings.
pub fn state(settings: &Settings) -> AppState {
    let mut auth = Auth::new(settings.access_ttl_s, settings.refresh_ttl_s);
    if let Some(json) = settings.state_file.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        if auth.restore(&json).is_none() {
            eprintln!("wasm-session-server: STATE_FILE is unreadable; starting empty");
        }
    }
    Arc::new(Shared {
        auth: Mutex::new(auth),
        faults: Mutex::new(Faults::default()),
        state_file: settings.state_file.clone(),
        sessions: Mutex::new(Sessions::new(settings.session_idle_s, settings.session_max_s, auth::random_seed())),
        counters: Mutex::default(),
        dpop: Mutex::new(dpop::Verifier::new(settings.dpop.clone(), auth::random_seed(), now_ms())),
    })
}

/// Auth, API and dev routes (no static files, no CORS).
fn api_routes(state: AppState) -> Router {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/token", post(token))
        .route("/auth/revoke", post(revoke))
        .route("/api/me", get(me))
        .route("/api/ping", get(ping))
        .route("/api/echo", post(echo))
        .route("/api/counter", get(counter).post(counter))
        .route("/session", get(session_read))
        .route("/session/login", post(session_login))
        .route("/session/refresh", post(session_refresh))
        .route("/session/logout", post(session_logout))
        .route("/__stats", get(stats))
        .route("/__reset", post(reset))
        .route("/__faults", post(set_faults))
        .route("/__redirect", get(redirect))
        .route("/__reply", get(canned).post(canned))
        .route("/__issuers/{doc}/.well-known/openid-configuration", get(issuer_document))
        .route("/__dpop/rotate", post(rotate_nonce))
        .layer(middleware::from_fn_with_state(state.clone(), dpop_nonce))
        .with_state(state)
}

/// The main origin: the demo page from `www/`, the package from `pkg/`, auth and API.
pub fn main_app(state: AppState, settings: &Settings) -> Router {
    api_routes(state.clone())
        .nest_service("/pkg", ServeDir::new(&settings.pkg_dir))
        .fallback_service(ServeDir::new(&settings.www_dir))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn_with_state(state, count_authorization))
}

/// The second API origin: same backend, CORS for any loopback origin with `Authorization`.
pub fn api_app(state: AppState) -> Router {
    api_routes(state.clone())
        .layer(middleware::from_fn_with_state(state, count_authorization))
        .layer(middleware::from_fn(cors))
}

/// The foreign origin: answers everything with 200 and counts `Authorization` and `Cookie`
/// headers; `/attack.html?target=<url>` is a page that submits a form POST to `target` as
/// soon as it loads (a cross-site request forgery).
pub fn foreign_app() -> Router {
    let seen: Arc<Mutex<Stats>> = Arc::default();
    let counter = seen.clone();
    Router::new()
        .route("/__stats", get(move || async move { Json(*lock(&seen)) }))
        .route(
            "/__reset",
            post({
                let seen = counter.clone();
                move || async move {
                    *lock(&seen) = Stats::default();
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route("/attack.html", get(attack_page))
        .fallback(|| async { Json(serde_json::json!({"ok": true, "origin": "foreign"})) })
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let counter = counter.clone();
            async move {
                {
                    let mut seen = lock(&counter);
                    seen.authorization_seen += u64::from(req.headers().contains_key(header::AUTHORIZATION));
                    seen.cookie_seen += u64::from(req.headers().contains_key(header::COOKIE));
                }
                next.run(req).await
            }
        }))
        .layer(middleware::from_fn(cors_open))
}

async fn count_authorization(State(s): State<AppState>, req: Request, next: Next) -> Response {
    {
        let mut auth = lock(&s.auth);
        if req.headers().contains_key(header::AUTHORIZATION) {
            auth.stats.authorization_seen += 1;
        }
        if auth.contains_token(&req.uri().to_string()) {
            auth.stats.token_in_url += 1;
        }
    }
    next.run(req).await
}

/// Dev server: never let the browser cache the page, the package or any answer.
async fn no_store(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    let host = rest.map(|r| r.rsplit_once(':').map_or(r, |(h, _)| h));
    matches!(host, Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// CORS for loopback origins, allowing `Authorization` so that a browser would really send it.
async fn cors(req: Request, next: Next) -> Response {
    cors_for(req, next, is_loopback_origin).await
}

/// CORS open to every origin, `null` included (what an attacker's server would answer), so
/// that a leaked token would really arrive.
async fn cors_open(req: Request, next: Next) -> Response {
    cors_for(req, next, |_| true).await
}

async fn cors_for(req: Request, next: Next, allow: fn(&str) -> bool) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let allowed = origin.filter(|o| allow(o));
    let mut res = if req.method() == Method::OPTIONS && allowed.is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    if let Some(origin) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-test, x-csrf-token, dpop"),
        );
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("www-authenticate, date, dpop-nonce"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    res
}

fn json_error(status: u16, code: &str, description: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({"error": code, "error_description": description});
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn oauth_error(e: OAuthError) -> Response {
    json_error(e.status, e.code, e.description)
}

/// A JSON answer that no cache may keep (tokens, sessions).
fn token_ok(t: impl serde::Serialize) -> Response {
    ([(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], Json(t)).into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /auth/login` `{username, password}`: a token response; with a `DPoP` proof, the
/// tokens are bound to its key.
async fn login(State(s): State<AppState>, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(creds) = serde_json::from_slice::<LoginBody>(&body) else {
        return json_error(400, "invalid_request", "expected JSON {\"username\", \"password\"}");
    };
    let jkt = match token_endpoint_proof(&s, &uri, &headers) {
        Ok(jkt) => jkt,
        Err(res) => return res,
    };
    let result = lock(&s.auth).login(&creds.username, &creds.password, jkt.as_deref(), now_ms());
    s.persist();
    result.map_or_else(oauth_error, token_ok)
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
}

/// Counts the `client_id` a request sent (see [`Stats`]).
fn count_client_id(s: &Shared, client_id: Option<&str>) {
    if let Some(id) = client_id {
        let stats = &mut lock(&s.auth).stats;
        stats.client_id_sent += 1;
        stats.client_id_unknown += u64::from(id != "demo-spa");
    }
}

/// `POST /auth/token` `grant_type=refresh_token`: rotates the refresh token. A bound session
/// needs a `DPoP` proof from its key; any valid proof binds the new access token.
async fn token(State(s): State<AppState>, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    lock(&s.auth).stats.token_requests += 1;
    let fault = lock(&s.faults).take();
    if let Some(fault) = fault {
        lock(&s.auth).stats.faults_applied += 1;
        match fault.action() {
            FaultAction::Respond(res) => return res,
            FaultAction::Hang(ms) => {
                // Models a request lost in the network: nothing rotates, the client times out.
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return json_error(503, "temporarily_unavailable", "the server hung (fault switch)");
            }
            // Unwinding the connection task closes the socket without an answer.
            FaultAction::Drop => std::panic::resume_unwind(Box::new("fault: drop connection")),
        }
    }
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return json_error(400, "invalid_request", "the token endpoint takes application/x-www-form-urlencoded");
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return json_error(400, "invalid_request", "malformed form body");
    };
    count_client_id(&s, form.client_id.as_deref());
    if form.grant_type.as_deref() != Some("refresh_token") {
        return json_error(400, "unsupported_grant_type", "only grant_type=refresh_token is supported");
    }
    let Some(rt) = form.refresh_token.filter(|t| !t.is_empty()) else {
        return json_error(400, "invalid_request", "refresh_token is missing");
    };
    let jkt = match token_endpoint_proof(&s, &uri, &headers) {
        Ok(jkt) => jkt,
        Err(res) => return res,
    };
    let result = lock(&s.auth).refresh(&rt, jkt.as_deref(), now_ms());
    s.persist();
    result.map_or_else(oauth_error, token_ok)
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
}

/// `POST /auth/revoke` `token=…`: ends the token's family. A `DPoP` proof, if sent, must be
/// valid; as RFC 7009 has it, the token alone is enough authority to revoke it.
async fn revoke(State(s): State<AppState>, uri: Uri, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<RevokeForm>(&body) else {
        return json_error(400, "invalid_request", "malformed form body");
    };
    count_client_id(&s, form.client_id.as_deref());
    if let Err(res) = token_endpoint_proof(&s, &uri, &headers) {
        return res;
    }
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return json_error(400, "invalid_request", "token is missing");
    };
    lock(&s.auth).revoke(&token);
    s.persist();
    StatusCode::OK.into_response()
}

/// The URL a request was sent to, without query: what a DPoP proof's `htu` must name. The
/// dev server speaks plain HTTP, at the host the client addressed; the API routes are not
/// nested, so `uri` holds the whole path.
fn request_url(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}{}", uri.path())
}

/// Checks the request's `DPoP` proof, if it has one, and counts the outcome. Answers the
/// thumbprint of the proof's key, or `None` without a proof.
fn check_proof(s: &Shared, headers: &HeaderMap, target: &dpop::Target) -> Result<Option<String>, Refusal> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(first) = proofs.next() else { return Ok(None) };
    let result = match (first.to_str(), proofs.next()) {
        (Ok(proof), None) => lock(&s.dpop).check(proof, target, now_ms()),
        (Err(_), None) => Err(Refusal::Invalid("the DPoP header is not a JWT")),
        (_, Some(_)) => Err(Refusal::Invalid("a request carries one DPoP header, not several")),
    };
    let stats = &mut lock(&s.auth).stats;
    match result {
        Ok(_) => stats.dpop_ok += 1,
        Err(Refusal::UseNonce) => stats.dpop_nonce_challenges += 1,
        Err(Refusal::Invalid(_)) => stats.dpop_rejected += 1,
    }
    result.map(Some)
}

/// The proof of a token-endpoint request (sign-in, refresh, revocation), or the RFC 9449 §5
/// error: 400 `invalid_dpop_proof` or `use_dpop_nonce` (whose `DPoP-Nonce` header
/// [`dpop_nonce`] adds).
#[allow(clippy::result_large_err)]
fn token_endpoint_proof(s: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let url = request_url(headers, uri);
    let target = dpop::Target { method: "POST", url: &url, access_token: None };
    check_proof(s, headers, &target).map_err(|refusal| match refusal {
        Refusal::Invalid(why) => json_error(400, "invalid_dpop_proof", why),
        Refusal::UseNonce => {
            json_error(400, "use_dpop_nonce", "sign the DPoP proof again with the nonce in DPoP-Nonce")
        }
    })
}

/// A resource's 401 for the DPoP scheme (RFC 9449 §7.1); `use_dpop_nonce` answers also carry
/// `DPoP-Nonce` (added by [`dpop_nonce`]).
fn dpop_challenge(error: &str, description: &str) -> Response {
    let challenge = format!("DPoP error=\"{error}\", error_description=\"{description}\", algs=\"ES256\"");
    let body = serde_json::json!({"error": error, "error_description": description});
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], Json(body)).into_response()
}

/// Checks the access token (`Bearer`, or `DPoP` with a proof), or else the session cookie
/// (and, on unsafe methods, the CSRF header), and counts the outcome. The error is the 401
/// or 403 response itself.
#[allow(clippy::result_large_err)]
fn authorize(s: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<auth::Principal, Response> {
    if !headers.contains_key(header::AUTHORIZATION) {
        if let Some(id) = session_cookie(headers) {
            return authorize_cookie(s, &id, method, headers);
        }
    }
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(token) = value.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("DPoP")).map(|(_, t)| t)
    {
        return authorize_dpop(s, method, uri, headers, token);
    }
    // A Bearer request's proof, if any, is not checked: Bearer means bearer, unless the token
    // is bound.
    let token = value.strip_prefix("Bearer ").unwrap_or("");
    let mut auth = lock(&s.auth);
    match auth.authorize(token, now_ms()) {
        Some(p) if p.jkt.is_some() => {
            auth.stats.api_unauthorized += 1;
            auth.stats.dpop_rejected += 1;
            Err(dpop_challenge("invalid_token", "this token is bound to a DPoP key: send it as DPoP with a proof"))
        }
        Some(p) => {
            auth.stats.api_ok += 1;
            Ok(p)
        }
        None => {
            auth.stats.api_unauthorized += 1;
            let challenge = if token.is_empty() { "Bearer" } else { "Bearer error=\"invalid_token\"" };
            let body = serde_json::json!({"error": "invalid_token"});
            Err((StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], Json(body)).into_response())
        }
    }
}

/// `Authorization: DPoP <token>`: the proof must name this request and this token, and the
/// token must be bound to the proof's key.
#[allow(clippy::result_large_err)]
fn authorize_dpop(
    s: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    token: &str,
) -> Result<auth::Principal, Response> {
    let url = request_url(headers, uri);
    let target = dpop::Target { method: method.as_str(), url: &url, access_token: Some(token) };
    let refused = |error, why| {
        lock(&s.auth).stats.api_unauthorized += 1;
        Err(dpop_challenge(error, why))
    };
    let jkt = match check_proof(s, headers, &target) {
        Ok(Some(jkt)) => jkt,
        Ok(None) => {
            lock(&s.auth).stats.dpop_rejected += 1;
            return refused("invalid_dpop_proof", "the DPoP scheme needs a DPoP proof header");
        }
        Err(Refusal::UseNonce) => {
            return Err(dpop_challenge("use_dpop_nonce", "sign the DPoP proof again with the nonce in DPoP-Nonce"))
        }
        Err(Refusal::Invalid(why)) => return refused("invalid_dpop_proof", why),
    };
    let found = lock(&s.auth).authorize(token, now_ms());
    match found {
        Some(p) if p.jkt.as_deref() == Some(jkt.as_str()) => {
            lock(&s.auth).stats.api_ok += 1;
            Ok(p)
        }
        Some(_) => {
            lock(&s.auth).stats.dpop_rejected += 1;
            refused("invalid_token", "the token is not bound to the DPoP proof's key")
        }
        None => refused("invalid_token", "the token is invalid, expired or revoked"),
    }
}

#[allow(clippy::result_large_err)]
fn authorize_cookie(s: &Shared, id: &str, method: &Method, headers: &HeaderMap) -> Result<auth::Principal, Response> {
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    let check = lock(&s.sessions).check(id, csrf, unsafe_method, now_ms());
    let mut auth = lock(&s.auth);
    match check {
        Check::Ok(user) => {
            auth.stats.api_ok += 1;
            Ok(auth::Principal { sub: user.sub, name: user.name, jti: String::new(), fam: 0, exp: 0, jkt: None })
        }
        Check::NoSession => {
            auth.stats.api_unauthorized += 1;
            Err(json_error(401, "no_session", "the session cookie is missing, expired or ended"))
        }
        Check::CsrfFailed => {
            auth.stats.csrf_rejected += 1;
            Err(json_error(403, "csrf_failed", "unsafe requests need the session's X-CSRF-Token header"))
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_value)
        .map(str::to_owned)
}

/// Is the request addressed to a loopback host (where browsers keep non-Secure cookies)?
fn loopback_host(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    is_loopback_origin(&format!("http://{host}"))
}

fn with_cookie(cookie: String, body: Response) -> Response {
    let mut res = body;
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn no_session() -> Response {
    json_error(401, "no_session", "no live session for this cookie")
}

/// `POST /session/login` `{username, password}`: a new session (and a new id, whatever
/// cookie came with the request), its cookie, and `{csrfToken, expiresAt, loginAt, user}`.
async fn session_login(State(s): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Ok(creds) = serde_json::from_slice::<LoginBody>(&body) else {
        return json_error(400, "invalid_request", "expected JSON {\"username\", \"password\"}");
    };
    let Some((sub, name)) = auth::check_credentials(&creds.username, &creds.password) else {
        return json_error(401, "invalid_credentials", "wrong username or password");
    };
    lock(&s.auth).stats.logins += 1;
    let user = session::User { sub: sub.to_string(), name: name.to_string() };
    let (id, body) = lock(&s.sessions).start(user, session_cookie(&headers).as_deref(), now_ms());
    with_cookie(session::set_cookie(&id, loopback_host(&headers)), token_ok(body))
}

/// `GET /session`: the session behind the cookie (not extended), or 401.
async fn session_read(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let body = session_cookie(&headers).and_then(|id| lock(&s.sessions).read(&id, now_ms()));
    body.map_or_else(no_session, token_ok)
}

/// `POST /session/refresh` (CSRF header required): extends the session and rotates its id.
async fn session_refresh(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(id) = session_cookie(&headers) else { return no_session() };
    if let Err(res) = authorize_cookie(&s, &id, &Method::POST, &headers) {
        return res;
    }
    let Some((new_id, body)) = lock(&s.sessions).extend(&id, now_ms()) else { return no_session() };
    lock(&s.auth).stats.session_refreshes += 1;
    with_cookie(session::set_cookie(&new_id, loopback_host(&headers)), token_ok(body))
}

/// `POST /session/logout` (CSRF header required): ends the session and clears the cookie.
async fn session_logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(id) = session_cookie(&headers) else { return no_session() };
    if let Err(res) = authorize_cookie(&s, &id, &Method::POST, &headers) {
        return res;
    }
    lock(&s.sessions).end(&id, now_ms());
    lock(&s.auth).stats.revocations += 1;
    with_cookie(session::clear_cookie(loopback_host(&headers)), StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/counter` reads the user's number; `POST` adds one (the state a forged request
/// would change).
async fn counter(State(s): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let p = match authorize(&s, &method, &uri, &headers) {
        Ok(p) => p,
        Err(res) => return res,
    };
    let mut counters = lock(&s.counters);
    let n = counters.entry(p.sub).or_default();
    if method == Method::POST {
        *n += 1;
    }
    Json(serde_json::json!({"count": *n})).into_response()
}

/// `/attack.html?target=<url>`: a form that POSTs to `target` on load, from this origin.
async fn attack_page(Query(q): Query<RedirectQuery>) -> Response {
    let target: String = q.to.chars().filter(|c| !matches!(c, '"' | '<' | '>' | '&')).collect();
    let html = format!(
        "<!doctype html><title>attack</title><form method=post action=\"{target}\">\
         <input name=amount value=1000></form><script>document.forms[0].submit()</script>"
    );
    ([(header::CONTENT_TYPE, "text/html")], html).into_response()
}

async fn me(State(s): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match authorize(&s, &method, &uri, &headers) {
        Ok(p) => Json(p).into_response(),
        Err(res) => res,
    }
}

async fn ping(State(s): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match authorize(&s, &method, &uri, &headers) {
        Ok(_) => "pong".into_response(),
        Err(res) => res,
    }
}

/// `POST /api/echo`: answers the request body (authorized), to test replayed bodies.
async fn echo(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match authorize(&s, &method, &uri, &headers) {
        Ok(_) => body.into_response(),
        Err(res) => res,
    }
}

async fn stats(State(s): State<AppState>) -> Json<Stats> {
    let active = lock(&s.sessions).active(now_ms());
    Json(Stats { sessions_active: active, ..lock(&s.auth).stats })
}

async fn reset(State(s): State<AppState>) -> StatusCode {
    lock(&s.auth).reset();
    lock(&s.sessions).reset();
    lock(&s.counters).clear();
    lock(&s.dpop).reset();
    *lock(&s.faults) = Faults::default();
    s.persist();
    StatusCode::NO_CONTENT
}

/// With nonces demanded, every answer to a request with a `DPoP` proof names the current
/// nonce, the `use_dpop_nonce` errors included (RFC 9449 §8, §9): the client keeps the latest.
async fn dpop_nonce(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let with_proof = req.headers().contains_key("dpop");
    let mut res = next.run(req).await;
    if with_proof {
        if let Some(nonce) = lock(&s.dpop).nonce(now_ms()).and_then(|n| HeaderValue::from_str(&n).ok()) {
            res.headers_mut().insert("dpop-nonce", nonce);
        }
    }
    res
}

/// `POST /__dpop/rotate`: replaces the DPoP nonce now (the old one keeps its grace period), so
/// tests can rotate it without waiting.
async fn rotate_nonce(State(s): State<AppState>) -> StatusCode {
    lock(&s.dpop).rotate_nonce(now_ms());
    StatusCode::NO_CONTENT
}

async fn set_faults(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body).map_err(|e| e.to_string()).and_then(Fault::validated) {
        Ok(fault) => {
            lock(&s.faults).set(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(why) => json_error(400, "invalid_request", &why),
    }
}

#[derive(Deserialize)]
struct CannedQuery {
    status: Option<u16>,
    body: Option<String>,
    /// With `body=text`: this text, as JSON.
    text: Option<String>,
}

/// `/__reply?status=200&body=html|empty|garbage|huge|json|text&text=…`: a canned answer, for
/// testing how the SDK takes malformed server replies.
async fn canned(Query(q): Query<CannedQuery>) -> Response {
    let status = q.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let (ctype, body) = match q.body.as_deref().unwrap_or("empty") {
        "html" => ("text/html", "<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>".to_string()),
        "garbage" => ("application/json", "{\"access_token\": ".to_string()),
        "huge" => ("application/json", format!("{{\"access_token\":\"{}\",\"expires_in\":60}}", "a".repeat(1 << 20))),
        "json" => ("application/json", "[1,2,3]".to_string()),
        "text" => ("application/json", q.text.unwrap_or_default()),
        _ => ("application/json", String::new()),
    };
    (status, [(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// A discovery document for the bad-input table: `doc` is its JSON in base64url, where
/// `$ISSUER` stands for this issuer (`http://{host}/__issuers/{doc}`).
async fn issuer_document(Path(doc): Path<String>, headers: HeaderMap) -> Response {
    use base64::Engine;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let Ok(text) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&doc) else {
        return json_error(400, "invalid_request", "doc is not base64url");
    };
    let issuer = format!("http://{host}/__issuers/{doc}");
    let body = String::from_utf8_lossy(&text).replace("$ISSUER", &issuer);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Deserialize)]
struct RedirectQuery {
    to: String,
}

async fn redirect(Query(q): Query<RedirectQuery>) -> Response {
    match HeaderValue::from_str(&q.to) {
        Ok(to) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, to)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(_) => json_error(400, "invalid_request", "bad redirect target"),
    }
}
