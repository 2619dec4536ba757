//! Helpers shared by the server's test files: raw HTTP over sockets, servers on free ports.
#![allow(dead_code)] // each test file uses a different part

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasm_session_server::{api_app, dpop, foreign_app, main_app, state, Settings};

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request with `Connection: close`; `None` when the server drops the connection.
pub async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    // Bodies of unknown length come chunked; the tests only need the JSON inside.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.split("\r\n").skip(1).step_by(2).collect::<String>()
    } else {
        body.to_string()
    };
    Some(Reply { status, head: head.to_string(), body })
}

pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

pub struct Servers {
    pub main: u16,
    pub api: u16,
    pub foreign: u16,
}

pub async fn start(access_ttl_s: u64) -> Servers {
    start_with(access_ttl_s, dpop::Config::default()).await
}

/// The three origins on free ports, with these DPoP settings.
pub async fn start_with(access_ttl_s: u64, dpop: dpop::Config) -> Servers {
    let settings = Settings {
        access_ttl_s,
        refresh_ttl_s: 3600,
        www_dir: "www".into(),
        pkg_dir: "pkg".into(),
        state_file: None,
        session_idle_s: 60,
        session_max_s: 600,
        dpop,
    };
    let shared = state(&settings);
    let mut ports = Vec::new();
    for app in [main_app(shared.clone(), &settings), api_app(shared), foreign_app()] {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(l.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    Servers { main: ports[0], api: ports[1], foreign: ports[2] }
}

pub async fn login(port: u16) -> serde_json::Value {
    let r = http(port, "POST", "/auth/login", &[JSON], r#"{"username":"demo","password":"demo"}"#).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

pub async fn try_refresh(port: u16, rt: &str) -> Option<Reply> {
    http(
        port,
        "POST",
        "/auth/token",
        &[FORM],
        &format!("grant_type=refresh_token&refresh_token={rt}&client_id=demo-spa"),
    )
    .await
}

pub async fn refresh(port: u16, rt: &str) -> Reply {
    try_refresh(port, rt).await.unwrap()
}

pub async fn stats(port: u16) -> serde_json::Value {
    http(port, "GET", "/__stats", &[], "").await.unwrap().json()
}
