//! A request-rate limit per client, so that one client's flood of requests gets 429s while
//! everybody else is served. GCRA token buckets keyed by client address (`governor`, MIT;
//! actix-governor is GPL, so this is the small middleware around it). Health and metrics
//! routes are exempt: load balancers and Prometheus poll them from one address.

use crate::error::ApiError;
use crate::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use darkroom_core::ErrorCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Forget idle clients every this many requests, so the table does not grow without end.
const SWEEP_EVERY: u64 = 10_000;

#[derive(Debug)]
pub struct ClientRateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
    checks: AtomicU64,
}

impl ClientRateLimit {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32, trust_forwarded_for: bool) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second.get())).unwrap_or(per_second);
        let limiter = RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst));
        Some(Self { limiter, trust_forwarded_for, checks: AtomicU64::new(0) })
    }

    pub fn client(&self, request: &ServiceRequest) -> Option<IpAddr> {
        client_address(request.request(), self.trust_forwarded_for)
    }

    /// `Ok`, or how long until this client may send its next request.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&bucket_of(client))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The bucket a client counts against: its IPv4 address (also when written IPv4-mapped), or
/// its IPv6 /64 — one host can use any address of its /64, so each must not be a new client.
pub fn bucket_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// Who is asking: the peer address, or — behind a load balancer that appends it, when
/// trusted — the last address in `X-Forwarded-For` (earlier ones are the client's to forge).
pub fn client_address(request: &actix_web::HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        // Only the last entry is the trusted proxy's own; the ones before it are whatever the
        // client wrote. An entry that is not an address (`unknown`) is no reason to trust an
        // earlier one: then the proxy's own address stands for the client.
        let last = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .last();
        if let Some(address) = last.and_then(forwarded_address) {
            return Some(address);
        }
    }
    request.peer_addr().map(|address| address.ip())
}

/// An X-Forwarded-For entry: an address, or an address with a port (some proxies add one).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|socket| socket.ip()))
}

fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn limit_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = request.app_data::<web::Data<AppState>>().and_then(|state| state.rate_limit.clone());
    if let Some(limit) = limit.filter(|_| !exempt(request.path())) {
        if let Some(client) = limit.client(&request) {
            if let Err(wait) = limit.check(client) {
                metrics::counter!("darkroom_rate_limited_total").increment(1);
                // Debug, not warn: a flood must not become a flood of log lines.
                tracing::debug!(%client, path = request.path(), "request rate limit reached");
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                let mut response = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::RateLimited,
                    format!("too many requests from {client}; try again in {seconds} s"),
                )
                .error_response();
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(RETRY_AFTER, value);
                }
                return Ok(request.into_response(response).map_into_right_body());
            }
        }
    }
    next.call(request).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limit = ClientRateLimit::new(1, 3, false).expect("a limit");
        let (flooder, other): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limit.check(flooder), Ok(()));
        }
        let wait = limit.check(flooder).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limit.check(other), Ok(()));
        assert!(ClientRateLimit::new(0, 10, false).is_none());
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_only_its_last_address() {
        let request = TestRequest::default()
            .peer_addr("192.0.2.9:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.7"))
            .to_srv_request();
        let trusted = ClientRateLimit::new(1, 1, true).unwrap();
        assert_eq!(trusted.client(&request), Some("203.0.113.7".parse().unwrap()));
        let untrusted = ClientRateLimit::new(1, 1, false).unwrap();
        assert_eq!(untrusted.client(&request), Some("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_bucket_and_a_mapped_ipv4_is_its_address() {
        let limit = ClientRateLimit::new(1, 1, false).unwrap();
        assert!(limit.check("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(limit.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err(), "same /64: same client");
        assert!(limit.check("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64: another client");
        assert!(limit.check("192.0.2.1".parse().unwrap()).is_ok());
        assert!(limit.check("::ffff:192.0.2.1".parse().unwrap()).is_err(), "mapped IPv4: the same client");
    }

    #[test]
    fn a_forwarded_entry_that_is_no_address_does_not_let_the_client_s_own_count() {
        let trusted = ClientRateLimit::new(1, 1, true).unwrap();
        let with = |header: &str| {
            TestRequest::default()
                .peer_addr("192.0.2.9:5000".parse().unwrap())
                .insert_header(("X-Forwarded-For", header.to_owned()))
                .to_srv_request()
        };
        // The client wrote 6.6.6.6; the proxy appended something that is not an address.
        assert_eq!(trusted.client(&with("6.6.6.6, unknown")), Some("192.0.2.9".parse().unwrap()));
        // Proxies that add a port.
        assert_eq!(trusted.client(&with("6.6.6.6, 203.0.113.7:41000")), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(trusted.client(&with("6.6.6.6, [2001:db8::1]:41000")), Some("2001:db8::1".parse().unwrap()));
    }
}
