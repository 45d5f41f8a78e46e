//! Cancelling a job: every photo its view shows queued is recorded `cancelled` in its
//! current attempt; workers that receive its request drop it (they look for the event
//! before they start, and again before they store a render: a photo's first 750 ms at work
//! are shown queued, see docs/ARCHITECTURE.md "One photo's path"). Photos already done stay
//! done and downloadable; photos shown processing finish. A photo whose worker passed the
//! second look just before the cancel landed shows done when it is (`done` outranks
//! `cancelled`).

use crate::{Jobs, JobsError};
use darkroom_core::{keys, EventDoc, JobManifest, PhotoId, PhotoState};
use darkroom_store::json::put_json_if_absent;
use darkroom_store::PutOutcome;
use futures::{StreamExt, TryStreamExt};

impl Jobs {
    /// Cancels every photo of the job that is queued (waiting for a worker at any stage);
    /// returns the photos cancelled now (already-cancelled ones are not counted again).
    pub async fn cancel(&self, job: &JobManifest) -> Result<Vec<PhotoId>, JobsError> {
        // Read as it is now, not as a shared fold may have seen it half a second ago.
        let view = self.load_view_in_full(job).await?;
        let queued: Vec<_> = view
            .photos
            .iter()
            .filter(|photo| photo.state == PhotoState::Queued)
            .map(|photo| (photo.id.clone(), photo.attempt, photo.stage.clone()))
            .collect();
        let cancelled: Vec<PhotoId> = futures::stream::iter(queued)
            .map(|(photo, attempt, stage)| async move {
                let mut event = EventDoc::new(attempt, PhotoState::Cancelled);
                event.stage = stage;
                let key = keys::cancelled_event(&job.id, &photo, attempt);
                match put_json_if_absent(self.store.as_ref(), &key, &event).await? {
                    PutOutcome::Created => {
                        let change = crate::event_change(&job.id, &photo, keys::CANCELLED_STEP, &event);
                        crate::log_change(self.store.as_ref(), &job.id, &change).await;
                        Ok::<_, JobsError>(Some(photo))
                    }
                    PutOutcome::AlreadyExists => Ok(None),
                }
            })
            .buffer_unordered(16)
            .try_filter_map(|photo| async move { Ok(photo) })
            .try_collect()
            .await?;
        self.changed(&job.id);
        tracing::info!(job_id = %job.id, photos = cancelled.len(), "job cancelled");
        Ok(cancelled)
    }
}
