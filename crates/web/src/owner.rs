//! Ownership (DESIGN.md "Ownership"): the job id lets anyone view; changing a job needs its
//! owner token, from the `X-Owner-Token` header (API clients) or the cookie the browser
//! that created the job received. A wrong token gets the same 404 as an unknown job, so
//! probing reveals nothing.

use crate::ApiError;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use darkroom_core::{JobId, JobManifest, OwnerToken};

pub fn cookie_name(job: &JobId) -> String {
    format!("darkroom_owner_{job}")
}

pub fn owner_cookie(job: &JobId, token: &OwnerToken) -> Cookie<'static> {
    Cookie::build(cookie_name(job), token.as_str().to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(30))
        .finish()
}

pub fn presented_token(request: &HttpRequest, job: &JobId) -> Option<OwnerToken> {
    request
        .headers()
        .get("X-Owner-Token")
        .and_then(|value| value.to_str().ok())
        .map(OwnerToken::from_presented)
        .or_else(|| request.cookie(&cookie_name(job)).map(|cookie| OwnerToken::from_presented(cookie.value())))
}

pub fn is_owner(request: &HttpRequest, job: &JobManifest) -> bool {
    presented_token(request, &job.id).is_some_and(|token| token.matches(&job.owner_token_sha256))
}

pub fn require_owner(request: &HttpRequest, job: &JobManifest) -> Result<(), ApiError> {
    if is_owner(request, job) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}
