//! `POST /api/v1/preview`: one photo and a recipe in, the recipe's result at preview size
//! out — the real pipeline, run on a reduced copy, nothing stored. The upload page calls it
//! as the recipe changes, with a copy the browser has already shrunk, naming the size of the
//! original so that crop boxes and regions (original pixels) land where they would.
//!
//! It runs in the web process, so it is bounded: photos of at most 16 MiB and 50 megapixels,
//! one render per two CPUs at once; a preview whose photo has arrived (slow senders hold
//! nothing) waits up to 3 s for its turn behind at most four others per slot, else 429; the
//! image is kept under 4 megapixels between operations; the usual per-client rate limit.

use crate::api::upload_body;
use crate::upload::{judge, Judgement};
use crate::{ApiError, AppState};
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use darkroom_core::{ErrorCode, Limits, Recipe};
use darkroom_imaging::{decode_at_least, encode, fit_within, render_reduced, DecodeLimits};

/// The long side of a recipe's preview (not the `preview` output of a done photo, which the
/// worker makes at `darkroom_worker::render::PREVIEW_LONG_SIDE`).
pub const RECIPE_PREVIEW_LONG_SIDE: u32 = 1024;

/// How long a preview waits for a free slot before it is answered 429.
const PREVIEW_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Previews that may wait for a slot at once, per slot.
pub const PREVIEW_WAITING_PER_SLOT: usize = 4;

/// The largest photo a preview takes.
const MAX_PREVIEW_BYTES: u64 = 16 << 20;
/// The most pixels a preview decodes.
const MAX_PREVIEW_PIXELS: u64 = 50_000_000;

/// Previews rendered at once by one web process: one per two CPUs (their operations use
/// every core through rayon), at least one.
pub fn preview_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The limits a preview holds the photo to: the deployment's, tighter.
pub(crate) fn preview_limits(limits: Limits) -> Limits {
    Limits {
        max_file_bytes: limits.max_file_bytes.min(MAX_PREVIEW_BYTES),
        max_pixels: limits.max_pixels.min(MAX_PREVIEW_PIXELS),
        ..limits
    }
}

#[derive(Default)]
struct PreviewRequest {
    photo: Option<bytes::Bytes>,
    /// The PNGs the recipe's image watermarks name, sent beside the photo.
    assets: Vec<crate::watermark_parts::SentAsset>,
    recipe: Option<String>,
    original_width: Option<u32>,
    original_height: Option<u32>,
}

async fn read_request(
    state: &AppState,
    request: &HttpRequest,
    multipart: Multipart,
) -> Result<PreviewRequest, ApiError> {
    let mut body = upload_body(state, request, multipart);
    let mut read = PreviewRequest::default();
    let max_bytes = preview_limits(state.settings.limits).max_file_bytes;
    while let Some(mut field) = body.next_field().await? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "photo" || name == "photos" {
            if read.photo.is_some() {
                return Err(ApiError::bad_request(ErrorCode::InvalidRequest, "a preview takes one photo"));
            }
            let mut bytes = bytes::BytesMut::new();
            while let Some(chunk) = body.next_chunk(&mut field).await? {
                if (bytes.len() + chunk.len()) as u64 > max_bytes {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::FileTooLarge,
                        format!("a preview takes photos of up to {} MiB; send a reduced copy", max_bytes >> 20),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            read.photo = Some(bytes.freeze());
        } else if crate::watermark_parts::is_assets_part(&name) {
            if let Some(asset) = crate::watermark_parts::read_asset(&mut body, &mut field, read.assets.len()).await? {
                read.assets.push(asset);
            }
        } else {
            let text = body.read_text(&mut field).await?;
            let number = || {
                text.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidRequest,
                        format!("{name}: expected a positive whole number"),
                    )
                })
            };
            match name.as_str() {
                "recipe" => read.recipe = Some(text),
                "original_width" => read.original_width = Some(number()?),
                "original_height" => read.original_height = Some(number()?),
                _ => {}
            }
        }
    }
    Ok(read)
}

/// Renders the preview: the photo decoded no larger than needed, the recipe applied, the
/// result fitted into [`RECIPE_PREVIEW_LONG_SIDE`] and encoded as JPEG.
fn render(state: &AppState, request: PreviewRequest) -> Result<(Vec<u8>, u32, u32), ApiError> {
    let recipe_text = request.recipe.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidRecipe, "recipe: missing; send a text part named \"recipe\"")
    })?;
    let recipe =
        Recipe::from_json(&recipe_text).map_err(|e| ApiError::bad_request(ErrorCode::InvalidRecipe, e.to_string()))?;
    let images = crate::watermark_parts::decode_sent([&recipe], &request.assets, false)?;
    let photo = request.photo.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidRequest, "send the photo as a file part named \"photo\"")
    })?;
    let limits = preview_limits(state.settings.limits);
    // Errors about the photo itself (not a photo, damaged, too large) say so with
    // `"part": "photo"`, so the upload page can flag the file before it is sent.
    let unreadable =
        |code, message: String| ApiError::bad_request(code, message).with_extra("part", serde_json::json!("photo"));
    // The upload's own limits decide whether the photo is bad; the preview's tighter ones
    // only whether it can be previewed (a 60 MP photo is accepted, just not previewed).
    if let Judgement::Reject(error) = judge(&photo, true, &state.settings.limits) {
        return Err(unreadable(error.code, error.message));
    }
    if let Judgement::Reject(error) = judge(&photo, true, &limits) {
        return Err(ApiError::bad_request(
            error.code,
            format!("no preview for this photo ({}); it will still be processed", error.message),
        ));
    }
    let failed = |error: darkroom_imaging::ImagingError| ApiError::bad_request(error.code(), error.to_string());
    let mut decoded = decode_at_least(&photo, DecodeLimits::from(limits), RECIPE_PREVIEW_LONG_SIDE)
        .map_err(|error| unreadable(error.code(), format!("the photo cannot be read: {error}")))?;
    if decoded.width().max(decoded.height()) > RECIPE_PREVIEW_LONG_SIDE {
        decoded = fit_within(&decoded, RECIPE_PREVIEW_LONG_SIDE).map_err(failed)?;
    }
    if let (Some(width), Some(height)) = (request.original_width, request.original_height) {
        check_original(
            state.settings.limits,
            (width, height),
            (decoded.frame.original_width, decoded.frame.original_height),
        )?;
        decoded.frame = decoded.frame.of_copy_of(width, height);
    }
    // The same operations as the worker's, on the copy (imaging's `render_reduced`).
    let result = render_reduced(decoded, &recipe, &images, RECIPE_PREVIEW_LONG_SIDE).map_err(failed)?;
    let jpeg = encode(&result, darkroom_core::OutputFormat::Jpeg, 82).map_err(failed)?;
    Ok((jpeg, result.width(), result.height()))
}

/// A named original must be within the limits, no smaller than the copy sent, and of its
/// shape: otherwise boxes and regions would be blown up past the copy (a forged 1×1 original
/// makes every region cover everything).
fn check_original(limits: Limits, original: (u32, u32), copy: (u32, u32)) -> Result<(), ApiError> {
    let ((width, height), (copy_width, copy_height)) = (original, copy);
    if limits.check_dimensions(width, height).is_err() {
        return Err(ApiError::bad_request(
            ErrorCode::TooManyPixels,
            "original_width × original_height is over the limits",
        ));
    }
    let aspect = |w: u32, h: u32| f64::from(w) / f64::from(h.max(1));
    let same_shape = (aspect(width, height) / aspect(copy_width, copy_height) - 1.0).abs() <= 0.02;
    if width < copy_width || height < copy_height || !same_shape {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!(
                "original_width × original_height ({width}×{height}) cannot be the original of the {copy_width}×{copy_height} copy sent: it must be no smaller and of the same shape"
            ),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/preview", tag = "jobs", summary = "One photo through a recipe, at preview size; nothing stored",
    description = "For choosing a recipe: the real pipeline on a copy no larger than 1024 px. Send a reduced copy of the photo and name the original's size (`original_width`, `original_height`) so that crop boxes and regions, in original pixels, land right.",
    request_body(content = crate::openapi::PreviewForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The result, JPEG, at most 1024 px", content_type = "image/jpeg", body = Vec<u8>),
        (status = 400, description = "No photo, not a photo, or an invalid recipe", body = crate::openapi::ErrorBody),
        (status = 408, description = "The upload stopped arriving or took too long", body = crate::openapi::ErrorBody),
        (status = 413, description = "The photo is over the size limit", body = crate::openapi::ErrorBody),
    ))]
#[post("/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    request: HttpRequest,
    multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let read = read_request(&state, &request, multipart).await?;
    // Once the photo is here (a slow sender holds nothing while it sends), the preview
    // waits its turn for a moment — renders take tens of milliseconds — behind at most a
    // few others (each holding its photo in memory); beyond that, or past the wait, 429.
    let busy = || {
        metrics::counter!("darkroom_previews_total", "result" => "busy").increment(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "previews are busy on this server; try again in a moment",
        )
    };
    let _waiting = state.preview_waiting.clone().try_acquire_owned().map_err(|_| busy())?;
    let permit = match tokio::time::timeout(PREVIEW_WAIT, state.preview_slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err(busy()),
    };
    let started = std::time::Instant::now();
    let state = state.into_inner();
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render(&state, read)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the preview failed"))??;
    let (jpeg, width, height) = rendered;
    let elapsed = started.elapsed();
    metrics::histogram!("darkroom_preview_seconds").record(elapsed.as_secs_f64());
    metrics::counter!("darkroom_previews_total", "result" => "rendered").increment(1);
    if elapsed > std::time::Duration::from_secs(2) {
        tracing::warn!(millis = elapsed.as_millis() as u64, width, height, "a preview took long to render");
    }
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Preview-Size", format!("{width}x{height}")))
        .body(jpeg))
}
