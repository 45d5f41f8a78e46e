//! Where a webhook may go. A callback URL is the user's choice of a host darkroom connects
//! to from inside its network, so it must not reach what only darkroom can reach: loopback,
//! private and link-local networks, the cloud metadata address (169.254.169.254,
//! fd00:ec2::254). Names are checked after DNS resolution, every time a connection is made
//! — on every redirect too — so a name that resolves to a private address, or a public page
//! that redirects to one, is refused as well. An operator may allow such targets (a receiver
//! on the same host, tests) with a setting.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

/// The longest callback URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("callback_url is not a URL: {0}")]
    NotAUrl(String),
    #[error("callback_url must be an http or https URL, not {0}:")]
    Scheme(String),
    #[error("callback_url is longer than {MAX_URL_LENGTH} characters")]
    TooLong,
    #[error("callback_url must not carry a user name or password; put a secret in its path or query instead")]
    Credentials,
    /// (The address is not in the message: it is shown to the job's owner, and a name's
    /// internal address is not theirs to learn. The resolver logs it for operators.)
    #[error("callback_url points at a loopback, private, link-local or otherwise internal address, which webhooks may not reach")]
    Internal(IpAddr),
    #[error("callback_url's host {0} has no public address")]
    NoPublicAddress(String),
}

/// Checks a callback URL as written: its scheme, and its host if that is an address.
/// (Names are checked when they are resolved, see [`GuardedResolver`].)
pub fn check_url(text: &str, allow_internal: bool) -> Result<Url, TargetError> {
    if text.len() > MAX_URL_LENGTH {
        return Err(TargetError::TooLong);
    }
    let url = Url::parse(text.trim()).map_err(|error| TargetError::NotAUrl(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    match url.host() {
        None => return Err(TargetError::NotAUrl("it has no host".to_owned())),
        Some(url::Host::Ipv4(ip)) if !allow_internal && is_internal(IpAddr::V4(ip)) => {
            return Err(TargetError::Internal(IpAddr::V4(ip)))
        }
        Some(url::Host::Ipv6(ip)) if !allow_internal && is_internal(IpAddr::V6(ip)) => {
            return Err(TargetError::Internal(IpAddr::V6(ip)))
        }
        Some(_) => {}
    }
    Ok(url)
}

/// Whether `ip` is an address a webhook may not reach: anything but the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => is_internal_v6(ip),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()         // 127/8
        || ip.is_private()          // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()       // 169.254/16: the cloud metadata service
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0                   // "this network"
        || (a == 100 && (64..128).contains(&b)) // 100.64/10, carrier-grade NAT
        || (a == 192 && b == 0 && c == 0)       // 192.0.0/24, protocol assignments
        || (a == 198 && (18..20).contains(&b))  // 198.18/15, benchmarking
        || a >= 240 // 240/4, reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    let v4_in = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // 64:ff9b::/96, NAT64: the IPv4 address it carries decides.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_internal_v4(v4_in(segments[6], segments[7]));
    }
    // 2002::/16, 6to4: the IPv4 address in its second and third groups decides.
    if segments[0] == 0x2002 {
        return is_internal_v4(v4_in(segments[1], segments[2]));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local (AWS metadata fd00:ec2::254)
        || (segments[0] & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || (segments[0] & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated)
        || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || segments[..3] == [0x64, 0xff9b, 1] // 64:ff9b:1::/48, local-use NAT64
        || segments[0] == 0x2001 && segments[1] == 0 // 2001::/32, Teredo (tunnels to any IPv4)
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0] // ::ffff:0:0:0/96, IPv4-translated
}

/// A DNS resolver that drops internal addresses from every answer (and fails when none
/// is left), so that no connection of the webhook client — first request or redirect —
/// reaches one.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_internal: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_internal = self.allow_internal;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|addr| allow_internal || !is_internal(addr.ip())).collect();
            if allowed.is_empty() {
                if let Some(addr) = resolved.first() {
                    tracing::warn!(host, address = %addr.ip(), "a webhook's host resolves to an internal address; not delivered");
                }
                let error: Box<dyn std::error::Error + Send + Sync> = match resolved.first() {
                    Some(addr) => Box::new(TargetError::Internal(addr.ip())),
                    None => Box::new(TargetError::NoPublicAddress(host)),
                };
                return Err(error);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_pass() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "64:ff9b:1::a",
            "2001:0:4136:e378::1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal} should be internal");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public} should be public");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_addresses() {
        assert!(check_url("https://example.com/hook?x=1", false).is_ok());
        assert_eq!(check_url("ftp://example.com/", false), Err(TargetError::Scheme("ftp".into())));
        assert_eq!(check_url("file:///etc/passwd", false), Err(TargetError::Scheme("file".into())));
        assert!(matches!(check_url("http://169.254.169.254/latest/meta-data", false), Err(TargetError::Internal(_))));
        assert!(matches!(check_url("http://[::1]:8080/", false), Err(TargetError::Internal(_))));
        // Decimal and octal spellings of 127.0.0.1 are parsed as the address they are.
        assert!(matches!(check_url("http://2130706433/", false), Err(TargetError::Internal(_))));
        assert!(matches!(check_url("http://0177.0.0.1/", false), Err(TargetError::Internal(_))));
        assert_eq!(check_url("https://user:pw@example.com/", false), Err(TargetError::Credentials));
        assert!(matches!(check_url("not a url", false), Err(TargetError::NotAUrl(_))));
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert_eq!(check_url(&format!("https://example.com/{}", "a".repeat(3000)), false), Err(TargetError::TooLong));
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_answers() {
        let guarded = GuardedResolver { allow_internal: false };
        let refused = guarded.resolve("localhost".parse::<Name>().unwrap()).await;
        assert!(refused.is_err(), "localhost resolves to loopback only");
        let allowed = GuardedResolver { allow_internal: true }.resolve("localhost".parse::<Name>().unwrap()).await;
        assert!(allowed.map(|addrs| addrs.count() > 0).unwrap_or(false));
    }
}
