//! The browser driver: the only code that touches wasm-bindgen, web-sys and js-sys. It
//! decides nothing; it turns the machine's effects into browser calls and browser results
//! into the machine's inputs.
//!
//! - [`session`]: the `#[wasm_bindgen]` `Session` class, its TypeScript types, config reading.
//! - [`driver`]: the one owner of the [`crate::core::machine::Machine`].
//! - [`http`]: `session.fetch`, and the POSTs to the auth server (timeout, size limit).
//! - [`oidc`]: OpenID Connect sign-in: discovery, PKCE, the redirect and its callback.
//! - [`tabs`]: BroadcastChannel (with a `storage`-event fallback) and Web Locks.
//! - [`storage`]: memory, `sessionStorage`, `localStorage`.
//! - [`timers`]: the deadline timer and the page events that re-check it.
//! - [`callbacks`]: every callback and future handed to JS, in two shapes.
//! - [`events`]: the app's subscriptions, event payloads and JS errors.

pub mod callbacks;
pub mod driver;
pub mod events;
pub mod http;
pub mod oidc;
pub mod session;
pub mod storage;
pub mod tabs;
pub mod timers;
