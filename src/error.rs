//! The one error type. JavaScript receives a real `Error` with a stable `code` property.

use crate::prelude::*;

/// Everything that can go wrong, with the stable code that JavaScript sees.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// A config field is invalid: the field, then what is wrong.
    Config(String, &'static str),
    /// A method argument is invalid: the argument, then what is wrong.
    InvalidArgument(&'static str, &'static str),
    /// A token response (or stored token set) is invalid: the field, then what is wrong.
    TokenResponse(&'static str, &'static str),
    /// The login endpoint refused: HTTP status and the OAuth `error` code if it sent one.
    LoginFailed(u16, Option<String>),
    /// The call needs a session and there is none.
    NotAuthenticated,
    /// The server rejected the refresh token (`invalid_grant`): the session is over.
    RefreshRejected,
    /// The refresh could not complete (network, timeout, 5xx, bad reply); it is retried.
    RefreshFailed(&'static str),
    /// A request to the auth server failed before any answer (network, CORS, offline).
    Network,
    /// A request to the auth server got no answer within `requestTimeoutMs`.
    Timeout,
    /// Storage is unavailable or full, or held data that is not a session.
    Storage(&'static str),
    /// The session was disposed.
    Disposed,
}

impl Error {
    /// The stable machine-readable code (`error.code` in JavaScript).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config(..) => "invalid_config",
            Error::InvalidArgument(..) => "invalid_argument",
            Error::TokenResponse(..) => "invalid_token_response",
            Error::LoginFailed(..) => "login_failed",
            Error::NotAuthenticated => "not_authenticated",
            Error::RefreshRejected => "refresh_rejected",
            Error::RefreshFailed(_) => "refresh_failed",
            Error::Network => "network",
            Error::Timeout => "timeout",
            Error::Storage(_) => "storage",
            Error::Disposed => "disposed",
        }
    }

    /// A message that says what happened and what to fix. Never contains a token.
    pub fn message(&self) -> String {
        let mut m = String::from("wasm-session: ");
        match self {
            Error::Config(field, why) => push_all(&mut m, &["config.", field, " ", why]),
            Error::InvalidArgument(arg, why) => push_all(&mut m, &[arg, " ", why]),
            Error::TokenResponse(field, why) => push_all(&mut m, &["token response: ", field, " ", why]),
            Error::LoginFailed(status, code) => {
                push_all(&mut m, &["login failed with HTTP status ", &status_text(*status)]);
                if let Some(code) = code {
                    push_all(&mut m, &[" (", code, ")"]);
                }
            }
            Error::NotAuthenticated => m.push_str("not signed in"),
            Error::RefreshRejected => m.push_str("the server rejected the refresh token; the session has ended"),
            Error::RefreshFailed(why) => push_all(&mut m, &["token refresh failed: ", why, "; it will be retried"]),
            Error::Network => m.push_str("network error: the auth server could not be reached"),
            Error::Timeout => m.push_str("the auth server did not answer within requestTimeoutMs"),
            Error::Storage(why) => push_all(&mut m, &["storage: ", why]),
            Error::Disposed => m.push_str("the session was disposed"),
        }
        m
    }
}

fn push_all(m: &mut String, parts: &[&str]) {
    for p in parts {
        m.push_str(p);
    }
}

/// Decimal text of a status code without `format!` machinery.
fn status_text(status: u16) -> String {
    let mut text = String::new();
    let mut unit = 10_000;
    while unit > 1 && status < unit {
        unit /= 10;
    }
    while unit > 0 {
        text.push(char::from(b'0' + (status / unit % 10) as u8));
        unit /= 10;
    }
    text
}

#[cfg(target_arch = "wasm32")]
impl Error {
    /// A JS `Error` with `code` set, as thrown to or passed to JavaScript.
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        let e = js_sys::Error::new(&self.message());
        e.set_name("SessionError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&e, &"code".into(), &self.code().into());
        if let Error::LoginFailed(status, _) = self {
            let _ = js_sys::Reflect::set(&e, &"status".into(), &(*status).into());
        }
        e.into()
    }
}

#[cfg(target_arch = "wasm32")]
impl From<Error> for wasm_bindgen::JsValue {
    fn from(e: Error) -> Self {
        e.to_js()
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_codes_are_stable() {
        let e = Error::Config("tokenUrl".into(), "must be a string");
        assert_eq!(e.code(), "invalid_config");
        assert_eq!(e.message(), "wasm-session: config.tokenUrl must be a string");
        assert_eq!(
            Error::LoginFailed(401, Some("invalid_credentials".into())).message(),
            "wasm-session: login failed with HTTP status 401 (invalid_credentials)"
        );
        assert_eq!(status_text(0), "0");
        assert_eq!(status_text(65535), "65535");
    }
}
