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
        #[source]
        source: serde_json::Error,
    },
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
    serde_json::from_slice(&body).map_err(|source| JsonDocError::Corrupt { key: key.to_owned(), source })
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
