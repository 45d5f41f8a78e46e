//! The job view, live: `GET /api/v1/jobs/{job}/events` is a server-sent-events stream that
//! sends the view (`event: view`) whenever it changes and ends once the job is finished.
//!
//! Each stream looks at the view once a second through the jobs crate's shared fold, so any
//! number of tabs watching one job cost one store read per refresh window in this process,
//! not one per tab (in `darkroom serve`, whose status role shares the fold, each state it
//! records also lets the next look read the change log at once). Streams are capped per process, end after half an hour (`EventSource`
//! reconnects by itself) and when the server shuts down, so they never hold a deploy.

use crate::job_lookup::load_job_or_404;
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

/// What an open stream holds (a stream slot of the process and one of its job), given back
/// when the stream ends — or, at the latest, [`LEASE`] after it began, whether or not the
/// stream is still polled: a client that stops reading fills its socket, the server stops
/// polling the stream, and checks made only when it is polled would never run, so slots
/// would be held for as long as such clients keep their connections open.
struct StreamLease {
    held: std::sync::Mutex<Option<(tokio::sync::OwnedSemaphorePermit, JobStreamGuard)>>,
    ended: tokio_util::sync::CancellationToken,
}

/// The longest a stream holds its slots, polled or not: its longest life and a minute.
const LEASE: Duration = Duration::from_secs(MAX_LIFE.as_secs() + 60);

impl StreamLease {
    fn start(permit: tokio::sync::OwnedSemaphorePermit, job_guard: JobStreamGuard) -> std::sync::Arc<Self> {
        let lease = std::sync::Arc::new(Self {
            held: std::sync::Mutex::new(Some((permit, job_guard))),
            ended: tokio_util::sync::CancellationToken::new(),
        });
        let expiring = lease.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(LEASE) => {
                    if expiring.give_back() {
                        tracing::info!("a live view's client stopped reading it; its slot is given back");
                    }
                }
                () = expiring.ended.cancelled() => {}
            }
        });
        lease
    }

    /// Gives the slots back; `true` if they were still held.
    fn give_back(&self) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take().is_some()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.lease.give_back();
        self.lease.ended.cancel();
    }
}

struct Stream {
    state: web::Data<AppState>,
    job: JobManifest,
    lease: std::sync::Arc<StreamLease>,
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
        lease: StreamLease::start(permit, job_guard),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A stream nobody polls any more (its client stopped reading) still gives its slots
    /// back once its lease is over.
    #[tokio::test(start_paused = true)]
    async fn a_stream_never_polled_again_gives_its_slots_back() {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let live = std::sync::Arc::new(LiveViews::default());
        let job = darkroom_core::JobId::generate();
        let permit = slots.clone().try_acquire_owned().unwrap();
        let lease = StreamLease::start(permit, live.open(&job).unwrap());
        assert_eq!(slots.available_permits(), 0);
        tokio::time::sleep(MAX_LIFE).await;
        assert_eq!(slots.available_permits(), 0, "held for the stream's life");
        tokio::time::sleep(LEASE - MAX_LIFE + Duration::from_secs(1)).await;
        assert_eq!(slots.available_permits(), 1, "given back at the lease's end");
        assert!(live.open.lock().unwrap().is_empty(), "and the job's slot too");
        drop(lease);
    }
}
