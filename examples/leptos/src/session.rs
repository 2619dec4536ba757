//! The page's session: one per tab, made at start-up.

use std::cell::RefCell;

use serde::Deserialize;
use wasm_session::{Config, Event, RedirectOptions, Session};

use crate::Shown;

thread_local! {
    /// The tab's session (a handle: calls clone it).
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

fn session() -> Result<Session, String> {
    SESSION.with(|s| s.borrow().clone()).ok_or_else(|| "no session (see the error above)".to_string())
}

/// The ID token's claims the page shows.
#[derive(Deserialize)]
struct IdClaims {
    sub: String,
}

fn shown(session: &Session) -> Shown {
    Shown {
        user: session.id_claims::<IdClaims>().map(|c| c.sub).filter(|_| session.is_authenticated()),
        expires_at: session.expires_at(),
    }
}

/// The provider's issuer: `?issuer=` (kept for this tab's later loads: the provider's
/// redirect back carries no such parameter), else the demo's.
fn issuer(location: &web_sys::Location) -> String {
    let store = web_sys::window().and_then(|w| w.session_storage().ok().flatten());
    let given = location.search().ok().and_then(|q| {
        let q = web_sys::UrlSearchParams::new_with_str(&q).ok()?;
        q.get("issuer")
    });
    if let (Some(issuer), Some(store)) = (&given, &store) {
        let _ = store.set_item("leptos-example-issuer", issuer);
    }
    given
        .or_else(|| store.and_then(|s| s.get_item("leptos-example-issuer").ok().flatten()))
        .unwrap_or_else(|| "http://localhost:8090".into())
}

/// Makes the tab's session and hands `show` what to show at start-up and after every event.
pub fn start(show: impl Fn(Shown) + Clone + 'static, fail: impl Fn(String) + 'static) {
    let Some(location) = web_sys::window().map(|w| w.location()) else { return };
    let page = location.origin().unwrap_or_default() + "/leptos.html";
    let config = Config {
        issuer: Some(issuer(&location)),
        client_id: Some("demo-spa".into()),
        redirect_uri: Some(page.clone()),
        post_logout_redirect_uri: Some(page),
        namespace: Some("leptos-example".into()),
        ..Default::default()
    };
    let session = match Session::new(config) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    SESSION.with(|s| *s.borrow_mut() = Some(session.clone()));
    let on_event = show.clone();
    let me = session.clone();
    // For the page's life: the tab has one session.
    session
        .subscribe(move |event| match event {
            Event::Error(e) => web_sys::console::warn_1(&e.to_string().into()),
            _ => on_event(shown(&me)),
        })
        .forget();
    let callback = location.search().is_ok_and(|q| q.contains("code=") || q.contains("error="));
    wasm_bindgen_futures::spawn_local(async move {
        if callback {
            // Back from the provider: the code is exchanged, every tab signed in.
            if let Err(e) = session.handle_redirect_callback::<String>(None).await {
                fail(e.to_string());
            }
        }
        session.ready().await;
        show(shown(&session));
    });
}

/// Sends the browser to the provider.
pub async fn sign_in() -> Result<(), String> {
    session()?.login_with_redirect(RedirectOptions::new()).await.map_err(|e| e.to_string())
}

/// The provider's userinfo endpoint through `session.fetch` (the issuer's origin gets the
/// token without being listed).
pub async fn call_api() -> Result<String, String> {
    let session = session()?;
    let issuer = web_sys::window().map(|w| issuer(&w.location())).unwrap_or_default();
    let response = session.fetch_url(&format!("{issuer}/me")).await.map_err(|e| e.to_string())?;
    let text = wasm_bindgen_futures::JsFuture::from(response.text().map_err(|_| "unreadable answer")?)
        .await
        .map_err(|_| "unreadable answer")?;
    Ok(format!("{} {}", response.status(), text.as_string().unwrap_or_default()))
}

/// Ends the session in every tab, then at the provider.
pub async fn sign_out() -> Result<(), String> {
    session()?.logout().await.map_err(|e| e.to_string())
}
