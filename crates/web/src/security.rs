//! Headers and cross-site checks every response and request go through.
//!
//! - Every response carries `X-Content-Type-Options: nosniff`, a strict Content Security
//!   Policy (darkroom's own assets only, no inline script, no framing) and
//!   `Referrer-Policy: same-origin`.
//! - A request that changes state (POST, PUT, PATCH, DELETE) coming from another site is
//!   refused with 403 before its body is read. Browsers say where a request comes from
//!   (`Sec-Fetch-Site`, or `Origin` in older ones); API clients send neither and are let
//!   through — they prove ownership with the owner token, which a cross-site form cannot
//!   send. SameSite=Lax cookies alone would still let a cross-site form create jobs.

use crate::error::ApiError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use darkroom_core::ErrorCode;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; \
     style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every response (handlers may have set stricter ones).
pub async fn add_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(response)
}

/// Whether a state-changing request comes from another site.
pub fn is_cross_site(method: &Method, headers: &actix_web::http::header::HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        // `none`: typed or bookmarked by the user; `same-origin`: our own pages.
        return !matches!(site, "same-origin" | "none");
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
            origin_host != Some(host)
        }
        (Some(_), None) => true,
        // No Origin: not a browser's cross-site request (curl, programs, old forms on our pages).
        (None, _) => false,
    }
}

/// Refuses cross-site state-changing requests with 403, before the body is read.
pub async fn refuse_cross_site(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_cross_site(request.method(), request.headers()) {
        metrics::counter!("darkroom_cross_site_refused_total").increment(1);
        tracing::info!(path = request.path(), "refused a cross-site request");
        let response = ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "cross-site requests cannot change jobs; use darkroom's own pages or the API",
        )
        .error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn cross(method: Method, headers: &[(&str, &str)]) -> bool {
        let mut request = TestRequest::default().method(method);
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let request = request.to_http_request();
        is_cross_site(request.method(), request.headers())
    }

    #[test]
    fn only_cross_site_state_changes_are_refused() {
        assert!(cross(Method::POST, &[("Sec-Fetch-Site", "cross-site")]));
        assert!(cross(Method::DELETE, &[("Sec-Fetch-Site", "same-site")]));
        assert!(!cross(Method::POST, &[("Sec-Fetch-Site", "same-origin")]));
        assert!(!cross(Method::GET, &[("Sec-Fetch-Site", "cross-site")]), "links and images from elsewhere work");
        assert!(cross(Method::POST, &[("Origin", "https://evil.example"), ("Host", "darkroom.example")]));
        assert!(cross(Method::POST, &[("Origin", "null"), ("Host", "darkroom.example")]));
        assert!(!cross(Method::POST, &[("Origin", "https://darkroom.example"), ("Host", "darkroom.example")]));
        assert!(!cross(Method::POST, &[]), "API clients send neither header");
    }
}
