//! The job view, live: `GET /api/v1/jobs/{job}/events` is a server-sent-events stream that
//! sends the view (`event: view`) whenever it changes and ends once the job is finished.
//!
//! Each stream looks at the view once a second through the jobs crate's shared fold, so any
//! number of tabs watching one job cost one store read per refresh window in this process,
//! not one per tab. Streams are capped per process, end after half an hour (`EventSource`
//! reconnects by itself) and when the server shuts down, so they never hold a deploy.

use crate::view::{load_job_or_404, load_view};
use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use bytes::Bytes;
use darkroom_core::{ErrorCode, JobManifest, JobState};
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

struct Stream {
    state: web::Data<AppState>,
    job: JobManifest,
    _permit: tokio::sync::OwnedSemaphorePermit,
    started: Instant,
    last_sent: Option<String>,
    last_write: Instant,
    last_existence_check: Instant,
    first: bool,
    finished: bool,
}

fn finished(state: JobState) -> bool {
    !matches!(state, JobState::Queued | JobState::Processing)
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
            match load_view(&self.state, &self.job).await {
                Ok(view) => {
                    let json = serde_json::to_string(&view).unwrap_or_default();
                    if self.last_sent.as_deref() != Some(json.as_str()) {
                        self.finished = finished(view.state);
                        self.last_write = Instant::now();
                        let chunk = format!("event: view\ndata: {json}\n\n");
                        self.last_sent = Some(json);
                        return Some(Bytes::from(chunk));
                    }
                }
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
    let now = Instant::now();
    let stream = Stream {
        state: state.clone(),
        job,
        _permit: permit,
        started: now,
        last_sent: None,
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
