//! # wasm-session
//!
//! A client-side session SDK for single page applications: it holds an app's OAuth 2.0
//! tokens, attaches them to `fetch` requests for allowed origins only, refreshes them before
//! they expire, and keeps every open tab in step (one login, one refresh, one logout).
//!
//! ## Map
//!
//! - [`core`]: every decision, without I/O: the session state machine
//!   ([`core::machine::Machine`]), config, tokens, policy, the cross-tab protocol, the
//!   stored record, OpenID Connect's checks ([`core::oidc`]), errors and events. Tested on the host and by the multi-tab simulation.
//! - `web` (wasm32 only): the browser driver. The `Session` class, the one owner of the
//!   machine that carries out its effects (`driver`), and the browser parts it uses: HTTP,
//!   OpenID Connect's redirects (`oidc`), tabs (BroadcastChannel, Web Locks), storage,
//!   timers and page events.
#![deny(missing_docs)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub use web::session::Session;

pub use core::config::{Config, StorageMode};
pub use core::error::Error;
pub use core::token::TokenSet;
