//! Multipart intake: each file part is judged on its own bytes (sniffed format, declared
//! dimensions, size) and streamed into the object store as it arrives, so memory per
//! request stays bounded whatever the upload's size. Small text parts (the recipe, form
//! fields) are collected. Accepted originals are deleted again unless the caller commits
//! them — whether the request fails, is refused, or the client goes away mid-upload.

use crate::names::display_name;
use crate::{ApiError, AppState};
use actix_multipart::{Field, Multipart};
use actix_web::http::StatusCode;
use bytes::{Bytes, BytesMut};
use darkroom_core::{keys, ErrorCode, JobId, PhotoError, PhotoId};
use darkroom_imaging::probe;
use darkroom_store::ObjectStore;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes read before judging a file: enough for any JPEG/PNG/WebP/TIFF header in practice.
const HEAD_BYTES: usize = 512 * 1024;
const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;
const MAX_TEXT_FIELDS: usize = 64;

#[derive(Debug, Clone)]
pub struct AcceptedPhoto {
    pub id: PhotoId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub dimensions: Option<(u32, u32)>,
    pub position: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RejectedFile {
    pub name: String,
    pub error: PhotoError,
}

/// What a multipart request brought.
pub struct Intake {
    pub fields: HashMap<String, String>,
    pub accepted: Vec<AcceptedPhoto>,
    pub rejected: Vec<RejectedFile>,
    guard: OriginalsGuard,
}

impl Intake {
    /// Keeps the stored originals: the job documents that reference them now exist.
    pub fn commit(&mut self) {
        self.guard.keys.clear();
    }

    /// Deletes the stored originals now (the request failed after intake).
    pub async fn discard(&mut self) {
        for key in std::mem::take(&mut self.guard.keys) {
            if let Err(error) = self.guard.store.delete(&key).await {
                tracing::warn!(key, error.message = %error, "could not delete an uncommitted original");
            }
        }
    }
}

/// Deletes uncommitted originals when dropped, e.g. when the client disconnects mid-upload
/// and the request future is dropped.
struct OriginalsGuard {
    store: Arc<dyn ObjectStore>,
    keys: Vec<String>,
}

impl Drop for OriginalsGuard {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let (store, keys) = (self.store.clone(), std::mem::take(&mut self.keys));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for key in keys {
                    let _ = store.delete(&key).await;
                }
            });
        }
    }
}

fn multipart_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidRequest, format!("the multipart body could not be read: {error}"))
}

/// Reads the whole multipart body. `room` is how many more photos the job may take.
pub async fn receive(state: &AppState, job: &JobId, mut multipart: Multipart, room: usize) -> Result<Intake, ApiError> {
    let mut intake = Intake {
        fields: HashMap::new(),
        accepted: Vec::new(),
        rejected: Vec::new(),
        guard: OriginalsGuard { store: state.store.clone(), keys: Vec::new() },
    };
    let mut received_bytes = 0u64;
    let mut position = 0u32;
    while let Some(mut field) = multipart.try_next().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or("").to_owned();
        if field_name == "photos" || field_name == "photos[]" {
            let name = display_name(field.content_disposition().and_then(|cd| cd.get_filename()));
            let verdict = if intake.accepted.len() >= room {
                drain(&mut field, &mut received_bytes, state.settings.max_request_bytes).await?;
                Err(PhotoError::new(
                    ErrorCode::TooManyPhotos,
                    format!("a job holds at most {} photos", state.settings.limits.max_photos_per_job),
                ))
            } else {
                store_photo(state, job, &mut field, &mut received_bytes, position).await?
            };
            match verdict {
                Ok(mut photo) => {
                    photo.name = name;
                    intake.guard.keys.push(keys::original(job, &photo.id));
                    intake.accepted.push(photo);
                    position += 1;
                }
                Err(error) => {
                    tracing::info!(job_id = %job, file = %name, error.code = error.code.as_str(), error.message = %error.message, "file rejected");
                    intake.rejected.push(RejectedFile { name, error });
                }
            }
        } else {
            let text = read_text(&mut field, &mut received_bytes, state.settings.max_request_bytes).await?;
            if intake.fields.len() >= MAX_TEXT_FIELDS {
                return Err(ApiError::bad_request(ErrorCode::InvalidRequest, "too many form fields"));
            }
            intake.fields.insert(field_name, text);
        }
    }
    Ok(intake)
}

fn count(received: &mut u64, chunk: &Bytes, limit: u64) -> Result<(), ApiError> {
    *received += chunk.len() as u64;
    if *received > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request is larger than {} MiB; send the photos in several batches", limit >> 20),
        ));
    }
    Ok(())
}

async fn drain(field: &mut Field, received: &mut u64, limit: u64) -> Result<(), ApiError> {
    while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
        count(received, &chunk, limit)?;
    }
    Ok(())
}

async fn read_text(field: &mut Field, received: &mut u64, limit: u64) -> Result<String, ApiError> {
    let mut text = BytesMut::new();
    while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
        count(received, &chunk, limit)?;
        if text.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRequest,
                format!("form field {:?} is over 64 KiB", field.name().unwrap_or("")),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text.to_vec())
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidRequest, "form fields must be UTF-8 text"))
}

/// Judges one file and, if acceptable, streams it into the store. The outer error aborts
/// the request; the inner one rejects just this file.
async fn store_photo(
    state: &AppState,
    job: &JobId,
    field: &mut Field,
    received: &mut u64,
    position: u32,
) -> Result<Result<AcceptedPhoto, PhotoError>, ApiError> {
    let limits = state.settings.limits;
    let request_limit = state.settings.max_request_bytes;
    let mut head = BytesMut::new();
    let mut finished = false;
    while head.len() < HEAD_BYTES {
        match field.try_next().await.map_err(multipart_error)? {
            Some(chunk) => {
                count(received, &chunk, request_limit)?;
                head.extend_from_slice(&chunk);
            }
            None => {
                finished = true;
                break;
            }
        }
    }
    let head = head.freeze();
    let reject = |error: PhotoError| Ok(Err(error));
    if head.is_empty() {
        return reject(PhotoError::new(ErrorCode::EmptyFile, "the file is empty"));
    }
    let probed = match probe(&head) {
        Ok(probed) => probed,
        Err(error) => {
            if !finished {
                drain(field, received, request_limit).await?;
            }
            return reject(PhotoError::new(ErrorCode::UnsupportedFormat, error.to_string()));
        }
    };
    match probed.dimensions {
        Some((width, height)) => {
            if let Err(reason) = limits.check_dimensions(width, height) {
                if !finished {
                    drain(field, received, request_limit).await?;
                }
                return reject(PhotoError::new(ErrorCode::TooManyPixels, reason));
            }
        }
        None if finished => {
            return reject(PhotoError::new(
                ErrorCode::UnsupportedFormat,
                "the image header could not be read; the file is truncated or corrupt",
            ));
        }
        None => {}
    }
    if head.len() as u64 > limits.max_file_bytes {
        if !finished {
            drain(field, received, request_limit).await?;
        }
        return reject(too_large(limits.max_file_bytes));
    }

    let id = PhotoId::generate();
    let key = keys::original(job, &id);
    let content_type = probed.format.content_type();
    let mut upload = state.store.start_upload(&key, content_type).await?;
    let mut size = head.len() as u64;
    upload.write(head).await?;
    // A field must not be polled again once it has ended (actix-multipart panics).
    while let Some(chunk) = if finished { None } else { field.try_next().await.map_err(multipart_error)? } {
        count(received, &chunk, request_limit)?;
        size += chunk.len() as u64;
        if size > limits.max_file_bytes {
            upload.abort().await;
            if !finished {
                drain(field, received, request_limit).await?;
            }
            return reject(too_large(limits.max_file_bytes));
        }
        upload.write(chunk).await?;
    }
    upload.finish().await?;
    Ok(Ok(AcceptedPhoto {
        id,
        name: String::new(),
        content_type: content_type.to_owned(),
        size,
        dimensions: probed.dimensions,
        position,
    }))
}

fn too_large(max: u64) -> PhotoError {
    PhotoError::new(ErrorCode::FileTooLarge, format!("the file is larger than the limit of {} MiB", max >> 20))
}
