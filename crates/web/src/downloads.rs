//! Serving photos: one output (`result`, `thumb`, `preview`) or the `original`, streamed
//! from the store with its detected Content-Type, and every result of a job as one zip,
//! streamed as it is built so memory holds one photo at a time.

use crate::job_lookup::{load_job_or_404, load_photo, load_view};
use crate::names::{portable_name, unique_names, with_extension};
use crate::owner::is_owner;
use crate::{ApiError, AppState};
use actix_web::{get, web, HttpRequest, HttpResponse};
use bytes::Bytes;
use darkroom_core::job::PhotoState;
use darkroom_core::{keys, OutputFormat, PhotoId};
use std::io::Write;
use std::time::Duration;

#[derive(serde::Deserialize)]
pub struct DownloadQuery {
    download: Option<String>,
}

/// The file extension of an output, from its content type: one rule for single downloads
/// and archive entries alike.
fn extension_of(content_type: &str) -> &'static str {
    darkroom_core::OutputFormat::from_content_type(content_type).map_or("jpg", darkroom_core::OutputFormat::extension)
}

fn attachment(name: &str) -> String {
    format!("attachment; filename=\"{}\"", portable_name(name))
}

/// The stored object at `key`, to stream; 404 when there is none.
async fn open_stored(
    state: &AppState,
    key: &str,
) -> Result<(darkroom_store::ObjectMeta, darkroom_store::ByteStream), ApiError> {
    match state.store.get_stream(key).await {
        Ok(found) => Ok(found),
        Err(error) if error.is_not_found() => Err(ApiError::not_found()),
        Err(error) => Err(error.into()),
    }
}

/// `response` with the object's bytes as its body, as they come from the store.
fn streamed(mut response: actix_web::HttpResponseBuilder, stream: darkroom_store::ByteStream) -> HttpResponse {
    response.streaming(futures::StreamExt::map(stream, |chunk| chunk.map_err(std::io::Error::other)))
}

#[utoipa::path(get, path = "/jobs/{job}/photos/{photo}/{output}", tag = "downloads", summary = "A photo's latest output, or its original",
    description = "`original` is the upload as sent for its owner, the metadata-free preview for anyone else.",
    params(("job" = darkroom_core::JobId, Path, description = "The job id"), ("photo" = darkroom_core::PhotoId, Path, description = "The photo id"),
        ("output" = String, Path, description = "`result`, `thumb`, `preview` or `original`"),
        ("download" = Option<String>, Query, description = "Any value: served as an attachment named after the photo")),
    responses(
        (status = 200, description = "The image", content_type = "image/*", body = Vec<u8>),
        (status = 404, description = "No such job, photo or output", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/photos/{photo}/{output}")]
pub async fn photo_file(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    query: web::Query<DownloadQuery>,
) -> Result<HttpResponse, ApiError> {
    let (job_text, photo_text, mut output) = path.into_inner();
    let job = load_job_or_404(&state, &job_text).await?;
    let photo = PhotoId::parse(&photo_text).map_err(|_| ApiError::not_found())?;
    let (manifest, latest) = load_photo(&state, &job.id, &photo).await?.ok_or_else(ApiError::not_found)?;
    if output == "original" && !is_owner(&request, &job) {
        // The upload as received carries its EXIF (GPS position, camera serial): only its
        // owner gets it. Whoever else has the link gets the "before" view, stripped of it.
        output = "preview".to_owned();
    }
    let (key, content_type, file_name) = if output == "original" {
        (keys::original(&job.id, &photo), manifest.content_type.clone(), manifest.name.clone())
    } else {
        let event = latest.filter(|e| e.state == PhotoState::Done).ok_or_else(ApiError::not_found)?;
        let info = event.outputs.iter().find(|o| o.name == output).ok_or_else(ApiError::not_found)?;
        (info.key.clone(), info.content_type.clone(), with_extension(&manifest.name, extension_of(&info.content_type)))
    };
    let (meta, stream) = open_stored(&state, &key).await?;
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header(("Content-Length", meta.size.to_string()))
        .insert_header(("Cache-Control", "private, no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if query.download.is_some() {
        response.insert_header(("Content-Disposition", attachment(&file_name)));
    }
    Ok(streamed(response, stream))
}

/// One output of one attempt, at the address its view gives (`/jobs/{job}/photos/{photo}/a{n}/{name}.{ext}`,
/// the store key's own shape): it never changes once written, so it is served with one store
/// GET (and a look that its job still exists, shared by a job's outputs for a few seconds),
/// cached by browsers for a year (`immutable`), and answered 304 from its ETag alone when
/// the browser has it.
#[utoipa::path(get, path = "/jobs/{job}/photos/{photo}/{attempt}/{file}", tag = "downloads", summary = "One output of one attempt (immutable; the view's output URLs)",
    params(("job" = darkroom_core::JobId, Path, description = "The job id"), ("photo" = darkroom_core::PhotoId, Path, description = "The photo id"),
        ("attempt" = String, Path, description = "`a` and the attempt number, e.g. `a1`"),
        ("file" = String, Path, description = "`result`, `thumb` or `preview`, with the format's extension"),
        ("download" = Option<String>, Query, description = "Any value: served as an attachment named after the photo")),
    responses(
        (status = 200, description = "The image", content_type = "image/*", body = Vec<u8>),
        (status = 304, description = "The browser's copy (If-None-Match) is current"),
        (status = 404, description = "No such output", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/photos/{photo}/{attempt}/{file}")]
pub async fn attempt_output(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String, String, String)>,
    query: web::Query<DownloadQuery>,
) -> Result<HttpResponse, ApiError> {
    let (job_text, photo_text, attempt_text, file) = path.into_inner();
    let job = darkroom_core::JobId::parse(&job_text).map_err(|_| ApiError::not_found())?;
    let photo = PhotoId::parse(&photo_text).map_err(|_| ApiError::not_found())?;
    let attempt: u32 = attempt_text.strip_prefix('a').and_then(|n| n.parse().ok()).ok_or_else(ApiError::not_found)?;
    let (name, extension) = file.rsplit_once('.').ok_or_else(ApiError::not_found)?;
    let format =
        OutputFormat::ALL.into_iter().find(|format| format.extension() == extension).ok_or_else(ApiError::not_found)?;
    if !matches!(name, "result" | "thumb" | "preview") {
        return Err(ApiError::not_found());
    }
    // The key names the bytes for ever (a redelivered render rewrites the same bytes).
    let etag = format!("\"{job}-{photo}-a{attempt}-{name}.{extension}\"");
    let cache_control = "private, max-age=31536000, immutable";
    let known = request
        .headers()
        .get("If-None-Match")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    if known {
        return Ok(HttpResponse::NotModified()
            .insert_header(("ETag", etag))
            .insert_header(("Cache-Control", cache_control))
            .finish());
    }
    let key = keys::output(&job, &photo, attempt, name, extension);
    // A deleted job's outputs may outlive it until its sweep ends (an interrupted sweep
    // waits for the sweeper): the job manifest, gone first, decides. Looked at beside the
    // output, so it costs no time, and once per job every few seconds (`Jobs::job_exists`).
    let (opened, job_exists) = tokio::join!(open_stored(&state, &key), state.jobs.job_exists(&job));
    if !job_exists? {
        return Err(ApiError::not_found());
    }
    let (meta, stream) = opened?;
    let mut response = HttpResponse::Ok();
    response
        .content_type(format.content_type())
        .insert_header(("Content-Length", meta.size.to_string()))
        .insert_header(("ETag", etag))
        .insert_header(("Cache-Control", cache_control))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if query.download.is_some() {
        // A download is named after the photo: one more read, for that only.
        let manifest: darkroom_core::PhotoManifest =
            match darkroom_store::json::get_json(state.store.as_ref(), &keys::photo_manifest(&job, &photo)).await {
                Ok(manifest) => manifest,
                Err(error) if error.is_not_found() => return Err(ApiError::not_found()),
                // An outage is said as one (503, retry), not as a missing photo.
                Err(error) => return Err(error.into()),
            };
        response.insert_header(("Content-Disposition", attachment(&with_extension(&manifest.name, extension))));
    }
    Ok(streamed(response, stream))
}

/// A client that reads nothing of its archive for this long is cut off, so a stalled
/// reader cannot hold an archive slot and its thread for ever...
const STALLED_READER: Duration = Duration::from_secs(60);
/// ... nor can a very slow one: an archive ends after this long, whatever its pace (the
/// client can download the rest one photo at a time, or try again).
const ARCHIVE_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// `std::io::Write` into the HTTP response body, for the zip writer on a blocking thread.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
    runtime: tokio::runtime::Handle,
    deadline: std::time::Instant,
    /// The archive's slot: counts the bytes sent, and is cancelled if a waiting archive
    /// takes it from this one (too slow a reader while others wait).
    slot: crate::slots::ProgressSlot,
}

impl ChannelWriter {
    const CHUNK: usize = 256 * 1024;

    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > self.deadline {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the archive took longer than allowed"));
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        let length = chunk.len() as u64;
        let evicted = self.slot.evicted.clone();
        let sent = self.runtime.block_on(async {
            tokio::select! {
                sent = tokio::time::timeout(STALLED_READER, self.sender.send(Ok(chunk))) => Some(sent),
                () = evicted.cancelled() => None,
            }
        });
        match sent {
            Some(Ok(Ok(()))) => {
                self.slot.received.fetch_add(length, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
            Some(Ok(Err(_))) => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")),
            Some(Err(_)) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read too slowly while other archives waited for its slot",
            )),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= Self::CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}

#[utoipa::path(get, path = "/jobs/{job}/archive.zip", tag = "downloads", summary = "Every result of the job, as a zip (streamed)",
    params(("job" = darkroom_core::JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The archive", content_type = "application/zip", body = Vec<u8>),
        (status = 404, description = "No such job", body = crate::openapi::ErrorBody),
        (status = 409, description = "No photo of the job is done yet", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/archive.zip")]
pub async fn archive(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    archive_response(&state, &request, &path).await
}

#[utoipa::path(get, path = "/api/v1/jobs/{job}/archive.zip", tag = "downloads", summary = "Every result of the job, as a zip (streamed)",
    params(("job" = darkroom_core::JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The archive", content_type = "application/zip", body = Vec<u8>),
        (status = 404, description = "No such job", body = crate::openapi::ErrorBody),
        (status = 409, description = "No photo of the job is done yet", body = crate::openapi::ErrorBody),
    ))]
#[get("/api/v1/jobs/{job}/archive.zip")]
pub async fn api_archive(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    archive_response(&state, &request, &path).await
}

async fn archive_response(state: &AppState, request: &HttpRequest, job_text: &str) -> Result<HttpResponse, ApiError> {
    let job = load_job_or_404(state, job_text).await?;
    // Each archive streams on a thread of its own: a bounded number at once, a few per
    // client, each kept only while its client reads at a pace when others wait.
    let client = crate::rate_limit::client_address(request, state.settings.trust_forwarded_for)
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), crate::rate_limit::bucket_of);
    let slot = state.archive_slots.acquire(client).await.map_err(|refused| {
        let message = match refused {
            crate::slots::Refused::ClientBusy => "you are downloading as many archives as one client may at once; try again when one has finished",
            crate::slots::Refused::Full => "too many archives are being downloaded from this server; try again in a few seconds, or download photos one by one",
        };
        ApiError::new(actix_web::http::StatusCode::TOO_MANY_REQUESTS, darkroom_core::ErrorCode::RateLimited, message)
    })?;
    let view = load_view(state, &job).await?;
    let results: Vec<(String, String, u64)> = view
        .photos
        .iter()
        .filter_map(|photo| {
            let result = photo.output("result")?;
            let name = portable_name(&with_extension(&photo.name, extension_of(&result.content_type)));
            Some((name, result.key.clone(), photo.updated_at))
        })
        .collect();
    if results.is_empty() {
        // The job is there; its archive is not, yet: 409, so a client waits instead of
        // concluding the job is gone.
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            darkroom_core::ErrorCode::InvalidRequest,
            "no photo of this job is done yet; download the archive once some are",
        ));
    }
    let entry_names = unique_names(&results.iter().map(|(name, _, _)| name.clone()).collect::<Vec<_>>());
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    let runtime = tokio::runtime::Handle::current();
    let job_id = job.id.clone();
    tokio::task::spawn_blocking(move || {
        let error_sender = sender.clone();
        let mut zip = zip::ZipWriter::new_stream(ChannelWriter {
            sender,
            buffer: Vec::new(),
            runtime: runtime.clone(),
            deadline: std::time::Instant::now() + ARCHIVE_DEADLINE,
            slot,
        });
        // Photos are already compressed: storing them is as small and much faster.
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let written = (|| -> Result<(), String> {
            for ((_, key, done_at), entry) in results.iter().zip(&entry_names) {
                // Streamed from the store: memory holds a chunk, not a photo.
                let (_, mut stream) = runtime.block_on(store.get_stream(key)).map_err(|e| e.to_string())?;
                // The entry is dated before its bytes go out: the file's head, where its
                // EXIF is, is read first (a chunk or a few, never the whole photo).
                let mut head = Vec::new();
                while head.len() < EXIF_HEAD_BYTES {
                    match runtime.block_on(futures::StreamExt::next(&mut stream)) {
                        Some(chunk) => head.extend_from_slice(&chunk.map_err(|e| e.to_string())?),
                        None => break,
                    }
                }
                let dated = match darkroom_imaging::metadata::capture_time(&head).and_then(zip_capture_time) {
                    // When the photo was taken, by its camera's clock: a photo manager
                    // sorts the batch as it was shot. That clock has no zone, as DOS dates.
                    Some(taken) => options.last_modified_time(taken).into_full_options(),
                    // The DOS date has no zone (unzip tools read it as local time): the
                    // extended timestamp beside it says the instant.
                    None => options
                        .last_modified_time(zip_time(*done_at))
                        .with_extended_timestamp(u32::try_from(*done_at / 1000).ok(), None, None)
                        .map_err(|e| e.to_string())?,
                };
                zip.start_file(entry.as_str(), dated).map_err(|e| e.to_string())?;
                zip.write_all(&head).map_err(|e| e.to_string())?;
                while let Some(chunk) = runtime.block_on(futures::StreamExt::next(&mut stream)) {
                    zip.write_all(&chunk.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
                }
            }
            let mut writer = zip.finish().map_err(|e| e.to_string())?;
            writer.flush().map_err(|e| e.to_string())
        })();
        if let Err(error) = written {
            tracing::warn!(job_id = %job_id, error.message = %error, "archive stream ended early");
            // Never waits: a client that stopped reading (the channel is full) would hold
            // this thread for as long as it keeps its connection open.
            let _ = error_sender.try_send(Err(std::io::Error::other(error)));
        }
    });
    let body =
        futures::stream::unfold(
            receiver,
            |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
        );
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"darkroom-{}.zip\"", job.id)))
        .insert_header(("Cache-Control", "private, no-store"))
        .streaming(body))
}

/// How much of a result is read before its zip entry is dated: its EXIF is near the start
/// (JPEG's APP1, PNG's eXIf before the pixels; WebP puts it last, so a WebP is dated when done).
const EXIF_HEAD_BYTES: usize = 128 * 1024;

/// A capture time as a zip entry's DOS date; `None` if DOS cannot hold it (before 1980).
fn zip_capture_time((year, month, day, hour, minute, second): (u16, u8, u8, u8, u8, u8)) -> Option<zip::DateTime> {
    zip::DateTime::from_date_and_time(year, month, day, hour, minute, second).ok()
}

/// A zip entry's DOS date: when the photo was done (UTC), not the format's 1980 default.
fn zip_time(millis: u64) -> zip::DateTime {
    i64::try_from(millis / 1000)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|at| zip::DateTime::try_from(time::PrimitiveDateTime::new(at.date(), at.time())).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod zip_time_tests {
    use super::zip_time;

    #[test]
    fn entries_are_dated_when_the_photo_was_done() {
        // 2026-12-03T13:32:16Z
        let time = zip_time(1_796_304_736_000);
        assert_eq!((time.year(), time.month(), time.day()), (2026, 12, 3));
        assert_eq!((time.hour(), time.minute(), time.second()), (13, 32, 16));
        // Leap day.
        let leap = zip_time(1_709_164_800_000); // 2024-02-29T00:00:00Z
        assert_eq!((leap.year(), leap.month(), leap.day()), (2024, 2, 29));
    }
}
