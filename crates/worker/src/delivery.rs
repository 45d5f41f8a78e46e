//! One request message, start to finish: the worker's unit of work, public so tests can
//! drive it one message at a time. The order of effects is the at-least-once contract:
//! outputs are stored, then the response (or the forward to the next stage) is sent, and
//! only then is the request deleted. A crash anywhere before the delete means the message
//! comes back and the photo is redone — into the same keys, so the redo is invisible.
//!
//! What happens to a message that is not finished is decided here, in [`Worker::settle`]:
//! a photo's own fault fails it; a dependency outage defers the message without spending
//! its receive budget; a crash, a panic or a time-out spends one receive, and the queue
//! dead-letters the message when the budget is gone.

use crate::lease::Lease;
use crate::outcome::{defer_delay, retry_delay, Outcome, MAX_DEFERRALS};
use crate::segment::{over_budget_error, Delivery, Step, StepError};
use crate::Worker;
use darkroom_consumer::{defer, deferrals, leave_unreadable, DeferralReason};
use darkroom_core::{ErrorCode, MessageError, PhotoError, PhotoRequest, PhotoUpdate};
use darkroom_jobs::sweep_deleted_photo;
use darkroom_queue::{Queue, ReceivedMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

impl Worker {
    /// Processes one received request message. `abandon` is cancelled when shutdown's
    /// drain deadline passes: the message is then released for another worker.
    pub async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: ReceivedMessage,
        abandon: &CancellationToken,
    ) -> Outcome {
        self.handle_waiting(queue, &message, abandon, None).await
    }

    /// [`Worker::handle`], for a message that holds one of its queue's waiting places
    /// (`waiting`): given back once the photo holds a CPU slot, or is done with.
    pub(crate) async fn handle_waiting(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        abandon: &CancellationToken,
        waiting: Option<darkroom_consumer::Place>,
    ) -> Outcome {
        let waiting = std::sync::Mutex::new(waiting);
        let request = match PhotoRequest::decode(&message.body) {
            Ok(request) => request,
            Err(error) => return self.unreadable(queue, message, &error).await,
        };
        let stage = request.current_segment().map(|s| s.stage.clone()).unwrap_or_default();
        if message.receive_count > 1 {
            metrics::counter!("darkroom_redeliveries_total", "stage" => stage.clone()).increment(1);
        }
        let span = tracing::info_span!("photo", job_id = %request.job_id, photo_id = %request.photo_id, stage = %stage, attempt = request.attempt, receive_count = message.receive_count);
        let outcome = self.handle_request(queue, message, &request, abandon, &waiting).instrument(span.clone()).await;
        metrics::counter!("darkroom_photos_processed_total", "stage" => stage, "outcome" => outcome.label())
            .increment(1);
        span.in_scope(|| tracing::info!(outcome = outcome.label(), "message handled"));
        outcome
    }

    /// Never deletes what it cannot read (docs/ARCHITECTURE.md: mixed versions side by side).
    async fn unreadable(&self, queue: &Arc<dyn Queue>, message: &ReceivedMessage, error: &MessageError) -> Outcome {
        if error.is_newer_version() {
            leave_unreadable(queue.as_ref(), message, &error.to_string()).await;
        } else {
            // It will not parse anywhere: after the receive budget the queue moves it to the
            // dead-letter queue, where it stays for an operator to read.
            metrics::counter!("darkroom_messages_malformed_total", "queue" => queue.name().to_owned()).increment(1);
            tracing::error!(message_id = %message.message_id, queue = queue.name(), error.message = %error, "a request message that does not parse: leaving it to the dead-letter queue");
            self.release(queue, message, retry_delay(message.receive_count) * 15).await;
        }
        Outcome::Unreadable
    }

    async fn handle_request(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        request: &PhotoRequest,
        abandon: &CancellationToken,
        waiting: &std::sync::Mutex<Option<darkroom_consumer::Place>>,
    ) -> Outcome {
        let lease = Lease::start(
            queue.clone(),
            message.receipt_handle.clone(),
            self.settings.visibility_timeout,
            self.settings.heartbeat_interval,
        );
        let delivery = Delivery { queue, message, request, abandon, lease: &lease, waiting };
        let result = tokio::select! {
            result = self.run_segment(&delivery) => result,
            () = abandon.cancelled() => Err(StepError::Abandoned),
        };
        let outcome = self.settle(&delivery, result).await;
        lease.stop();
        outcome
    }

    /// Acts on how the segment ended: delete, fail, defer or release the message.
    async fn settle(&self, delivery: &Delivery<'_>, result: Result<Step, StepError>) -> Outcome {
        let (queue, message, request) = (delivery.queue, delivery.message, delivery.request);
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
            Ok(Step::Cancelled) => {
                tracing::info!("the owner cancelled this photo; dropping it, nothing stored");
                self.delete(queue, message).await;
                Outcome::Cancelled
            }
            Err(StepError::JobGone) => {
                // The job was deleted while this photo was under way: what an earlier segment
                // or delivery wrote after the deletion would otherwise stay behind.
                tracing::info!("job no longer exists (deleted); dropping its request and its leftovers");
                if let Err(error) = sweep_deleted_photo(self.store.as_ref(), &request.job_id, &request.photo_id).await {
                    tracing::warn!(error.message = %error, "could not delete the leftovers of a deleted job");
                }
                self.delete(queue, message).await;
                Outcome::Cancelled
            }
            Err(StepError::Permanent(error)) => self.fail(delivery, error, Outcome::Failed).await,
            Err(StepError::Transient(reason)) => self.defer_or_give_up(delivery, &reason).await,
            Err(StepError::Panicked(reason)) => {
                // Not deleted: it comes back after the visibility timeout, and after
                // max_receive_count deliveries it is dead-lettered and shown as failed.
                tracing::error!(error.message = %reason, "photo processing panicked; leaving the message for redelivery");
                Outcome::Panicked
            }
            Err(StepError::OverBudget { stage, budget }) => {
                if message.receive_count >= self.settings.max_receive_count {
                    let error = over_budget_error(&stage, budget, message.receive_count);
                    self.fail(delivery, error, Outcome::Failed).await
                } else {
                    // Maybe this worker was overloaded: another attempt, which spends one receive.
                    self.release(queue, message, retry_delay(message.receive_count)).await;
                    Outcome::TimedOut
                }
            }
            Err(StepError::Abandoned) => {
                tracing::warn!("shutdown deadline reached; releasing the photo to another worker");
                self.release(queue, message, Duration::ZERO).await;
                Outcome::Released
            }
            Err(StepError::LeaseLost) => {
                tracing::warn!("letting go of a message whose lease was lost; it will be redelivered");
                Outcome::LeaseLost
            }
        }
    }

    /// Reports the photo failed, then deletes its request.
    async fn fail(&self, delivery: &Delivery<'_>, error: PhotoError, outcome: Outcome) -> Outcome {
        tracing::warn!(error.code = error.code.as_str(), error.message = %error.message, "photo failed");
        let update = PhotoUpdate::Failed { error };
        match self
            .with_retries(delivery, "reporting the failure", || self.respond(delivery.request, update.clone()))
            .await
        {
            Ok(()) => {
                self.delete(delivery.queue, delivery.message).await;
                outcome
            }
            Err(StepError::LeaseLost) => Outcome::LeaseLost,
            Err(_) => {
                tracing::warn!("could not report the failure; the message will come back");
                self.release(delivery.queue, delivery.message, retry_delay(delivery.message.receive_count)).await;
                Outcome::Retrying
            }
        }
    }

    /// The store or a queue stayed unavailable longer than a message is held: send it back
    /// with a delay (its receive budget untouched), or after hours of that, fail the photo.
    async fn defer_or_give_up(&self, delivery: &Delivery<'_>, reason: &str) -> Outcome {
        let (queue, message) = (delivery.queue, delivery.message);
        let deferred = deferrals(message, DeferralReason::Outage);
        if deferred >= MAX_DEFERRALS {
            let error = PhotoError::new(
                ErrorCode::Unavailable,
                format!("darkroom could not reach its storage or queues for hours while processing this photo ({reason}); retry it once the service is healthy"),
            );
            return self.fail(delivery, error, Outcome::Failed).await;
        }
        let delay = defer_delay(deferred);
        match defer(queue.as_ref(), message, delay, DeferralReason::Outage).await {
            Ok(()) => {
                tracing::warn!(error.message = %reason, deferrals = deferred + 1, retry_in_seconds = delay.as_secs(), "dependencies unavailable: photo deferred (its receive budget is untouched)");
                Outcome::Deferred
            }
            Err(error) => {
                // The queue is down too: the message comes back after a release or its
                // visibility timeout, at the cost of one receive.
                tracing::warn!(error.message = %error, "could not defer the message; releasing it");
                self.release(queue, message, retry_delay(message.receive_count)).await;
                Outcome::Retrying
            }
        }
    }

    async fn delete(&self, queue: &Arc<dyn Queue>, message: &ReceivedMessage) {
        if let Err(error) = queue.delete(&message.receipt_handle).await {
            // The work is done and recorded; a redelivery will find it done and delete again.
            metrics::counter!("darkroom_delete_failures_total", "queue" => queue.name().to_owned()).increment(1);
            tracing::warn!(message_id = %message.message_id, error.message = %error, "could not delete a handled message; a redelivery will be recognised as a duplicate");
        }
    }

    async fn release(&self, queue: &Arc<dyn Queue>, message: &ReceivedMessage, delay: Duration) {
        let delay = delay.min(darkroom_queue::MAX_VISIBILITY_TIMEOUT);
        if let Err(error) = queue.change_visibility(&message.receipt_handle, delay).await {
            tracing::warn!(message_id = %message.message_id, error.message = %error, "could not release the message; it returns after its visibility timeout");
        }
    }
}
