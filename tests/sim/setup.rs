//! What a run is made of: the number of tabs, the browser's features, the config, the faults
//! and the app's pace ([`Setup`]); a random one drawn from a seed ([`random_setup`]).

use wasm_session::core::config::{Config, Server, StorageMode};
use wasm_session::core::machine::Transport;

use crate::saboteurs::Saboteur;
use crate::world::Rng;

#[derive(Clone, Debug)]
pub struct Setup {
    pub tabs: usize,
    pub storage: StorageMode,
    pub transport: Transport,
    pub locks: bool,
    pub ttl_s: f64,
    pub config: Config,
    /// Probability that a refresh request meets a fault.
    pub fault_rate: f64,
    /// Random actions: freezes, crashes, sleeps, clock steps, offline spells.
    pub chaos: bool,
    pub fetch_every_ms: f64,
    /// The user does something in some tab about this often.
    pub activity_every_ms: f64,
    pub duration_ms: f64,
    /// Cookie mode: the server issues a new CSRF token with each extension (else the
    /// session keeps its token, as the demo server does).
    pub csrf_rotates: bool,
    /// A planted bug in every tab (off in normal runs): the suite asserts it is caught.
    pub saboteur: Option<Saboteur>,
    /// Sign in with OpenID Connect (see `provider.rs`) instead of a direct token response.
    pub oidc: bool,
}

impl Setup {
    pub fn new(tabs: usize, storage: StorageMode) -> Setup {
        let config = Config {
            server: Server::OAuth {
                token_url: "https://app.example/auth/token".into(),
                revoke_url: Some("https://app.example/auth/revoke".into()),
            },
            storage,
            ..Config::default()
        };
        Setup {
            tabs,
            storage,
            transport: Transport::Broadcast,
            locks: true,
            ttl_s: 30.0,
            config,
            fault_rate: 0.0,
            chaos: false,
            fetch_every_ms: 500.0,
            activity_every_ms: 10_000.0,
            duration_ms: 120_000.0,
            csrf_rotates: true,
            saboteur: None,
            oidc: false,
        }
    }
}

/// A server session behind a cookie instead of tokens (memory only, by the config's rule).
pub fn cookie_mode(s: &mut Setup) {
    s.storage = StorageMode::Memory;
    s.config.storage = StorageMode::Memory;
    s.config.server =
        Server::Cookie { session_url: "https://app.example/session".into(), csrf_header: "X-CSRF-Token".into() };
    if s.transport == Transport::StorageBus {
        s.transport = Transport::Broadcast;
    }
}

/// The setup of a random schedule, drawn from the seed's first numbers.
pub fn random_setup(rng: &mut Rng) -> Setup {
    let storage = [StorageMode::Memory, StorageMode::Session, StorageMode::Local][rng.below(3)];
    let mut s = Setup::new(1 + rng.below(6), storage);
    s.ttl_s = [2.0, 5.0, 30.0, 120.0][rng.below(4)];
    match rng.below(8) {
        // No BroadcastChannel: storage events, with Web Locks (local mode).
        0 if storage == StorageMode::Local => s.transport = Transport::StorageBus,
        // No Web Locks: claims over the channel.
        1 => s.locks = false,
        // Alone.
        2 => {
            s.tabs = 1;
            s.config.cross_tab = false;
            s.transport = Transport::None;
        }
        _ => {}
    }
    s.config.request_timeout_ms = [2_000.0, 10_000.0][rng.below(2)];
    s.config.lock_timeout_ms = [1_000.0, 5_000.0, 15_000.0][rng.below(3)];
    s.config.retry_base_ms = 200.0;
    s.config.retry_max_ms = [2_000.0, 30_000.0][rng.below(2)];
    s.config.refresh_lead_ms = [0.0, 60_000.0][rng.below(2)];
    s.fault_rate = [0.0, 0.05, 0.3][rng.below(3)];
    s.chaos = rng.chance(0.7) && s.transport != Transport::None;
    s.fetch_every_ms = [100.0, 700.0, 3_000.0][rng.below(3)];
    s.activity_every_ms = [2_000.0, 20_000.0, 120_000.0][rng.below(3)];
    if rng.chance(0.3) {
        s.config.idle_timeout_ms = Some([30_000.0, 90_000.0][rng.below(2)]);
        s.config.idle_warning_ms = rng.chance(0.5).then_some(10_000.0);
    }
    if rng.chance(0.2) {
        s.config.max_session_ms = Some([60_000.0, 300_000.0][rng.below(2)]);
    }
    if rng.chance(0.2) {
        cookie_mode(&mut s);
        s.csrf_rotates = rng.chance(0.5);
    } else if rng.chance(0.3) {
        crate::provider::oidc_mode(&mut s);
    }
    s.duration_ms = rng.range(30_000.0, 600_000.0);
    // DPoP (token modes): keys, rotating nonces (drawn last: earlier draws stay the same).
    s.config.dpop = s.config.mode() == wasm_session::core::config::Mode::Token && rng.chance(0.3);
    s
}
