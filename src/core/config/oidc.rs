//! The OpenID Connect options of the config (`issuer`, `authorizationUrl`, `redirectUri`,
//! `scope`, `endSessionUrl`, `postLogoutRedirectUri`): read into an [`Oidc`] with the `oidc`
//! feature, refused (each named) without it.

#[cfg(feature = "oidc")]
use super::text;
use super::{err, opt, Oidc};
use crate::core::error::Error;
use crate::core::Field;

/// The OpenID Connect options: none of them, or a sign-in to set up.
#[cfg(feature = "oidc")]
pub(super) fn options(
    issuer: Field<String>,
    authorization_url: Field<String>,
    end_session_url: Field<String>,
    redirect_uri: Field<String>,
    scope: Field<String>,
    post_logout_redirect_uri: Field<String>,
) -> Result<Option<Oidc>, Error> {
    let scope_given = !matches!(scope, Field::Absent);
    let o = Oidc {
        issuer: text(issuer, opt::issuer)?,
        authorization_url: text(authorization_url, opt::authorizationUrl)?,
        end_session_url: text(end_session_url, opt::endSessionUrl)?,
        redirect_uri: text(redirect_uri, opt::redirectUri)?,
        scope: text(scope, opt::scope)?.unwrap_or_else(|| const { opt::scope.kind.default.value() }.into()),
        post_logout_redirect_uri: text(post_logout_redirect_uri, opt::postLogoutRedirectUri)?,
    };
    if o.issuer.is_some() || o.authorization_url.is_some() {
        let scope_ok = o.scope.len() <= 1024 && o.scope.bytes().all(|b| b == b' ' || (b'!'..=b'~').contains(&b));
        if !scope_ok || o.scope.contains('"') || o.scope.contains('\\') {
            return Err(err(opt::scope.name, "must be space-separated scope tokens (RFC 6749 §3.3)"));
        }
        return Ok(Some(o));
    }
    for (given, name) in [
        (&o.end_session_url, opt::endSessionUrl.name),
        (&o.redirect_uri, opt::redirectUri.name),
        (&o.post_logout_redirect_uri, opt::postLogoutRedirectUri.name),
    ] {
        if given.is_some() {
            return Err(err(name, "needs issuer (or authorizationUrl) for OpenID Connect"));
        }
    }
    if scope_given {
        return Err(err(opt::scope.name, "needs issuer (or authorizationUrl) for OpenID Connect"));
    }
    Ok(None)
}

/// Without the `oidc` feature: any OpenID Connect option is refused, naming it.
#[cfg(not(feature = "oidc"))]
pub(super) fn options(
    issuer: Field<String>,
    authorization_url: Field<String>,
    end_session_url: Field<String>,
    redirect_uri: Field<String>,
    scope: Field<String>,
    post_logout_redirect_uri: Field<String>,
) -> Result<Option<Oidc>, Error> {
    let given = [
        (&issuer, opt::issuer.name),
        (&authorization_url, opt::authorizationUrl.name),
        (&end_session_url, opt::endSessionUrl.name),
        (&redirect_uri, opt::redirectUri.name),
        (&scope, opt::scope.name),
        (&post_logout_redirect_uri, opt::postLogoutRedirectUri.name),
    ];
    if let Some((_, name)) = given.iter().find(|(f, _)| !matches!(f, Field::Absent)) {
        return Err(err(name, "needs OpenID Connect: import from \"wasm-session/oidc\" (the crate's `oidc` feature)"));
    }
    Ok(None)
}
