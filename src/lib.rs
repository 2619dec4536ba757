//! # wasm-session
//!
//! A client-side session SDK for single page applications: it holds an app's OAuth 2.0
//! tokens, attaches them to `fetch` requests for allowed origins only, refreshes them
//! before they expire, and keeps every open tab in step (one login, one refresh, one logout).
//!
//! ## Map
//!
//! Pure core (no browser; tested with `cargo test` on the host):
//! - [`config`]: options, defaults, validation.
//! - [`token`]: token responses, expiry, JWT claims.
//! - [`clock`]: the injected clock and skew estimate.
//! - [`policy`]: when to refresh, backoff, what a failure means.
//! - [`tabs`]: the cross-tab message types (plus the channel and lock glue).
//! - [`store`]: the stored format (plus the storage glue).
//! - [`events`]: event names and logout reasons (plus dispatch).
//! - [`flight`]: one result awaited by many callers (plus, in the browser, the small
//!   executor that runs every task on the microtask queue).
//! - [`value`], [`error`]: outside values and the one error type.
//! - [`cell`]: a `RefCell` whose borrow conflicts trap without a panic message.
//!
//! Browser glue (wasm32 only): `api` (the `Session` class), `session` (state and
//! transitions), `refresh`, `http` (`session.fetch`), `timers` (deadlines and wake-ups),
//! `page` (the page's `window`), `callback` (Rust callbacks for JS), `allocator` (a small
//! allocator). The few steps done in plain JS (a POST, a lock, the tab bus, parsing a URL or
//! a JWT payload, opening storage) are in `src/browser.js`, one module for all, so that a
//! page loads one extra file, not one per step.
#![deny(missing_docs)]
// The browser build is `no_std` (with `alloc`): std's panic machinery and message formatting
// would cost every user about 2 KB gzip. Host builds and tests keep std.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

/// What the std prelude would bring, for the `no_std` browser build.
#[allow(unused_imports)]
mod prelude {
    pub use alloc::boxed::Box;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

/// A panic is a bug (outside data never reaches one), and the module is dead after it either
/// way: trap at once, without formatting a message nobody can read.
#[cfg(all(target_arch = "wasm32", feature = "panic-trap"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod cell;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod flight;
pub mod http;
pub mod policy;
pub mod store;
pub mod tabs;
pub mod timers;
pub mod token;
pub mod value;

#[cfg(target_arch = "wasm32")]
pub mod allocator;
#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod callback;
#[cfg(target_arch = "wasm32")]
pub mod page;
#[cfg(target_arch = "wasm32")]
pub mod refresh;
#[cfg(target_arch = "wasm32")]
pub mod session;

#[cfg(target_arch = "wasm32")]
pub use api::Session;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator::new();
pub use config::{Config, StorageMode};
pub use error::Error;
pub use token::TokenSet;
