//! Browser pages: the upload page, the plain-form upload (works without JavaScript), and
//! the job page. Errors on these routes are HTML pages, not JSON.

use crate::job_actions::{self, RecipeSource};
use crate::job_lookup::{load_job_or_404, load_view};
use crate::owner::{is_owner, owner_cookie};
use crate::{ApiError, AppState};
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use darkroom_core::{JobView, Limits};
use std::fmt;

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    limits: Limits,
    /// Whether this build decodes HEIC (feature `heic`): the file picker offers it then.
    heic: bool,
    /// The upload formats, as told to users.
    formats: &'static str,
    /// The operation registry, for the recipe builder (`operations::page_json`).
    operations_json: &'static str,
    /// The operations whose plain-form fields are made from the registry.
    generic_ops: Vec<&'static darkroom_core::operations::OperationSpec>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    view: JobView,
    view_json: String,
    owner: bool,
    /// The operation registry, for the recipe builder (`operations::page_json`).
    operations_json: &'static str,
}

impl JobPage {
    fn percent_finished(&self) -> usize {
        let total = self.view.photos.len().max(1);
        // Cancelled photos are not progress: a job cancelled at 3 of 7 shows 3 of 7.
        (self.view.counts.done + self.view.counts.failed) * 100 / total
    }

    /// A work time for people: "0.4 s", "12 s", "2 min 5 s" (as static/job.js says it).
    fn seconds(&self, ms: &&u64) -> String {
        duration_words(**ms)
    }
}

/// Milliseconds in words, to a tenth of a second below ten seconds.
fn duration_words(ms: u64) -> String {
    match ms {
        // A small photo takes milliseconds; "0.0 s" would read as nothing done.
        0 => "under 1 ms".to_owned(),
        1..=99 => format!("{ms} ms"),
        100..=9_949 => format!("{:.1} s", ms as f64 / 1000.0),
        9_950..=59_499 => format!("{} s", (ms + 500) / 1000),
        _ => {
            let seconds = (ms + 500) / 1000;
            format!("{} min {} s", seconds / 60, seconds % 60)
        }
    }
}

#[cfg(test)]
mod duration_tests {
    use super::duration_words;

    #[test]
    fn work_times_read_as_people_say_them() {
        assert_eq!(duration_words(0), "under 1 ms");
        assert_eq!(duration_words(7), "7 ms");
        assert_eq!(duration_words(99), "99 ms");
        assert_eq!(duration_words(100), "0.1 s");
        assert_eq!(duration_words(420), "0.4 s");
        assert_eq!(duration_words(9_949), "9.9 s");
        assert_eq!(duration_words(12_300), "12 s");
        assert_eq!(duration_words(125_000), "2 min 5 s");
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// An [`ApiError`] shown as an HTML page.
#[derive(Debug)]
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log("page");
        let title = match self.0.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::SERVICE_UNAVAILABLE => "Not available right now",
            status if status.is_client_error() => "That did not work",
            _ => "Something went wrong on our side",
        };
        let mut response =
            html(self.0.status, &ErrorPage { status: self.0.status.as_u16(), title, message: &self.0.message });
        if let Some(seconds) = self.0.retry_after() {
            // As the API says it: a browser or a proxy may come back by itself.
            response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

pub(crate) fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body),
        Err(error) => {
            tracing::error!(error.message = %error, "template failed to render");
            HttpResponse::InternalServerError().body("the page could not be rendered")
        }
    }
}

#[get("/")]
pub async fn upload_page(state: web::Data<AppState>) -> HttpResponse {
    html(
        StatusCode::OK,
        &UploadPage {
            limits: state.settings.limits,
            heic: darkroom_imaging::HEIC_SUPPORTED,
            formats: darkroom_imaging::SUPPORTED_FORMATS,
            operations_json: crate::operations::page_json(),
            generic_ops: darkroom_core::operations::OPERATIONS
                .iter()
                .filter(|spec| spec.editor == darkroom_core::operations::Editor::Generic)
                .collect(),
        },
    )
}

#[post("/jobs")]
pub async fn create_job_from_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    multipart: Multipart,
) -> Result<HttpResponse, PageError> {
    let body = crate::api::upload_body(&state, &request, multipart);
    let created =
        job_actions::create(&state, body, RecipeSource::FormFields, crate::tenant::of(&state, &request)).await?;
    let job = &created.manifest.id;
    Ok(HttpResponse::SeeOther()
        .cookie(owner_cookie(&request, job, &created.token, state.settings.secure_cookies))
        .insert_header(("Location", format!("/jobs/{job}")))
        .finish())
}

#[get("/jobs/{job}")]
pub async fn job_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let job = load_job_or_404(&state, &path).await?;
    let view = load_view(&state, &job).await?;
    // `<` escaped so the JSON cannot close the script element it is embedded in.
    let view_json = serde_json::to_string(&view).unwrap_or_default().replace('<', "\\u003c");
    let page =
        JobPage { view, view_json, owner: is_owner(&request, &job), operations_json: crate::operations::page_json() };
    let mut response = html(StatusCode::OK, &page);
    response
        .headers_mut()
        .insert(actix_web::http::header::CACHE_CONTROL, actix_web::http::header::HeaderValue::from_static("no-store"));
    Ok(response)
}

pub async fn not_found(request: HttpRequest) -> HttpResponse {
    if let Some(allowed) = crate::openapi::allowed_methods(request.path()) {
        let message = format!("{} is not allowed here; use {allowed}", request.method());
        let mut response =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, darkroom_core::ErrorCode::InvalidRequest, message)
                .error_response();
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed) {
            response.headers_mut().insert(actix_web::http::header::ALLOW, value);
        }
        return response;
    }
    if request.path().starts_with("/api/") {
        ApiError::not_found().error_response()
    } else {
        PageError(ApiError::not_found()).error_response()
    }
}
