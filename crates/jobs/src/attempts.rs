//! Sending photos to work: the first attempt of new photos, and the next attempt of one
//! photo (a retry, a reprocessing, or the reconciler's recovery of a lost message).
//!
//! A started attempt always has a message: if the enqueue fails, the `queued` event just
//! written is deleted again (compensation), so the photo keeps its previous state and can
//! be retried, instead of showing "queued" for ever with nothing in the queue. Should even
//! that delete fail, the job stays in the active index and the reconciler finds the photo.

use crate::{Jobs, JobsError};
use darkroom_core::keys;
use darkroom_core::{EventDoc, JobId, JobManifest, PhotoId, PhotoRequest, PhotoState, Recipe};
use darkroom_queue::{MessageGroup, OutgoingMessage, QueueError, MAX_BATCH};
use darkroom_store::json::{get_json, put_json_if_absent};
use darkroom_store::PutOutcome;
use futures::{StreamExt, TryStreamExt};

/// Why darkroom restarted a photo on its own, and how many times in a row it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub reason: String,
    pub count: u32,
}

/// The recipe of an attempt whose `queued` event is `queued` (none: the job's own).
pub fn recipe_of(job: &JobManifest, queued: Option<&EventDoc>) -> Recipe {
    queued.and_then(|event| event.recipe.clone()).unwrap_or_else(|| job.recipe.clone())
}

/// Concurrent starts of one photo's next attempt that may collide before one gives up.
const MAX_ATTEMPT_RACE: u32 = 10;

impl Jobs {
    /// Sends one request per photo to the queue of the recipe's first stage, ten per call.
    pub async fn enqueue(
        &self,
        job: &JobManifest,
        recipe: &Recipe,
        photos: &[(PhotoId, u32)],
    ) -> Result<(), QueueError> {
        let plan = self.stage_map.plan(recipe);
        let Some(first) = plan.first() else {
            return Ok(());
        };
        let queue = self.queues.get(&self.names.requests(&first.stage)).await?;
        let messages: Vec<OutgoingMessage> = photos
            .iter()
            .map(|(photo, attempt)| {
                let request = PhotoRequest::new(job.id.clone(), photo.clone(), *attempt, recipe.clone(), plan.clone())
                    .for_tenant(job.tenant());
                let (tenant, flow) = request.fair_share();
                OutgoingMessage::new(request.encode(), request.attributes())
                    .in_group(Some(MessageGroup::new(tenant, flow)))
            })
            .collect();
        for batch in messages.chunks(MAX_BATCH) {
            queue.send_batch(batch).await?;
        }
        Ok(())
    }

    /// Marks the job as having work outstanding, for the reconciler. Written before the
    /// work is sent, so no photo can be queued without its job in the index.
    pub async fn mark_active(&self, job: &JobId) -> Result<(), darkroom_store::StoreError> {
        self.store.put(&keys::active_marker(job), bytes::Bytes::from_static(b"{}"), "application/json").await
    }

    /// Indexes a new job by its creation time, for retention.
    pub async fn index_created(&self, job: &JobManifest) -> Result<(), darkroom_store::StoreError> {
        self.store
            .put(&keys::created_marker(&job.id, job.created_at), bytes::Bytes::from_static(b"{}"), "application/json")
            .await
    }

    /// The `queued` event that started an attempt after the first (`None` for attempt 1, or
    /// when it cannot be read): it names the attempt's recipe and why it was started.
    /// An attempt's `queued` event, `None` when it has none (attempt 1 has one only for a
    /// photo uploaded with a recipe of its own). A read that fails is an error, not "none":
    /// the job's recipe must never stand in for a photo's own because the store hiccupped.
    pub async fn queued_event(
        &self,
        job: &JobManifest,
        photo: &PhotoId,
        attempt: u32,
    ) -> Result<Option<EventDoc>, JobsError> {
        match get_json(self.store.as_ref(), &keys::queued_event(&job.id, photo, attempt)).await {
            Ok(event) => Ok(Some(event)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Sends each photo's attempt with the recipe it runs (see [`Jobs::recipe_of_attempt`]),
    /// those of one recipe together.
    pub async fn enqueue_as_recorded(&self, job: &JobManifest, photos: &[(PhotoId, u32)]) -> Result<(), JobsError> {
        let each: Vec<(PhotoId, u32, Recipe)> = futures::stream::iter(photos)
            .map(|(photo, attempt)| async move {
                Ok::<_, JobsError>((photo.clone(), *attempt, self.recipe_of_attempt(job, photo, *attempt).await?))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok(self.enqueue_each(job, &each).await?)
    }

    /// Sends each photo's attempt with its own recipe, grouped by the queue of each recipe's
    /// first stage, ten per call.
    pub async fn enqueue_each(&self, job: &JobManifest, photos: &[(PhotoId, u32, Recipe)]) -> Result<(), QueueError> {
        let mut by_queue: Vec<(String, Vec<OutgoingMessage>)> = Vec::new();
        for (photo, attempt, recipe) in photos {
            let plan = self.stage_map.plan(recipe);
            let Some(first) = plan.first() else { continue };
            let queue = self.names.requests(&first.stage);
            let request = PhotoRequest::new(job.id.clone(), photo.clone(), *attempt, recipe.clone(), plan.clone())
                .for_tenant(job.tenant());
            let (tenant, flow) = request.fair_share();
            let message = OutgoingMessage::new(request.encode(), request.attributes())
                .in_group(Some(MessageGroup::new(tenant, flow)));
            match by_queue.iter_mut().find(|(name, _)| *name == queue) {
                Some((_, messages)) => messages.push(message),
                None => by_queue.push((queue, vec![message])),
            }
        }
        for (name, messages) in &by_queue {
            let queue = self.queues.get(name).await?;
            for batch in messages.chunks(MAX_BATCH) {
                queue.send_batch(batch).await?;
            }
        }
        Ok(())
    }

    /// The recipe an attempt ran: the one its queued event names (a reprocessing, or a photo
    /// uploaded with a recipe of its own), else the job's.
    pub async fn recipe_of_attempt(
        &self,
        job: &JobManifest,
        photo: &PhotoId,
        attempt: u32,
    ) -> Result<Recipe, JobsError> {
        Ok(recipe_of(job, self.queued_event(job, photo, attempt).await?.as_ref()))
    }

    /// Starts the attempt after `after` of one photo with `recipe`; returns its number.
    /// `recovery` is set when darkroom itself restarts the photo (the reconciler).
    pub async fn start_attempt(
        &self,
        job: &JobManifest,
        photo: &PhotoId,
        after: u32,
        recipe: Recipe,
        recovery: Option<Recovery>,
    ) -> Result<u32, JobsError> {
        let gives_way = recovery.is_some();
        self.begin_attempt(job, photo, after, recipe, recovery, gives_way).await
    }

    /// Starts the attempt after `after` unless another request started it already
    /// (`JobsError::AlreadyStarted`): "retry the failed" or "resume the cancelled" sent twice
    /// (two tabs, a double click) restarts each photo once, not twice.
    pub async fn restart_attempt(
        &self,
        job: &JobManifest,
        photo: &PhotoId,
        after: u32,
        recipe: Recipe,
    ) -> Result<u32, JobsError> {
        self.begin_attempt(job, photo, after, recipe, None, true).await
    }

    async fn begin_attempt(
        &self,
        job: &JobManifest,
        photo: &PhotoId,
        after: u32,
        recipe: Recipe,
        recovery: Option<Recovery>,
        gives_way: bool,
    ) -> Result<u32, JobsError> {
        self.mark_active(&job.id).await?;
        let mut attempt = after + 1;
        // Two concurrent retries may pick the same number; the queued event is written with
        // put-if-absent, so the loser simply takes the next one.
        let queued = loop {
            let mut queued = EventDoc::new(attempt, PhotoState::Queued);
            queued.recipe = Some(recipe.clone());
            if let Some(recovery) = &recovery {
                queued.reason = Some(recovery.reason.clone());
                queued.recoveries = recovery.count;
            }
            match put_json_if_absent(self.store.as_ref(), &keys::queued_event(&job.id, photo, attempt), &queued).await?
            {
                PutOutcome::Created => break queued,
                // A recovery or a restart gives way: another process restarted the photo already.
                PutOutcome::AlreadyExists if gives_way => return Err(JobsError::AlreadyStarted),
                PutOutcome::AlreadyExists if attempt < after + MAX_ATTEMPT_RACE => attempt += 1,
                PutOutcome::AlreadyExists => return Err(JobsError::TooManyRetries),
            }
        };
        // Marked again now that the attempt exists: the reconciler may have read the job as
        // finished (before the queued event), seen this process's first mark as its own, and
        // taken the job out of the index after it. Its re-read after that removal sees the
        // queued event or this mark lands after it; either way the job stays indexed.
        let sent = match self.mark_active(&job.id).await {
            Ok(()) => self.enqueue(job, &recipe, &[(photo.clone(), attempt)]).await.map_err(JobsError::from),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = sent {
            // Compensate: without a message the attempt would stay queued for ever.
            let queued = keys::queued_event(&job.id, photo, attempt);
            if let Err(undo) = self.store.delete(&queued).await {
                tracing::error!(job_id = %job.id, photo_id = %photo, attempt, error.message = %undo, "could not withdraw an attempt whose enqueue failed; the reconciler will recover it");
            }
            return Err(error);
        }
        // Only now, with the request on its way: a withdrawn attempt never shows.
        let change = crate::event_change(&job.id, photo, keys::TERMINAL_STEP, &queued);
        crate::log_change(self.store.as_ref(), &job.id, &change).await;
        self.changed(&job.id);
        Ok(attempt)
    }
}
