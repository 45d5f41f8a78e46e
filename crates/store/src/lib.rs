//! The object store: where originals, outputs and job documents live. One trait,
//! [`ObjectStore`], shaped after S3's consistency model (whole-object atomic puts,
//! put-if-absent, strongly consistent list), with a local-directory implementation for the
//! embedded mode and an S3 one for LocalStack and AWS. Both pass the same contract tests
//! (`tests/contract.rs`).

mod error;
pub mod json;
mod key;
mod local;
#[cfg(feature = "s3")]
mod s3;

#[cfg(feature = "s3")]
pub use aws_sdk_s3;
pub use error::StoreError;
pub use key::{validate_key, validate_prefix};
pub use local::LocalStore;
#[cfg(feature = "s3")]
pub use s3::S3Store;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// An object's body, streamed: memory stays bounded whatever the object's size. Once it
/// has ended it keeps answering "ended" (both stores' streams are fused).
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The key already held an object, which was left untouched.
    AlreadyExists,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Stores a whole object atomically: readers see the old object or the new one, never a part.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError>;

    /// Stores the object only if the key is free; never overwrites.
    async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError>;

    /// Starts a streamed upload. The object appears only when [`Upload::finish`] succeeds;
    /// an aborted or dropped upload leaves nothing behind under `key`.
    async fn start_upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, StoreError>;

    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    async fn get_stream(&self, key: &str) -> Result<(ObjectMeta, ByteStream), StoreError>;

    /// The object's size, or `None` if there is no such object.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// At most `max` (1–1000) objects under `prefix` whose keys sort after `start_after`,
    /// sorted by key: one page, so work over a large prefix can be bounded and resumed.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Deletes the object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes many objects (S3: one DeleteObjects call per 1,000 keys); missing ones are
    /// not an error. On error, some of the keys may have been deleted: safe to repeat.
    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// Whether the store is reachable and writable (for `/readyz` and start-up checks).
    async fn check(&self) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Upload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError>;
    /// Publishes the object; returns its size.
    async fn finish(self: Box<Self>) -> Result<u64, StoreError>;
    async fn abort(self: Box<Self>);
}

/// The largest page [`ObjectStore::list_page`] returns (S3's `MaxKeys` limit).
pub const MAX_PAGE: usize = 1000;

/// Deletes every object under `prefix`, a page at a time; returns how many were deleted.
pub async fn delete_prefix(store: &dyn ObjectStore, prefix: &str) -> Result<usize, StoreError> {
    let mut deleted = 0;
    loop {
        // Always the first page: what was deleted is gone from the listing.
        let page = store.list_page(prefix, None, MAX_PAGE).await?;
        if page.is_empty() {
            return Ok(deleted);
        }
        let keys: Vec<String> = page.into_iter().map(|object| object.key).collect();
        store.delete_many(&keys).await?;
        deleted += keys.len();
    }
}
