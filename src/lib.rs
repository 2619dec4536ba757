//! # wasm-session
//!
//! A client-side session SDK for single page applications: it holds an app's OAuth 2.0
//! tokens, attaches them to `fetch` requests for allowed origins only, refreshes them before
//! they expire, and keeps every open tab in step (one login, one refresh, one logout).
//!
//! The Rust API ([`Session`], [`Config`], [`Event`], [`Error`], [`Subscription`]) is the
//! library; the npm package's JS class (the `js` feature, on by default) is an adapter over
//! it. A Rust web app (Leptos, Yew, Dioxus) turns default features off and picks `oidc` (and
//! `dpop`) as it needs; see `examples/leptos` in the repository.
//!
//! ```no_run
//! # #[cfg(target_arch = "wasm32")]
//! # async fn run() -> Result<(), wasm_session::Error> {
//! use wasm_session::{Config, Event, Session};
//!
//! let session = Session::new(Config { token_url: Some("/auth/token".into()), ..Default::default() })?;
//! let _sub = session.subscribe(|event| if let Event::Logout { reason } = event { let _ = reason; });
//! session.ready().await;
//! let me = session.fetch_url("/api/me").await?;
//! # let _ = me; Ok(()) }
//! # fn main() {}
//! ```
//!
//! ## Map
//!
//! - [`core`]: every decision, without I/O: the session as small state machines under one
//!   top machine ([`core::machine::Machine`]: the refresh protocol, the callers, the cookie
//!   session, the limits, the OpenID Connect sign-in, one deadline table), config (one table
//!   of options), tokens, policy, the cross-tab protocol, the stored record, OpenID Connect's
//!   checks ([`core::oidc`]), errors and events. Tested on the host and by the multi-tab
//!   simulation (`tests/sim/`).
//! - `web` (wasm32 only): the browser driver, which decides nothing. The Rust API
//!   (`client`), the JS class over it (`js`), the
//!   one owner of the machine that carries out its effects (`driver`), the sink its adapters
//!   feed results back through, and the adapters: the auth server's calls over the transport
//!   (`auth`, `http`), `session.fetch` (`fetch`), OpenID Connect's redirects and popup
//!   (`oidc`, `popup`), tabs (BroadcastChannel, Web Locks), storage, timers and page events.
#![deny(missing_docs)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(target_arch = "wasm32")]
pub use web::client::{AuthHeaders, Session, Subscription};
#[cfg(all(target_arch = "wasm32", feature = "oidc"))]
pub use web::client_oidc::RedirectOptions;

pub use core::config::{Mode, SessionConfig as Config, StorageMode};
pub use core::error::Error;
pub use core::events::{Event, LogoutReason};
pub use core::token::TokenSet;
