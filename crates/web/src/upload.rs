//! Multipart intake: each file part is judged on its own bytes (sniffed format, declared
//! dimensions, size) and streamed into the object store as it arrives, so memory per
//! request stays bounded whatever the upload's size. Small text parts (the recipe, form
//! fields) are collected. Accepted originals are deleted again unless the caller commits
//! them — whether the request fails, is refused, or the client goes away mid-upload.
//!
//! The judgement of a file is a pure function of its first bytes ([`judge`]); the IO
//! around it is a [`BodyReader`] that holds the request to its limits: total bytes, parts,
//! an idle timeout, an overall deadline, and eviction when its upload slot is given to
//! someone else (see `slots.rs`).

use crate::names::display_name;
use crate::seats::Seats;
use crate::slots::{ProgressSlot, ProgressSlots, Refused};
use crate::{ApiError, AppState};
use actix_multipart::{Field, Multipart};
use actix_web::http::StatusCode;
use bytes::{Bytes, BytesMut};
use darkroom_core::{keys, ErrorCode, JobId, Limits, PhotoError, PhotoId};
use darkroom_imaging::{probe, SourceFormat};
use darkroom_store::ObjectStore;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read before judging a file: enough for any JPEG/PNG/WebP/TIFF header in practice.
const HEAD_BYTES: usize = 512 * 1024;
const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;
const MAX_TEXT_FIELDS: usize = 64;
/// Bytes of part headers (names, file names, content types) one request may carry.
const MAX_PART_HEADER_BYTES: usize = 1 << 20;

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

fn multipart_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidRequest, format!("the multipart body could not be read: {error}"))
}

fn refused(refused: Refused) -> ApiError {
    let message = match refused {
        Refused::ClientBusy => "you have too many uploads in progress at once; wait for one to finish",
        Refused::Full => "too many uploads in progress on this server; try again in a few seconds",
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message)
}

fn timeout(message: String) -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout, message)
}

/// Reads a multipart body under the request's limits.
pub struct BodyReader {
    multipart: Multipart,
    pace: Pace,
    /// Where the slot comes from, taken once the first part has arrived: a client that
    /// trickles even its first part's headers never holds one.
    slots: Arc<ProgressSlots>,
    client: std::net::IpAddr,
    received: u64,
    limit: u64,
    /// The current field has ended: actix-multipart panics if an ended field is polled
    /// again, so the reader answers "ended" itself from then on.
    field_ended: bool,
    parts: usize,
    max_parts: usize,
    header_bytes: usize,
}

impl BodyReader {
    pub fn new(state: &AppState, multipart: Multipart, client: std::net::IpAddr) -> Self {
        let settings = &state.settings;
        Self {
            multipart,
            slots: state.upload_slots.clone(),
            client,
            pace: Pace {
                slot: None,
                idle_timeout: settings.upload_idle_timeout,
                deadline: Instant::now() + settings.upload_deadline,
            },
            received: 0,
            limit: settings.max_request_bytes,
            field_ended: false,
            parts: 0,
            max_parts: settings.limits.max_photos_per_job + MAX_TEXT_FIELDS,
            header_bytes: 0,
        }
    }
}

/// How long the body may take: the slot (evicted when a newcomer needs it), the idle
/// timeout and the request's deadline.
struct Pace {
    slot: Option<ProgressSlot>,
    idle_timeout: Duration,
    deadline: Instant,
}

impl Pace {
    /// Waits for the next piece of the body, or ends the request: evicted, idle, too long.
    async fn wait<T>(&self, next: impl std::future::Future<Output = T>) -> Result<T, ApiError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let evicted = async {
            match &self.slot {
                Some(slot) => slot.evicted.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            value = next => Ok(value),
            () = evicted => Err(timeout(
                "the upload was too slow while others were waiting for the server; send it again on a faster connection or in smaller batches".into(),
            )),
            () = tokio::time::sleep(self.idle_timeout) => Err(timeout(format!(
                "no data arrived for {} s; the upload was abandoned", self.idle_timeout.as_secs()
            ))),
            () = tokio::time::sleep(left) => Err(timeout(
                "the upload took longer than this server allows for one request; send the photos in smaller batches".into(),
            )),
        }
    }
}

/// Until its first part arrives a request holds no slot, so that wait is short: a client
/// trickling the body's first bytes must not keep a connection for the whole deadline.
const FIRST_PART_DEADLINE: Duration = Duration::from_secs(15);

impl BodyReader {
    pub(crate) async fn next_field(&mut self) -> Result<Option<Field>, ApiError> {
        let next = if self.pace.slot.is_none() {
            match tokio::time::timeout(FIRST_PART_DEADLINE, self.pace.wait(self.multipart.try_next())).await {
                Ok(next) => next?,
                Err(_) => {
                    return Err(timeout(format!(
                        "the upload's first part did not arrive within {} s",
                        FIRST_PART_DEADLINE.as_secs()
                    )))
                }
            }
        } else {
            self.pace.wait(self.multipart.try_next()).await?
        };
        let Some(field) = next.map_err(multipart_error)? else { return Ok(None) };
        self.field_ended = false;
        if self.pace.slot.is_none() {
            self.pace.slot = Some(self.slots.acquire(self.client).await.map_err(refused)?);
        }
        self.parts += 1;
        self.header_bytes += field.name().map_or(0, str::len)
            + field.content_disposition().and_then(|cd| cd.get_filename()).map_or(0, str::len)
            + field.content_type().map_or(0, |mime| mime.as_ref().len());
        if self.parts > self.max_parts || self.header_bytes > MAX_PART_HEADER_BYTES {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRequest,
                format!("the request has more parts than one upload may carry (at most {})", self.max_parts),
            ));
        }
        Ok(Some(field))
    }

    pub(crate) async fn next_chunk(&mut self, field: &mut Field) -> Result<Option<Bytes>, ApiError> {
        if self.field_ended {
            return Ok(None);
        }
        let next = self.pace.wait(field.try_next()).await?;
        let Some(chunk) = next.map_err(multipart_error)? else {
            self.field_ended = true;
            return Ok(None);
        };
        self.received += chunk.len() as u64;
        if let Some(slot) = &self.pace.slot {
            slot.received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        if self.received > self.limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!("the request is larger than {} MiB; send the photos in several batches", self.limit >> 20),
            ));
        }
        Ok(Some(chunk))
    }

    /// Reads the rest of a field whose content is not wanted.
    pub(crate) async fn drain(&mut self, field: &mut Field) -> Result<(), ApiError> {
        while self.next_chunk(field).await?.is_some() {}
        Ok(())
    }

    /// A text field that may be left out: over 64 KiB or not UTF-8, it is read to its end
    /// and `None` (a note beside the photos must not cost the upload).
    pub(crate) async fn read_optional_text(&mut self, field: &mut Field) -> Result<Option<String>, ApiError> {
        let mut text = BytesMut::new();
        let mut over = false;
        while let Some(chunk) = self.next_chunk(field).await? {
            over |= text.len() + chunk.len() > MAX_TEXT_FIELD_BYTES;
            if !over {
                text.extend_from_slice(&chunk);
            }
        }
        Ok(if over { None } else { String::from_utf8(text.to_vec()).ok() })
    }

    pub(crate) async fn read_text(&mut self, field: &mut Field) -> Result<String, ApiError> {
        let mut text = BytesMut::new();
        while let Some(chunk) = self.next_chunk(field).await? {
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
