//! The events a session emits, their names, and logout reasons.

use super::error::Error;

/// The names `session.on(name, callback)` accepts.
pub const EVENT_NAMES: [&str; 7] = ["login", "refresh", "logout", "expired", "error", "idle_warning", "active"];

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutReason {
    /// `logout()` was called in this tab.
    User,
    /// `logout()` was called in another tab.
    OtherTab,
    /// The server rejected the refresh token (`invalid_grant`, reuse detected, revoked).
    RefreshRejected,
    /// The access token expired and there was no refresh token to renew it (or, in cookie
    /// mode, the server's session ended).
    Expired,
    /// No user activity in any tab for `idleTimeoutMs`.
    Idle,
    /// `maxSessionMs` after login.
    Absolute,
}

impl LogoutReason {
    /// The reason's name in events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::User => "user",
            LogoutReason::OtherTab => "other_tab",
            LogoutReason::RefreshRejected => "refresh_rejected",
            LogoutReason::Expired => "expired",
            LogoutReason::Idle => "idle",
            LogoutReason::Absolute => "absolute",
        }
    }

    /// Parses a reason's name.
    pub fn parse(name: &str) -> Option<LogoutReason> {
        Some(match name {
            "user" => LogoutReason::User,
            "other_tab" => LogoutReason::OtherTab,
            "refresh_rejected" => LogoutReason::RefreshRejected,
            "expired" => LogoutReason::Expired,
            "idle" => LogoutReason::Idle,
            "absolute" => LogoutReason::Absolute,
            _ => return None,
        })
    }

    /// The reason another tab reports when this tab's logout reaches it.
    pub fn seen_from_other_tab(self) -> LogoutReason {
        match self {
            LogoutReason::User | LogoutReason::OtherTab => LogoutReason::OtherTab,
            other => other,
        }
    }
}

/// One event, as the machine emits it; the driver hands it to the app's callbacks.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Tokens arrived where there were none: login, `setTokens`, or another tab's login.
    Login {
        /// Expiry of the new access token (epoch ms).
        expires_at: f64,
    },
    /// Tokens were replaced by newer ones (here or in another tab).
    Refresh {
        /// Expiry of the new access token (epoch ms).
        expires_at: f64,
    },
    /// The session ended.
    Logout {
        /// Why.
        reason: LogoutReason,
    },
    /// The access token expired before a refresh could replace it.
    Expired {
        /// When it expired (epoch ms).
        expires_at: f64,
    },
    /// Something failed that the session survives.
    Error(Error),
    /// No user activity for a while: the session ends at `logout_at` unless there is some.
    IdleWarning {
        /// When the idle logout comes (epoch ms).
        logout_at: f64,
    },
    /// Activity (in any tab) after an `idle_warning`: the idle logout is off.
    Active,
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Login { .. } => "login",
            Event::Refresh { .. } => "refresh",
            Event::Logout { .. } => "logout",
            Event::Expired { .. } => "expired",
            Event::Error(_) => "error",
            Event::IdleWarning { .. } => "idle_warning",
            Event::Active => "active",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_other_tabs_see_user_logout_as_other_tab() {
        for r in [
            LogoutReason::User,
            LogoutReason::OtherTab,
            LogoutReason::RefreshRejected,
            LogoutReason::Expired,
            LogoutReason::Idle,
            LogoutReason::Absolute,
        ] {
            assert_eq!(LogoutReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(LogoutReason::parse("because"), None);
        assert_eq!(LogoutReason::User.seen_from_other_tab(), LogoutReason::OtherTab);
        assert_eq!(LogoutReason::RefreshRejected.seen_from_other_tab(), LogoutReason::RefreshRejected);
    }

    #[test]
    fn every_event_has_a_listed_name() {
        for e in [
            Event::Login { expires_at: 0.0 },
            Event::Refresh { expires_at: 0.0 },
            Event::Logout { reason: LogoutReason::User },
            Event::Expired { expires_at: 0.0 },
            Event::Error(Error::Network),
            Event::IdleWarning { logout_at: 0.0 },
            Event::Active,
        ] {
            assert!(EVENT_NAMES.contains(&e.name()));
        }
    }
}
