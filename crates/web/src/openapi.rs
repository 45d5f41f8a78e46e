//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they send (the job view, the recipe with its limits, the
//! replies below): served at `/api/v1/openapi.json`, and as a readable page at `/api`.
//! Responses every route may give (429, 403, 500, 503) are added to each operation here,
//! so the document says what the server really sends.

use crate::upload::RejectedFile;
use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use darkroom_core::{ErrorCode, JobId, PhotoError, PhotoId};
use darkroom_webhooks::DeliveryRecord;
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error: `{"error": {"code", "message"}}` (an upload refused as a whole also lists
/// the files under `rejected`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: PhotoError,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Vec<RejectedFile>>,
}

/// A photo taken into a job.
#[derive(Serialize, ToSchema)]
pub struct AcceptedPhotoRef {
    pub id: PhotoId,
    pub name: String,
}

/// The answer to an upload: the job, the photos taken and the files refused.
#[derive(Serialize, ToSchema)]
pub struct IntakeReply {
    pub id: JobId,
    /// The job's page.
    #[schema(example = "/jobs/2f1d3c9ab8e7k6m5n4p3q2r1s0")]
    pub url: String,
    /// Only when a job is created: proves ownership (`X-Owner-Token`); the creating
    /// browser also gets it as a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_token: Option<String>,
    pub photos: Vec<AcceptedPhotoRef>,
    pub rejected: Vec<RejectedFile>,
}

/// The multipart body of a new job. (Its `callback_url` pattern is stricter than what
/// the server takes — any public http(s) URL — so that generated examples are valid.)
#[allow(dead_code)] // documentation of the multipart form only
#[derive(ToSchema)]
pub struct CreateJobForm {
    /// The recipe: a part holding its JSON.
    pub recipe: darkroom_core::Recipe,
    /// One part per photo: JPEG, PNG, WebP, GIF, TIFF (and HEIC where built with it).
    #[schema(value_type = Vec<String>, format = Binary)]
    #[schema(min_items = 1)]
    pub photos: Vec<Vec<u8>>,
    /// Where to POST the job view, signed, when the job finishes (needs a webhook secret on
    /// the server; public http(s) addresses only).
    #[schema(
        pattern = "^$|^https?://[a-z][a-z0-9-]{0,30}(\\.[a-z][a-z0-9-]{0,30}){1,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$",
        max_length = 2048,
        example = "https://example.com/hooks/darkroom"
    )]
    pub callback_url: Option<String>,
    /// What to call the job ("Sofia's wedding"): shown on its page and in My jobs; one line,
    /// at most 120 characters (a longer one is refused).
    #[schema(max_length = 120, example = "Sofia's wedding")]
    pub name: Option<String>,
    /// Files the client refused before sending (not a photo, too large), as JSON
    /// `[{"name", "code", "message"}]`, so the job lists them with the ones the server
    /// refused; display text only, at most 1000 entries, and only with the request that creates
    /// the job. A part that cannot be read (over 64 KiB, not JSON) is left out, not refused.
    #[schema(example = r#"[{"name":"notes.txt","code":"unsupported_format","message":"not a photo"}]"#)]
    pub rejected: Option<String>,
    /// Recipes of their own for some photos, as JSON `{"<file part index>": recipe}` (file
    /// parts counted from 0, refused ones too): red-eye or teeth regions drawn on one photo
    /// belong to it alone. Kept for the photo's retries.
    #[schema(example = r#"{"0":{"ops":[{"op":"redeye","regions":[{"x":410,"y":300,"width":60,"height":40}]}]}}"#)]
    pub photo_recipes: Option<String>,
    /// PNGs the recipe's image watermarks name (`{"op":"watermark","image":"logo.png"}`), by
    /// their file names: at most 8 of 4 MiB and 4 megapixels each. A file name the recipe
    /// could not use is made safe (`My logo.png` becomes `My_logo.png`); one a recipe names
    /// but that was not sent, or is not a readable PNG, refuses the job (400).
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    pub assets: Option<Vec<Vec<u8>>>,
}

/// The multipart body of a batch added to a job.
#[allow(dead_code)] // documentation of the multipart form only
#[derive(ToSchema)]
pub struct AddPhotosForm {
    #[schema(min_items = 1, value_type = Vec<String>, format = Binary)]
    pub photos: Vec<Vec<u8>>,
    /// As on job creation: recipes of their own for some photos, by file part index.
    pub photo_recipes: Option<String>,
    /// As on job creation: PNGs the recipes name; those sent with the job before need not be
    /// sent again (a job's file is never replaced).
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    pub assets: Option<Vec<Vec<u8>>>,
}

/// The multipart body of a preview.
#[allow(dead_code)] // documentation of the multipart form only
#[derive(ToSchema)]
pub struct PreviewForm {
    /// The photo, best a copy reduced to about 1024 px.
    #[schema(value_type = String, format = Binary)]
    pub photo: Vec<u8>,
    pub recipe: darkroom_core::Recipe,
    /// The original's width, when `photo` is a reduced copy of it.
    #[schema(minimum = 1, maximum = 30000)]
    pub original_width: Option<u32>,
    #[schema(minimum = 1, maximum = 30000)]
    pub original_height: Option<u32>,
}

/// One server-sent event of `GET /api/v1/jobs/{job}/events`.
#[allow(dead_code)] // documentation of the event stream only
#[derive(ToSchema)]
pub struct LiveEvent {
    /// `view` (the data is the job view's JSON) or `gone` (the job was deleted).
    #[schema(pattern = "^(view|gone)$")]
    pub event: String,
    /// For `view`: the job view, as JSON text.
    pub data: String,
}

/// A photo sent to work again, and its new attempt.
#[derive(Serialize, ToSchema)]
pub struct AttemptRef {
    pub id: PhotoId,
    pub attempt: u32,
}

#[derive(Serialize, ToSchema)]
pub struct RetryReply {
    pub retried: Vec<AttemptRef>,
}

#[derive(Serialize, ToSchema)]
pub struct CancelReply {
    /// The photos cancelled by this request (those still queued).
    pub cancelled: Vec<PhotoId>,
}

/// A job's webhook and its delivery log.
#[derive(Serialize, ToSchema)]
pub struct WebhookLogReply {
    pub callback_url: Option<String>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// Adds what every operation may answer besides its own responses.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .into()
        };
        let common = [
            ("403", "a cross-site request (the Origin or Sec-Fetch-Site of another site)"),
            ("429", "too many requests from this client, or too many uploads or archives at once (Retry-After says when to come back)"),
            ("500", "a fault in darkroom (logged with the details)"),
            ("503", "the object store or the queues are unavailable (Retry-After says when to come back)"),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.delete].into_iter().flatten() {
                for (status, description) in common {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description));
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "darkroom",
        description = "Photo processing as a service: upload photos with a recipe, follow the job, download the results. \
The job id is a capability: whoever has it can view and download; changing a job needs the owner token \
(`X-Owner-Token`, or the cookie of the browser that created it). Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        crate::api::create_job,
        crate::my_jobs::my_jobs,
        crate::api::get_job,
        crate::api::delete_job,
        crate::api::add_photos,
        crate::live::job_events,
        crate::api::retry_failed,
        crate::api::resume_cancelled,
        crate::api::reprocess_photo,
        crate::api::reprocess_job,
        crate::api::cancel_job,
        crate::api::webhook_log,
        crate::preview::preview,
        crate::recipe_check::check_recipe,
        crate::operations::operations,
        crate::downloads::api_archive,
        crate::downloads::archive,
        crate::original_thumb::original_thumb,
        crate::downloads::photo_file,
        crate::downloads::attempt_output,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
        openapi_json,
        api_reference,
    ),
    components(schemas(ErrorCode, ErrorBody, DeliveryRecord, WebhookLogReply)),
    modifiers(&CommonResponses),
    tags(
        (name = "jobs", description = "Create, follow, change and delete jobs"),
        (name = "downloads", description = "Results, originals and archives"),
        (name = "operations", description = "Health and metrics, for operators"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, generated once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".to_owned()))
}

/// The methods the route at `path` answers, if a route is there: a request with another
/// method gets 405 with `Allow`, not 404. Known from the document, plus the pages.
pub fn allowed_methods(path: &str) -> Option<String> {
    static ROUTES: OnceLock<Vec<(actix_web::dev::ResourceDef, String)>> = OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap_or_default();
        let pages = [("/", "GET"), ("/jobs", "POST"), ("/jobs/{job}", "GET"), ("/static/{name}", "GET")]
            .map(|(pattern, methods)| (pattern.to_owned(), methods.to_owned()));
        let documented = document["paths"].as_object().into_iter().flatten().map(|(pattern, item)| {
            let methods: Vec<String> = item.as_object().into_iter().flatten().map(|(m, _)| m.to_uppercase()).collect();
            (pattern.clone(), methods.join(", "))
        });
        pages
            .into_iter()
            .chain(documented)
            .map(|(pattern, methods)| (actix_web::dev::ResourceDef::new(pattern), methods))
            .collect()
    });
    // The most specific pattern that matches: `/jobs/{job}` must not answer for `/jobs`.
    routes.iter().find(|(route, _)| route.is_match(path)).map(|(_, methods)| methods.clone())
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(document())
}

#[utoipa::path(get, path = "/api", tag = "operations",
    responses((status = 200, description = "The API reference, readable", content_type = "text/html", body = String)))]
#[get("/api")]
pub async fn api_reference(_state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let page = crate::api_page::render(document())
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, error))?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_every_route_every_error_code_and_the_recipe_limits() {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for path in [
            "/api/v1/jobs",
            "/api/v1/jobs/{job}",
            "/api/v1/jobs/{job}/photos",
            "/api/v1/jobs/{job}/events",
            "/api/v1/jobs/{job}/retry",
            "/api/v1/jobs/{job}/photos/{photo}/reprocess",
            "/api/v1/jobs/{job}/cancel",
            "/api/v1/jobs/{job}/webhook",
            "/api/v1/jobs/{job}/archive.zip",
            "/api/v1/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} is documented");
        }
        let codes = document["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
        for code in ["invalid_recipe", "not_found", "rate_limited", "unavailable", "too_many_photos", "internal"] {
            assert!(codes.iter().any(|c| c == code), "{code} is listed");
        }
        let text = document.to_string();
        assert!(text.contains(r#""maximum":4096"#), "thumbnail size limit");
        assert!(text.contains(r#""maxItems":16"#), "ops limit");
        // Every operation answers 429 and 503 besides its own responses.
        for item in paths.values() {
            for operation in item.as_object().unwrap().values() {
                assert!(operation["responses"]["429"].is_object() && operation["responses"]["503"].is_object());
            }
        }
    }

    #[test]
    fn the_reference_page_renders_every_operation() {
        let page = crate::api_page::render(document()).unwrap();
        assert!(page.contains("/api/v1/jobs/{job}/cancel") && page.contains("Schemas") && page.contains("JobView"));
    }
}
