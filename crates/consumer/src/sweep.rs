//! The one way a consumer cleans up after a job deleted while its photo was in work: the
//! worker's outputs written after the deletion, or an earlier segment's intermediate,
//! would otherwise stay in the store for ever.

use darkroom_core::{keys, JobId, PhotoId};
use darkroom_store::{delete_prefix, ObjectStore, StoreError};

/// Deletes every object of the photo; returns how many there were.
pub async fn sweep_deleted_photo(store: &dyn ObjectStore, job: &JobId, photo: &PhotoId) -> Result<usize, StoreError> {
    let swept = delete_prefix(store, &keys::photo_prefix(job, photo)).await?;
    if swept > 0 {
        tracing::info!(job_id = %job, photo_id = %photo, objects = swept, "swept the leftovers of a deleted job's photo");
    }
    Ok(swept)
}
