//! Ownership (docs/ARCHITECTURE.md "Ownership"): the job id lets anyone view; changing a job needs its
//! owner token, from the `X-Owner-Token` header (API clients) or the browser's owner cookie.
//! A wrong token gets the same 404 as an unknown job, so probing reveals nothing.
//!
//! The browser keeps one cookie, `darkroom_jobs`, listing its most recent jobs with their
//! tokens (at most [`MAX_REMEMBERED_JOBS`], newest first), rather than a cookie per job:
//! a cookie per job, each sent with every request, grew the Cookie header past proxies'
//! limits after some hundred jobs. Per-job cookies of older versions are still read.

use crate::ApiError;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use darkroom_core::{JobId, JobManifest, OwnerToken};

pub const JOBS_COOKIE: &str = "darkroom_jobs";
/// Jobs the browser remembers: ~2.4 KB of cookie at most, well inside the 4 KB limit.
pub const MAX_REMEMBERED_JOBS: usize = 30;

fn legacy_cookie_name(job: &JobId) -> String {
    format!("darkroom_owner_{job}")
}

/// The (job, token) pairs the browser's cookie holds, newest first.
pub fn remembered_jobs(request: &HttpRequest) -> Vec<(JobId, OwnerToken)> {
    let Some(cookie) = request.cookie(JOBS_COOKIE) else { return Vec::new() };
    cookie
        .value()
        .split(',')
        .filter_map(|pair| pair.split_once('.'))
        .filter_map(|(job, token)| Some((JobId::parse(job).ok()?, OwnerToken::from_presented(token))))
        .take(MAX_REMEMBERED_JOBS)
        .collect()
}

/// The cookie that remembers `job` too (as the newest), forgetting the oldest beyond the cap.
pub fn owner_cookie(request: &HttpRequest, job: &JobId, token: &OwnerToken, secure: bool) -> Cookie<'static> {
    let mut jobs = remembered_jobs(request);
    jobs.retain(|(known, _)| known != job);
    jobs.insert(0, (job.clone(), token.clone()));
    jobs.truncate(MAX_REMEMBERED_JOBS);
    let value: Vec<String> = jobs.iter().map(|(job, token)| format!("{job}.{}", token.as_str())).collect();
    Cookie::build(JOBS_COOKIE, value.join(","))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(30))
        .finish()
}

pub fn presented_token(request: &HttpRequest, job: &JobId) -> Option<OwnerToken> {
    if let Some(header) = request.headers().get("X-Owner-Token").and_then(|value| value.to_str().ok()) {
        return Some(OwnerToken::from_presented(header));
    }
    remembered_jobs(request)
        .into_iter()
        .find(|(known, _)| known == job)
        .map(|(_, token)| token)
        .or_else(|| request.cookie(&legacy_cookie_name(job)).map(|cookie| OwnerToken::from_presented(cookie.value())))
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn one_cookie_remembers_the_newest_jobs_up_to_its_cap() {
        let mut request = TestRequest::default().to_http_request();
        let mut first = None;
        for _ in 0..(MAX_REMEMBERED_JOBS + 5) {
            let (job, token) = (JobId::generate(), OwnerToken::generate());
            first.get_or_insert((job.clone(), token.clone()));
            let cookie = owner_cookie(&request, &job, &token, true);
            assert!(cookie.value().len() < 3000, "cookie grew to {} bytes", cookie.value().len());
            assert_eq!(cookie.secure(), Some(true));
            request = TestRequest::default().cookie(cookie).to_http_request();
            assert!(presented_token(&request, &job).is_some_and(|t| t.matches(&token.sha256_hex())));
        }
        assert_eq!(remembered_jobs(&request).len(), MAX_REMEMBERED_JOBS);
        let (oldest, _) = first.unwrap_or_else(|| (JobId::generate(), OwnerToken::generate()));
        assert!(presented_token(&request, &oldest).is_none(), "the oldest job was forgotten");
    }
}
