//! The status process: consumes the Response queue and writes each photo's state into the
//! job view in the object store; also drains every dead-letter queue, so a photo whose
//! request was dead-lettered is shown as failed ("gave up after N attempts") instead of
//! staying "processing" for ever.
//!
//! Each update is an immutable event document written with put-if-absent under a key
//! derived from (photo, attempt, state, step) — see core's `keys` — so redelivered
//! responses change nothing, several status processes never lose each other's updates,
//! and a late "processing" can never overwrite "done".
//!
//! While the store is unreachable a breaker stops every loop from receiving (the messages
//! wait in their queues, nothing is lost); a message this build cannot read is handed
//! back for a newer process, never deleted.

mod housekeeping;

pub use housekeeping::{lost_reason, Housekeeper, HousekeepingSettings, PassReport, MAX_RECOVERIES};

use darkroom_consumer::{serve, Breaker, Handler, LoopSettings, Place, Settle, StoreAndQueueProbe};
use darkroom_core::job::PhotoState;
use darkroom_core::{
    keys, ErrorCode, EventDoc, JobManifest, MessageError, PhotoError, PhotoRequest, PhotoResponse, QueueNames,
};
use darkroom_jobs::sweep_deleted_photo;
use darkroom_queue::{Queue, QueueDirectory, QueueError, ReceivedMessage};
use darkroom_store::json::{get_json, put_json_if_absent, JsonDocError};
use darkroom_store::{delete_prefix, ObjectStore, PutOutcome, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub wait_time: Duration,
    /// Reported to the user when a photo is dead-lettered.
    pub max_receive_count: u32,
    pub housekeeping: HousekeepingSettings,
}

/// What a message turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Recorded,
    /// Already recorded by an earlier delivery (or another status process).
    AlreadyRecorded,
    /// The job was deleted; nothing to record.
    JobGone,
}

impl Applied {
    fn label(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::AlreadyRecorded => "already_recorded",
            Self::JobGone => "job_gone",
        }
    }
}

/// Why a message could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Unreadable(#[from] MessageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which kind of queue a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Responses,
    RequestDeadLetters,
    ResponseDeadLetters,
}

#[derive(Debug)]
pub struct StatusUpdater {
    store: Arc<dyn ObjectStore>,
    queues: QueueDirectory,
    names: QueueNames,
    settings: StatusSettings,
    /// Open while the store or the queues are unreachable: no loop receives then.
    breaker: Breaker,
    housekeeper: Arc<Housekeeper>,
    /// Finished jobs' webhooks are scheduled from here.
    jobs: darkroom_jobs::Jobs,
    /// Jobs with a webhook whose photos reached a final state since the last look: whether
    /// the job is finished is looked at once a second, off the response path.
    finishing: Arc<std::sync::Mutex<std::collections::HashMap<darkroom_core::JobId, JobManifest>>>,
}

impl StatusUpdater {
    /// A status process over `jobs` (the process's one job lifecycle: its store, queues and
    /// pipeline; every stage's dead-letter queue is drained, and the reconciler restarts
    /// photos through it).
    pub fn new(jobs: darkroom_jobs::Jobs, settings: StatusSettings) -> Self {
        let (store, queues, names) = (jobs.store().clone(), jobs.queues().clone(), jobs.names().clone());
        let probe = StoreAndQueueProbe { store: store.clone(), queues: queues.clone(), queue: names.responses() };
        let breaker = Breaker::new("status", Arc::new(probe));
        let housekeeper = Arc::new(Housekeeper::new(jobs.clone(), settings.housekeeping.clone()));
        Self { store, queues, names, settings, breaker, housekeeper, jobs, finishing: Arc::default() }
    }

    /// The reconciler, sweeper and retention, for tests to run a pass at will.
    pub fn housekeeper(&self) -> &Housekeeper {
        &self.housekeeper
    }

    /// The dependency breaker, for `/readyz`.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    async fn sources(&self) -> Result<Vec<(Arc<dyn Queue>, Source)>, QueueError> {
        let responses = self.names.responses();
        let mut sources = vec![(self.queues.get(&responses).await?, Source::Responses)];
        let webhooks = self.names.webhooks();
        for pair in self.names.all(&self.jobs.stage_map().stages()) {
            if pair.queue == webhooks {
                continue; // not a photo's: its dead letters are undeliverable webhooks, for an operator
            }
            let source = if pair.queue == responses { Source::ResponseDeadLetters } else { Source::RequestDeadLetters };
            sources.push((self.queues.get(&pair.dead_letter).await?, source));
        }
        Ok(sources)
    }

    /// How each of status's loops reads its queue: a batch at a time, applied side by side
    /// (updates are independent documents); on shutdown, what is under way finishes.
    fn loop_settings(&self) -> LoopSettings {
        LoopSettings {
            places: darkroom_queue::MAX_BATCH,
            wait_time: self.settings.wait_time,
            drain_deadline: Duration::from_secs(30),
        }
    }

    /// Opens every queue status reads; fails if `darkroom setup` has not been run.
    pub async fn check_queues(&self) -> Result<(), QueueError> {
        self.sources().await.map(|_| ())
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), QueueError> {
        let mut loops = JoinSet::new();
        for (queue, source) in self.sources().await? {
            let handler = Arc::new(SourceHandler { status: self.clone(), source });
            let (breaker, shutdown) = (Some(self.breaker.clone()), shutdown.clone());
            let span = tracing::info_span!("status_loop", queue = queue.name());
            loops.spawn(serve(queue, handler, self.loop_settings(), breaker, shutdown).instrument(span));
        }
        let (status, token) = (self.clone(), shutdown.clone());
        loops.spawn(async move { status.housekeeper.run(&status.breaker, token).await });
        let (status, token) = (self.clone(), shutdown.clone());
        loops.spawn(async move { status.schedule_webhooks(token).await });
        tracing::info!("status started");
        while loops.join_next().await.is_some() {}
        tracing::info!("status stopped");
        Ok(())
    }

    /// Once a second, looks whether the jobs with a webhook that had a photo finish are
    /// finished, and schedules their webhooks. Best effort: the housekeeping pass schedules
    /// what this misses (an outage, a crash).
    async fn schedule_webhooks(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let due: Vec<JobManifest> = {
                let mut finishing = self.finishing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                finishing.drain().map(|(_, manifest)| manifest).collect()
            };
            for manifest in due {
                match self.jobs.schedule_webhook_if_finished(&manifest, None).await {
                    Ok(_) => {}
                    // An outage: looked at again next second (quietly: the breaker reports it).
                    Err(error) if error.is_retryable() => {
                        tracing::debug!(job_id = %manifest.id, error.message = %error, "could not schedule the job's webhook yet; trying again in a second");
                        let mut finishing = self.finishing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        finishing.entry(manifest.id.clone()).or_insert(manifest);
                    }
                    Err(error) => {
                        tracing::warn!(job_id = %manifest.id, error.message = %error, "could not schedule the job's webhook; the housekeeping pass will");
                    }
                }
            }
        }
    }

    /// Applies one message of `source` and says what becomes of it.
    async fn handle(&self, queue: &Arc<dyn Queue>, source: Source, message: &ReceivedMessage) -> Settle {
        let result = match source {
            Source::Responses | Source::ResponseDeadLetters => self.apply_response_message(&message.body).await,
            Source::RequestDeadLetters => self.apply_dead_letter(&message.body).await,
        };
        match result {
            Ok(applied) => {
                metrics::counter!("darkroom_status_updates_total", "result" => applied.label()).increment(1);
                // A redelivery after a failed delete is recorded again, and changes nothing.
                Settle::Delete
            }
            Err(ApplyError::Unreadable(error)) if error.is_newer_version() => {
                Settle::LeaveUnreadable(error.to_string())
            }
            Err(ApplyError::Unreadable(error)) => {
                // It will never parse. Never deleted: in the response queue it goes on to the
                // dead-letter queue after its receive budget; in a dead-letter queue it stays,
                // hidden for hours at a time, for an operator (the metric says it is there).
                metrics::counter!("darkroom_messages_malformed_total", "queue" => queue.name().to_owned()).increment(1);
                tracing::error!(message_id = %message.message_id, queue = queue.name(), error.message = %error, "a message that does not parse: left for an operator");
                Settle::Hide(match source {
                    Source::Responses => Duration::from_secs(60),
                    Source::RequestDeadLetters | Source::ResponseDeadLetters => Duration::from_secs(6 * 3600),
                })
            }
            Err(ApplyError::Store(error)) => {
                if error.is_retryable() {
                    self.breaker.trip(format!("recording a photo's state: {error}"));
                }
                // Left in the queue: it comes back after the visibility timeout (once the
                // breaker closes), and after max_receive_count tries lands in the response
                // DLQ, which status drains too — a response is never lost.
                tracing::warn!(message_id = %message.message_id, error.message = %error, "could not record a status update; it will be retried");
                Settle::Leave
            }
        }
    }

    /// Records one response message.
    pub async fn apply_response_message(&self, body: &str) -> Result<Applied, ApplyError> {
        let response = PhotoResponse::decode(body)?;
        let (step, event) = response.event();
        let span = tracing::info_span!("status", job_id = %response.job_id, photo_id = %response.photo_id, attempt = response.attempt, state = %event.state);
        Ok(self.record(&response.job_id, &response.photo_id, step, event).instrument(span).await?)
    }

    /// Records a dead-lettered request as a failed photo.
    pub async fn apply_dead_letter(&self, body: &str) -> Result<Applied, ApplyError> {
        let request = PhotoRequest::decode(body)?;
        let stage = request.current_segment().map(|s| s.stage.clone()).unwrap_or_default();
        let mut event = EventDoc::new(request.attempt, PhotoState::Failed);
        event.stage = Some(stage.clone());
        event.error = Some(PhotoError::new(
            ErrorCode::GaveUp,
            format!(
                "gave up after {} attempts in the {stage} stage: processing this photo repeatedly crashed or timed out a worker. Retry it, or look for photo_id={} in the worker logs.",
                self.settings.max_receive_count, request.photo_id
            ),
        ));
        let span = tracing::info_span!("status", job_id = %request.job_id, photo_id = %request.photo_id, attempt = request.attempt, state = "failed");
        let applied =
            self.record(&request.job_id, &request.photo_id, keys::TERMINAL_STEP, event).instrument(span).await?;
        metrics::counter!("darkroom_dead_letters_total", "stage" => stage).increment(1);
        Ok(applied)
    }

    /// Writes the event, then reads the job's manifest: a deletion is seen whichever way it
    /// interleaves with the write. A deletion that removed the manifest before the read
    /// (its sweep may have listed the photo before the event landed) is swept here; one
    /// that removes it after the read lists the photo after the write, so its own sweep
    /// takes the event. Reading first and writing after would leave the event of a job
    /// swept in between for ever.
    async fn record(
        &self,
        job: &darkroom_core::JobId,
        photo: &darkroom_core::PhotoId,
        step: u32,
        event: EventDoc,
    ) -> Result<Applied, StoreError> {
        let key = keys::event(job, photo, event.attempt, event.state, step);
        let finished = event.state.is_finished();
        let outcome = put_json_if_absent(self.store.as_ref(), &key, &event).await?;
        if outcome == PutOutcome::Created {
            let change = darkroom_jobs::event_change(job, photo, step, &event);
            darkroom_jobs::log_change(self.store.as_ref(), job, &change).await;
        }
        let manifest = match get_json::<JobManifest>(self.store.as_ref(), &keys::job_manifest(job)).await {
            Ok(manifest) => Some(manifest),
            Err(JsonDocError::Store(error)) if error.is_not_found() => {
                // Deleted while the photo was in work: the worker's outputs, written after the
                // deletion, and this event are swept here (its last report comes after its
                // last write), and the job's change log with them.
                tracing::info!("job no longer exists; dropping the update and the photo's leftovers");
                sweep_deleted_photo(self.store.as_ref(), job, photo).await?;
                delete_prefix(self.store.as_ref(), &keys::changes_prefix(job)).await?;
                return Ok(Applied::JobGone);
            }
            Err(JsonDocError::Store(error)) => return Err(error),
            // Unreadable: the state is still recorded; only a webhook cannot be scheduled.
            Err(JsonDocError::Corrupt { key, written_by, source }) => {
                tracing::error!(key, written_by, error.message = %source, "the job manifest does not parse (if it was written by a newer darkroom, upgrade this process); its webhook is not scheduled");
                None
            }
        };
        if outcome == PutOutcome::AlreadyExists {
            return Ok(Applied::AlreadyRecorded);
        }
        self.jobs.changed(job);
        tracing::info!("photo state recorded");
        if let (true, Some(manifest)) = (finished, manifest) {
            if manifest.callback_url.is_some() {
                let mut finishing = self.finishing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                finishing.insert(job.clone(), manifest);
            }
        }
        Ok(Applied::Recorded)
    }
}

/// Status's handler of one queue: responses, or dead letters of requests or responses.
struct SourceHandler {
    status: Arc<StatusUpdater>,
    source: Source,
}

#[darkroom_consumer::async_trait]
impl Handler for SourceHandler {
    async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        _: Place,
        _: &CancellationToken,
    ) -> Settle {
        self.status.handle(queue, self.source, message).await
    }
}
