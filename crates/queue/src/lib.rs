//! Message queues with Amazon SQS semantics (docs/ARCHITECTURE.md "Queue semantics"): at-least-once
//! delivery, a visibility timeout that hides a received message until it is deleted or
//! the timeout lapses, `ChangeMessageVisibility` for heartbeats, a receive count and a
//! dead-letter queue after `max_receive_count` receives, long polling, batches of up to
//! ten. The embedded implementation keeps them in SQLite; the SQS one talks to Amazon SQS
//! or LocalStack. Both pass `tests/contract.rs`. Queues know nothing of photos.

mod backoff;
mod directory;
mod error;
mod lanes;
mod sqlite;
#[cfg(feature = "sqs")]
mod sqs;
mod turns;

#[cfg(feature = "sqs")]
pub use aws_sdk_sqs;
pub use backoff::ReceiveBackoff;
pub use directory::QueueDirectory;
pub use error::QueueError;
pub use lanes::{lane_name, LanedQueue};
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
    /// Lanes a fairly shared queue is spread over where the backend cannot take turns
    /// between message groups by itself (SQS: see `sqs.rs`); 1 for an ordinary queue.
    pub lanes: usize,
}

impl QueueSpec {
    /// A queue whose messages go to `dead_letter_queue` after `max_receive_count` receives.
    pub fn new(
        name: impl Into<String>,
        visibility_timeout: Duration,
        max_receive_count: u32,
        dead_letter_queue: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            visibility_timeout,
            max_receive_count,
            dead_letter_queue: Some(dead_letter_queue.into()),
            lanes: 1,
        }
    }

    /// A dead-letter queue: no redrive of its own.
    pub fn dead_letter(name: impl Into<String>, visibility_timeout: Duration) -> Self {
        Self { name: name.into(), visibility_timeout, max_receive_count: 0, dead_letter_queue: None, lanes: 1 }
    }

    /// Spread over `lanes` lanes where the backend needs them for fairness.
    pub fn with_lanes(self, lanes: usize) -> Self {
        Self { lanes: lanes.clamp(1, MAX_LANES), ..self }
    }
}

/// The most lanes a queue is spread over.
pub const MAX_LANES: usize = 16;

/// Whose work a message is, for fair receiving (docs/ARCHITECTURE.md, "Fair sharing"):
/// receives take turns between tenants that have messages waiting, and within a tenant
/// between its flows, so one tenant's backlog never makes another's messages wait for all
/// of it. Within a flow, messages keep their order. Messages without a group share one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageGroup {
    /// Who the work is for: an access key, or a client network.
    pub tenant: String,
    /// One stream of work of that tenant: a job's first attempts, or its retries.
    pub flow: String,
}

impl MessageGroup {
    pub fn new(tenant: impl Into<String>, flow: impl Into<String>) -> Self {
        Self { tenant: tenant.into(), flow: flow.into() }
    }

    /// One string naming the group.
    pub fn id(&self) -> String {
        format!("{}/{}", self.tenant, self.flow)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// Whose turn the message waits for; `None` shares one group with every other such.
    pub group: Option<MessageGroup>,
    /// The partition (lane) to send to when the queue has several, as the message's
    /// previous stage had it, so a flow stays in one lane from stage to stage.
    pub partition_hint: Option<usize>,
    /// How long the message stays invisible after it is sent (at most [`MAX_DELAY`], whole
    /// seconds on SQS): a consumer that defers work re-sends it with a delay instead of
    /// spending the message's receive budget.
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>, attributes: BTreeMap<String, String>) -> Self {
        Self { body: body.into(), attributes, delay: Duration::ZERO, group: None, partition_hint: None }
    }

    pub fn in_group(self, group: Option<MessageGroup>) -> Self {
        Self { group, ..self }
    }

    pub fn with_partition_hint(self, partition: Option<usize>) -> Self {
        Self { partition_hint: partition, ..self }
    }

    pub fn with_delay(self, delay: Duration) -> Self {
        Self { delay: delay.min(MAX_DELAY), ..self }
    }

    /// The size SQS charges against its 256 KiB limit: body plus attribute names and values,
    /// the group's included (the SQS queue sends it as two attributes).
    pub fn size(&self) -> usize {
        let group = self.group.as_ref().map_or(0, |group| 32 + group.tenant.len() + group.flow.len());
        self.body.len() + self.attributes.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + group
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
    /// The group it was sent in.
    pub group: Option<MessageGroup>,
    /// Which partition of its queue it came from (0 when the queue has one).
    pub partition: usize,
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

    /// The parts a consumer receives from one by one, when the queue is spread over several
    /// (SQS lanes, see `sqs.rs`); empty when the queue is its own only part.
    fn partitions(&self) -> Vec<Arc<dyn Queue>> {
        Vec::new()
    }
}

/// The queues a consumer of `queue` receives from: its partitions, or the queue itself.
pub fn receiving_parts(queue: &Arc<dyn Queue>) -> Vec<Arc<dyn Queue>> {
    let parts = queue.partitions();
    if parts.is_empty() {
        vec![queue.clone()]
    } else {
        parts
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
