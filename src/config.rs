//! [`Config`]: the options of `new Session(config)`, their defaults, and validation whose
//! errors name the field. URL resolution happens in the browser glue; the rules live here.

use crate::prelude::*;

use crate::error::Error;
use crate::value::Value;

/// Where the session is kept between page loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageMode {
    /// Nothing is written anywhere; other open tabs share the session over BroadcastChannel.
    Memory,
    /// `sessionStorage`: survives reloads of this tab.
    Session,
    /// `localStorage`: survives restarts, shared by all tabs.
    Local,
}

impl StorageMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageMode::Memory => "memory",
            StorageMode::Session => "session",
            StorageMode::Local => "local",
        }
    }
}

/// Validated options. URLs are as given; the glue resolves them against the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// OAuth 2.0 token endpoint for the refresh grant (required).
    pub token_url: String,
    /// Sent as `client_id` with refresh and revocation requests.
    pub client_id: Option<String>,
    /// RFC 7009 revocation endpoint; logout revokes the refresh token there.
    pub revoke_url: Option<String>,
    /// Where tokens are kept.
    pub storage: StorageMode,
    /// Separates sessions sharing one origin (storage keys, channel and lock names).
    pub namespace: String,
    /// Origins besides the page's own that may receive the access token.
    pub allowed_origins: Vec<String>,
    /// Refresh this long before expiry (capped at a quarter of the token's lifetime).
    pub refresh_lead_ms: f64,
    /// Give up on an auth server request after this long.
    pub request_timeout_ms: f64,
    /// First retry delay after a failed refresh; doubles per failure.
    pub retry_base_ms: f64,
    /// Longest retry delay.
    pub retry_max_ms: f64,
    /// Longest wait for another tab's refresh lock before taking it over.
    pub lock_timeout_ms: f64,
    /// How long a new tab waits for open tabs to share their session at start-up.
    pub restore_timeout_ms: f64,
    /// Coordinate with other tabs (BroadcastChannel, Web Locks).
    pub cross_tab: bool,
}

/// The option names, for the unknown-key error.
const KNOWN: &str = "is not an option (options: tokenUrl, clientId, revokeUrl, storage, namespace, allowedOrigins, \
refreshLeadMs, requestTimeoutMs, retryBaseMs, retryMaxMs, lockTimeoutMs, restoreTimeoutMs, crossTab)";

const DAY_MS: f64 = 86_400_000.0;

fn err(field: &str, why: &'static str) -> Error {
    Error::Config(field.to_string(), why)
}

fn string(get: &dyn Fn(&str) -> Value, field: &str) -> Result<Option<String>, Error> {
    match get(field) {
        v if v.is_absent() => Ok(None),
        Value::Str(s) if s.trim_ascii().is_empty() => Err(err(field, "must not be empty")),
        Value::Str(s) if s.len() > 2048 => Err(err(field, "is longer than 2048 characters")),
        Value::Str(s) => Ok(Some(s)),
        _ => Err(err(field, "must be a string")),
    }
}

fn millis(get: &dyn Fn(&str) -> Value, field: &str, default: f64, min: f64, max: f64) -> Result<f64, Error> {
    match get(field) {
        v if v.is_absent() => Ok(default),
        Value::Num(n) if !n.is_finite() => Err(err(field, "must be a finite number of milliseconds")),
        Value::Num(n) if n < min || n > max => Err(err(field, "is out of range (see the README for limits)")),
        Value::Num(n) => Ok(n),
        _ => Err(err(field, "must be a number of milliseconds")),
    }
}

/// Every option name `new Session(config)` accepts.
pub const OPTIONS: [&str; 13] = [
    "tokenUrl",
    "clientId",
    "revokeUrl",
    "storage",
    "namespace",
    "allowedOrigins",
    "refreshLeadMs",
    "requestTimeoutMs",
    "retryBaseMs",
    "retryMaxMs",
    "lockTimeoutMs",
    "restoreTimeoutMs",
    "crossTab",
];

impl Config {
    /// Validates a config object: `keys` are its own keys, `get` reads one.
    pub fn parse(keys: &[String], get: &dyn Fn(&str) -> Value) -> Result<Config, Error> {
        if let Some(unknown) = keys.iter().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(err(unknown, KNOWN));
        }
        // Plain values first, strings last: an early return then has fewer strings to free,
        // which keeps this function (inlined into the constructor) smaller.
        let storage = match get("storage") {
            v if v.is_absent() => StorageMode::Memory,
            Value::Str(s) if s == "memory" => StorageMode::Memory,
            Value::Str(s) if s == "session" => StorageMode::Session,
            Value::Str(s) if s == "local" => StorageMode::Local,
            _ => return Err(err("storage", "must be \"memory\", \"session\" or \"local\"")),
        };
        let cross_tab = match get("crossTab") {
            v if v.is_absent() => true,
            Value::Bool(b) => b,
            _ => return Err(err("crossTab", "must be a boolean")),
        };
        let refresh_lead_ms = millis(get, "refreshLeadMs", 60_000.0, 0.0, DAY_MS)?;
        let request_timeout_ms = millis(get, "requestTimeoutMs", 10_000.0, 100.0, 600_000.0)?;
        let retry_base_ms = millis(get, "retryBaseMs", 1_000.0, 10.0, 3_600_000.0)?;
        let retry_max_ms = millis(get, "retryMaxMs", 30_000.0, 10.0, DAY_MS)?;
        if retry_max_ms < retry_base_ms {
            return Err(err("retryMaxMs", "must be at least retryBaseMs"));
        }
        let lock_timeout_ms = millis(get, "lockTimeoutMs", 15_000.0, 100.0, 600_000.0)?;
        let restore_timeout_ms = millis(get, "restoreTimeoutMs", 300.0, 0.0, 60_000.0)?;
        let namespace = string(get, "namespace")?.unwrap_or_else(|| "default".into());
        let ns_ok =
            namespace.len() <= 64 && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ns_ok {
            return Err(err("namespace", "must be 1-64 characters of letters, digits, '-', '_' or '.'"));
        }
        let not_origins = || err("allowedOrigins", "must be an array of origin strings");
        let mut allowed_origins = Vec::new();
        match get("allowedOrigins") {
            v if v.is_absent() => {}
            Value::List(items) => {
                // A plain loop: `collect::<Result<..>>()` costs a kilobyte of wasm.
                for item in items {
                    match item {
                        Value::Str(s) if !s.is_empty() => allowed_origins.push(s),
                        _ => return Err(not_origins()),
                    }
                }
            }
            _ => return Err(not_origins()),
        }
        Ok(Config {
            token_url: string(get, "tokenUrl")?
                .ok_or_else(|| err("tokenUrl", "is required (your OAuth 2.0 token endpoint)"))?,
            client_id: string(get, "clientId")?,
            revoke_url: string(get, "revokeUrl")?,
            storage,
            namespace,
            allowed_origins,
            refresh_lead_ms,
            request_timeout_ms,
            retry_base_ms,
            retry_max_ms,
            lock_timeout_ms,
            restore_timeout_ms,
            cross_tab,
        })
    }
}

/// True for hosts that never leave the machine, where plain http is acceptable.
pub fn is_loopback(host: &str) -> bool {
    // 127.x.y.z with 1-3 digits each; a byte loop, as `split` costs ~1 KB of wasm.
    let ipv4_loopback = host.strip_prefix("127.").is_some_and(|rest| {
        let (mut parts, mut digits) = (1, 0);
        for b in rest.bytes() {
            match b {
                b'.' if digits > 0 => (parts, digits) = (parts + 1, 0),
                b'0'..=b'9' if digits < 3 => digits += 1,
                _ => return false,
            }
        }
        parts == 3 && digits > 0
    });
    matches!(host, "localhost" | "[::1]") || ipv4_loopback || host.ends_with(".localhost")
}

/// Tokens travel only over https, or plain http to this machine.
pub fn check_transport(field: &str, protocol: &str, host: &str) -> Result<(), Error> {
    match protocol {
        "https:" => Ok(()),
        "http:" if is_loopback(host) => Ok(()),
        "http:" => Err(err(field, "uses plain http to a host other than localhost; use https")),
        _ => Err(err(field, "must be an http(s) URL")),
    }
}

// Host tests only: unwrap/panic here read fixed fixtures, never outside data.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(fields: &[(&str, Value)]) -> Result<Config, Error> {
        let map: HashMap<String, Value> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let keys: Vec<String> = fields.iter().map(|(k, _)| k.to_string()).collect();
        Config::parse(&keys, &move |k| map.get(k).cloned().unwrap_or(Value::Missing))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn field_of(r: Result<Config, Error>) -> String {
        match r.unwrap_err() {
            Error::Config(f, _) => f,
            e => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn defaults_for_everything_but_the_token_url() {
        let c = parse(&[("tokenUrl", s("/auth/token"))]).unwrap();
        assert_eq!(c.storage, StorageMode::Memory);
        assert_eq!(c.namespace, "default");
        assert_eq!(c.refresh_lead_ms, 60_000.0);
        assert_eq!(c.request_timeout_ms, 10_000.0);
        assert!(c.cross_tab);
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.client_id, None);
    }

    #[test]
    fn every_option_is_read() {
        let c = parse(&[
            ("tokenUrl", s("/t")),
            ("clientId", s("spa")),
            ("revokeUrl", s("/r")),
            ("storage", s("local")),
            ("namespace", s("app-2")),
            ("allowedOrigins", Value::List(vec![s("https://api.example.com")])),
            ("refreshLeadMs", Value::Num(5.0)),
            ("requestTimeoutMs", Value::Num(2000.0)),
            ("retryBaseMs", Value::Num(50.0)),
            ("retryMaxMs", Value::Num(500.0)),
            ("lockTimeoutMs", Value::Num(3000.0)),
            ("restoreTimeoutMs", Value::Num(0.0)),
            ("crossTab", Value::Bool(false)),
        ])
        .unwrap();
        assert_eq!(
            (c.storage, c.namespace.as_str(), c.client_id.as_deref()),
            (StorageMode::Local, "app-2", Some("spa"))
        );
        assert_eq!(c.allowed_origins, vec!["https://api.example.com".to_string()]);
        assert_eq!((c.retry_base_ms, c.retry_max_ms, c.lock_timeout_ms), (50.0, 500.0, 3000.0));
        assert!(!c.cross_tab);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(parse(&[])), "tokenUrl");
        assert_eq!(field_of(parse(&[("tokenUrl", Value::Num(1.0))])), "tokenUrl");
        assert_eq!(field_of(parse(&[("tokenUrl", s("  "))])), "tokenUrl");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("tokenurl", s("/t"))])), "tokenurl");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("storage", s("cookie"))])), "storage");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("namespace", s(""))])), "namespace");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("namespace", s("a b"))])), "namespace");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("allowedOrigins", s("https://x"))])), "allowedOrigins");
        assert_eq!(
            field_of(parse(&[("tokenUrl", s("/t")), ("allowedOrigins", Value::List(vec![Value::Num(1.0)]))])),
            "allowedOrigins"
        );
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("refreshLeadMs", s("60"))])), "refreshLeadMs");
        assert_eq!(
            field_of(parse(&[("tokenUrl", s("/t")), ("requestTimeoutMs", Value::Num(f64::NAN))])),
            "requestTimeoutMs"
        );
        assert_eq!(
            field_of(parse(&[("tokenUrl", s("/t")), ("requestTimeoutMs", Value::Num(-1.0))])),
            "requestTimeoutMs"
        );
        assert_eq!(
            field_of(parse(&[
                ("tokenUrl", s("/t")),
                ("retryBaseMs", Value::Num(900.0)),
                ("retryMaxMs", Value::Num(100.0))
            ])),
            "retryMaxMs"
        );
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("crossTab", s("yes"))])), "crossTab");
        assert_eq!(field_of(parse(&[("tokenUrl", s("/t")), ("clientId", Value::Other("object"))])), "clientId");
    }

    #[test]
    fn null_means_default() {
        assert_eq!(parse(&[("tokenUrl", s("/t")), ("storage", Value::Null)]).unwrap().storage, StorageMode::Memory);
    }

    #[test]
    fn transport_rules() {
        assert!(check_transport("tokenUrl", "https:", "auth.example.com").is_ok());
        assert!(check_transport("tokenUrl", "http:", "127.0.0.1").is_ok());
        assert!(check_transport("tokenUrl", "http:", "localhost").is_ok());
        assert!(check_transport("tokenUrl", "http:", "[::1]").is_ok());
        assert!(check_transport("tokenUrl", "http:", "example.com").is_err());
        assert!(check_transport("tokenUrl", "http:", "127.evil.com").is_err());
        assert!(check_transport("tokenUrl", "http:", "127.0.0.1.evil.com").is_err());
        assert!(check_transport("tokenUrl", "http:", "127.0.0.9").is_ok());
        assert!(check_transport("tokenUrl", "http:", "127.255.255.255").is_ok());
        for host in ["127.0.0", "127..0.1", "127.0.0.", "127.0.0.1234", "127.0.0.1.", "127", "1127.0.0.1"] {
            assert!(check_transport("tokenUrl", "http:", host).is_err(), "{host}");
        }
        assert!(check_transport("tokenUrl", "ftp:", "localhost").is_err());
        assert!(check_transport("tokenUrl", "javascript:", "").is_err());
    }
}
