//! Queue errors, split by what the caller should do: retry later, fix configuration, or
//! drop the request.

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue {queue:?} does not exist: run `darkroom setup` (or check --queue-prefix)")]
    QueueNotFound { queue: String },
    #[error("receipt handle is not valid for queue {queue:?} (the message was deleted or received again)")]
    InvalidReceiptHandle { queue: String },
    #[error("a batch for queue {queue:?} must hold 1 to 10 messages, got {count}")]
    BadBatch { queue: String, count: usize },
    #[error("a message for queue {queue:?} is {size} bytes, over the 256 KiB limit")]
    MessageTooLarge { queue: String, size: usize },
    #[error("invalid queue setting for {queue:?}: {message}")]
    InvalidSetting { queue: String, message: String },
    #[error("queue {queue:?} unavailable: {message}")]
    Unavailable { queue: String, message: String },
}

impl QueueError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
