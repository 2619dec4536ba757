//! The machine's vocabulary with its driver: what can happen ([`Input`]), what to do
//! ([`Effect`]), what a waiting caller gets ([`Answer`]), and the effects collector the
//! small machines write to ([`Out`]).

use crate::core::config::StorageMode;
use crate::core::error::Error;
use crate::core::events::Event;
#[cfg(feature = "oidc")]
use crate::core::oidc::{IdClaims, LoginOptions, Pending, Provider};
use crate::core::protocol::{Envelope, Message};
use crate::core::store::{Record, Stored};
use crate::core::token::{JwtTimes, TokenResponse, TokenSet};

/// What the driver found of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A usable key.
    Present,
    /// No key (none stored, or storage empty).
    Missing,
    /// A stored key that cannot be read or used (corrupted, another browser profile's,
    /// refused by WebCrypto).
    Unusable,
}

/// What the driver does with the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOp {
    /// Read the stored key (IndexedDB); answer with [`crate::core::machine::Input::Key`].
    Load,
    /// Make the key made for the sign-in that just landed this tab's key (and store it in
    /// `session` and `local` modes).
    AdoptSignIn,
    /// Make the key that came with the message just handled this tab's key (and store it).
    AdoptSent,
    /// Forget the key; `stored`: delete it from IndexedDB too.
    Drop {
        /// Delete the stored copy.
        stored: bool,
    },
}

/// Identifies a waiting caller (a promise in the driver).
pub type Ticket = u32;

/// How this tab reaches the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// BroadcastChannel.
    Broadcast,
    /// `storage` events on a localStorage key (no BroadcastChannel). Tokens never travel
    /// this way; in `local` mode tabs read them from the stored session instead.
    StorageBus,
    /// Alone (`crossTab: false`, or neither is available).
    None,
}

/// An auth server's answer to a refresh, as the driver read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 2xx with a JSON object body.
    Tokens {
        /// The body.
        response: TokenResponse,
        /// `exp`/`iat` of the access token if it is a JWT.
        jwt: Option<JwtTimes>,
        /// The `Date` header (epoch ms).
        date: Option<f64>,
    },
    /// Not 2xx.
    Status {
        /// The HTTP status.
        status: u16,
        /// The RFC 6749 §5.2 `error` of a JSON body, if there was one.
        oauth_error: Option<String>,
    },
    /// Cookie mode: 2xx with a valid session body.
    Session(TokenSet),
    /// 2xx but not a JSON object, or too large.
    Garbled,
    /// No answer: network error, CORS, dropped connection.
    Network,
    /// No answer within the request timeout.
    Timeout,
}

/// What a new session finds: what storage held, and what the page offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Boot {
    /// The stored record.
    pub stored: Stored,
    /// The storage mode in use (memory if the requested storage was unavailable).
    pub storage: StorageMode,
    /// Why the requested storage was unavailable, if it was.
    pub storage_error: Option<Error>,
    /// How this tab reaches the others.
    pub transport: Transport,
    /// The page has Web Locks.
    pub locks: bool,
    /// `navigator.onLine`.
    pub online: bool,
}

/// `loginWithRedirect` or `loginWithPopup`, as the driver hands it over.
#[cfg(feature = "oidc")]
#[derive(Clone, Debug, PartialEq)]
pub struct Authorization {
    /// The caller.
    pub ticket: Ticket,
    /// The login transaction (secrets drawn by the driver).
    pub login: Pending,
    /// base64url(SHA-256(verifier)).
    pub challenge: String,
    /// The app's options.
    pub options: LoginOptions,
    /// In a popup (already opened by the driver), given up after this many ms.
    pub popup: Option<f64>,
}

/// Something that happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The session was created.
    Start(Boot),
    /// Whether other tabs of this namespace are open (their presence locks).
    Presence {
        /// At least one is.
        others: bool,
    },
    /// Validated tokens from `login()` (its reply) or `setTokens()`.
    SignIn {
        /// The tokens.
        tokens: TokenSet,
        /// The caller to answer.
        ticket: Option<Ticket>,
    },
    /// A request wants the access token.
    TokenWanted {
        /// The caller.
        ticket: Ticket,
    },
    /// A request with the token of counter `seq` got a 401: may it retry with another?
    Unauthorized {
        /// The caller.
        ticket: Ticket,
        /// The counter of the token set it used.
        seq: u64,
    },
    /// `refresh()`.
    Refresh {
        /// The caller.
        ticket: Ticket,
    },
    /// `logout()`.
    Logout {
        /// The caller.
        ticket: Ticket,
    },
    /// `dispose()`.
    Dispose,
    /// The timer fired.
    Tick,
    /// The page woke up: visible again, focused, shown from the back-forward cache.
    Wake,
    /// The browser went online or offline.
    Online(bool),
    /// The answer to [`Effect::Refresh`] `id`.
    RefreshReply {
        /// The request.
        id: u32,
        /// Its outcome.
        reply: Reply,
    },
    /// The outcome of [`Effect::Revoke`].
    RevokeReply {
        /// The caller to answer.
        ticket: Option<Ticket>,
        /// What went wrong, if anything.
        error: Option<Error>,
    },
    /// A valid message from another tab.
    Message(Envelope),
    /// Another tab wrote the stored session (`local` mode).
    StorageChanged(Stored),
    /// The refresh lock is ours (request `id`).
    LockGranted {
        /// The request.
        id: u32,
        /// It was taken from a holder that did not release it.
        stolen: bool,
        /// Another tab held it when it was requested: handed over, not found free.
        waited: bool,
        /// In `local` mode, the stored session read when the lock was granted.
        stored: Option<Stored>,
    },
    /// The user did something (pointer, key, touch, the tab shown again).
    Activity,
    /// Cookie mode: the answer to [`Effect::ReadSession`].
    SessionRead {
        /// What the session endpoint said.
        reply: Reply,
    },
    /// Cookie mode: a request got a 403 naming a CSRF failure: may it retry with a fresh token?
    CsrfRejected {
        /// The caller.
        ticket: Ticket,
    },
    /// Another tab stole the lock this tab held (request `id`).
    LockLost {
        /// The request.
        id: u32,
    },
    /// `loginWithRedirect` or `loginWithPopup`.
    #[cfg(feature = "oidc")]
    Authorize(Authorization),
    /// The sign-in popup handed back its callback URL (`url`, with its query `params`).
    #[cfg(feature = "oidc")]
    PopupCallback {
        /// The callback URL.
        url: String,
        /// Its query parameters.
        params: Vec<(String, String)>,
    },
    /// The sign-in popup was closed.
    #[cfg(feature = "oidc")]
    PopupClosed,
    /// `handleRedirectCallback(url)`.
    #[cfg(feature = "oidc")]
    Callback {
        /// The caller, answered with the app state.
        ticket: Ticket,
        /// The callback URL as given (callbacks are handled once per URL).
        url: String,
        /// Its query parameters.
        params: Vec<(String, String)>,
        /// The login in progress as stored in this tab, or why it could not be read.
        login: Result<Option<Pending>, Error>,
    },
    /// The answer to [`Effect::Discover`].
    #[cfg(feature = "oidc")]
    Discovered(Result<Provider, Error>),
    /// The answer to [`Effect::ExchangeCode`] `id`.
    #[cfg(feature = "oidc")]
    CodeReply {
        /// The request.
        id: u32,
        /// Its outcome.
        reply: Reply,
        /// The ID token's claims, if the reply has an ID token.
        id_claims: Option<Result<IdClaims, Error>>,
    },
    /// The outcome of [`Effect::Navigate`] (if the page is still there to say it).
    #[cfg(feature = "oidc")]
    Navigated {
        /// The caller.
        ticket: Ticket,
        /// What went wrong, if anything.
        error: Option<Error>,
    },
    /// DPoP: what the driver found of the key (the answer to [`KeyOp::Load`]).
    Key(Key),
    /// DPoP: a server's answer carried `DPoP-Nonce`: the nonce for proofs to `origin`.
    Nonce {
        /// The server's origin.
        origin: String,
        /// The nonce.
        nonce: String,
    },
}

/// What a waiting caller gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The access token to use, and the counter of its set (for [`Input::Unauthorized`]).
    Token {
        /// The token.
        token: String,
        /// Its set's counter.
        seq: u64,
    },
    /// No token: signed out (a request goes without one), or a 401 that stays a 401.
    NoToken,
    /// Done (`refresh()`, `logout()`, `login()`).
    Done,
    /// Failed.
    Failed(Error),
    /// A sign-in callback was handled: the app state it carried (JSON).
    AppState(Option<String>),
}

/// What a request to the auth server carries, called what it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Credential {
    /// An OAuth 2.0 refresh token.
    RefreshToken(String),
    /// An OAuth 2.0 access token (revoked when the session has no refresh token).
    AccessToken(String),
    /// Cookie mode: the CSRF token that authorizes the session endpoint's unsafe calls (the
    /// session itself is the HttpOnly cookie).
    Csrf(String),
}

impl Credential {
    /// The secret it carries.
    pub fn secret(&self) -> &str {
        match self {
            Credential::RefreshToken(s) | Credential::AccessToken(s) | Credential::Csrf(s) => s,
        }
    }
}

/// Something to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Arm the one timer for this absolute time (epoch ms), replacing the pending one;
    /// `None` cancels it.
    Timer(Option<f64>),
    /// Post a message to the other tabs.
    Post(Message),
    /// Write the stored session.
    Save(Record),
    /// Remove the stored session.
    Clear,
    /// Emit an event to the app.
    Emit(Event),
    /// Answer a waiting caller.
    Answer(Ticket, Answer),
    /// Start-up restore is done: resolve `ready` with whether there is a session.
    Ready(bool),
    /// POST the refresh grant with a refresh token, or in cookie mode extend the session
    /// (`POST {sessionUrl}/refresh`) under the CSRF token; answer with [`Input::RefreshReply`].
    Refresh {
        /// Request id.
        id: u32,
        /// A refresh token, or the CSRF token.
        credential: Credential,
    },
    /// Cookie mode: read the session (`GET {sessionUrl}`); answer with [`Input::SessionRead`].
    ReadSession,
    /// Revoke a token (RFC 7009), or in cookie mode end the server session (`POST
    /// {sessionUrl}/logout`) under the CSRF token; answer with [`Input::RevokeReply`].
    Revoke {
        /// The token to revoke, or the CSRF token.
        credential: Credential,
        /// The caller to answer once done.
        ticket: Option<Ticket>,
    },
    /// Request the refresh lock (taking it from its holder if `steal`); answer with
    /// [`Input::LockGranted`] of the same `id`.
    AcquireLock {
        /// The request.
        id: u32,
        /// Take it over.
        steal: bool,
    },
    /// Release the lock held by request `id`, or give that request up if not granted yet.
    ReleaseLock {
        /// The request.
        id: u32,
    },
    /// Find the provider's endpoints (discovery, cached by the driver for the session);
    /// answer with [`Input::Discovered`].
    #[cfg(feature = "oidc")]
    Discover,
    /// Keep `login` (if any) in this tab's `sessionStorage`, then send the browser to `url`
    /// with `params` in its query; answer with [`Input::Navigated`].
    #[cfg(feature = "oidc")]
    Navigate {
        /// The caller.
        ticket: Ticket,
        /// The authorization endpoint.
        url: String,
        /// The query parameters to add.
        params: Vec<(String, String)>,
        /// The login to keep across the redirect.
        login: Option<Pending>,
    },
    /// Send the sign-in popup (opened by the driver in the click) to `url` with `params` in
    /// its query; answer with [`Input::Navigated`] only if that fails.
    #[cfg(feature = "oidc")]
    NavigatePopup {
        /// The caller.
        ticket: Ticket,
        /// The authorization endpoint.
        url: String,
        /// The query parameters to add.
        params: Vec<(String, String)>,
    },
    /// Close the sign-in popup.
    #[cfg(feature = "oidc")]
    ClosePopup,
    /// Remove the login in progress from `sessionStorage`: it is used up.
    #[cfg(feature = "oidc")]
    DiscardLogin,
    /// Remove the callback's parameters from the address bar, if `url` is the page's.
    #[cfg(feature = "oidc")]
    CleanAddressBar {
        /// The callback URL.
        url: String,
    },
    /// DPoP: read, adopt or drop the key.
    Key(KeyOp),
    /// POST `form` to the token endpoint `url` (the authorization code grant); answer with
    /// [`Input::CodeReply`].
    #[cfg(feature = "oidc")]
    ExchangeCode {
        /// Request id.
        id: u32,
        /// The token endpoint.
        url: String,
        /// The form fields.
        form: Vec<(String, String)>,
    },
}

/// The effects of one input, in order, and what gates them: nothing goes to other tabs
/// without a transport, and nothing reaches the app after `dispose()`.
#[derive(Debug, Default)]
pub(super) struct Out {
    pub effects: Vec<Effect>,
    /// Other tabs can be reached.
    pub linked: bool,
    /// `dispose()` was called.
    pub disposed: bool,
}

impl Out {
    pub fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// Posts a message to the other tabs, if there are any to reach.
    pub fn post(&mut self, msg: Message) {
        if self.linked && !self.disposed {
            self.effects.push(Effect::Post(msg));
        }
    }

    /// Emits an event to the app, unless disposed.
    pub fn emit(&mut self, event: Event) {
        if !self.disposed {
            self.effects.push(Effect::Emit(event));
        }
    }

    pub fn answer(&mut self, ticket: Ticket, answer: Answer) {
        self.effects.push(Effect::Answer(ticket, answer));
    }
}
