//! `wasm-session-server`: the demo page, the package, and a local OAuth-style backend.
//!
//! Environment: `PORT` (8080; 0 picks a free port), `API_PORT`, `FOREIGN_PORT`, `ACCESS_TTL`
//! seconds (30), `REFRESH_TTL` seconds (86400), `WWW_DIR` (`www`), `PKG_DIR` (`pkg`),
//! `STATE_FILE` (keep sessions across restarts; none by default), `SESSION_IDLE` and
//! `SESSION_MAX` seconds (cookie sessions: 900 without an extension, 28800 after sign-in).
//! Prints one `listening <role> http://127.0.0.1:<port>` line per origin.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use tokio::net::TcpListener;
use wasm_session_server::{api_app, foreign_app, main_app, state, Settings};

fn env_u64(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.is_empty() => Ok(default),
        Ok(v) => v.parse().map_err(|_| format!("{name} must be a whole number, got {v:?}")),
    }
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
    };
    let shared = state(&settings);
    let mut tasks = vec![spawn(bind("main", env_u64("PORT", 8080)?).await?, main_app(shared.clone(), &settings))];
    if std::env::var("API_PORT").is_ok_and(|v| !v.is_empty()) {
        tasks.push(spawn(bind("api", env_u64("API_PORT", 0)?).await?, api_app(shared.clone())));
    }
    if std::env::var("FOREIGN_PORT").is_ok_and(|v| !v.is_empty()) {
        tasks.push(spawn(bind("foreign", env_u64("FOREIGN_PORT", 0)?).await?, foreign_app()));
    }
    println!(
        "ready access_ttl={}s refresh_ttl={}s session_idle={}s session_max={}s",
        settings.access_ttl_s, settings.refresh_ttl_s, settings.session_idle_s, settings.session_max_s
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
