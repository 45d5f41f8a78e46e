//! What can go wrong with a job's documents, classified as the callers need it.

use darkroom_queue::QueueError;
use darkroom_store::json::JsonDocError;
use darkroom_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("document {key:?} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    /// A document this build cannot read, written by a newer darkroom: a rollout is under
    /// way (or was rolled back), and the newer processes can read it.
    #[error("document {key:?} was written by a newer darkroom (version {found}; this one reads up to {reads}): finish the rollout, or upgrade this process")]
    NewerVersion { key: String, found: u64, reads: u32 },
    #[error("too many concurrent retries of this photo")]
    TooManyRetries,
    #[error("the photo's next attempt was started by someone else")]
    AlreadyStarted,
    /// The job (or the photo) is not there: never created, or deleted meanwhile.
    #[error("no such job or photo (it may have been deleted meanwhile)")]
    NotFound,
    /// A read that failed a moment ago on an outage, shared by the readers behind it.
    #[error("{0}")]
    Shared(String),
}

impl From<JsonDocError> for JobsError {
    fn from(error: JsonDocError) -> Self {
        match error {
            JsonDocError::Store(store) => Self::Store(store),
            JsonDocError::Corrupt { key, written_by, source } => Self::unreadable(key, written_by, &source),
        }
    }
}

impl JobsError {
    /// A document that did not parse: written by a newer darkroom, or corrupt.
    pub(crate) fn unreadable(key: String, written_by: Option<u64>, error: &serde_json::Error) -> Self {
        let reads = darkroom_core::job::MANIFEST_VERSION;
        match written_by {
            Some(found) if found > u64::from(reads) => Self::NewerVersion { key, found, reads },
            _ => Self::Corrupt { key, message: error.to_string() },
        }
    }
}

impl JobsError {
    /// Worth trying again later (an outage), as opposed to a fault in the data.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::Queue(error) => error.is_retryable(),
            Self::Shared(_) => true,
            Self::Corrupt { .. }
            | Self::NewerVersion { .. }
            | Self::TooManyRetries
            | Self::AlreadyStarted
            | Self::NotFound => false,
        }
    }
}
