//! `POST /api/v1/preview`: one photo and a recipe in, the recipe's result at preview size
//! out — the real pipeline, run on a reduced copy, nothing stored. The upload page calls it
//! as the recipe changes, with a copy the browser has already shrunk, naming the size of the
//! original so that crop boxes and regions (original pixels) land where they would.
//!
//! It runs in the web process, so it is bounded: one preview per CPU at once (more get 429),
//! at most 1024 px, and the usual per-client rate limit applies.

use crate::api::upload_body;
use crate::upload::{judge, Judgement};
use crate::{ApiError, AppState};
use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use darkroom_core::{ErrorCode, Recipe};
use darkroom_imaging::{apply_ops, decode_at_least, encode, fit_within, DecodeLimits};

/// The long side of a preview.
pub const PREVIEW_LONG_SIDE: u32 = 1024;

/// Previews rendered at once by one web process: one per CPU.
pub fn preview_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[derive(Default)]
struct PreviewRequest {
    photo: Option<bytes::Bytes>,
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
    let max_bytes = state.settings.limits.max_file_bytes;
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
                        format!("the photo is larger than {} MiB", max_bytes >> 20),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            read.photo = Some(bytes.freeze());
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
/// result fitted into [`PREVIEW_LONG_SIDE`] and encoded as JPEG.
fn render(state: &AppState, request: PreviewRequest) -> Result<(Vec<u8>, u32, u32), ApiError> {
    let recipe_text = request.recipe.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidRecipe, "recipe: missing; send a text part named \"recipe\"")
    })?;
    let recipe =
        Recipe::from_json(&recipe_text).map_err(|e| ApiError::bad_request(ErrorCode::InvalidRecipe, e.to_string()))?;
    let photo = request.photo.ok_or_else(|| {
        ApiError::bad_request(ErrorCode::InvalidRequest, "send the photo as a file part named \"photo\"")
    })?;
    let limits = state.settings.limits;
    if let Judgement::Reject(error) = judge(&photo, true, &limits) {
        return Err(ApiError::bad_request(error.code, error.message));
    }
    let failed = |error: darkroom_imaging::ImagingError| ApiError::bad_request(error.code(), error.to_string());
    let mut decoded = decode_at_least(&photo, DecodeLimits::from(limits), PREVIEW_LONG_SIDE).map_err(failed)?;
    if decoded.width().max(decoded.height()) > PREVIEW_LONG_SIDE {
        decoded = fit_within(&decoded, PREVIEW_LONG_SIDE).map_err(failed)?;
    }
    if let (Some(width), Some(height)) = (request.original_width, request.original_height) {
        if limits.check_dimensions(width, height).is_err() {
            return Err(ApiError::bad_request(
                ErrorCode::TooManyPixels,
                "original_width × original_height is over the limits",
            ));
        }
        decoded.frame = decoded.frame.of_copy_of(width, height);
    }
    let mut result = apply_ops(decoded, &recipe.ops).map_err(failed)?;
    if result.width().max(result.height()) > PREVIEW_LONG_SIDE {
        result = fit_within(&result, PREVIEW_LONG_SIDE).map_err(failed)?;
    }
    let jpeg = encode(&result, darkroom_core::OutputFormat::Jpeg, 82).map_err(failed)?;
    Ok((jpeg, result.width(), result.height()))
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
    let permit = state.preview_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "previews are busy on this server; try again in a moment",
        )
    })?;
    let read = read_request(&state, &request, multipart).await?;
    let state = state.into_inner();
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        render(&state, read)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the preview failed"))??;
    let (jpeg, width, height) = rendered;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Preview-Size", format!("{width}x{height}")))
        .body(jpeg))
}
