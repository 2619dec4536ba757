//! wasm-session
