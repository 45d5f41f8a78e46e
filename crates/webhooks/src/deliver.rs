//! Delivering webhooks from the webhook queue: one message per finish of a job. A delivery
//! POSTs the job view, signed (see `sign`), to the job's callback URL through a client that
//! reaches public addresses only (see `target`). A 2xx answer delivers it; anything else —
//! another status, a refused connection, a timeout — is logged on the job and tried again
//! later, with the delay doubling from `retry_delay` up to 15 minutes, by re-sending the
//! message with a delay: the retries live in the queue, so they survive restarts of every
//! process. After `max_tries` the delivery is given up, and the log says so.

use crate::sign::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::target::{check_url, GuardedResolver};
use darkroom_consumer::{serve, DeferralReason, Handler, LoopSettings, Place, Settle};
use darkroom_core::{keys, now_millis, JobId, JobManifest, QueueNames, WebhookRequest};
use darkroom_jobs::{finish_name, Jobs, JobsError};
use darkroom_queue::{OutgoingMessage, Queue, QueueDirectory, ReceivedMessage, MAX_DELAY};
use darkroom_store::json::put_json;
use darkroom_store::ObjectStore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The HMAC key deliveries are signed with; without one, nothing is delivered.
    pub secret: Option<String>,
    /// Lets callback URLs reach loopback and private addresses (a receiver on the same
    /// host or network; tests).
    pub allow_internal: bool,
    /// The wait before the first retry; each further retry waits twice as long.
    pub retry_delay: Duration,
    /// Deliveries tried before one is given up.
    pub max_tries: u32,
    /// How long one delivery may take, connection and answer.
    pub timeout: Duration,
    /// The queue's long-poll wait.
    pub wait_time: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: None,
            allow_internal: false,
            retry_delay: Duration::from_secs(10),
            max_tries: 12,
            timeout: Duration::from_secs(10),
            wait_time: Duration::from_secs(20),
        }
    }
}

/// One delivery attempt, as logged on the job (`GET /api/v1/jobs/<id>/webhook`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    /// When it was tried (ms since the epoch).
    pub at: u64,
    /// Which finish of the job it reported (the `X-Darkroom-Delivery` header).
    pub delivery: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub delivered: bool,
    /// When it failed: seconds until the next try, or none if this was the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("could not build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The delay before retry `tries` (1 for the first retry): doubling from `first`, at most
/// SQS's longest message delay (15 minutes).
pub fn retry_delay(first: Duration, tries: u32) -> Duration {
    first.saturating_mul(1u32 << tries.saturating_sub(1).min(16)).min(MAX_DELAY)
}

/// The identifier of one finish's deliveries, as the receiver sees it.
pub fn delivery_id(job: &JobId, finish: &str) -> String {
    format!("{job}-{finish}")
}

/// Deliveries one process makes at once.
const MAX_IN_FLIGHT: usize = 16;

pub struct Deliverer {
    store: Arc<dyn ObjectStore>,
    queues: QueueDirectory,
    names: QueueNames,
    jobs: Jobs,
    client: reqwest::Client,
    settings: WebhookSettings,
}

enum Handled {
    /// Done with the message (delivered, given up, or nothing to deliver): delete it.
    Finished,
    /// A later try was queued: delete this one.
    Rescheduled,
    /// The store could not be read: try the same message later without spending a try.
    StoreUnavailable(String),
}

impl Deliverer {
    /// Delivers over the store and queues of `jobs`, the process's one job context.
    pub fn new(jobs: Jobs, settings: WebhookSettings) -> Result<Self, WebhookError> {
        let (store, queues, names) = (jobs.store().clone(), jobs.queues().clone(), jobs.names().clone());
        let allow_internal = settings.allow_internal;
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
            // Not followed: a 301/302 would turn the POST into a bodiless GET, and the signed
            // body must go only where the job said. A redirect is a failed try, logged with
            // where it pointed.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy() // a proxy would make the connection, unchecked
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("darkroom-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { store, queues, names, jobs, client, settings })
    }

    /// Delivers webhooks until `shutdown`. Waits for the webhook queue to exist (created by
    /// `darkroom setup`) rather than failing the process that runs it.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let name = self.names.webhooks();
        if self.settings.secret.is_none() {
            // Left queued for a status process that can sign them, instead of spending their tries.
            tracing::info!(queue = name, "webhooks are off here (no --webhook-secret): any queued ones wait for a status process with the secret");
            return;
        }
        let queue = loop {
            match self.queues.get(&name).await {
                Ok(queue) => break queue,
                Err(error) => {
                    tracing::error!(queue = name, error.message = %error, "cannot open the webhook queue; no webhook is delivered until it exists (run `darkroom setup`)");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(60)) => {}
                    }
                }
            }
        };
        // Deliveries run side by side, up to MAX_IN_FLIGHT: a receiver that never answers
        // holds one place for its timeout, not everyone's turn. No breaker: a delivery that
        // meets an outage defers its message without spending its tries. On shutdown,
        // deliveries under way finish (each is bounded by its timeout); the rest stay queued.
        let settings = LoopSettings {
            places: MAX_IN_FLIGHT,
            wait_time: self.settings.wait_time,
            drain_deadline: self.settings.timeout + Duration::from_secs(5),
        };
        serve(queue, self, settings, None, shutdown).await;
    }

    async fn deliver(&self, queue: &Arc<dyn Queue>, request: &WebhookRequest) -> Handled {
        match self.deliver_or_store_error(queue, request).await {
            Ok(handled) => handled,
            Err(error) if error.is_retryable() => Handled::StoreUnavailable(error.to_string()),
            Err(error) => {
                tracing::error!(error.message = %error, "cannot deliver this webhook: the job's documents are unreadable");
                Handled::Finished
            }
        }
    }

    async fn deliver_or_store_error(
        &self,
        queue: &Arc<dyn Queue>,
        request: &WebhookRequest,
    ) -> Result<Handled, JobsError> {
        let job_id = &request.job_id;
        let Some(job) = self.jobs.load_job(job_id).await? else {
            tracing::info!("the job was deleted; its webhook is dropped");
            return Ok(Handled::Finished);
        };
        let Some(callback_url) = job.callback_url.clone() else {
            return Ok(Handled::Finished);
        };
        if self.store.head(&keys::webhook_delivered(job_id, &request.finish)).await?.is_some() {
            tracing::info!("already delivered; dropping a duplicate");
            return Ok(Handled::Finished);
        }
        let view = self.jobs.load_view_in_full(&job).await?;
        if !view.state.is_finished() || finish_name(&view) != request.finish {
            // Retried or reprocessed since: its next finish is reported on its own.
            tracing::info!("the job changed since this finish; the webhook of its next finish replaces it");
            return Ok(Handled::Finished);
        }
        let body = serde_json::to_vec(&view).map_err(|error| JobsError::Corrupt {
            key: keys::job_manifest(job_id),
            message: format!("the job view does not serialise: {error}"),
        })?;
        let attempt = request.tries + 1;
        let result = self.post(&job, &callback_url, &request.finish, body).await;
        let mut record = DeliveryRecord {
            at: now_millis(),
            delivery: request.finish.clone(),
            attempt,
            status: None,
            error: None,
            delivered: false,
            retry_in_seconds: None,
        };
        match result {
            Ok(status) if status.is_success() => {
                record.status = Some(status.as_u16());
                record.delivered = true;
            }
            Ok(status) => {
                record.status = Some(status.as_u16());
                record.error = Some(format!("the receiver answered {status}"));
            }
            Err(PostError::Redirected { status, location }) => {
                record.status = Some(status);
                record.error = Some(format!(
                    "the receiver answered {status}, a redirect to {location}: webhooks do not follow redirects; use that address as the callback_url"
                ));
            }
            Err(PostError::Failed(error)) => record.error = Some(error),
        }
        let retry = (!record.delivered && attempt < self.settings.max_tries)
            .then(|| retry_delay(self.settings.retry_delay, attempt));
        record.retry_in_seconds = retry.map(|delay| delay.as_secs());
        put_json(self.store.as_ref(), &keys::webhook_delivery(job_id, &request.finish, record.at), &record).await?;
        if record.delivered {
            put_json(self.store.as_ref(), &keys::webhook_delivered(job_id, &request.finish), &record).await?;
            tracing::info!(status = record.status, "webhook delivered");
            metrics::counter!("darkroom_webhooks_total", "result" => "delivered").increment(1);
            return Ok(Handled::Finished);
        }
        let reason = record.error.clone().unwrap_or_default();
        let host =
            url::Url::parse(&callback_url).ok().and_then(|url| url.host_str().map(str::to_owned)).unwrap_or_default();
        let answer = match record.status {
            Some(status) => format!("{}xx", status / 100),
            None => "none".to_owned(),
        };
        let Some(delay) = retry else {
            tracing::warn!(host, reason, "webhook given up after {attempt} tries");
            metrics::counter!("darkroom_webhooks_total", "result" => "given_up", "answer" => answer).increment(1);
            return Ok(Handled::Finished);
        };
        metrics::counter!("darkroom_webhooks_total", "result" => "failed", "answer" => answer).increment(1);
        let next = WebhookRequest { tries: attempt, ..request.clone() };
        let attributes = std::collections::BTreeMap::from([("job_id".to_owned(), job_id.to_string())]);
        match queue.send(OutgoingMessage::new(next.encode(), attributes).with_delay(delay)).await {
            Ok(()) => {
                tracing::warn!(
                    host,
                    reason,
                    retry_in_seconds = delay.as_secs(),
                    "webhook delivery failed; it will be tried again"
                );
                Ok(Handled::Rescheduled)
            }
            Err(error) => {
                // Kept: the same message comes back after its visibility timeout.
                tracing::warn!(host, reason, error.message = %error, "webhook delivery failed and its retry could not be queued; the message returns after its visibility timeout");
                Err(JobsError::Queue(error))
            }
        }
    }

    /// POSTs `body` to `url`; the receiver's status, or why there is none.
    async fn post(
        &self,
        job: &JobManifest,
        url: &str,
        finish: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::StatusCode, PostError> {
        let secret = self.settings.secret.as_deref().filter(|secret| !secret.is_empty()).ok_or_else(|| {
            PostError::Failed("this deployment has no webhook secret to sign with: set --webhook-secret (DARKROOM_WEBHOOK_SECRET) on the status processes".to_owned())
        })?;
        let url = check_url(url, self.settings.allow_internal).map_err(|error| PostError::Failed(error.to_string()))?;
        let timestamp = now_millis() / 1000;
        let signature = sign(secret.as_bytes(), timestamp, &body);
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Darkroom-Event", "job.finished")
            .header("X-Darkroom-Delivery", delivery_id(&job.id, finish))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|error| PostError::Failed(describe(error)))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map_or_else(|| "nowhere".to_owned(), |value| value.chars().take(200).collect());
            return Err(PostError::Redirected { status: status.as_u16(), location });
        }
        Ok(status)
    }
}

/// Why a POST got no usable answer.
enum PostError {
    Redirected { status: u16, location: String },
    Failed(String),
}

/// A transport error in words, with its causes (reqwest's own message is "error sending
/// request" and the reason is further down the chain).
fn describe(error: reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_owned() } else { error.to_string() };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Handles one message of the webhook queue, and says what becomes of it.
#[darkroom_consumer::async_trait]
impl Handler for Deliverer {
    async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        _: Place,
        _: &CancellationToken,
    ) -> Settle {
        let request = match WebhookRequest::decode(&message.body) {
            Ok(request) => request,
            Err(error) if error.is_newer_version() => return Settle::LeaveUnreadable(error.to_string()),
            Err(error) => {
                // Never deleted: after its receive budget it lands in the dead-letter queue.
                tracing::error!(message_id = %message.message_id, error.message = %error, "a webhook message that does not parse: left for the dead-letter queue");
                return Settle::Leave;
            }
        };
        let span = tracing::info_span!("webhook", job_id = %request.job_id, delivery = %request.finish, attempt = request.tries + 1);
        let handled = tracing::Instrument::instrument(self.deliver(queue, &request), span).await;
        match handled {
            // A duplicate after a failed delete is recognised by its delivery marker.
            Handled::Finished | Handled::Rescheduled => Settle::Delete,
            Handled::StoreUnavailable(reason) => {
                tracing::warn!(job_id = %request.job_id, reason, "webhook postponed: the store is unavailable");
                Settle::Defer { delay: Duration::from_secs(30), reason: DeferralReason::Outage }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_the_longest_queue_delay() {
        let first = Duration::from_secs(10);
        assert_eq!(retry_delay(first, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(first, 2), Duration::from_secs(20));
        assert_eq!(retry_delay(first, 4), Duration::from_secs(80));
        assert_eq!(retry_delay(first, 11), MAX_DELAY);
        assert_eq!(retry_delay(first, 400), MAX_DELAY);
    }
}
