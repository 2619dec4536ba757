//! The browser driver: the only code that touches wasm-bindgen, web-sys and js-sys. It
//! decides nothing; it turns the machine's effects into browser calls and browser results
//! into the machine's inputs.
//!
//! - [`client`]: the Rust API, the library's face: [`client::Session`] and its
//!   subscriptions; `client_oidc.rs` adds its OpenID Connect sign-in (the `oidc` feature).
//! - `js` (the `js` feature): the `#[wasm_bindgen]` `Session` class and its TypeScript
//!   types, a translation of JS values to the Rust API; `js_oidc.rs` adds its OpenID Connect
//!   methods.
//! - [`resolve`]: a config's URLs resolved against the page, the session's endpoints.
//! - [`driver`]: the one owner of the [`crate::core::machine::Machine`]: feeds it inputs and
//!   carries out its effects with the adapters below.
//! - [`sink`]: the way into a session that the adapters get instead of the driver.
//!
//! Adapters, each taking a [`sink::Sink`] and explicit parameters, never the driver:
//! - [`http`]: the transport to the auth server (timeout, no redirects, size limit).
//! - [`auth`]: the auth server's calls (refresh, revocation, discovery, code exchange,
//!   login, the cookie session), each turning a raw reply into what the machine reads.
//! - [`fetch`]: the `session.fetch` wrapper.
//! - [`dpop`]: DPoP keys (IndexedDB), proofs, nonces; without the `dpop` feature,
//!   `dpop_off.rs` in its place (no key can exist).
//!
//! With the `oidc` feature (`wasm-session/oidc` on npm):
//! - [`oidc`]: OpenID Connect sign-in in the browser: secrets and S256, the login kept in
//!   `sessionStorage`, navigation, the callback's parameters and the address bar.
//! - [`popup`]: the sign-in popup (opened in the click, watched for its callback and closing).
//! - [`tabs`]: BroadcastChannel (with a `storage`-event fallback) and Web Locks.
//! - [`storage`]: memory, `sessionStorage`, `localStorage`.
//! - [`timers`]: the deadline timer and the page events that re-check it.
//! - [`callbacks`]: every callback, listener and future handed to JS, in two shapes.
//! - [`events`]: the app's subscriptions, event payloads and JS errors.

pub mod auth;
pub mod callbacks;
pub mod client;
#[cfg(feature = "oidc")]
pub mod client_oidc;
#[cfg(feature = "dpop")]
pub mod dpop;
#[cfg(not(feature = "dpop"))]
#[path = "dpop_off.rs"]
pub mod dpop;
pub mod driver;
pub mod events;
pub mod fetch;
pub mod http;
#[cfg(feature = "js")]
pub mod js;
#[cfg(all(feature = "js", feature = "oidc"))]
mod js_oidc;
#[cfg(feature = "oidc")]
pub mod oidc;
#[cfg(feature = "oidc")]
pub mod popup;
pub mod resolve;
pub mod sink;
pub mod storage;
pub mod tabs;
pub mod timers;
