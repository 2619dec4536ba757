//! Event names and logout reasons, and (in the browser) subscriptions and dispatch.

/// The events a session emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Tokens arrived where there were none: login, `setTokens`, or another tab's login.
    Login,
    /// Tokens were replaced by newer ones (here or in another tab).
    Refresh,
    /// The session ended; the event says why.
    Logout,
    /// The access token expired before a refresh could replace it.
    Expired,
    /// Something failed that the session survives (a refresh to be retried, bad storage data).
    Error,
}

impl EventKind {
    /// Parses an event name as used with `session.on(name, ...)`.
    pub fn parse(name: &str) -> Option<EventKind> {
        Some(match name {
            "login" => EventKind::Login,
            "refresh" => EventKind::Refresh,
            "logout" => EventKind::Logout,
            "expired" => EventKind::Expired,
            "error" => EventKind::Error,
            _ => return None,
        })
    }

    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Login => "login",
            EventKind::Refresh => "refresh",
            EventKind::Logout => "logout",
            EventKind::Expired => "expired",
            EventKind::Error => "error",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutReason {
    /// `logout()` was called in this tab.
    User,
    /// `logout()` was called in another tab.
    OtherTab,
    /// The server rejected the refresh token (`invalid_grant`, reuse detected, revoked).
    RefreshRejected,
    /// The access token expired and there was no refresh token to renew it.
    Expired,
}

impl LogoutReason {
    /// The reason's name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutReason::User => "user",
            LogoutReason::OtherTab => "other_tab",
            LogoutReason::RefreshRejected => "refresh_rejected",
            LogoutReason::Expired => "expired",
        }
    }

    /// Parses a reason's name.
    pub fn parse(name: &str) -> Option<LogoutReason> {
        Some(match name {
            "user" => LogoutReason::User,
            "other_tab" => LogoutReason::OtherTab,
            "refresh_rejected" => LogoutReason::RefreshRejected,
            "expired" => LogoutReason::Expired,
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

#[cfg(target_arch = "wasm32")]
pub use browser::Events;

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::EventKind;
    use crate::cell::RefCell;
    use crate::prelude::*;
    use core::cell::Cell;
    use js_sys::Function;
    use wasm_bindgen::JsValue;

    /// Subscribers, by event kind.
    #[derive(Default)]
    pub struct Events {
        next_id: Cell<u32>,
        subs: RefCell<Vec<(u32, EventKind, Function)>>,
    }

    impl Events {
        /// Adds a callback; returns its id for [`Events::remove`].
        pub fn add(&self, kind: EventKind, callback: Function) -> u32 {
            let id = self.next_id.get().wrapping_add(1);
            self.next_id.set(id);
            self.subs.borrow_mut().push((id, kind, callback));
            id
        }

        /// Removes one callback.
        pub fn remove(&self, id: u32) {
            self.subs.borrow_mut().retain(|(i, _, _)| *i != id);
        }

        /// Removes every callback.
        pub fn clear(&self) {
            self.subs.borrow_mut().clear();
        }

        /// Calls the callbacks for `kind` with `payload`. The list is copied first, so a
        /// callback may subscribe, unsubscribe or call the session. A callback that throws
        /// does not stop the others.
        pub fn emit(&self, kind: EventKind, payload: &JsValue) {
            let mut callbacks = Vec::new();
            for (_, k, f) in self.subs.borrow().iter() {
                if *k == kind {
                    callbacks.push(f.clone());
                }
            }
            for f in callbacks {
                let _ = f.call1(&JsValue::UNDEFINED, payload);
            }
        }
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [EventKind::Login, EventKind::Refresh, EventKind::Logout, EventKind::Expired, EventKind::Error] {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("Login"), None);
        assert_eq!(EventKind::parse(""), None);
    }

    #[test]
    fn reasons_round_trip() {
        for r in [LogoutReason::User, LogoutReason::OtherTab, LogoutReason::RefreshRejected, LogoutReason::Expired] {
            assert_eq!(LogoutReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(LogoutReason::parse("because"), None);
    }

    #[test]
    fn other_tabs_see_user_logout_as_other_tab() {
        assert_eq!(LogoutReason::User.seen_from_other_tab(), LogoutReason::OtherTab);
        assert_eq!(LogoutReason::RefreshRejected.seen_from_other_tab(), LogoutReason::RefreshRejected);
    }
}
