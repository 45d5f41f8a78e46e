//! Whose job a new job is, for sharing the workers fairly (docs/ARCHITECTURE.md, "Fair
//! sharing"): in a private deployment, the access key that created it; otherwise the
//! client's network (its IPv4 address, or its IPv6 /56: what providers usually give one
//! customer, so one home or office cannot pose as thousands of tenants). One person's ten
//! jobs are one tenant, and within a tenant its jobs take turns, so two people behind one
//! address still each see their own job move.
//!
//! Only a digest is kept: queue messages and job manifests carry no address or key name in
//! clear. It is a pseudonym, not anonymity: the IPv4 space is small enough to try every
//! address against a digest, so treat manifests (like access logs) as personal data.

use crate::access::SESSION_COOKIE;
use crate::rate_limit::client_address;
use crate::AppState;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The tenant of a job created by `request`.
pub fn of(state: &AppState, request: &HttpRequest) -> String {
    if let Some(name) = key_name(state, request) {
        return digest("key", &name);
    }
    match client_address(request, state.settings.trust_forwarded_for) {
        Some(address) => digest("net", &network(address)),
        None => digest("net", "unknown"),
    }
}

fn key_name(state: &AppState, request: &HttpRequest) -> Option<String> {
    let keys = state.access_keys.as_ref()?;
    if let Some(key) = crate::access::bearer_key(request.headers()) {
        return keys.check_key(key);
    }
    let cookie = request.cookie(SESSION_COOKIE)?;
    // The access middleware let the request in, so a session cookie here is valid; its
    // first part names the key.
    keys.check_session(cookie.value()).then(|| cookie.value().split('.').next().unwrap_or_default().to_owned())
}

/// The network an address stands for: the address itself (IPv4), or its /56 (IPv6).
fn network(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/56", segments[0], segments[1], segments[2], segments[3] & 0xff00)
            }
        },
    }
}

fn digest(kind: &str, value: &str) -> String {
    let hash = Sha256::digest(format!("darkroom tenant {kind} {value}").as_bytes());
    format!("{kind}-{}", hex::encode(&hash[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_56_and_a_mapped_ipv4_its_address() {
        let a: IpAddr = "2001:db8:1:200:aaaa::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "2001:db8:1:2ff:bbbb::9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let c: IpAddr = "2001:db8:1:300::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(network(mapped), "192.0.2.7");
    }

    #[test]
    fn tenants_are_digests_that_name_no_address() {
        let tenant = digest("net", "192.0.2.7");
        assert!(tenant.starts_with("net-") && tenant.len() == 4 + 16);
        assert!(!tenant.contains("192"));
        assert_ne!(digest("key", "alice"), digest("net", "alice"));
    }
}
