//! `GET /jobs/{job}/photos/{photo}/original-thumb`: a small copy of a photo's original, so the
//! job page shows every photo from the start — queued, cancelled and failed ones too — not
//! blank tiles until a worker has made the result's thumbnail.
//!
//! Rendered on demand in the web process, nothing stored (a copy written beside the photo
//! could outlive a deletion that swept past it). It is bounded like the preview, whose render
//! slots it shares: originals up to the preview's size limits, and a thumbnail waits up to
//! [`WAIT`] for a slot behind at most [`WAITING`] others, else 429 (the page then shows the
//! photo's state in words). Only pixels leave: the copy is re-encoded upright, without the
//! original's EXIF (its GPS position), so anyone with the job's link may see it, as they may
//! see the result. The original never changes, so browsers keep the copy for good.

use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use darkroom_core::{keys, ErrorCode, OutputFormat, PhotoId};
use darkroom_imaging::{decode_at_least, encode, fit_within, DecodeLimits};

/// The long side of the copy: the job page's cards are at most 240 CSS px wide, and twice
/// that on a high-density screen is more than a card needs.
pub const LONG_SIDE: u32 = 320;

/// How long a thumbnail waits for a render slot before it is answered 429.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Thumbnails that may wait for a slot at once, per process (a page loads the ones in view).
pub const WAITING: usize = 12;

#[utoipa::path(get, path = "/jobs/{job}/photos/{photo}/original-thumb", tag = "downloads", summary = "A small copy of the photo's original, upright, without metadata",
    description = "Rendered on demand (at most 320 px, JPEG) so a photo can be shown before it is processed; cached by the browser for good.",
    params(("job" = darkroom_core::JobId, Path, description = "The job id"), ("photo" = darkroom_core::PhotoId, Path, description = "The photo id")),
    responses(
        (status = 200, description = "The copy, JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such job or photo, or an original too large to copy here", body = crate::openapi::ErrorBody),
        (status = 429, description = "The server is busy rendering others; try again", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/photos/{photo}/original-thumb")]
pub async fn original_thumb(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (job_text, photo_text) = path.into_inner();
    let job = darkroom_core::JobId::parse(&job_text).map_err(|_| ApiError::not_found())?;
    let photo = PhotoId::parse(&photo_text).map_err(|_| ApiError::not_found())?;
    let etag = format!("\"{photo}-t{LONG_SIDE}\"");
    if request.headers().get("If-None-Match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok(HttpResponse::NotModified().insert_header(("ETag", etag)).finish());
    }
    if !state.jobs.job_exists(&job).await? {
        return Err(ApiError::not_found());
    }
    let busy = || {
        metrics::counter!("darkroom_original_thumbs_total", "result" => "busy").increment(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "thumbnails are busy on this server; try again in a moment",
        )
    };
    let _waiting = state.original_thumbs_waiting.clone().try_acquire_owned().map_err(|_| busy())?;
    let limits = crate::preview::preview_limits(state.settings.limits);
    let key = keys::original(&job, &photo);
    // Read only what a preview would take: the waiting copies stay within WAITING × 16 MiB.
    match state.store.head(&key).await? {
        Some(meta) if meta.size <= limits.max_file_bytes => {}
        _ => return Err(ApiError::not_found()),
    }
    let bytes = match state.store.get(&key).await {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Err(ApiError::not_found()),
        Err(error) => return Err(error.into()),
    };
    let permit = match tokio::time::timeout(WAIT, state.preview_slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err(busy()),
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let decoded = decode_at_least(&bytes, DecodeLimits::from(limits), LONG_SIDE)?;
        let fitted =
            if decoded.width().max(decoded.height()) > LONG_SIDE { fit_within(&decoded, LONG_SIDE)? } else { decoded };
        encode(&fitted, OutputFormat::Jpeg, 80)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the thumbnail failed"))?;
    let jpeg = match rendered {
        Ok(jpeg) => jpeg,
        Err(error) => {
            // Over the preview's limits (a 60 MP original), or a format only the workers read:
            // the page shows the photo's state instead.
            tracing::info!(job_id = %job, photo_id = %photo, error.message = %error, "no thumbnail of this original");
            metrics::counter!("darkroom_original_thumbs_total", "result" => "none").increment(1);
            return Err(ApiError::not_found());
        }
    };
    metrics::counter!("darkroom_original_thumbs_total", "result" => "rendered").increment(1);
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "private, max-age=31536000, immutable"))
        .insert_header(("ETag", etag))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(jpeg))
}
