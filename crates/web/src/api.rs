//! The JSON API, `/api/v1` (docs/ARCHITECTURE.md "HTTP JSON API").

use crate::body_reader::BodyReader;
use crate::idempotency;
use crate::job_actions::{self, RecipeSource};
use crate::job_lookup::{load_job_or_404, load_view};
use crate::openapi::{AcceptedPhotoRef, AttemptRef, CancelReply, IntakeReply, RetryReply, WebhookLogReply};
use crate::owner::{owner_cookie, presented_token, require_owner};
use crate::rate_limit::client_address;
use crate::upload::Intake;
use crate::{ApiError, AppState};
use actix_multipart::Multipart;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use darkroom_core::ids::sha256_hex;
use darkroom_core::{keys, ErrorCode, JobId, PhotoId, Recipe};

pub fn json_error(error: actix_web::error::JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(ErrorCode::InvalidRequest, format!("the JSON body could not be read: {error}")).into()
}

/// The reader that holds an upload's body to its limits, with the client it counts against
/// (a flood of uploads gets 429, not a pile-up; a slow upload gives its slot up).
pub fn upload_body(state: &AppState, request: &HttpRequest, multipart: Multipart) -> BodyReader {
    let client = client_address(request, state.settings.trust_forwarded_for)
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), crate::rate_limit::bucket_of);
    BodyReader::new(state, multipart, client)
}

/// The job, if it exists and the request proves ownership; the same 404 otherwise.
async fn load_owned_job(
    state: &AppState,
    request: &HttpRequest,
    job_text: &str,
) -> Result<darkroom_core::JobManifest, ApiError> {
    let job = load_job_or_404(state, job_text).await?;
    require_owner(request, &job)?;
    Ok(job)
}

fn intake_reply(job: &JobId, intake: &Intake, owner_token: Option<String>) -> IntakeReply {
    IntakeReply {
        id: job.clone(),
        url: format!("/jobs/{job}"),
        owner_token,
        photos: intake.accepted.iter().map(|p| AcceptedPhotoRef { id: p.id.clone(), name: p.name.clone() }).collect(),
        rejected: intake.rejected.clone(),
    }
}

#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", summary = "Create a job: photos and a recipe",
    description = "Each file is judged on its own bytes: one that is empty, not an accepted image, over the size limit or declaring too many pixels is listed under `rejected` and the others go on; a request with no acceptable photo is a 400.",
    request_body(content = crate::openapi::CreateJobForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Created; `owner_token` proves ownership", body = IntakeReply),
        (status = 400, description = "No acceptable photo, an invalid recipe or callback_url", body = crate::openapi::ErrorBody),
        (status = 408, description = "The upload stopped arriving or took too long", body = crate::openapi::ErrorBody),
        (status = 413, description = "The request is larger than the server takes", body = crate::openapi::ErrorBody),
        (status = 507, description = "The photo store is full", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs")]
pub async fn create_job(
    state: web::Data<AppState>,
    request: HttpRequest,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let body = upload_body(&state, &request, multipart);
    let created =
        job_actions::create(&state, body, RecipeSource::JsonPart, crate::tenant::of(&state, &request)).await?;
    let job = &created.manifest.id;
    let body = intake_reply(job, &created.intake, Some(created.token.as_str().to_owned()));
    Ok(HttpResponse::Created()
        .cookie(owner_cookie(&request, job, &created.token, state.settings.secure_cookies))
        .insert_header(("Location", format!("/api/v1/jobs/{job}")))
        .json(body))
}

#[utoipa::path(get, path = "/api/v1/jobs/{job}", tag = "jobs", summary = "The job view: state, counts, every photo",
    params(("job" = JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job view", body = darkroom_core::JobView),
        (status = 404, description = "No such job", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}")]
pub async fn get_job(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = load_job_or_404(&state, &path).await?;
    let view = load_view(&state, &job).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(view))
}

#[utoipa::path(delete, path = "/api/v1/jobs/{job}", tag = "jobs", summary = "Delete the job and everything in it (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    responses(
        (status = 204, description = "Deleted (again, for a retried request)"),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
    ))]
#[delete("/jobs/{job}")]
pub async fn delete_job(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let job_id = JobId::parse(&path).map_err(|_| ApiError::not_found())?;
    let Some(job) = state.jobs.load_job(&job_id).await? else {
        // Deleted already: the owner's retry (say, after a lost answer) succeeds again.
        let tombstone = state.jobs.tombstone(&job_id).await?.ok_or_else(ApiError::not_found)?;
        let owner = presented_token(&request, &job_id).is_some_and(|t| t.matches(&tombstone.owner_token_sha256));
        return if owner { Ok(HttpResponse::NoContent().finish()) } else { Err(ApiError::not_found()) };
    };
    require_owner(&request, &job)?;
    job_actions::delete(&state, &job).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/photos", tag = "jobs", summary = "Add a batch of photos to a job (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried batch add its photos once")),
    request_body(content = crate::openapi::AddPhotosForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Added", body = IntakeReply),
        (status = 400, description = "No acceptable photo, or the job is full", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
        (status = 408, description = "The upload stopped arriving or took too long", body = crate::openapi::ErrorBody),
        (status = 409, description = "A batch with this Idempotency-Key is still uploading", body = crate::openapi::ErrorBody),
        (status = 413, description = "The request is larger than the server takes", body = crate::openapi::ErrorBody),
        (status = 507, description = "The photo store is full", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/photos")]
pub async fn add_photos(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let job = load_owned_job(&state, &request, &path).await?;
    let body = upload_body(&state, &request, multipart);
    let idempotency_key =
        request.headers().get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty());
    let claim = match idempotency_key {
        Some(key) => {
            let reply_key = keys::batch_reply(&job.id, &sha256_hex(key.as_bytes()));
            match idempotency::claim(&state, &job, &reply_key).await? {
                idempotency::Claimed::Held(claim) => Some(claim),
                idempotency::Claimed::Answered(reply) => return Ok(reply),
            }
        }
        None => None,
    };
    let (_, body) = job_actions::add_photos(&state, &job, body, claim, added_reply).await?;
    Ok(HttpResponse::Created().json(body))
}

/// The reply to an added batch, as JSON: an `Idempotency-Key`'s replay answers with it as
/// stored.
fn added_reply(job: &JobId, intake: &Intake) -> serde_json::Value {
    serde_json::to_value(intake_reply(job, intake, None)).unwrap_or_default()
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/retry", tag = "jobs", summary = "Send the failed photos to work again (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    responses(
        (status = 202, description = "The photos retried, each with its new attempt", body = RetryReply),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/retry")]
pub async fn retry_failed(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    restart(&state, &request, &path, darkroom_core::job::PhotoState::Failed).await
}

/// Retry (failed photos) and resume (cancelled ones): each photo in `which` state starts a
/// new attempt.
async fn restart(
    state: &AppState,
    request: &HttpRequest,
    job: &str,
    which: darkroom_core::job::PhotoState,
) -> Result<HttpResponse, ApiError> {
    let job = load_owned_job(state, request, job).await?;
    let restarted = state.jobs.restart(&job, which).await?;
    let retried = restarted.into_iter().map(|(id, attempt)| AttemptRef { id, attempt }).collect();
    Ok(HttpResponse::Accepted().json(RetryReply { retried }))
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/resume", tag = "jobs", summary = "Send the cancelled photos to work again (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    responses(
        (status = 202, description = "The photos resumed, each with its new attempt", body = RetryReply),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/resume")]
pub async fn resume_cancelled(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    restart(&state, &request, &path, darkroom_core::job::PhotoState::Cancelled).await
}

/// The body of a reprocessing request.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprocessBody {
    #[schema(value_type = darkroom_core::Recipe)]
    recipe: serde_json::Value,
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/photos/{photo}/reprocess", tag = "jobs", summary = "Process one photo again with another recipe (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("photo" = PhotoId, Path, description = "The photo id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    request_body(content = ReprocessBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Sent to work as a new attempt", body = AttemptRef),
        (status = 400, description = "An invalid recipe or body", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such job or photo, or not its owner", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 256 KiB", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/photos/{photo}/reprocess")]
pub async fn reprocess_photo(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<ReprocessBody>,
) -> Result<HttpResponse, ApiError> {
    let (job_text, photo_text) = path.into_inner();
    let job = load_owned_job(&state, &request, &job_text).await?;
    let photo = PhotoId::parse(&photo_text).map_err(|_| ApiError::not_found())?;
    let recipe = Recipe::from_json(&body.recipe.to_string())
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRecipe, e.to_string()))?;
    crate::watermark_parts::require_stored(state.store.as_ref(), &job.id, std::slice::from_ref(&recipe), &[]).await?;
    let attempt = state.jobs.reprocess(&job, &photo, recipe).await?;
    Ok(HttpResponse::Accepted().json(AttemptRef { id: photo, attempt }))
}

/// The body of a job-wide reprocessing.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprocessJobBody {
    #[schema(value_type = darkroom_core::Recipe)]
    recipe: serde_json::Value,
    /// `all` (the default) or `failed`: retry the failed photos with this recipe.
    #[serde(default)]
    photos: job_actions::ReprocessWhich,
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/reprocess", tag = "jobs", summary = "Process the job's photos again with another recipe (owner)",
    description = "Each photo chosen (`photos`: `all` or `failed`) starts a new attempt with the recipe and shows results again once it is done. Two requests that read the job in the same state (a double click, two tabs at once) start each photo once; a photo that cannot be started now is left as it was and logged, the others go on (503 only when none could be started).",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    request_body(content = ReprocessJobBody, content_type = "application/json"),
    responses(
        (status = 202, description = "The photos sent to work, each with its new attempt", body = RetryReply),
        (status = 400, description = "An invalid recipe or body", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 256 KiB", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/reprocess")]
pub async fn reprocess_job(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReprocessJobBody>,
) -> Result<HttpResponse, ApiError> {
    let job = load_owned_job(&state, &request, &path).await?;
    let recipe = Recipe::from_json(&body.recipe.to_string())
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRecipe, e.to_string()))?;
    crate::watermark_parts::require_stored(state.store.as_ref(), &job.id, std::slice::from_ref(&recipe), &[]).await?;
    let started = job_actions::reprocess_many(&state, &job, body.photos, recipe).await?;
    let retried = started.into_iter().map(|(id, attempt)| AttemptRef { id, attempt }).collect();
    Ok(HttpResponse::Accepted().json(RetryReply { retried }))
}

#[utoipa::path(post, path = "/api/v1/jobs/{job}/cancel", tag = "jobs", summary = "Cancel the photos still queued (owner)",
    description = "Queued photos become `cancelled` and workers skip them; photos done stay downloadable, photos in work finish.",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    responses(
        (status = 200, description = "The photos cancelled now", body = CancelReply),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
    ))]
#[post("/jobs/{job}/cancel")]
pub async fn cancel_job(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let job = load_owned_job(&state, &request, &path).await?;
    let cancelled = state.jobs.cancel(&job).await?;
    // Cancelling may finish the job; the status process's housekeeping pass is the backstop.
    if let Err(error) = state.jobs.schedule_webhook_if_finished(&job, None).await {
        tracing::warn!(job_id = %job.id, error.message = %error, "could not schedule the webhook of a cancelled job; the housekeeping pass will");
    }
    Ok(HttpResponse::Ok().json(CancelReply { cancelled }))
}

#[utoipa::path(get, path = "/api/v1/jobs/{job}/webhook", tag = "jobs", summary = "The job's webhook and its delivery log (owner)",
    params(("job" = JobId, Path, description = "The job id"), ("X-Owner-Token" = Option<String>, Header, description = "The owner token (or the owner cookie of the browser that created the job)")),
    responses(
        (status = 200, description = "The callback URL and the last 50 delivery tries", body = WebhookLogReply),
        (status = 404, description = "No such job, or not its owner", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/webhook")]
pub async fn webhook_log(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let job = load_owned_job(&state, &request, &path).await?;
    let deliveries = darkroom_webhooks::delivery_log(state.store.as_ref(), &job.id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(WebhookLogReply { callback_url: job.callback_url, deliveries }))
}
