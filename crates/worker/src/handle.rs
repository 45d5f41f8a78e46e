//! One request message, start to finish: the worker's unit of work, public so tests can
//! drive it one message at a time. The order of effects is the at-least-once contract:
//! outputs are stored, then the response (or the forward to the next stage) is sent, and
//! only then is the request deleted. A crash anywhere before the delete means the message
//! comes back and the photo is redone — into the same keys, so the redo is invisible.

use crate::heartbeat::Heartbeat;
use crate::render::{render, RenderInput, Rendered};
use crate::Worker;
use darkroom_core::job::PhotoState;
use darkroom_core::{keys, ErrorCode, OutputInfo, PhotoError, PhotoRequest, PhotoResponse, PhotoUpdate};
use darkroom_queue::{OutgoingMessage, Queue, ReceivedMessage};
use darkroom_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last segment is done and the response sent.
    Completed,
    /// This segment is done and the photo handed to the next stage.
    Forwarded,
    /// The photo cannot be processed (undecodable, over limits, bad crop box): failed at once.
    Failed,
    /// This attempt was already finished by an earlier delivery.
    Duplicate,
    /// The job was deleted while the message waited.
    Cancelled,
    /// The message was not a request this build understands; deleted.
    Malformed,
    /// A transient error (store or queue unavailable): the message will come back.
    Retrying,
    /// The operation panicked: the message is left to come back, and after
    /// max_receive_count deliveries it goes to the dead-letter queue.
    Panicked,
    /// Shutdown ran out of time: the message was made visible again for another worker.
    Released,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Forwarded => "forwarded",
            Self::Failed => "failed",
            Self::Duplicate => "duplicate",
            Self::Cancelled => "cancelled",
            Self::Malformed => "malformed",
            Self::Retrying => "retrying",
            Self::Panicked => "panicked",
            Self::Released => "released",
        }
    }
}

enum Step {
    Finished,
    Forwarded,
    AlreadyDone,
}

enum StepError {
    Transient(String),
    Permanent(PhotoError),
    JobGone,
    Panicked(String),
    Abandoned,
}

fn transient(context: &str, error: impl std::fmt::Display) -> StepError {
    StepError::Transient(format!("{context}: {error}"))
}

fn store_error(context: &str, error: StoreError) -> StepError {
    if error.is_retryable() {
        transient(context, error)
    } else {
        StepError::Permanent(PhotoError::new(ErrorCode::Internal, format!("{context}: {error}")))
    }
}

/// How long a message that hit a transient error stays hidden before it is retried:
/// doubling with each delivery, capped at a minute.
fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.clamp(1, 6)).min(Duration::from_secs(60))
}

impl Worker {
    /// Processes one received request message. `abandon` is cancelled when shutdown's
    /// drain deadline passes: the message is then released for another worker.
    pub async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: ReceivedMessage,
        abandon: &CancellationToken,
    ) -> Outcome {
        let request = match PhotoRequest::decode(&message.body) {
            Ok(request) => request,
            Err(error) => {
                // Retrying cannot make it parse: delete now rather than let it cycle to the DLQ.
                tracing::error!(message_id = %message.message_id, queue = queue.name(), error.message = %error, "deleting a malformed request message");
                metrics::counter!("darkroom_messages_malformed_total", "queue" => queue.name().to_owned()).increment(1);
                self.delete(queue, &message).await;
                return Outcome::Malformed;
            }
        };
        let stage = request.current_segment().map(|s| s.stage.clone()).unwrap_or_default();
        if message.receive_count > 1 {
            metrics::counter!("darkroom_redeliveries_total", "stage" => stage.clone()).increment(1);
        }
        let span = tracing::info_span!("photo", job_id = %request.job_id, photo_id = %request.photo_id, stage = %stage, attempt = request.attempt, receive_count = message.receive_count);
        let outcome = self.handle_request(queue, &message, &request, abandon).instrument(span.clone()).await;
        metrics::counter!("darkroom_photos_processed_total", "stage" => stage, "outcome" => outcome.label())
            .increment(1);
        span.in_scope(|| tracing::info!(outcome = outcome.label(), "message handled"));
        outcome
    }

    async fn handle_request(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        request: &PhotoRequest,
        abandon: &CancellationToken,
    ) -> Outcome {
        let heartbeat = Heartbeat::start(
            queue.clone(),
            message.receipt_handle.clone(),
            self.settings.visibility_timeout,
            self.settings.heartbeat_interval,
        );
        let result = tokio::select! {
            result = self.run_segment(request) => result,
            () = abandon.cancelled() => Err(StepError::Abandoned),
        };
        heartbeat.stop();
        match result {
            Ok(Step::Finished) => {
                self.delete(queue, message).await;
                Outcome::Completed
            }
            Ok(Step::Forwarded) => {
                self.delete(queue, message).await;
                Outcome::Forwarded
            }
            Ok(Step::AlreadyDone) => {
                tracing::info!("attempt already finished by an earlier delivery; deleting the duplicate");
                self.delete(queue, message).await;
                Outcome::Duplicate
            }
            Err(StepError::JobGone) => {
                // The job was deleted while this photo was under way: what an earlier segment
                // or delivery wrote after the deletion would otherwise stay behind.
                tracing::info!("job no longer exists (deleted); dropping its request and its leftovers");
                let leftovers = keys::photo_prefix(&request.job_id, &request.photo_id);
                if let Err(error) = darkroom_store::delete_prefix(self.store.as_ref(), &leftovers).await {
                    tracing::warn!(error.message = %error, "could not delete the leftovers of a deleted job");
                }
                self.delete(queue, message).await;
                Outcome::Cancelled
            }
            Err(StepError::Permanent(error)) => {
                tracing::warn!(error.code = error.code.as_str(), error.message = %error.message, "photo failed");
                match self.respond(request, PhotoUpdate::Failed { error }).await {
                    Ok(()) => {
                        self.delete(queue, message).await;
                        Outcome::Failed
                    }
                    Err(send_error) => {
                        tracing::warn!(error.message = %send_error, "could not report the failure; will retry");
                        self.release(queue, message, retry_delay(message.receive_count)).await;
                        Outcome::Retrying
                    }
                }
            }
            Err(StepError::Transient(reason)) => {
                let delay = retry_delay(message.receive_count);
                tracing::warn!(error.message = %reason, retry_in_seconds = delay.as_secs(), "transient failure; the message will be retried");
                self.release(queue, message, delay).await;
                Outcome::Retrying
            }
            Err(StepError::Panicked(reason)) => {
                // Not deleted: it comes back after the visibility timeout, and after
                // max_receive_count deliveries it is dead-lettered and shown as failed.
                tracing::error!(error.message = %reason, "photo processing panicked; leaving the message for redelivery");
                Outcome::Panicked
            }
            Err(StepError::Abandoned) => {
                tracing::warn!("shutdown deadline reached; releasing the photo to another worker");
                self.release(queue, message, Duration::ZERO).await;
                Outcome::Released
            }
        }
    }

    async fn run_segment(&self, request: &PhotoRequest) -> Result<Step, StepError> {
        let (job, photo, attempt) = (&request.job_id, &request.photo_id, request.attempt);
        match self.store.head(&keys::job_manifest(job)).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(StepError::JobGone),
            Err(error) => return Err(store_error("checking the job", error)),
        }
        if request.is_last_segment() {
            for state in [PhotoState::Done, PhotoState::Failed] {
                match self.store.head(&keys::event(job, photo, attempt, state, 0)).await {
                    Ok(Some(_)) => return Ok(Step::AlreadyDone),
                    Ok(None) => {}
                    Err(error) => return Err(store_error("checking earlier deliveries", error)),
                }
            }
        }
        let Some(segment) = request.current_segment().cloned() else {
            return Err(StepError::Permanent(PhotoError::new(
                ErrorCode::Internal,
                "the request names a pipeline segment its plan does not have",
            )));
        };
        self.respond(
            request,
            PhotoUpdate::Processing { stage: segment.stage.clone(), segment: request.segment as u32 },
        )
        .await
        .map_err(|e| transient("reporting progress", e))?;

        let input_key = match request.segment {
            0 => keys::original(job, photo),
            n => keys::intermediate(job, photo, attempt, n - 1),
        };
        let bytes = match self.store.get(&input_key).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_not_found() => {
                // The job manifest exists, so this is not a deletion in progress.
                return Err(StepError::Permanent(PhotoError::new(
                    ErrorCode::Internal,
                    "the photo's input is missing from the store",
                )));
            }
            Err(error) => return Err(store_error("reading the photo", error)),
        };
        let input = RenderInput {
            bytes,
            ops: request.current_ops().to_vec(),
            is_first_segment: request.segment == 0,
            is_last_segment: request.is_last_segment(),
            format: request.recipe.format,
            quality: request.recipe.quality,
            frame: request.frame,
            limits: self.settings.limits.into(),
        };
        let _cpu_slot = self.cpu_slots.acquire().await.map_err(|e| transient("waiting for a CPU slot", e))?;
        let started = std::time::Instant::now();
        let span = tracing::Span::current();
        let rendered = match tokio::task::spawn_blocking(move || span.in_scope(|| render(input))).await {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(error)) => return Err(StepError::Permanent(PhotoError::new(error.code(), error.to_string()))),
            Err(join) if join.is_panic() => return Err(StepError::Panicked(panic_message(join))),
            Err(join) => return Err(transient("image task", join)),
        };
        metrics::histogram!("darkroom_segment_seconds", "stage" => segment.stage.clone())
            .record(started.elapsed().as_secs_f64());

        let mut outputs = request.outputs.clone();
        outputs.extend(self.store_outputs(request, &rendered).await?);
        match request.forwarded(Some(rendered.frame), outputs.clone()) {
            None => {
                self.respond(request, PhotoUpdate::Done { outputs })
                    .await
                    .map_err(|e| transient("reporting completion", e))?;
                Ok(Step::Finished)
            }
            Some(next) => {
                let intermediate = rendered.intermediate.unwrap_or_default();
                self.store
                    .put(&keys::intermediate(job, photo, attempt, request.segment), intermediate.into(), "image/png")
                    .await
                    .map_err(|e| store_error("storing the intermediate image", e))?;
                let next_stage = next.current_segment().map(|s| s.stage.clone()).unwrap_or_default();
                let queue = self
                    .queues
                    .get(&self.names.requests(&next_stage))
                    .await
                    .map_err(|e| transient("opening the next stage's queue", e))?;
                queue
                    .send(OutgoingMessage::new(next.encode(), next.attributes()))
                    .await
                    .map_err(|e| transient("forwarding to the next stage", e))?;
                tracing::info!(next_stage = %next_stage, "segment done; forwarded");
                Ok(Step::Forwarded)
            }
        }
    }

    async fn store_outputs(&self, request: &PhotoRequest, rendered: &Rendered) -> Result<Vec<OutputInfo>, StepError> {
        let mut outputs = Vec::new();
        for file in &rendered.files {
            let key =
                keys::output(&request.job_id, &request.photo_id, request.attempt, file.name, file.format.extension());
            let size = file.bytes.len() as u64;
            self.store
                .put(&key, file.bytes.clone().into(), file.format.content_type())
                .await
                .map_err(|e| store_error("storing an output", e))?;
            outputs.push(OutputInfo {
                name: file.name.to_owned(),
                key,
                content_type: file.format.content_type().to_owned(),
                width: file.width,
                height: file.height,
                size,
            });
        }
        Ok(outputs)
    }

    async fn respond(&self, request: &PhotoRequest, update: PhotoUpdate) -> Result<(), darkroom_queue::QueueError> {
        let response = PhotoResponse::new(request.job_id.clone(), request.photo_id.clone(), request.attempt, update);
        let queue = self.queues.get(&self.names.responses()).await?;
        queue.send(OutgoingMessage::new(response.encode(), response.attributes())).await
    }

    async fn delete(&self, queue: &Arc<dyn Queue>, message: &ReceivedMessage) {
        if let Err(error) = queue.delete(&message.receipt_handle).await {
            // The work is done and recorded; a redelivery will find it done and delete again.
            metrics::counter!("darkroom_delete_failures_total", "queue" => queue.name().to_owned()).increment(1);
            tracing::warn!(message_id = %message.message_id, error.message = %error, "could not delete a handled message; a redelivery will be recognised as a duplicate");
        }
    }

    async fn release(&self, queue: &Arc<dyn Queue>, message: &ReceivedMessage, delay: Duration) {
        if let Err(error) = queue.change_visibility(&message.receipt_handle, delay).await {
            tracing::warn!(message_id = %message.message_id, error.message = %error, "could not release the message; it returns after its visibility timeout");
        }
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".to_owned())
}
