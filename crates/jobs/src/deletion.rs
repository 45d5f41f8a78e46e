//! Durable deletion (docs/ARCHITECTURE.md "Deletion and retention are durable"). Deleting a job writes
//! its tombstone and sweep marker first, then deletes the job manifest — from that moment
//! workers and status treat the job as gone — then every object under the job's prefix in
//! batches, and the sweep marker last. Whatever interrupts it (a crash, a throttle, a
//! deploy), the sweeper finds the marker and finishes. Retention deletes old jobs the same
//! way; the tombstone stays until the job would have expired, so a retried DELETE by its
//! owner is answered as a success.

use crate::{Jobs, JobsError};
use darkroom_core::job::MANIFEST_VERSION;
use darkroom_core::keys;
use darkroom_core::{now_millis, DeletionCause, JobId, JobManifest, PhotoId, Tombstone};
use darkroom_store::json::{get_json, put_json};
use darkroom_store::{delete_prefix, ObjectStore, StoreError};

/// What became of a deletion by the time it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Every object is gone.
    Swept { objects: usize },
    /// The job is deleted for every reader; its objects are still being removed by the
    /// sweeper (the sweep was interrupted).
    Pending,
}

/// One pass of background deletion work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub jobs: usize,
    pub objects: usize,
    pub failed: usize,
}

/// Deletes every object of a photo of a deleted job; returns how many there were. The one
/// way a consumer cleans up after a job deleted while its photo was in work: the worker's
/// outputs written after the deletion, or an earlier segment's intermediate, would
/// otherwise stay in the store for ever (the job's own sweep listed before they landed).
pub async fn sweep_deleted_photo(store: &dyn ObjectStore, job: &JobId, photo: &PhotoId) -> Result<usize, StoreError> {
    let swept = delete_prefix(store, &keys::photo_prefix(job, photo)).await?;
    if swept > 0 {
        tracing::info!(job_id = %job, photo_id = %photo, objects = swept, "swept the leftovers of a deleted job's photo");
    }
    Ok(swept)
}

impl Jobs {
    /// Deletes the job durably; see the module comment.
    pub async fn delete(&self, job: &JobManifest, cause: DeletionCause) -> Result<DeleteOutcome, JobsError> {
        let tombstone = Tombstone {
            v: MANIFEST_VERSION,
            job_id: job.id.clone(),
            created_at: job.created_at,
            deleted_at: now_millis(),
            cause,
            owner_token_sha256: job.owner_token_sha256.clone(),
        };
        put_json(self.store.as_ref(), &keys::tombstone(&job.id), &tombstone).await?;
        self.store.put(&keys::sweep_marker(&job.id), bytes::Bytes::from_static(b"{}"), "application/json").await?;
        self.store.delete(&keys::job_manifest(&job.id)).await?;
        self.forget_existing(&job.id);
        tracing::info!(job_id = %job.id, ?cause, "job deleted; sweeping its objects");
        metrics::counter!("darkroom_jobs_deleted_total", "cause" => cause_label(cause)).increment(1);
        match self.sweep(&job.id).await {
            Ok(objects) => Ok(DeleteOutcome::Swept { objects }),
            Err(error) => {
                tracing::warn!(job_id = %job.id, error.message = %error, "the sweep of a deleted job was interrupted; the sweeper will finish it");
                Ok(DeleteOutcome::Pending)
            }
        }
    }

    /// The tombstone of a deleted job, if it was deleted (and has not expired since).
    pub async fn tombstone(&self, job: &JobId) -> Result<Option<Tombstone>, JobsError> {
        match get_json(self.store.as_ref(), &keys::tombstone(job)).await {
            Ok(tombstone) => Ok(Some(tombstone)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes every object of a deleted job, then its sweep marker; returns how many.
    async fn sweep(&self, job: &JobId) -> Result<usize, StoreError> {
        let objects = delete_prefix(self.store.as_ref(), &keys::job_prefix(job)).await?;
        self.store.delete(&keys::active_marker(job)).await?;
        self.store.delete(&keys::sweep_marker(job)).await?;
        if objects > 0 {
            tracing::info!(job_id = %job, objects, "deleted job swept");
        }
        Ok(objects)
    }

    /// Finishes up to `max` interrupted deletions, from the sweep marker after `cursor` on;
    /// leaves in `cursor` where the next call resumes (`None`: from the first again). A job
    /// whose sweep keeps failing is passed over, not retried first every time, so a few bad
    /// jobs cannot stop the sweep of every job behind them.
    pub async fn sweep_pending(&self, max: usize, cursor: &mut Option<String>) -> Result<SweepReport, JobsError> {
        let mut report = SweepReport::default();
        let page = self.store.list_page(keys::SWEEP_PREFIX, cursor.as_deref(), max).await?;
        let resume_after = if page.len() < max { None } else { page.last().map(|m| m.key.clone()) };
        for marker in page {
            let Some(job) = keys::job_of_sweep_marker(&marker.key) else {
                self.store.delete(&marker.key).await?;
                continue;
            };
            match self.sweep(&job).await {
                Ok(objects) => {
                    report.jobs += 1;
                    report.objects += objects;
                }
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(job_id = %job, error.message = %error, "could not sweep a deleted job yet");
                    if error.is_retryable() {
                        return Err(error.into()); // an outage: this page again next time
                    }
                }
            }
        }
        *cursor = resume_after;
        Ok(report)
    }

    /// Deletes up to `max` jobs created before `cutoff` (ms since the epoch), oldest first
    /// from the index entry after `cursor` on, and forgets the tombstones of deleted jobs
    /// that old. Returns how many jobs expired, and leaves in `cursor` where the next call
    /// resumes (`None`: from the oldest again). One job's fault (a corrupt manifest, a
    /// refused key) is logged and passed over until the next round, so a few bad jobs
    /// cannot stop retention for every job behind them.
    pub async fn expire(&self, cutoff: u64, max: usize, cursor: &mut Option<String>) -> Result<usize, JobsError> {
        let mut expired = 0;
        let page = self.store.list_page(keys::CREATED_PREFIX, cursor.as_deref(), max).await?;
        let mut resume_after = if page.len() < max { None } else { page.last().map(|m| m.key.clone()) };
        for marker in page {
            let Some((created_at, job)) = keys::parse_created_marker(&marker.key) else {
                self.store.delete(&marker.key).await?;
                continue;
            };
            if created_at >= cutoff {
                resume_after = None; // the rest is younger: the next round starts over
                break;
            }
            match self.expire_one(&job, &marker.key).await {
                Ok(true) => expired += 1,
                Ok(false) => {}
                Err(error) if error.is_retryable() => return Err(error),
                Err(error @ JobsError::NewerVersion { .. }) => {
                    // A rollout under way: a newer status process expires it.
                    tracing::warn!(job_id = %job, error.message = %error, "an expired job written by a newer darkroom: left to the newer status processes");
                    metrics::counter!("darkroom_newer_version_skipped_total", "task" => "expire").increment(1);
                }
                Err(error) => {
                    tracing::error!(job_id = %job, error.message = %error, "could not expire a job; skipping it");
                    metrics::counter!("darkroom_retention_errors_total").increment(1);
                }
            }
        }
        *cursor = resume_after;
        if expired > 0 {
            tracing::info!(jobs = expired, "expired jobs past the retention period");
        }
        Ok(expired)
    }

    /// Expires one job past retention; `true` if it still existed.
    async fn expire_one(&self, job: &JobId, marker: &str) -> Result<bool, JobsError> {
        let existed = match self.load_job(job).await? {
            Some(manifest) => {
                self.delete(&manifest, DeletionCause::Expired).await?;
                true
            }
            None => false,
        };
        if self.store.head(&keys::sweep_marker(job)).await?.is_some() {
            return Ok(existed); // the sweeper finishes it; its marker goes once it has
        }
        // Nothing left to sweep (or the job never finished being created): whatever remains
        // of it goes, then its record.
        delete_prefix(self.store.as_ref(), &keys::job_prefix(job)).await?;
        self.store.delete(&keys::active_marker(job)).await?;
        self.store.delete(&keys::tombstone(job)).await?;
        self.store.delete(marker).await?;
        Ok(existed)
    }
}

fn cause_label(cause: DeletionCause) -> &'static str {
    match cause {
        DeletionCause::Owner => "owner",
        DeletionCause::Expired => "expired",
    }
}
