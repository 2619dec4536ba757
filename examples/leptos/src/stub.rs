//! The same calls with the session stubbed out (without the `session` feature): the page without
//! wasm-session, the baseline of the marginal size (scripts/example-size.sh).

use crate::Shown;

/// Shows a signed-out page.
pub fn start(show: impl Fn(Shown) + Clone + 'static, _fail: impl Fn(String) + 'static) {
    show(Shown::default());
}

/// Nothing to sign in to.
pub async fn sign_in() -> Result<(), String> {
    Err("stub".into())
}

/// No API call.
pub async fn call_api() -> Result<String, String> {
    Err("stub".into())
}

/// Nothing to sign out of.
pub async fn sign_out() -> Result<(), String> {
    Err("stub".into())
}
