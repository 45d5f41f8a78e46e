//! Store errors, classified the way a queue consumer needs: retry (`is_retryable`), give up,
//! or tell the user the disk is full.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key:?} does not exist")]
    NotFound { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("no space left in the object store while writing {key:?}: free some space or grow the volume")]
    InsufficientStorage { key: String },
    #[error("object store unavailable during {operation}: {message}")]
    Unavailable { operation: &'static str, message: String },
    #[error("object store {operation} of {key:?} failed: {source}")]
    Io {
        operation: &'static str,
        key: String,
        #[source]
        source: io::Error,
    },
    #[error("object store {operation} of {key:?} was refused: {message}")]
    Refused { operation: &'static str, key: String, message: String },
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether trying again later may succeed (an outage, a timeout), as opposed to an
    /// error that will repeat (a bad key, a refused request).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::InsufficientStorage { .. } => true,
            Self::Io { source, .. } => {
                !matches!(source.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData)
            }
            Self::NotFound { .. } | Self::InvalidKey { .. } | Self::Refused { .. } => false,
        }
    }

    pub(crate) fn io(operation: &'static str, key: &str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => Self::NotFound { key: key.to_owned() },
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                Self::InsufficientStorage { key: key.to_owned() }
            }
            _ => Self::Io { operation, key: key.to_owned(), source },
        }
    }
}
