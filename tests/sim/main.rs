//! The deterministic multi-tab simulation: 1 to 6 tabs, each a real `Machine`, in one
//! seeded world with a virtual clock, a BroadcastChannel model (in order per sender, any
//! interleaving between senders, delays), a Web Locks model (FIFO grants, steal, release on
//! close), shared storage with storage events, and a model auth server with rotating refresh
//! tokens, reuse detection that revokes the family, revocation, and faults (5xx, a proxy's
//! HTML 403, hangs, dropped connections, slow success, success after the client's timeout).
//! Tabs open, close, crash mid-request, freeze and thaw; the laptop sleeps; the wall clock
//! steps backwards; the app calls fetch, refresh and logout at random times.
//!
//! The pieces, each in its file:
//! - `world`: the clock, the event queue, the step loop, the trace, a violation's report;
//! - `setup`: what a run is made of, and a random one from a seed;
//! - `tab`: a tab around its machine; inputs in, effects routed out;
//! - `browser`: BroadcastChannel, Web Locks, storage and storage events, cookie jar, network;
//! - `auth_server`, `cookie_server`: the model servers (and the API each guards);
//! - `provider`: the model OpenID Provider, and the pages and popups of a sign-in;
//! - `app`: the app's callers (fetch, refresh, logout, sign-in) and the user's activity;
//! - `chaos`: tabs opening, closing, freezing; sleep, clock steps, offline spells;
//! - `invariants`: the one pass, run after every step;
//! - `scenarios`: the named tests; `schedules`: the random seeds; `saboteurs`: planted bugs
//!   that the invariants must catch.
//!
//! A new behaviour enters with its scenario: a test in `scenarios.rs` (or a file of its own
//! beside it, declared below) that drives tabs through the app (`w.login`, `w.fetch`,
//! `w.act(Act::...)`) or hands a tab's machine inputs directly (`w.call(t, Call::..., |ticket|
//! Input::...)`, `w.deliver(t, input)`); a new model server or browser part gets its own file,
//! and a new invariant a place in the one pass.
//!
//! Every map is a `BTreeMap`: a seed replays step for step. A failure prints the invariant it
//! broke, its seed, the setup and the trace's tail (`SIM_TAIL` lines, 80), and the command that
//! replays it: `SIM_SEED=<seed> cargo test --test sim replay -- --ignored --nocapture`
//! (`replay` is ignored unless asked for; with a planted bug, add `SIM_SABOTEUR=<name>`).
//! `SIM_SEEDS` sets how many seeded schedules `random_schedules` explores (300; `make test`:
//! 2000; `make fuzz`: 100000, from `SIM_FIRST_SEED`). `SIM_TRACE=1` prints a named scenario's
//! trace.
#![cfg(not(target_arch = "wasm32"))]

mod app;
mod auth_server;
mod browser;
mod chaos;
mod cookie_server;
mod dpop;
mod invariants;
mod provider;
mod saboteurs;
mod scenarios;
mod schedules;
mod setup;
mod tab;
mod world;
