//! Reading jobs back from the store: the job manifest, and the job view assembled from one
//! listing of the job's photo keys plus the documents it names. Photo manifests and state
//! events never change once written, so they are cached by key: polling a 500-photo job
//! costs one listing and only the documents that are new since the last poll.

use crate::{ApiError, AppState};
use darkroom_core::job::Progress;
use darkroom_core::keys::{self, PhotoKey};
use darkroom_core::{EventDoc, JobId, JobManifest, JobView, PhotoId, PhotoManifest};
use darkroom_store::json::get_json;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

const PARALLEL_READS: usize = 32;

/// The job's manifest, or `None` if there is no such job.
pub async fn load_job(state: &AppState, job: &JobId) -> Result<Option<JobManifest>, ApiError> {
    match get_json(state.store.as_ref(), &keys::job_manifest(job)).await {
        Ok(manifest) => Ok(Some(manifest)),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(error.into()),
    }
}

pub async fn load_job_or_404(state: &AppState, job_text: &str) -> Result<JobManifest, ApiError> {
    let job = JobId::parse(job_text).map_err(|_| ApiError::not_found())?;
    load_job(state, &job).await?.ok_or_else(ApiError::not_found)
}

/// An immutable document, from the cache or the store.
async fn immutable_doc<T: DeserializeOwned>(state: &AppState, key: &str) -> Result<T, ApiError> {
    let bytes = match state.documents.get(key) {
        Some(bytes) => bytes,
        None => {
            let bytes = state.store.get(key).await?;
            state.documents.insert(key.to_owned(), bytes.clone());
            bytes
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            darkroom_core::ErrorCode::Internal,
            format!("document {key:?} is corrupt: {e}"),
        )
    })
}

/// Each photo of the job: its manifest key and its latest event key, if any.
#[derive(Debug, Default)]
struct PhotoKeys {
    has_manifest: bool,
    latest_event: Option<(Progress, String)>,
}

fn index_photo_keys(job: &JobId, listed: Vec<darkroom_store::ObjectMeta>) -> BTreeMap<PhotoId, PhotoKeys> {
    let mut photos: BTreeMap<PhotoId, PhotoKeys> = BTreeMap::new();
    for object in listed {
        let classified = keys::classify(job, &object.key);
        let progress = classified.progress();
        match classified {
            PhotoKey::Manifest { photo } => photos.entry(photo).or_default().has_manifest = true,
            PhotoKey::Event { photo, .. } => {
                let entry = photos.entry(photo).or_default();
                let progress = progress.unwrap_or(Progress { attempt: 0, rank: 0, step: 0 });
                if entry.latest_event.as_ref().is_none_or(|(best, _)| progress > *best) {
                    entry.latest_event = Some((progress, object.key));
                }
            }
            PhotoKey::Other => {}
        }
    }
    photos
}

pub async fn load_view(state: &AppState, job: &JobManifest) -> Result<JobView, ApiError> {
    let listed = state.store.list(&keys::photos_prefix(&job.id)).await?;
    let photos = index_photo_keys(&job.id, listed);
    let pairs: Vec<(PhotoManifest, Option<EventDoc>)> =
        futures::stream::iter(photos.into_iter().filter(|(_, keys)| keys.has_manifest))
            .map(|(photo, photo_keys)| async move {
                let manifest: PhotoManifest = immutable_doc(state, &keys::photo_manifest(&job.id, &photo)).await?;
                let event = match photo_keys.latest_event {
                    Some((_, key)) => Some(immutable_doc::<EventDoc>(state, &key).await?),
                    None => None,
                };
                Ok::<_, ApiError>((manifest, event))
            })
            .buffer_unordered(PARALLEL_READS)
            .try_collect()
            .await?;
    Ok(darkroom_core::view::assemble(job, pairs))
}

/// One photo's manifest and latest event; `None` if the job has no such photo.
pub async fn load_photo(
    state: &AppState,
    job: &JobId,
    photo: &PhotoId,
) -> Result<Option<(PhotoManifest, Option<EventDoc>)>, ApiError> {
    let listed = state.store.list(&keys::photo_prefix(job, photo)).await?;
    let Some(photo_keys) = index_photo_keys(job, listed).remove(photo) else {
        return Ok(None);
    };
    if !photo_keys.has_manifest {
        return Ok(None);
    }
    let manifest = immutable_doc(state, &keys::photo_manifest(job, photo)).await?;
    let event = match photo_keys.latest_event {
        Some((_, key)) => Some(immutable_doc(state, &key).await?),
        None => None,
    };
    Ok(Some((manifest, event)))
}
