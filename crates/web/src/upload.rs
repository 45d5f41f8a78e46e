//! Multipart intake: each file part is judged on its own bytes (sniffed format, declared
//! dimensions, size) and streamed into the object store as it arrives, so memory per
//! request stays bounded whatever the upload's size. Small text parts (the recipe, form
//! fields) are collected. Accepted originals are deleted again unless the caller commits
//! them — whether the request fails, is refused, or the client goes away mid-upload.
//!
//! The judgement of a file is a pure function of its first bytes ([`judge`]); the IO
//! around it is a [`BodyReader`] (`body_reader.rs`) that holds the request to its limits.

use crate::body_reader::{BodyReader, MAX_TEXT_FIELDS};
use crate::names::display_name;
use crate::seats::Seats;
use crate::{ApiError, AppState};
use actix_multipart::Field;
use bytes::BytesMut;
use darkroom_core::{keys, ErrorCode, JobId, Limits, PhotoError, PhotoId};
use darkroom_imaging::{probe, SourceFormat};
use darkroom_store::ObjectStore;
use std::collections::HashMap;
use std::sync::Arc;

/// Bytes read before judging a file: enough for any JPEG/PNG/WebP/TIFF header in practice.
const HEAD_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone)]
pub struct AcceptedPhoto {
    pub id: PhotoId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub dimensions: Option<(u32, u32)>,
    pub position: u32,
    /// Its place among the request's file parts, counting refused ones (how the request's
    /// `photo_recipes` part names it).
    pub part: u32,
}

pub use darkroom_core::RejectedFile;

/// What a multipart request brought.
pub struct Intake {
    pub fields: HashMap<String, String>,
    pub accepted: Vec<AcceptedPhoto>,
    pub rejected: Vec<RejectedFile>,
    /// Files sent for the recipe (`assets` parts), stored at `keys::asset`.
    pub assets: Vec<crate::watermark_parts::SentAsset>,
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

/// Reads the whole multipart body; each accepted photo takes one of the job's `seats`.
pub async fn receive(
    state: &AppState,
    job: &JobId,
    mut body: BodyReader,
    seats: &mut Seats,
) -> Result<Intake, ApiError> {
    let mut intake = Intake {
        fields: HashMap::new(),
        accepted: Vec::new(),
        rejected: Vec::new(),
        assets: Vec::new(),
        guard: OriginalsGuard { store: state.store.clone(), keys: Vec::new() },
    };
    let mut position = 0u32;
    let mut part = 0u32;
    let mut asset_parts = 0usize;
    while let Some(mut field) = body.next_field().await? {
        let field_name = field.name().unwrap_or("").to_owned();
        if field_name == "photos" || field_name == "photos[]" {
            part += 1;
            let name = display_name(field.content_disposition().and_then(|cd| cd.get_filename()));
            let job_full = || {
                PhotoError::new(
                    ErrorCode::TooManyPhotos,
                    format!("a job holds at most {} photos", state.settings.limits.max_photos_per_job),
                )
            };
            let mut verdict = if seats.full(state.store.as_ref()).await? {
                Err(job_full())
            } else {
                store_photo(state, job, &mut body, &mut field, position).await?
            };
            if let Ok(photo) = &verdict {
                let original = keys::original(job, &photo.id);
                intake.guard.keys.push(original.clone());
                // The seat is taken once the photo is known to be acceptable; another batch
                // may have taken the last one meanwhile.
                match seats.take(state.store.as_ref(), &photo.id).await? {
                    Some(seat) => intake.guard.keys.push(seat),
                    None => {
                        intake.guard.keys.retain(|key| key != &original);
                        if let Err(error) = state.store.delete(&original).await {
                            tracing::warn!(job_id = %job, key = original, error.message = %error, "could not delete an original the job had no room for");
                        }
                        verdict = Err(job_full());
                    }
                }
            }
            match verdict {
                Ok(mut photo) => {
                    photo.name = name;
                    photo.part = part - 1;
                    intake.accepted.push(photo);
                    position += 1;
                }
                Err(error) => {
                    // Whatever of the file is still on its way is read and dropped, here only.
                    body.drain(&mut field).await?;
                    tracing::info!(job_id = %job, file = %name, error.code = error.code.as_str(), error.message = %error.message, "file rejected");
                    intake.rejected.push(RejectedFile { name, error });
                }
            }
        } else if crate::watermark_parts::is_assets_part(&field_name) {
            asset_parts += 1;
            let Some(asset) = crate::watermark_parts::read_asset(&mut body, &mut field, asset_parts - 1).await? else {
                continue;
            };
            if intake.assets.iter().any(|sent| sent.name == asset.name) {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidRequest,
                    format!("assets: {:?} was sent twice; send each file once", asset.name),
                ));
            }
            // Stored now, deleted with the originals unless the job commits; the recipe's
            // check that it is a PNG it can draw comes once the recipe is read. A job's file
            // is never replaced: photos added later draw the same mark as the first ones.
            let key = keys::asset(job, &asset.name);
            match state.store.put_if_absent(&key, asset.bytes.clone(), "image/png").await? {
                darkroom_store::PutOutcome::Created => intake.guard.keys.push(key),
                darkroom_store::PutOutcome::AlreadyExists => {
                    tracing::info!(job_id = %job, asset = asset.name, "a file of that name was sent with the job before; the first one is kept");
                }
            }
            intake.assets.push(asset);
        } else {
            let text = if field_name == "rejected" {
                // The browser's list of the files it refused: a note, left out if too large.
                let Some(text) = body.read_optional_text(&mut field).await? else {
                    tracing::info!(job_id = %job, "an over-long or unreadable \"rejected\" part was left out");
                    continue;
                };
                text
            } else {
                body.read_text(&mut field).await?
            };
            if intake.fields.len() >= MAX_TEXT_FIELDS {
                return Err(ApiError::bad_request(ErrorCode::InvalidRequest, "too many form fields"));
            }
            intake.fields.insert(field_name, text);
        }
    }
    Ok(intake)
}

/// What the first bytes of a file say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Accept { format: SourceFormat, dimensions: Option<(u32, u32)> },
    Reject(PhotoError),
}

/// Judges a file on its first bytes (`head`): whether it is an accepted image type within
/// the limits. `complete` says the head is the whole file.
pub fn judge(head: &[u8], complete: bool, limits: &Limits) -> Judgement {
    if head.is_empty() {
        return Judgement::Reject(PhotoError::new(ErrorCode::EmptyFile, "the file is empty"));
    }
    let probed = match probe(head) {
        Ok(probed) => probed,
        Err(error) => return Judgement::Reject(PhotoError::new(ErrorCode::UnsupportedFormat, error.to_string())),
    };
    match probed.dimensions {
        Some((width, height)) => {
            if let Err(reason) = limits.check_dimensions(width, height) {
                return Judgement::Reject(PhotoError::new(ErrorCode::TooManyPixels, reason));
            }
        }
        None if complete => {
            return Judgement::Reject(PhotoError::new(
                ErrorCode::UnsupportedFormat,
                "the image header could not be read; the file is truncated or corrupt",
            ));
        }
        None => {}
    }
    if head.len() as u64 > limits.max_file_bytes {
        return Judgement::Reject(too_large(limits.max_file_bytes));
    }
    Judgement::Accept { format: probed.format, dimensions: probed.dimensions }
}

/// Judges one file and, if acceptable, streams it into the store. The outer error aborts
/// the request; the inner one rejects just this file (the caller drains what is left).
async fn store_photo(
    state: &AppState,
    job: &JobId,
    body: &mut BodyReader,
    field: &mut Field,
    position: u32,
) -> Result<Result<AcceptedPhoto, PhotoError>, ApiError> {
    let limits = state.settings.limits;
    let mut head = BytesMut::new();
    let mut complete = false;
    while head.len() < HEAD_BYTES {
        match body.next_chunk(field).await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => {
                complete = true;
                break;
            }
        }
    }
    let head = head.freeze();
    let (format, dimensions) = match judge(&head, complete, &limits) {
        Judgement::Accept { format, dimensions } => (format, dimensions),
        Judgement::Reject(error) => return Ok(Err(error)),
    };
    let id = PhotoId::generate();
    let key = keys::original(job, &id);
    let content_type = format.content_type();
    let mut upload = state.store.start_upload(&key, content_type).await?;
    let mut size = head.len() as u64;
    upload.write(head).await?;
    while let Some(chunk) = body.next_chunk(field).await? {
        size += chunk.len() as u64;
        if size > limits.max_file_bytes {
            upload.abort().await;
            return Ok(Err(too_large(limits.max_file_bytes)));
        }
        upload.write(chunk).await?;
    }
    upload.finish().await?;
    Ok(Ok(AcceptedPhoto {
        id,
        name: String::new(),
        content_type: content_type.to_owned(),
        size,
        dimensions,
        position,
        part: 0,
    }))
}

fn too_large(max: u64) -> PhotoError {
    PhotoError::new(ErrorCode::FileTooLarge, format!("the file is larger than the limit of {} MiB", max >> 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_files_on_their_own_bytes() {
        let limits = Limits::default();
        let reject_code = |head: &[u8], complete| match judge(head, complete, &limits) {
            Judgement::Reject(error) => Some(error.code),
            Judgement::Accept { .. } => None,
        };
        assert_eq!(reject_code(b"", true), Some(ErrorCode::EmptyFile));
        assert_eq!(reject_code(b"hello, I am a text file named photo.jpg", true), Some(ErrorCode::UnsupportedFormat));
        let bomb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bomb-50000x50000.png"))
            .unwrap_or_default();
        assert_eq!(reject_code(&bomb, true), Some(ErrorCode::TooManyPixels));
        let photo =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/chelsea.jpg")).unwrap_or_default();
        assert!(matches!(judge(&photo, true, &limits), Judgement::Accept { dimensions: Some(_), .. }));
        // A JPEG cut off before its size is known: wait for more, unless that was all.
        assert_eq!(reject_code(&photo[..4], true), Some(ErrorCode::UnsupportedFormat));
        let small = Limits { max_file_bytes: 100, ..limits };
        assert_eq!(
            reject_code(&photo, false).or(match judge(&photo, false, &small) {
                Judgement::Reject(error) => Some(error.code),
                Judgement::Accept { .. } => None,
            }),
            Some(ErrorCode::FileTooLarge)
        );
    }
}
