//! Message queues with Amazon SQS semantics (DESIGN.md "Queue semantics"): at-least-once
//! delivery, a visibility timeout that hides a received message until it is deleted or
//! the timeout lapses, `ChangeMessageVisibility` for heartbeats, a receive count and a
//! dead-letter queue after `max_receive_count` receives, long polling, batches of up to
//! ten. The embedded implementation keeps them in SQLite; the SQS one talks to Amazon SQS
//! or LocalStack. Both pass `tests/contract.rs`. Queues know nothing of photos.

mod backoff;
mod directory;
mod error;
mod sqlite;
#[cfg(feature = "sqs")]
mod sqs;

#[cfg(feature = "sqs")]
pub use aws_sdk_sqs;
pub use backoff::ReceiveBackoff;
pub use directory::QueueDirectory;
pub use error::QueueError;
pub use sqlite::SqliteQueues;
#[cfg(feature = "sqs")]
pub use sqs::SqsQueues;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// SQS's limits, enforced by every implementation so the embedded mode cannot accept
/// what the cloud would refuse.
pub const MAX_BATCH: usize = 10;
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const MAX_WAIT: Duration = Duration::from_secs(20);
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// SQS's longest per-message delivery delay (`DelaySeconds`).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub visibility_timeout: Duration,
    /// After this many receives, the next receive moves the message to the dead-letter queue.
    pub max_receive_count: u32,
    pub dead_letter_queue: Option<String>,
}

impl QueueSpec {
    /// A dead-letter queue: no redrive of its own.
    pub fn dead_letter(name: impl Into<String>, visibility_timeout: Duration) -> Self {
        Self { name: name.into(), visibility_timeout, max_receive_count: 0, dead_letter_queue: None }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// How long the message stays invisible after it is sent (at most [`MAX_DELAY`], whole
    /// seconds on SQS): a consumer that defers work re-sends it with a delay instead of
    /// spending the message's receive budget.
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>, attributes: BTreeMap<String, String>) -> Self {
        Self { body: body.into(), attributes, delay: Duration::ZERO }
    }

    pub fn with_delay(self, delay: Duration) -> Self {
        Self { delay: delay.min(MAX_DELAY), ..self }
    }

    /// The size SQS charges against its 256 KiB limit: body plus attribute names and values.
    pub fn size(&self) -> usize {
        self.body.len() + self.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// Proof of one particular receive; needed to delete the message or change its visibility.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptHandle(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: ReceiptHandle,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// How many times this message has been received, this receive included.
    pub receive_count: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages that a receive could return now (SQS `ApproximateNumberOfMessages`).
    pub visible: u64,
    /// Received and not yet deleted, or sent with a delay that has not passed
    /// (`ApproximateNumberOfMessagesNotVisible` + `…Delayed`).
    pub in_flight: u64,
}

#[async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// Sends up to [`MAX_BATCH`] messages; all are stored, or an error is returned.
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError>;

    /// Receives up to `max` (1–10) messages, waiting up to `wait` (≤ 20 s) for the first
    /// one to arrive. Returns an empty batch when the wait ends with nothing to deliver.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes a received message. A stale handle (the message was received again since)
    /// succeeds without deleting, as on SQS.
    async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError>;

    /// Hides the message for `timeout` from now (0 makes it visible at once).
    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError>;

    async fn counts(&self) -> Result<QueueCounts, QueueError>;

    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        self.send_batch(std::slice::from_ref(&message)).await
    }
}

#[async_trait]
pub trait QueueBackend: Send + Sync + std::fmt::Debug {
    /// Creates the queue or brings its attributes up to date; idempotent.
    async fn create_queue(&self, spec: &QueueSpec) -> Result<(), QueueError>;

    /// Opens an existing queue; [`QueueError::QueueNotFound`] says to run `darkroom setup`.
    async fn open(&self, name: &str) -> Result<Arc<dyn Queue>, QueueError>;
}

pub(crate) fn check_batch(queue: &str, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return Err(QueueError::BadBatch { queue: queue.to_owned(), count: messages.len() });
    }
    if let Some(big) = messages.iter().find(|m| m.size() > MAX_MESSAGE_BYTES) {
        return Err(QueueError::MessageTooLarge { queue: queue.to_owned(), size: big.size() });
    }
    Ok(())
}
