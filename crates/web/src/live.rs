//! The job view, live: `GET /api/v1/jobs/{job}/events` is a server-sent-events stream that
//! sends the view (`event: view`) whenever it changes and ends once the job is finished.
//!
//! Each stream looks at the view once a second through the jobs crate's shared fold, so any
//! number of tabs watching one job cost one store read per refresh window in this process,
//! not one per tab. Streams are capped per process, end after half an hour (`EventSource`
//! reconnects by itself) and when the server shuts down, so they never hold a deploy.

use crate::view::load_job_or_404;
use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use bytes::Bytes;
use darkroom_core::{ErrorCode, JobManifest};
use std::time::{Duration, Instant};

/// How often a stream looks for changes.
const TICK: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream checks that its job still exists.
const EXISTENCE_CHECK: Duration = Duration::from_secs(30);
/// A stream's longest life; the browser reconnects.
const MAX_LIFE: Duration = Duration::from_secs(30 * 60);
/// Streams one process serves at once.
pub const MAX_STREAMS: usize = 2000;

/// Streams one job may have open in one process (a link shared widely falls back to polling
/// beyond this), so one job cannot take every stream of the server.
const MAX_STREAMS_PER_JOB: usize = 64;

/// Open streams per job in this process, and each job's view serialised once per version
/// for all of them.
#[derive(Debug, Default)]
pub struct LiveViews {
    open: std::sync::Mutex<std::collections::HashMap<darkroom_core::JobId, usize>>,
    serialized: std::sync::Mutex<std::collections::HashMap<darkroom_core::JobId, (u64, Bytes)>>,
}

impl LiveViews {
    fn open(self: &std::sync::Arc<Self>, job: &darkroom_core::JobId) -> Option<JobStreamGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(job.clone()).or_insert(0);
        if *count >= MAX_STREAMS_PER_JOB {
            return None;
        }
        *count += 1;
        Some(JobStreamGuard { live: self.clone(), job: job.clone() })
    }

    /// The `event: view` chunk for this version of the job's view, serialised once.
    fn chunk(&self, job: &darkroom_core::JobId, version: u64, view: &darkroom_core::JobView) -> Bytes {
        let mut serialized = self.serialized.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, chunk)) = serialized.get(job) {
            if *at == version {
                return chunk.clone();
            }
        }
        let chunk = Bytes::from(format!("event: view\ndata: {}\n\n", serde_json::to_string(view).unwrap_or_default()));
        serialized.insert(job.clone(), (version, chunk.clone()));
        chunk
    }
}

/// Counts a stream against its job until dropped.
struct JobStreamGuard {
    live: std::sync::Arc<LiveViews>,
    job: darkroom_core::JobId,
}

impl Drop for JobStreamGuard {
    fn drop(&mut self) {
        let mut open = self.live.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.job) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.job);
                self.live.serialized.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.job);
            }
        }
    }
}

struct Stream {
    state: web::Data<AppState>,
    job: JobManifest,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _job_guard: JobStreamGuard,
    started: Instant,
    seen: Option<u64>,
    last_write: Instant,
    last_existence_check: Instant,
    first: bool,
    finished: bool,
}

impl Stream {
    /// The next chunk to send, or `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.finished || self.started.elapsed() >= MAX_LIFE {
                return None;
            }
            if !self.first {
                tokio::select! {
                    () = tokio::time::sleep(TICK) => {}
                    () = self.state.closing.cancelled() => return None,
                }
            }
            self.first = false;
            if self.last_existence_check.elapsed() >= EXISTENCE_CHECK {
                self.last_existence_check = Instant::now();
                if let Ok(None) = self.state.jobs.load_job(&self.job.id).await {
                    self.finished = true;
                    return Some(Bytes::from_static(b"event: gone\ndata: {}\n\n"));
                }
            }
            match self.state.jobs.load_view_if_changed(&self.job, self.seen).await {
                Ok((version, Some(view))) => {
                    self.seen = Some(version);
                    self.finished = view.state.is_finished();
                    self.last_write = Instant::now();
                    return Some(self.state.live_views.chunk(&self.job.id, version, &view));
                }
                Ok((_, None)) => {}
                Err(error) => {
                    // The store is away: keep the stream, try again next tick.
                    tracing::debug!(job_id = %self.job.id, error.message = %error, "live view: read failed");
                }
            }
            if self.last_write.elapsed() >= KEEP_ALIVE {
                self.last_write = Instant::now();
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/jobs/{job}/events", tag = "jobs", summary = "The job view, live (server-sent events)",
    description = "`event: view` with the view's JSON each time it changes, ending once the job is finished; `event: gone` if it is deleted. Streams last at most 30 minutes (EventSource reconnects).",
    params(("job" = darkroom_core::JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The stream: one event per change of the view", content_type = "text/event-stream", body = crate::openapi::LiveEvent),
        (status = 404, description = "No such job", body = crate::openapi::ErrorBody),
    ))]
#[get("/jobs/{job}/events")]
pub async fn job_events(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let job = load_job_or_404(&state, &path).await?;
    let permit = state.live_streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "too many live views are open on this server; the page falls back to polling",
        )
    })?;
    let job_guard = state.live_views.open(&job.id).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this job has as many live views open as one server gives a job; the page falls back to polling",
        )
    })?;
    let now = Instant::now();
    let stream = Stream {
        state: state.clone(),
        job,
        _permit: permit,
        _job_guard: job_guard,
        started: now,
        seen: None,
        last_write: now,
        last_existence_check: now,
        first: true,
        finished: false,
    };
    let body = futures::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), stream))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        // Proxies (nginx) must pass each event on at once.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
