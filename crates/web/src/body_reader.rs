//! The multipart body of an upload, read under the request's limits: total bytes, parts,
//! an idle timeout, an overall deadline, and eviction when its upload slot is given to
//! someone else (see `slots.rs`). `upload.rs` judges and stores what it reads.

use crate::slots::{ProgressSlot, ProgressSlots, Refused};
use crate::{ApiError, AppState};
use actix_multipart::{Field, Multipart};
use actix_web::http::StatusCode;
use bytes::{Bytes, BytesMut};
use darkroom_core::ErrorCode;
use futures::TryStreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;
/// Text fields (recipe, name, webhook, …) one request may carry besides its photos.
pub(crate) const MAX_TEXT_FIELDS: usize = 64;
/// Bytes of part headers (names, file names, content types) one request may carry.
const MAX_PART_HEADER_BYTES: usize = 1 << 20;

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
