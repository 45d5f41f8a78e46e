//! `GET /jobs/{job}/photos/{photo}/original-thumb`: a small copy of a photo's original, so the
//! job page shows every photo from the start — queued, cancelled and failed ones too — not
//! blank tiles until a worker has made the result's thumbnail.
//!
//! Rendered on demand in the web process and kept in a small in-process cache (nothing is
//! stored: a copy written beside the photo could outlive a deletion that swept past it). It
//! is bounded apart from the preview, so a page of thumbnails never delays a preview: render
//! slots of its own (one per two CPUs), the original read only once a slot is held (memory
//! stays at a few originals), originals up to the preview's limits, and a copy waits up to
//! [`WAIT`] for a slot behind at most [`WAITING`] others, else 429 with Retry-After. Only
//! pixels (and the colour profile) leave: the copy is re-encoded upright without the
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
pub const WAITING: usize = 32;

/// Copies kept in memory by one process (about 20 KiB each).
pub const CACHED: usize = 1024;

/// The copies this process made lately, by job and photo; `None` for an original it could not
/// copy (too large, undecodable), so a page asking again costs no second read or decode.
pub type Copies = quick_cache::sync::Cache<(darkroom_core::JobId, PhotoId), Option<bytes::Bytes>>;

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
    let cache_key = (job.clone(), photo.clone());
    let jpeg = match state.original_copies.get(&cache_key) {
        Some(Some(jpeg)) => {
            metrics::counter!("darkroom_original_thumbs_total", "result" => "cached").increment(1);
            jpeg
        }
        Some(None) => return Err(ApiError::not_found()),
        None => {
            let _waiting = state.original_thumbs_waiting.clone().try_acquire_owned().map_err(|_| busy())?;
            let permit = match tokio::time::timeout(WAIT, state.original_thumb_slots.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => return Err(busy()),
            };
            match render(&state, &job, &photo, permit).await? {
                Some(jpeg) => {
                    state.original_copies.insert(cache_key, Some(jpeg.clone()));
                    metrics::counter!("darkroom_original_thumbs_total", "result" => "rendered").increment(1);
                    jpeg
                }
                None => {
                    state.original_copies.insert(cache_key, None);
                    return Err(ApiError::not_found());
                }
            }
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "private, max-age=31536000, immutable"))
        .insert_header(("ETag", etag))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(jpeg))
}

/// Reads the original (its slot held, so only a few are in memory at once) and renders the
/// copy on a blocking thread; `None` when this original cannot be copied here.
async fn render(
    state: &AppState,
    job: &darkroom_core::JobId,
    photo: &PhotoId,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Option<bytes::Bytes>, ApiError> {
    let limits = crate::preview::preview_limits(state.settings.limits);
    let key = keys::original(job, photo);
    let none = |why: &str| {
        // Over the preview's limits (a 60 MP original), or not decodable here: the page shows
        // the photo's state instead.
        tracing::debug!(job_id = %job, photo_id = %photo, why, "no copy of this original");
        metrics::counter!("darkroom_original_thumbs_total", "result" => "none").increment(1);
        None
    };
    match state.store.head(&key).await? {
        Some(meta) if meta.size <= limits.max_file_bytes => {}
        Some(_) => return Ok(none("over the preview's size limit")),
        None => return Err(ApiError::not_found()),
    }
    let bytes = match state.store.get(&key).await {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() => return Err(ApiError::not_found()),
        Err(error) => return Err(error.into()),
    };
    let started = std::time::Instant::now();
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let decoded = decode_at_least(&bytes, DecodeLimits::from(limits), LONG_SIDE)?;
        let fitted =
            if decoded.width().max(decoded.height()) > LONG_SIDE { fit_within(&decoded, LONG_SIDE)? } else { decoded };
        encode(&fitted, OutputFormat::Jpeg, 80)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the thumbnail failed"))?;
    metrics::histogram!("darkroom_original_thumb_seconds").record(started.elapsed().as_secs_f64());
    match rendered {
        Ok(jpeg) => Ok(Some(bytes::Bytes::from(jpeg))),
        Err(error) => Ok(none(&error.to_string())),
    }
}
