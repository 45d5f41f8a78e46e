//! JSON documents in the store (manifests, events, batch replies).

use crate::{ObjectStore, PutOutcome, StoreError};
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum JsonDocError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("document {key:?} is not valid JSON of the expected shape: {source}")]
    Corrupt {
        key: String,
        /// The version the document says wrote it (its top-level `"v"`), if it says: the
        /// caller tells a document from a newer release from a corrupt one.
        written_by: Option<u64>,
        #[source]
        source: serde_json::Error,
    },
}

/// The version a JSON document says wrote it: its top-level `"v"`, when it is an object
/// that has one (whatever else it holds).
pub fn written_by(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Version {
        v: Option<u64>,
    }
    serde_json::from_slice::<Version>(body).ok().and_then(|version| version.v)
}

impl JsonDocError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Store(error) if error.is_not_found())
    }
}

fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    // Serialising our own plain structs cannot fail; an empty body would be caught on read.
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

pub async fn get_json<T: DeserializeOwned>(store: &dyn ObjectStore, key: &str) -> Result<T, JsonDocError> {
    let body = store.get(key).await?;
    serde_json::from_slice(&body).map_err(|source| JsonDocError::Corrupt {
        key: key.to_owned(),
        written_by: written_by(&body),
        source,
    })
}

pub async fn put_json<T: Serialize>(store: &dyn ObjectStore, key: &str, value: &T) -> Result<(), StoreError> {
    store.put(key, encode(value), "application/json").await
}

pub async fn put_json_if_absent<T: Serialize>(
    store: &dyn ObjectStore,
    key: &str,
    value: &T,
) -> Result<PutOutcome, StoreError> {
    store.put_if_absent(key, encode(value), "application/json").await
}
