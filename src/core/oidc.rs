//! OpenID Connect sign-in with the authorization code flow and PKCE (RFC 6749 §4.1,
//! RFC 7636, OpenID Connect Core §3.1, OpenID Connect Discovery): the pure parts. The
//! discovery document, the login transaction kept across the redirect, the authorization
//! request's parameters, the callback's parameters and the ID token's claims are read and
//! checked here; the driver (`web/oidc.rs`) fetches, draws random bytes, hashes and navigates.

use serde::{Deserialize, Serialize};

use super::error::Error;
use super::Field;

/// Version of the stored login transaction.
pub const PENDING_VERSION: u32 = 1;

/// Leeway for the ID token's `exp` and `iat` against the server's clock (or ours).
pub const CLOCK_LEEWAY_MS: f64 = 300_000.0;

/// The discovery document's fields the SDK uses, as serde reads them.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct Discovery {
    pub issuer: Field<String>,
    pub authorization_endpoint: Field<String>,
    pub token_endpoint: Field<String>,
    pub revocation_endpoint: Field<String>,
    pub end_session_endpoint: Field<String>,
    pub code_challenge_methods_supported: Field<Vec<String>>,
}

/// A provider's endpoints, absolute and checked: from the config, and from the discovery
/// document for those the config leaves out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provider {
    /// Where the browser goes to sign in (`None`: this session has no redirect sign-in).
    pub authorization: Option<String>,
    /// The token endpoint.
    pub token: String,
    /// RFC 7009 revocation.
    pub revocation: Option<String>,
    /// RP-initiated logout.
    pub end_session: Option<String>,
}

/// A provider's endpoints, as URLs still to be resolved and checked by the driver.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProviderUrls {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where the code (and later the refresh token) is exchanged.
    pub token: String,
    /// RFC 7009 revocation, if the provider has it.
    pub revocation: Option<String>,
    /// RP-initiated logout, if the provider has it.
    pub end_session: Option<String>,
}

fn discovery_err(field: &'static str, why: &'static str) -> Error {
    Error::Discovery(field, why)
}

fn url_field(field: Field<String>, name: &'static str, required: bool) -> Result<Option<String>, Error> {
    match field {
        Field::Valid(u) if !u.is_empty() && u.len() <= 2048 => Ok(Some(u)),
        Field::Absent if !required => Ok(None),
        Field::Absent => Err(discovery_err(name, "is missing")),
        _ => Err(discovery_err(name, "must be a URL string")),
    }
}

impl Discovery {
    /// Checks the document against the configured issuer (exact match, OpenID Connect
    /// Discovery §4.3) and that the provider offers PKCE with S256 when it lists methods.
    pub fn validate(self, issuer: &str) -> Result<ProviderUrls, Error> {
        match self.issuer {
            Field::Valid(i) if i == issuer => {}
            Field::Valid(_) => {
                return Err(discovery_err(
                    "issuer",
                    "does not equal config.issuer (they must match exactly, trailing slash included)",
                ))
            }
            _ => return Err(discovery_err("issuer", "is missing")),
        }
        match self.code_challenge_methods_supported {
            Field::Valid(m) if !m.iter().any(|m| m == "S256") => {
                return Err(discovery_err("code_challenge_methods_supported", "does not include S256"))
            }
            Field::Invalid => {
                return Err(discovery_err("code_challenge_methods_supported", "must be an array of strings"))
            }
            _ => {}
        }
        Ok(ProviderUrls {
            authorization: url_field(self.authorization_endpoint, "authorization_endpoint", true)?.unwrap_or_default(),
            token: url_field(self.token_endpoint, "token_endpoint", true)?.unwrap_or_default(),
            revocation: url_field(self.revocation_endpoint, "revocation_endpoint", false)?,
            end_session: url_field(self.end_session_endpoint, "end_session_endpoint", false)?,
        })
    }
}

/// `{issuer}/.well-known/openid-configuration` (one slash between them).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// One login in progress, kept in this tab's `sessionStorage` from `loginWithRedirect`
/// until its callback: the secrets that prove the callback answers this request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// [`PENDING_VERSION`].
    pub v: u32,
    /// The `state` sent; the callback must bring it back.
    pub state: String,
    /// The `nonce` sent; the ID token must carry it.
    pub nonce: String,
    /// The PKCE code verifier; its S256 hash went with the request.
    pub verifier: String,
    /// The `redirect_uri` sent; the code exchange must repeat it.
    pub redirect_uri: String,
    /// The app's `appState`, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_state: Option<String>,
    /// DPoP: the RFC 7638 thumbprint of the key made for this sign-in, sent as `dpop_jkt`
    /// so that the code is bound to it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// Characters of a PKCE verifier (RFC 7636 §4.1: unreserved URI characters).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// A `state` or `nonce` as this SDK makes them: 22 to 128 unreserved characters.
pub fn valid_secret(s: &str) -> bool {
    (22..=128).contains(&s.len()) && s.bytes().all(unreserved)
}

/// A PKCE code verifier: 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn valid_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(unreserved)
}

impl Pending {
    /// A login transaction read back from storage, checked field by field.
    pub fn validate(self) -> Result<Pending, Error> {
        if self.v != PENDING_VERSION {
            return Err(Error::InvalidState("the stored login is of another version; sign in again"));
        }
        if !valid_secret(&self.state) || !valid_secret(&self.nonce) {
            return Err(Error::InvalidState("the stored state or nonce is malformed; sign in again"));
        }
        if !valid_verifier(&self.verifier) {
            return Err(Error::InvalidState("the stored PKCE verifier is malformed; sign in again"));
        }
        // A SHA-256 thumbprint in base64url is 43 characters.
        let jkt_ok = self.dpop_jkt.as_ref().is_none_or(|j| j.len() == 43 && j.bytes().all(unreserved));
        if self.redirect_uri.is_empty() || self.app_state.as_ref().is_some_and(|a| a.len() > 65_536) || !jkt_ok {
            return Err(Error::InvalidState("the stored login is malformed; sign in again"));
        }
        Ok(self)
    }
}

/// Options of `loginWithRedirect`, read by serde.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RawLoginOptions {
    pub prompt: Field<String>,
    pub login_hint: Field<String>,
    pub extra_params: Field<Params>,
}

/// `extraParams`: an object of strings, as (name, value) pairs in their order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor into a list: a map type would bring a BTreeMap's code (~4 KB of wasm).
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Params;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut list = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    list.push(pair);
                }
                Ok(Params(list))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parameters the SDK sets itself; `extraParams` may not replace them.
const RESERVED: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
];

/// What identifies the app to the provider.
pub struct Client<'a> {
    /// `client_id`.
    pub id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// `scope`.
    pub scope: &'a str,
}

/// `loginWithRedirect` options, checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoginOptions {
    /// `prompt`.
    pub prompt: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// More parameters, none of the SDK's own.
    pub extra: Vec<(String, String)>,
}

impl RawLoginOptions {
    /// Checks each option, naming it.
    pub fn validate(self) -> Result<LoginOptions, Error> {
        let text = |field: Field<String>, name: &'static str| match field {
            Field::Absent => Ok(None),
            Field::Valid(s) if !s.is_empty() && s.len() <= 1024 => Ok(Some(s)),
            _ => Err(Error::InvalidArgument(name, "must be a non-empty string of at most 1024 characters")),
        };
        let extra = match self.extra_params {
            Field::Absent => Vec::new(),
            Field::Valid(Params(list)) => list,
            Field::Invalid => {
                return Err(Error::InvalidArgument(
                    "loginWithRedirect(options.extraParams)",
                    "must be an object of strings",
                ))
            }
        };
        if extra.iter().any(|(k, _)| RESERVED.contains(&k.as_str()) || k.is_empty()) {
            return Err(Error::InvalidArgument(
                "loginWithRedirect(options.extraParams)",
                "must not set response_type, client_id, redirect_uri, scope, state, nonce, code_challenge(_method) or response_mode",
            ));
        }
        Ok(LoginOptions {
            prompt: text(self.prompt, "loginWithRedirect(options.prompt)")?,
            login_hint: text(self.login_hint, "loginWithRedirect(options.loginHint)")?,
            extra,
        })
    }
}

/// The authorization request's query parameters (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID
/// Connect Core §3.1.2.1), `challenge` being the verifier's S256 hash in base64url.
pub fn authorize_params(
    client: &Client,
    pending: &Pending,
    challenge: &str,
    options: &LoginOptions,
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client.id),
        ("redirect_uri", client.redirect_uri),
        ("scope", client.scope),
        ("state", &pending.state),
        ("nonce", &pending.nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.extend(pending.dpop_jkt.clone().map(|j| ("dpop_jkt".to_string(), j)));
    params.extend(options.prompt.clone().map(|p| ("prompt".to_string(), p)));
    params.extend(options.login_hint.clone().map(|h| ("login_hint".to_string(), h)));
    params.extend(options.extra.clone());
    params
}

/// The outcome of the provider's redirect back, once its `state` was checked.
#[derive(Debug, PartialEq)]
pub enum Callback {
    /// The authorization code to exchange.
    Code(String),
}

/// Reads the callback's query parameters against the login in progress (`None` when this
/// tab has none: never started here, or already completed, i.e. a replay).
///
/// `state` is checked first, for errors too: an error the provider did not send for this
/// login is not reported as the provider's. With RFC 9207's `iss` parameter present, it must
/// be the configured issuer (a mix-up between providers is refused).
pub fn check_callback(
    params: &[(String, String)],
    pending: Option<&Pending>,
    issuer: Option<&str>,
) -> Result<Callback, Error> {
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (code, error) = (get("code"), get("error"));
    if code.is_none() && error.is_none() {
        return Err(Error::InvalidArgument(
            "handleRedirectCallback(url)",
            "has neither code nor error: not a sign-in callback",
        ));
    }
    let Some(pending) = pending else {
        return Err(Error::InvalidState("no sign-in is in progress in this tab (a replayed or foreign callback)"));
    };
    if get("state") != Some(pending.state.as_str()) {
        return Err(Error::InvalidState("the callback's state does not match the sign-in in progress"));
    }
    if let (Some(expected), Some(iss)) = (issuer, get("iss")) {
        if iss != expected {
            return Err(Error::InvalidState("the callback's iss is not config.issuer (a mix-up of providers)"));
        }
    }
    if let Some(error) = error {
        let clip = |s: &str| s.chars().take(512).collect::<String>();
        return Err(Error::OAuth(clip(error), get("error_description").map(clip)));
    }
    match code {
        Some(c) if !c.is_empty() && c.len() <= 4096 => Ok(Callback::Code(c.to_string())),
        _ => Err(Error::InvalidArgument("handleRedirectCallback(url)", "has an empty or oversized code")),
    }
}

/// What a handled callback leaves behind: whether the stored sign-in is used up, and
/// whether the callback's parameters leave the address bar.
///
/// An answered callback (a code, or the provider's error) or a damaged stored sign-in uses
/// the sign-in up: a code is good once. A wrong `state` leaves it, so that a forged callback
/// cannot cancel the real one. Only a URL that is no callback at all stays in the address bar.
pub fn callback_disposal(checked: &Result<Callback, Error>, stored_damaged: bool) -> (bool, bool) {
    let not_a_callback = matches!(checked, Err(Error::InvalidArgument(..)));
    let answered = !matches!(checked, Err(Error::InvalidState(_))) && !not_a_callback;
    (answered || stored_damaged, !not_a_callback)
}

/// Callback parameters removed from the address bar once handled.
pub const CALLBACK_PARAMS: [&str; 6] = ["code", "state", "iss", "session_state", "error", "error_description"];

/// An ID token must come with the code's tokens when the scope asks for OpenID Connect.
pub fn id_token_required(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "openid")
}

/// `aud`: one audience or several (a string or an array of strings), as a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience(pub Vec<String>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor, not `#[serde(untagged)]`: that buffers the value and costs ~10 KB of wasm.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut list = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    list.push(a);
                }
                Ok(Audience(list))
            }
        }
        d.deserialize_any(V)
    }
}

/// The ID token claims that are checked, as serde reads them.
#[derive(Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct IdClaims {
    pub iss: Field<String>,
    pub aud: Field<Audience>,
    pub azp: Field<String>,
    pub nonce: Field<String>,
    pub exp: Field<f64>,
    pub iat: Field<f64>,
}

/// What the ID token must say.
pub struct Expected<'a> {
    /// `iss` (none when the app gave endpoints without an issuer).
    pub issuer: Option<&'a str>,
    /// `aud` (and `azp` with several audiences).
    pub client_id: &'a str,
    /// The nonce of the login.
    pub nonce: &'a str,
    /// The server's time at the response (its `Date` header), else ours, in epoch ms.
    pub now: f64,
}

fn id_err(field: &'static str, why: &'static str) -> Error {
    Error::IdToken(field, why)
}

/// Checks the ID token's claims (OpenID Connect Core §3.1.3.7, items 2, 3, 4, 9, 10, 11).
/// The signature is not checked: the token came straight from the token endpoint over TLS
/// (item 6 allows that), and the session relies on the access token, not on the ID token.
pub fn check_id_claims(claims: IdClaims, expected: &Expected) -> Result<(), Error> {
    match (claims.iss, expected.issuer) {
        (Field::Valid(iss), Some(issuer)) if iss != issuer => return Err(id_err("iss", "is not config.issuer")),
        (Field::Valid(_), _) => {}
        _ => return Err(id_err("iss", "is missing")),
    }
    let Field::Valid(Audience(audiences)) = claims.aud else { return Err(id_err("aud", "is missing")) };
    if !audiences.iter().any(|a| a == expected.client_id) {
        return Err(id_err("aud", "does not include config.clientId"));
    }
    match claims.azp {
        Field::Valid(azp) if azp != expected.client_id => return Err(id_err("azp", "is not config.clientId")),
        Field::Absent if audiences.len() > 1 => return Err(id_err("azp", "is missing with several audiences")),
        Field::Invalid => return Err(id_err("azp", "must be a string")),
        _ => {}
    }
    match claims.nonce {
        Field::Valid(n) if n == expected.nonce => {}
        Field::Valid(_) => return Err(id_err("nonce", "does not match the sign-in's nonce")),
        _ => return Err(id_err("nonce", "is missing")),
    }
    let exp = claims.exp.valid().filter(|e| e.is_finite()).ok_or(id_err("exp", "is missing"))?;
    if exp * 1000.0 + CLOCK_LEEWAY_MS <= expected.now {
        return Err(id_err("exp", "is in the past: the ID token has expired"));
    }
    let iat = claims.iat.valid().filter(|i| i.is_finite()).ok_or(id_err("iat", "is missing"))?;
    if iat * 1000.0 > expected.now + CLOCK_LEEWAY_MS {
        return Err(id_err("iat", "is in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
