//! Housekeeping, run on a timer by every status process (docs/ARCHITECTURE.md "Every photo state is
//! left again", "Deletion and retention are durable"): finishing interrupted deletions,
//! expiring jobs past the retention period, and reconciling photos whose request was lost.
//!
//! A photo can be left `queued` or `processing` with no message anywhere: a web process
//! that died between writing a job and sending its requests, an enqueue whose compensation
//! failed, a message lost by the queue. The reconciler walks the index of jobs with work
//! outstanding, a bounded page per pass (resuming where the last pass stopped), and
//! restarts a photo as a new attempt when it has been waiting far longer than its stage can
//! take with nothing waiting in any request queue — or after a day whatever the backlog.
//! After [`MAX_RECOVERIES`] restarts in a row it fails the photo with the reason instead.
//!
//! Safe with several status processes: a restart writes the next attempt's `queued` event
//! with put-if-absent (one of them wins), a late message of the old attempt is dropped by
//! the worker as superseded, and sweeps and expiry are idempotent.

use darkroom_consumer::Breaker;
use darkroom_core::{
    keys, now_millis, ErrorCode, EventDoc, JobManifest, PhotoError, PhotoState, PhotoView, TimeBudgets,
};
use darkroom_jobs::{Jobs, JobsError, Recovery};
use darkroom_store::json::put_json_if_absent;
use darkroom_store::PutOutcome;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Restarts of one photo in a row before the reconciler fails it instead.
pub const MAX_RECOVERIES: u32 = 3;
/// Past this a photo is restarted whatever the backlog says.
const ABSOLUTE_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// Bounded work per pass: jobs reconciled, deletions swept, jobs expired.
const JOBS_PER_PASS: usize = 50;
const SWEEPS_PER_PASS: usize = 20;
const EXPIRIES_PER_PASS: usize = 100;

#[derive(Debug, Clone)]
pub struct HousekeepingSettings {
    pub interval: Duration,
    /// The least time a photo waits before it can be judged lost.
    pub stuck_after: Duration,
    /// Jobs older than this are deleted; `None` keeps them for ever.
    pub retention: Option<Duration>,
    pub visibility_timeout: Duration,
    pub time_budgets: TimeBudgets,
    pub max_receive_count: u32,
}

impl HousekeepingSettings {
    /// How long a photo may legitimately stay `processing` in `stage`: every receive
    /// running its whole budget and then waiting out a visibility timeout, plus slack.
    fn processing_limit(&self, stage: &str) -> Duration {
        let per_receive = self.visibility_timeout + self.time_budgets.for_stage(stage);
        (per_receive * self.max_receive_count + Duration::from_secs(300)).max(self.stuck_after)
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub jobs_checked: usize,
    pub recovered: usize,
    pub failed: usize,
    pub finished_jobs: usize,
    pub swept: usize,
    pub expired: usize,
}

impl PassReport {
    fn did_something(&self) -> bool {
        self.recovered + self.failed + self.finished_jobs + self.swept + self.expired > 0
    }
}

#[derive(Debug)]
pub struct Housekeeper {
    jobs: Jobs,
    settings: HousekeepingSettings,
    /// The last active-index key reconciled: the next pass resumes after it.
    cursor: Mutex<Option<String>>,
    /// Where the sweep of deleted jobs and retention resume: each pass takes the next page,
    /// so a few jobs that keep failing cannot hold back those behind them.
    sweep_cursor: Mutex<Option<String>>,
    expiry_cursor: Mutex<Option<String>>,
}

/// Why a photo counts as lost, if it does.
pub fn lost_reason(
    photo: &PhotoView,
    now: u64,
    waiting_requests: u64,
    settings: &HousekeepingSettings,
) -> Option<String> {
    let age = Duration::from_millis(now.saturating_sub(photo.updated_at));
    let limit = match photo.state {
        PhotoState::Queued => settings.stuck_after,
        PhotoState::Processing => settings.processing_limit(photo.stage.as_deref().unwrap_or("")),
        _ => return None,
    };
    if age <= limit || (waiting_requests > 0 && age <= ABSOLUTE_LIMIT) {
        return None;
    }
    let minutes = age.as_secs() / 60;
    Some(match photo.state {
        PhotoState::Queued => format!("queued for {minutes} minutes with no request waiting for it"),
        _ => format!(
            "processing in the {} stage for {minutes} minutes, longer than every attempt could take",
            photo.stage.as_deref().unwrap_or("unknown")
        ),
    })
}

impl Housekeeper {
    pub fn new(jobs: Jobs, settings: HousekeepingSettings) -> Self {
        Self {
            jobs,
            settings,
            cursor: Mutex::new(None),
            sweep_cursor: Mutex::new(None),
            expiry_cursor: Mutex::new(None),
        }
    }

    /// Runs a pass every interval until shutdown; skips passes while the breaker is open.
    pub async fn run(&self, breaker: &Breaker, shutdown: CancellationToken) {
        loop {
            // Spread the passes of several status processes apart.
            let jitter = Duration::from_millis(rand::random_range(0..=self.settings.interval.as_millis() as u64 / 5));
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval + jitter) => {}
                () = shutdown.cancelled() => return,
            }
            if !breaker.is_closed() {
                continue;
            }
            match self.pass().await {
                Ok(report) => {
                    if report.did_something() {
                        tracing::info!(?report, "housekeeping pass");
                    }
                }
                Err(error) => {
                    if error.is_retryable() {
                        breaker.trip(format!("housekeeping: {error}"));
                    }
                    tracing::warn!(error.message = %error, "housekeeping pass interrupted; the next one continues");
                }
            }
        }
    }

    /// One bounded pass: reconcile, then sweep and expire. The reconciler goes first: a
    /// backlog of deletions or expiries must not keep lost photos waiting.
    pub async fn pass(&self) -> Result<PassReport, JobsError> {
        let mut report = PassReport::default();
        // Each part runs whatever became of the one before; the first error is reported.
        let reconciled = self.reconcile(&mut report).await;
        let mut cursor = self.sweep_cursor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let swept = self.jobs.sweep_pending(SWEEPS_PER_PASS, &mut cursor).await;
        *self.sweep_cursor.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
        let expired = match self.settings.retention {
            Some(retention) => {
                let cutoff = now_millis().saturating_sub(retention.as_millis() as u64);
                let mut cursor = self.expiry_cursor.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let expired = self.jobs.expire(cutoff, EXPIRIES_PER_PASS, &mut cursor).await;
                *self.expiry_cursor.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
                expired
            }
            None => Ok(0),
        };
        reconciled?;
        report.swept = swept?.jobs;
        report.expired = expired?;
        Ok(report)
    }

    async fn reconcile(&self, report: &mut PassReport) -> Result<(), JobsError> {
        let start_after = self.cursor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let page = self.jobs.store().list_page(keys::ACTIVE_PREFIX, start_after.as_deref(), JOBS_PER_PASS).await?;
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) =
            if page.len() < JOBS_PER_PASS { None } else { page.last().map(|m| m.key.clone()) };
        if page.is_empty() {
            return Ok(());
        }
        let waiting = self.jobs.waiting_requests().await?;
        for marker in page {
            report.jobs_checked += 1;
            if let Err(error) = self.reconcile_job(&marker.key, waiting, report).await {
                if error.is_retryable() {
                    return Err(error);
                }
                if let darkroom_jobs::JobsError::NewerVersion { .. } = error {
                    // A rollout under way, not a fault: a newer status process reconciles it.
                    tracing::warn!(marker = %marker.key, error.message = %error, "a job written by a newer darkroom: left to the newer status processes");
                    metrics::counter!("darkroom_newer_version_skipped_total", "task" => "reconcile").increment(1);
                    continue;
                }
                // One job's fault (a corrupt document, a refused key) must not stop the
                // reconciler for every other job: logged, and the pass goes on.
                tracing::error!(marker = %marker.key, error.message = %error, "could not reconcile a job; skipping it");
                metrics::counter!("darkroom_reconciler_errors_total").increment(1);
            }
        }
        Ok(())
    }

    async fn reconcile_job(&self, marker_key: &str, waiting: u64, report: &mut PassReport) -> Result<(), JobsError> {
        let Some(job) = keys::job_of_active_marker(marker_key) else {
            self.jobs.store().delete(marker_key).await?;
            return Ok(());
        };
        let Some(manifest) = self.jobs.load_job(&job).await? else {
            self.jobs.store().delete(marker_key).await?; // deleted or expired
            return Ok(());
        };
        // The reconciler acts on what it reads (restarts, index removal): it reads each job
        // from its per-photo documents, not from a fold kept up to date by the change log.
        let view = self.jobs.load_view_in_full(&manifest).await?;
        if view.state.is_finished() {
            // The backstop for a finish whose webhook the status update could not hand over
            // (an outage, a crash): the job leaves the index only once it has been.
            if self.jobs.schedule_webhook_if_finished(&manifest, Some(&view)).await?
                == darkroom_jobs::Scheduling::InProgress
            {
                return Ok(()); // looked at again next pass, in case its sender died
            }
            self.jobs.store().delete(marker_key).await?;
            // A retry may have started between the read and the delete: look again.
            if !self.jobs.load_view_in_full(&manifest).await?.state.is_finished() {
                self.jobs.mark_active(&job).await?;
            } else {
                report.finished_jobs += 1;
            }
            return Ok(());
        }
        let now = now_millis();
        for photo in &view.photos {
            if let Some(reason) = lost_reason(photo, now, waiting, &self.settings) {
                self.recover(&manifest, photo, reason, report).await?;
            }
        }
        Ok(())
    }

    async fn recover(
        &self,
        job: &JobManifest,
        photo: &PhotoView,
        reason: String,
        report: &mut PassReport,
    ) -> Result<(), JobsError> {
        // One read of the attempt's `queued` event gives both its restarts so far and its recipe.
        // A failed read leaves the photo for the next pass (its recipe must not be guessed).
        let queued = self.jobs.queued_event(job, &photo.id, photo.attempt).await?;
        let previous = queued.as_ref().map_or(0, |event| event.recoveries);
        let span = tracing::info_span!("reconcile", job_id = %job.id, photo_id = %photo.id, attempt = photo.attempt);
        let _entered = span.enter();
        if previous >= MAX_RECOVERIES {
            let mut failed = EventDoc::new(photo.attempt, PhotoState::Failed);
            failed.stage = photo.stage.clone();
            failed.error = Some(PhotoError::new(
                ErrorCode::Internal,
                format!("darkroom lost this photo's request {previous} times in a row (last: {reason}); retry it, and tell the operator if it happens again"),
            ));
            let key = keys::event(&job.id, &photo.id, photo.attempt, PhotoState::Failed, keys::TERMINAL_STEP);
            if put_json_if_absent(self.jobs.store().as_ref(), &key, &failed).await? == PutOutcome::Created {
                let change = darkroom_jobs::event_change(&job.id, &photo.id, keys::TERMINAL_STEP, &failed);
                darkroom_jobs::log_change(self.jobs.store().as_ref(), &job.id, &change).await;
                self.jobs.changed(&job.id);
            }
            tracing::error!(reason = %reason, "a photo lost again and again: failed");
            metrics::counter!("darkroom_reconciler_failed_total").increment(1);
            report.failed += 1;
            return Ok(());
        }
        let recipe = darkroom_jobs::recipe_of(job, queued.as_ref());
        let recovery = Recovery { reason: format!("restarted by darkroom: {reason}"), count: previous + 1 };
        match self.jobs.start_attempt(job, &photo.id, photo.attempt, recipe, Some(recovery)).await {
            Ok(attempt) => {
                tracing::warn!(reason = %reason, new_attempt = attempt, "a photo with no live request: restarted");
                metrics::counter!("darkroom_reconciler_recovered_total").increment(1);
                report.recovered += 1;
                Ok(())
            }
            Err(JobsError::AlreadyStarted) => Ok(()), // another status process did it
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkroom_core::PhotoId;

    fn settings() -> HousekeepingSettings {
        HousekeepingSettings {
            interval: Duration::from_secs(60),
            stuck_after: Duration::from_secs(30 * 60),
            retention: None,
            visibility_timeout: Duration::from_secs(30),
            time_budgets: TimeBudgets::parse("quick=2m,slow=5m")
                .unwrap_or_else(|_| TimeBudgets::uniform(Duration::from_secs(300))),
            max_receive_count: 5,
        }
    }

    fn photo(state: PhotoState, stage: Option<&str>, minutes_ago: u64, now: u64) -> PhotoView {
        PhotoView {
            id: PhotoId::generate(),
            name: "p.jpg".into(),
            state,
            stage: stage.map(str::to_owned),
            attempt: 1,
            error: None,
            outputs: Vec::new(),
            original_url: String::new(),
            original_thumb_url: None,
            updated_at: now - minutes_ago * 60_000,
            added_at: 0,
            work_ms: None,
            sort_key: (0, 0),
        }
    }

    #[test]
    fn a_queued_photo_is_lost_only_after_the_backlog_drained_or_a_day() {
        let now = 100 * 24 * 3600 * 1000;
        let s = settings();
        assert!(lost_reason(&photo(PhotoState::Queued, None, 29, now), now, 0, &s).is_none());
        assert!(lost_reason(&photo(PhotoState::Queued, None, 31, now), now, 0, &s).is_some());
        assert!(
            lost_reason(&photo(PhotoState::Queued, None, 31, now), now, 500, &s).is_none(),
            "may be in the backlog"
        );
        assert!(lost_reason(&photo(PhotoState::Queued, None, 25 * 60, now), now, 500, &s).is_some());
    }

    #[test]
    fn a_processing_photo_gets_every_attempt_of_its_stage_budget() {
        let now = 100 * 24 * 3600 * 1000;
        let s = settings();
        // slow: 5 × (30 s + 5 min) + 5 min = 32.5 min.
        assert!(lost_reason(&photo(PhotoState::Processing, Some("slow"), 32, now), now, 0, &s).is_none());
        assert!(lost_reason(&photo(PhotoState::Processing, Some("slow"), 33, now), now, 0, &s).is_some());
        // quick: 5 × 2.5 min + 5 = 17.5 min, but never below stuck_after (30 min).
        assert!(lost_reason(&photo(PhotoState::Processing, Some("quick"), 29, now), now, 0, &s).is_none());
        assert!(lost_reason(&photo(PhotoState::Done, None, 600, now), now, 0, &s).is_none());
        assert!(lost_reason(&photo(PhotoState::Failed, None, 600, now), now, 0, &s).is_none());
    }
}
