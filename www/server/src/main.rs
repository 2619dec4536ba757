//! `wasm-session-server`: the demo page, the package, and a local OAuth-style backend.
//!
//! Environment: `PORT` (8080; 0 picks a free port), `API_PORT`, `FOREIGN_PORT`, `ACCESS_TTL`
//! seconds (30), `REFRESH_TTL` seconds (86400), `WWW_DIR` (`www`), `PKG_DIR` (`pkg`),
//! `STATE_FILE` (keep sessions across restarts; none by default), `SESSION_IDLE` and
//! `SESSION_MAX` seconds (cookie sessions: 900 without an extension, 28800 after sign-in).
//! DPoP: `DPOP_IAT_WINDOW` seconds (60: how far a proof's `iat` may be from the server's
//! clock), `DPOP_NONCE=1` (demand server nonces), `DPOP_NONCE_ROTATE` seconds (30: a nonce's
//! life) and `DPOP_NONCE_GRACE` seconds (10: how long the replaced nonce still works).
//! Prints one `listening <role> http://127.0.0.1:<port>` line per origin.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use tokio::net::TcpListener;
use wasm_session_server::dpop::{Config as DpopConfig, NoncePolicy};
use wasm_session_server::{api_app, foreign_app, main_app, state, Settings};

fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.is_empty() => Ok(default),
        Ok(v) => v.parse().map_err(|_| format!("{name} must be a whole number, got {v:?}")),
    }
}

fn dpop_config() -> Result<DpopConfig, String> {
    let nonce = match std::env::var("DPOP_NONCE").unwrap_or_default().as_str() {
        "" | "0" => None,
        "1" => Some(NoncePolicy {
            rotate_ms: env_u64("DPOP_NONCE_ROTATE", 30)?.max(1).saturating_mul(1000),
            grace_ms: env_u64("DPOP_NONCE_GRACE", 10)?.saturating_mul(1000),
        }),
        other => return Err(format!("DPOP_NONCE must be 0 or 1, got {other:?}")),
    };
    Ok(DpopConfig { iat_window_ms: env_u64("DPOP_IAT_WINDOW", 60)?.saturating_mul(1000), nonce })
}

async fn bind(role: &str, port: u64) -> Result<TcpListener, String> {
    let port = u16::try_from(port).map_err(|_| format!("{role} port {port} is out of range"))?;
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| format!("cannot bind {role} on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {role} http://{addr}");
    Ok(listener)
}

fn spawn(listener: TcpListener, app: Router) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move { axum::serve(listener, app).await })
}

async fn run() -> Result<(), String> {
    let settings = Settings {
        access_ttl_s: env_u64("ACCESS_TTL", 30)?.max(1),
        refresh_ttl_s: env_u64("REFRESH_TTL", 86_400)?.max(1),
        www_dir: std::env::var_os("WWW_DIR").map_or_else(|| PathBuf::from("www"), PathBuf::from),
        pkg_dir: std::env::var_os("PKG_DIR").map_or_else(|| PathBuf::from("pkg"), PathBuf::from),
        state_file: std::env::var_os("STATE_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
        session_idle_s: env_u64("SESSION_IDLE", 900)?.max(1),
        session_max_s: env_u64("SESSION_MAX", 28_800)?.max(1),
        dpop: dpop_config()?,
    };
    let shared = state(&settings);
    let mut tasks = vec![spawn(bind("main", env_u64("PORT", 8080)?).await?, main_app(shared.clone(), &settings))];
    if std::env::var("API_PORT").is_ok_and(|v| !v.is_empty()) {
        tasks.push(spawn(bind("api", env_u64("API_PORT", 0)?).await?, api_app(shared.clone())));
    }
    if std::env::var("FOREIGN_PORT").is_ok_and(|v| !v.is_empty()) {
        tasks.push(spawn(bind("foreign", env_u64("FOREIGN_PORT", 0)?).await?, foreign_app()));
    }
    let nonce = settings
        .dpop
        .nonce
        .map_or_else(|| "off".to_string(), |n| format!("{}s+{}s", n.rotate_ms / 1000, n.grace_ms / 1000));
    println!(
        "ready access_ttl={}s refresh_ttl={}s session_idle={}s session_max={}s dpop_iat_window={}s dpop_nonce={nonce}",
        settings.access_ttl_s,
        settings.refresh_ttl_s,
        settings.session_idle_s,
        settings.session_max_s,
        settings.dpop.iat_window_ms / 1000,
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        r = futures_first(tasks) => r,
    }
}

/// Returns when the first listener stops (it should not).
async fn futures_first(tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>) -> Result<(), String> {
    for t in tasks {
        t.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("wasm-session-server: {e}");
        std::process::exit(1);
    }
}
