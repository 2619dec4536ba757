//! wasm-session from a Leptos app (client-side rendering): sign-in with OpenID Connect, the
//! user and the token's expiry as signals fed by the session's events, an API call through
//! `session.fetch`, logout. Every open tab of the app follows: one sign-in, one logout.
//!
//! The page (`www/leptos.html`) is served by the demo server; the provider is the demo's
//! (`make demo`: http://localhost:8090), or the one `?issuer=` names (the end-to-end test's).

use leptos::prelude::*;
use leptos::task::spawn_local;

#[cfg(feature = "session")]
#[path = "session.rs"]
mod auth;
#[cfg(not(feature = "session"))]
#[path = "stub.rs"]
mod auth;

/// What the page shows of the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shown {
    /// The signed-in user (the ID token's `sub`), if any.
    pub user: Option<String>,
    /// When the access token expires (epoch ms).
    pub expires_at: Option<f64>,
}

fn main() {
    leptos::mount::mount_to_body(App);
}

fn time(ms: f64) -> String {
    String::from(js_sys::Date::new(&ms.into()).to_locale_time_string("en-GB"))
}

#[component]
fn App() -> impl IntoView {
    let (shown, set_shown) = signal(Shown::default());
    let (answer, set_answer) = signal(String::new());
    let (error, set_error) = signal(String::new());
    // The session calls back on every event (here and from other tabs): the signals follow.
    auth::start(move |now| set_shown.set(now), move |e| set_error.set(e));
    let signed_in = move || shown.with(|s| s.user.is_some());
    let call = move |_| {
        spawn_local(async move {
            match auth::call_api().await {
                Ok(body) => set_answer.set(body),
                Err(e) => set_error.set(e),
            }
        })
    };
    let login = move |_| spawn_local(async move { auth::sign_in().await.unwrap_or_else(|e| set_error.set(e)) });
    let logout = move |_| spawn_local(async move { auth::sign_out().await.unwrap_or_else(|e| set_error.set(e)) });
    view! {
        <main>
            <h1>"wasm-session + Leptos"</h1>
            <p id="status">
                {move || match shown.get().user {
                    Some(user) => format!("Signed in as {user}"),
                    None => "Signed out".to_string(),
                }}
            </p>
            <p id="expiry">
                {move || shown.get().expires_at.map(|at| format!("Access token valid until {}", time(at)))}
            </p>
            <button id="login" on:click=login disabled=signed_in>"Sign in"</button>
            <button id="call" on:click=call disabled=move || !signed_in()>"Call the API"</button>
            <button id="logout" on:click=logout disabled=move || !signed_in()>"Sign out"</button>
            <pre id="answer">{answer}</pre>
            <p id="error">{error}</p>
        </main>
    }
}
