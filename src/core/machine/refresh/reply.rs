//! The answer to a refresh: new tokens, a refusal that ends the session, or a failure that
//! is announced and retried after a backoff; and the late answer to an abandoned refresh.

use super::{Flight, Outcome, Refresh};
use crate::core::error::Error;
use crate::core::machine::io::{Credential, Effect, Out, Reply};
use crate::core::policy::{self, Failure};
use crate::core::protocol::Message;
use crate::core::token::TokenSet;

impl Refresh {
    /// The answer to refresh request `id`.
    pub fn reply(&mut self, now: f64, id: u32, reply: Reply, out: &mut Out) -> Outcome {
        match &self.flight {
            Flight::Sending { id: current, .. } if *current == id => {}
            Flight::Sending { .. }
            | Flight::Idle
            | Flight::Locking { .. }
            | Flight::Claiming { .. }
            | Flight::AwaitPeer { .. } => {
                self.late_reply(id, reply, out);
                return Outcome::Nothing;
            }
        }
        let Flight::Sending { credential, locked, for_401, nonce_retried, .. } =
            std::mem::replace(&mut self.flight, Flight::Idle)
        else {
            return Outcome::Nothing;
        };
        let why = match reply {
            Reply::Tokens { response, jwt, date } => {
                match TokenSet::from_response(response, jwt, now, date, Some(&credential)) {
                    Ok(tokens) => return Outcome::Renewed { tokens, for_401, locked },
                    Err(_) => "the token endpoint's reply is not a valid token response",
                }
            }
            Reply::Session(tokens) => return Outcome::Renewed { tokens, for_401: false, locked },
            // Cookie mode: the server's session is gone.
            Reply::Status { status: 401, .. } if self.cookie => {
                self.release_if(locked, out);
                return Outcome::SessionGone;
            }
            Reply::Status { status, oauth_error } => match policy::classify(status, oauth_error.as_deref()) {
                Failure::Rejected => {
                    self.release_if(locked, out);
                    return Outcome::Rejected;
                }
                Failure::UseNonce if !nonce_retried => {
                    self.send_with_nonce(now, credential, locked, for_401, out);
                    return Outcome::Nothing;
                }
                Failure::UseNonce => "the token endpoint refused the DPoP nonce twice",
                Failure::Transient => "the token endpoint answered with an error status",
            },
            Reply::Garbled => "the token endpoint's reply is not a valid token response",
            Reply::Network => "the token endpoint could not be reached",
            Reply::Timeout => "the token endpoint did not answer in time",
        };
        self.back_off(now);
        out.post(Message::RefreshFailed);
        self.hold(now, locked, out);
        Outcome::Failed(Error::RefreshFailed(why))
    }

    /// The reply to a refresh this tab abandoned (logout, a new sign-in): a new refresh
    /// token in it would otherwise stay valid, unknown to anyone. Revoke it.
    pub(super) fn late_reply(&mut self, id: u32, reply: Reply, out: &mut Out) {
        let Some(i) = self.abandoned.iter().position(|a| a.0 == id) else { return };
        let (_, lock) = self.abandoned.swap_remove(i);
        if let Some(lock) = lock {
            out.push(Effect::ReleaseLock { id: lock });
        }
        if let Reply::Tokens { response, .. } = reply {
            let credential = match (response.refresh_token.valid(), response.access_token.valid()) {
                (Some(rt), _) => Some(Credential::RefreshToken(rt)),
                (None, at) => at.map(Credential::AccessToken),
            };
            if let Some(credential) = credential.filter(|_| self.revokes) {
                out.push(Effect::Revoke { credential, ticket: None });
            }
        }
    }
}
