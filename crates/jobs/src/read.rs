//! Reading jobs back from the store: the job manifest, and the job view assembled from one
//! listing of the job's photo keys plus the documents it names. Photo manifests and state
//! events never change once written, so they are cached by key: reading a 500-photo job
//! again costs one listing and only the documents that are new since the last read.

use crate::{Jobs, JobsError};
use darkroom_core::job::Progress;
use darkroom_core::keys::{self, PhotoKey};
use darkroom_core::{EventDoc, JobId, JobManifest, JobView, PhotoId, PhotoManifest};
use darkroom_store::json::get_json;
use darkroom_store::ObjectMeta;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

const PARALLEL_READS: usize = 32;

/// Each photo of the job: whether its manifest exists, and its latest event key, if any.
#[derive(Debug, Default)]
struct PhotoKeys {
    has_manifest: bool,
    latest_event: Option<(Progress, String)>,
}

fn index_photo_keys(job: &JobId, listed: Vec<ObjectMeta>) -> BTreeMap<PhotoId, PhotoKeys> {
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

impl Jobs {
    /// The job's manifest, or `None` if there is no such job (or it is being deleted).
    pub async fn load_job(&self, job: &JobId) -> Result<Option<JobManifest>, JobsError> {
        match get_json(self.store.as_ref(), &keys::job_manifest(job)).await {
            Ok(manifest) => Ok(Some(manifest)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// An immutable document, from the cache or the store.
    async fn immutable_doc<T: DeserializeOwned>(&self, key: &str) -> Result<T, JobsError> {
        let bytes = match self.documents.get(key) {
            Some(bytes) => bytes,
            None => {
                let bytes = self.store.get(key).await?;
                self.documents.insert(key.to_owned(), bytes.clone());
                bytes
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| JobsError::Corrupt { key: key.to_owned(), message: e.to_string() })
    }

    pub async fn load_view(&self, job: &JobManifest) -> Result<JobView, JobsError> {
        let listed = self.store.list(&keys::photos_prefix(&job.id)).await?;
        let photos = index_photo_keys(&job.id, listed);
        let pairs: Vec<(PhotoManifest, Option<EventDoc>)> =
            futures::stream::iter(photos.into_iter().filter(|(_, keys)| keys.has_manifest))
                .map(|(photo, photo_keys)| async move {
                    let manifest: PhotoManifest = self.immutable_doc(&keys::photo_manifest(&job.id, &photo)).await?;
                    let event = match photo_keys.latest_event {
                        Some((_, key)) => Some(self.immutable_doc::<EventDoc>(&key).await?),
                        None => None,
                    };
                    Ok::<_, JobsError>((manifest, event))
                })
                .buffer_unordered(PARALLEL_READS)
                .try_collect()
                .await?;
        Ok(darkroom_core::view::assemble(job, pairs))
    }

    /// One photo's manifest and latest event; `None` if the job has no such photo.
    pub async fn load_photo(
        &self,
        job: &JobId,
        photo: &PhotoId,
    ) -> Result<Option<(PhotoManifest, Option<EventDoc>)>, JobsError> {
        let listed = self.store.list(&keys::photo_prefix(job, photo)).await?;
        let Some(photo_keys) = index_photo_keys(job, listed).remove(photo) else {
            return Ok(None);
        };
        if !photo_keys.has_manifest {
            return Ok(None);
        }
        let manifest = self.immutable_doc(&keys::photo_manifest(job, photo)).await?;
        let event = match photo_keys.latest_event {
            Some((_, key)) => Some(self.immutable_doc(&key).await?),
            None => None,
        };
        Ok(Some((manifest, event)))
    }
}
