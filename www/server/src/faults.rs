//! Fault switches for the refresh endpoint (`POST /__faults`): fail, hang or drop the next N calls.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// One fault, as posted to `/__faults`:
/// `{"count":3,"status":503}`, `{"count":1,"hang_ms":15000}`, `{"count":1,"drop":true}`.
/// `{"count":0}` clears. Status 400/401 answers an `invalid_grant` error, 200 an empty body,
/// any other status an HTML page (like a proxy, a WAF or a captive portal would).
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub count: u32,
    pub status: Option<u16>,
    pub hang_ms: Option<u64>,
    #[serde(default)]
    pub drop: bool,
}

/// What the token endpoint does instead of its job.
pub enum FaultAction {
    Respond(Response),
    Hang(u64),
    Drop,
}

impl Fault {
    /// Checks that exactly one kind of fault is named.
    pub fn validated(self) -> Result<Self, String> {
        let kinds = usize::from(self.status.is_some()) + usize::from(self.hang_ms.is_some()) + usize::from(self.drop);
        if self.count > 0 && kinds != 1 {
            return Err("name exactly one of status, hang_ms, drop".into());
        }
        if let Some(s) = self.status {
            StatusCode::from_u16(s).map_err(|_| "status must be 100..=999".to_string())?;
        }
        Ok(self)
    }

    /// The action for one faulted call.
    pub fn action(&self) -> FaultAction {
        if let Some(ms) = self.hang_ms {
            return FaultAction::Hang(ms);
        }
        if self.drop {
            return FaultAction::Drop;
        }
        let status = self.status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let html = [(header::CONTENT_TYPE, "text/html")];
        FaultAction::Respond(match status.as_u16() {
            200 => (status, "").into_response(),
            400 | 401 => (status, axum::Json(serde_json::json!({"error": "invalid_grant"}))).into_response(),
            // What a proxy, a WAF or a captive portal answers: a page, not an OAuth error.
            _ => (status, html, "<html><body><h1>Request blocked</h1></body></html>").into_response(),
        })
    }
}

/// The active fault and how many calls it still applies to.
#[derive(Default)]
pub struct Faults {
    active: Option<Fault>,
}

impl Faults {
    /// Replaces the active fault.
    pub fn set(&mut self, fault: Fault) {
        self.active = (fault.count > 0).then_some(fault);
    }

    /// Consumes one use of the active fault, if any.
    pub fn take(&mut self) -> Option<Fault> {
        let fault = self.active.as_mut()?;
        fault.count -= 1;
        let out = fault.clone();
        if fault.count == 0 {
            self.active = None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_then_clears() {
        let mut f = Faults::default();
        f.set(Fault { count: 2, status: Some(503), ..Fault::default() });
        assert!(f.take().is_some());
        assert!(f.take().is_some());
        assert!(f.take().is_none());
    }

    #[test]
    fn validation_needs_one_kind() {
        assert!(Fault { count: 1, ..Fault::default() }.validated().is_err());
        assert!(Fault { count: 1, status: Some(500), drop: true, ..Fault::default() }.validated().is_err());
        assert!(Fault { count: 1, drop: true, ..Fault::default() }.validated().is_ok());
        assert!(Fault { count: 0, ..Fault::default() }.validated().is_ok());
    }
}
