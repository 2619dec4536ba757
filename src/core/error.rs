//! The one error type. JavaScript receives a real `Error` with a stable `code` property and a
//! message that says what to fix; messages never contain tokens. Rust receives it as a
//! [`std::error::Error`] with the same [`Error::code`].

/// Everything that can go wrong, with the stable code that JavaScript sees.
///
/// ```
/// let e = wasm_session::Error::Network;
/// assert_eq!(e.code(), "network");
/// assert!(e.to_string().starts_with("wasm-session: network error"));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
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
    /// A sign-in callback does not answer the sign-in in progress here (wrong `state`, a
    /// replay, another provider's `iss`, or a damaged stored login): what is wrong.
    InvalidState(&'static str),
    /// The provider answered the sign-in with an error (RFC 6749 §4.1.2.1): `error`, then
    /// `error_description` if it sent one.
    OAuth(String, Option<String>),
    /// The issuer's discovery document is unusable: the field, then what is wrong.
    Discovery(&'static str, &'static str),
    /// The ID token's claims do not fit this sign-in: the claim, then what is wrong.
    IdToken(&'static str, &'static str),
    /// `loginWithPopup` could not open its window (a popup blocker, or not called in a click).
    PopupBlocked,
    /// The user closed the sign-in popup before it finished.
    PopupClosed,
    /// The sign-in popup did not finish within its `timeoutMs`.
    PopupTimeout,
    /// DPoP (RFC 9449): the key or a proof could not be made or used, or the server did not
    /// bind the tokens: what happened.
    Dpop(&'static str),
    /// A browser call failed outside the session's own checks (`session.fetch`'s request
    /// could not be sent: code `network`), or a session error that came back through a JS
    /// promise: its code, then its message.
    Js(&'static str, String),
}

/// Every code [`Error::code`] returns.
pub const CODES: [&str; 18] = [
    "invalid_config",
    "invalid_argument",
    "invalid_token_response",
    "login_failed",
    "not_authenticated",
    "refresh_rejected",
    "refresh_failed",
    "network",
    "timeout",
    "storage",
    "disposed",
    "invalid_state",
    "oauth_error",
    "invalid_discovery",
    "invalid_id_token",
    "popup_blocked",
    "popup_closed",
    "dpop",
];

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
            Error::InvalidState(_) => "invalid_state",
            Error::OAuth(..) => "oauth_error",
            Error::Discovery(..) => "invalid_discovery",
            Error::IdToken(..) => "invalid_id_token",
            Error::PopupBlocked => "popup_blocked",
            Error::PopupClosed => "popup_closed",
            Error::PopupTimeout => "timeout",
            Error::Dpop(_) => "dpop",
            Error::Js(code, _) => code,
        }
    }

    /// A message that says what happened and what to fix. Never contains a token.
    pub fn message(&self) -> String {
        let mut m = String::from("wasm-session: ");
        let parts: &[&str] = match self {
            Error::Config(field, why) => &["config.", field, " ", why],
            Error::InvalidArgument(arg, why) => &[arg, " ", why],
            Error::TokenResponse(field, why) => &["token response: ", field, " ", why],
            Error::LoginFailed(status, code) => {
                m.push_str("login failed with HTTP status ");
                m.push_str(&status.to_string());
                if let Some(code) = code {
                    m.push_str(" (");
                    m.push_str(code);
                    m.push(')');
                }
                &[]
            }
            Error::NotAuthenticated => &["not signed in"],
            Error::RefreshRejected => &["the server rejected the refresh token; the session has ended"],
            Error::RefreshFailed(why) => &["token refresh failed: ", why, "; it will be retried"],
            Error::Network => &["network error: the auth server could not be reached"],
            Error::Timeout => &["the auth server did not answer within requestTimeoutMs"],
            Error::Storage(why) => &["storage: ", why],
            Error::Disposed => &["the session was disposed"],
            Error::InvalidState(why) => &["sign-in callback refused: ", why],
            Error::OAuth(error, description) => {
                m.push_str("the provider refused the sign-in: ");
                m.push_str(error);
                if let Some(d) = description {
                    m.push_str(" (");
                    m.push_str(d);
                    m.push(')');
                }
                &[]
            }
            Error::Discovery(field, why) => &["discovery document: ", field, " ", why],
            Error::IdToken(claim, why) => &["ID token: ", claim, " ", why],
            Error::PopupBlocked => {
                &["loginWithPopup() could not open a window: call it from a click handler, or allow popups"]
            }
            Error::PopupClosed => &["the sign-in popup was closed before the sign-in finished"],
            Error::PopupTimeout => &["the sign-in popup did not finish within timeoutMs"],
            Error::Dpop(why) => &["DPoP: ", why],
            Error::Js(_, message) => return message.clone(),
        };
        for p in parts {
            m.push_str(p);
        }
        m
    }

    /// The HTTP status an error carries (`error.status` in JavaScript), if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::LoginFailed(status, _) => Some(*status),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
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
        assert_eq!(Error::LoginFailed(502, None).status(), Some(502));
        assert_eq!(Error::Timeout.status(), None);
        assert_eq!(e.to_string(), e.message());
    }

    #[test]
    fn codes_lists_every_code() {
        for e in [Error::PopupTimeout, Error::Dpop(""), Error::OAuth(String::new(), None), Error::Disposed] {
            assert!(CODES.contains(&e.code()));
        }
    }
}
