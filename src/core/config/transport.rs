//! The transport rule for every URL a token travels to: https, or plain http to this machine.

use super::err;
use crate::core::error::Error;

/// True for hosts that never leave the machine, where plain http is acceptable.
pub fn is_loopback(host: &str) -> bool {
    let mut parts = host.strip_prefix("127.").map(|rest| rest.split('.'));
    let ipv4_loopback = parts.as_mut().is_some_and(|parts| {
        let octets: Vec<&str> = parts.collect();
        octets.len() == 3 && octets.iter().all(|o| (1..=3).contains(&o.len()) && o.bytes().all(|b| b.is_ascii_digit()))
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
