//! Webhooks: when a job with a `callback_url` finishes (done, partial, failed, cancelled),
//! darkroom POSTs its view there, signed with HMAC-SHA256, at least once.
//!
//! - the jobs crate's `finish` hands each finish to the webhook queue once;
//! - [`Deliverer`] (run by the status process) posts it, logs each try on the job, and
//!   retries with backoff through the queue, so retries survive restarts;
//! - [`target`] keeps deliveries to public addresses, checked after DNS resolution and on
//!   every redirect.

mod deliver;
pub mod sign;
pub mod target;

pub use deliver::{delivery_id, retry_delay, Deliverer, DeliveryRecord, WebhookError, WebhookSettings};

use darkroom_core::{keys, JobId};
use darkroom_store::json::get_json;
use darkroom_store::{ObjectStore, StoreError};
use futures::StreamExt;

/// Delivery tries shown in a job's log (the most recent).
const SHOWN_DELIVERIES: usize = 50;

/// The job's delivery log, oldest first (at most the last 50 tries).
pub async fn delivery_log(store: &dyn ObjectStore, job: &JobId) -> Result<Vec<DeliveryRecord>, StoreError> {
    let listed = store.list(&keys::webhook_deliveries_prefix(job)).await?;
    let recent = &listed[listed.len().saturating_sub(SHOWN_DELIVERIES)..];
    let read = futures::stream::iter(recent)
        .map(|object| async move { (object.key.clone(), get_json::<DeliveryRecord>(store, &object.key).await) })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    let mut records = Vec::with_capacity(read.len());
    for (key, result) in read {
        match result {
            Ok(record) => records.push(record),
            Err(darkroom_store::json::JsonDocError::Store(error)) if error.is_not_found() => {}
            Err(darkroom_store::json::JsonDocError::Store(error)) => return Err(error),
            Err(darkroom_store::json::JsonDocError::Corrupt { source, .. }) => {
                tracing::warn!(job_id = %job, key, error.message = %source, "skipping an unreadable delivery record");
            }
        }
    }
    Ok(records)
}
