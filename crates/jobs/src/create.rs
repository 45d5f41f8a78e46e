//! A job's photos entering darkroom: creating a job, adding a batch of photos to one, and
//! sending photos to work again (retry, resume, reprocess). The web tier reads the upload
//! (originals stored, each photo checked); these functions hold the ordering rules that make
//! what follows whole or nothing (docs/ARCHITECTURE.md, "One photo's path"):
//!
//! - a photo's own recipe is stored before its manifest (a photo that exists has its recipe);
//! - a job is indexed and marked active before its manifest makes it visible (retention and
//!   the reconciler must know every job that exists or has photos waiting);
//! - messages are sent last; on any failure everything stored for the request is removed
//!   again, so nothing is left looking queued with nothing in the queue;
//! - a batch is not written into a job deleted meanwhile, and what a batch wrote into a job
//!   deleted during its commit is removed by [`Jobs::remove_if_deleted`].
//!
//! The originals themselves are the caller's: it stored them, and it deletes them when a
//! commit fails.

use crate::{log_change, Change, Jobs, JobsError};
use darkroom_core::{keys, EventDoc, JobId, JobManifest, PhotoId, PhotoManifest, PhotoState, Recipe, RejectedBatch};
use darkroom_store::delete_prefix;
use darkroom_store::json::put_json;
use futures::{StreamExt, TryStreamExt};

/// A photo an upload brought, ready to be committed.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub manifest: PhotoManifest,
    /// The recipe it runs instead of the job's (regions drawn on this photo), if any.
    pub own_recipe: Option<Recipe>,
}

/// Writes at once, per commit: enough to overlap the store's round trips, few enough that a
/// 1000-photo batch does not open a thousand connections.
const CONCURRENT_WRITES: usize = 16;

/// Attempts started at once by [`Jobs::restart_each`].
const CONCURRENT_RESTARTS: usize = 8;

/// What [`Jobs::restart_each`] did.
#[derive(Debug, Default)]
pub struct Restarts {
    /// Each photo started, with its new attempt.
    pub started: Vec<(PhotoId, u32)>,
    /// Photos another request had started already.
    pub left_to_others: usize,
    /// Why each photo that could not be started was not.
    pub failed: Vec<String>,
}

impl Jobs {
    /// Stores a new job's documents and sends its photos to work, whole or not at all: on any
    /// failure everything stored under the job is removed again before the error returns.
    pub async fn create(&self, manifest: &JobManifest, photos: &[NewPhoto]) -> Result<(), JobsError> {
        let job = &manifest.id;
        let stored = async {
            self.write_photos(job, photos).await?;
            self.index_created(manifest).await?;
            self.mark_active(job).await?;
            put_json(self.store.as_ref(), &keys::job_manifest(job), manifest).await?;
            self.enqueue_first_attempts(manifest, photos).await
        }
        .await;
        if let Err(error) = stored {
            if let Err(cleanup) = delete_prefix(self.store.as_ref(), &keys::job_prefix(job)).await {
                tracing::error!(job_id = %job, error.message = %cleanup, "could not remove a job whose creation failed; retention will");
            }
            let _ = self.store.delete(&keys::active_marker(job)).await;
            return Err(error);
        }
        Ok(())
    }

    /// Adds photos to an existing job and sends them to work, whole or not at all: on any
    /// failure what was stored for them is removed again. [`JobsError::NotFound`] when the
    /// job was deleted before the batch could be written.
    pub async fn add_photos(&self, manifest: &JobManifest, photos: &[NewPhoto]) -> Result<(), JobsError> {
        let job = &manifest.id;
        let stored = async {
            // A job deleted while the batch was read is not written into (its sweep would
            // miss what lands after it).
            if self.load_job(job).await?.is_none() {
                return Err(JobsError::NotFound);
            }
            // Marked active before the photos exist: the reconciler must know every job that
            // has photos waiting, whatever interrupts the commit after this.
            self.mark_active(job).await?;
            self.write_photos(job, photos).await?;
            // And again once they do: a reconciler that read the job as finished before them
            // may have removed the first mark (see `Jobs::start_attempt`).
            self.mark_active(job).await?;
            self.enqueue_first_attempts(manifest, photos).await
        }
        .await;
        if let Err(error) = stored {
            for photo in photos {
                let photo = &photo.manifest.id;
                if let Err(cleanup) = delete_prefix(self.store.as_ref(), &keys::photo_prefix(job, photo)).await {
                    tracing::error!(job_id = %job, photo_id = %photo, error.message = %cleanup, "could not remove a photo of a failed batch; the reconciler fails it as missing its input");
                }
            }
            return Err(error);
        }
        Ok(())
    }

    /// Tells the job's readers that photos were added (and files refused): the change log
    /// entry the job page follows, and this process's folded view. Best effort, as the log is.
    pub async fn photos_added(&self, job: &JobId, photos: Vec<PhotoManifest>, rejected: Option<RejectedBatch>) {
        if photos.is_empty() && rejected.is_none() {
            return;
        }
        log_change(self.store.as_ref(), job, &Change::Photos { photos, rejected }).await;
        self.changed(job);
    }

    /// Called after writing into a job (a batch, a note of refused files): when the job was
    /// deleted meanwhile, its sweep may have listed it before those writes landed, so
    /// whatever is left of it is removed here and `true` returned. A deletion after this
    /// look lists after every earlier write, and its own sweep takes them. A failed look is
    /// taken as "still there": that must never remove a live job.
    pub async fn remove_if_deleted(&self, job: &JobId) -> bool {
        if !matches!(self.load_job(job).await, Ok(None)) {
            return false;
        }
        if let Err(error) = delete_prefix(self.store.as_ref(), &keys::job_prefix(job)).await {
            tracing::error!(job_id = %job, error.message = %error, "could not remove what was written into a job deleted meanwhile; retention will");
        }
        true
    }

    /// Re-enqueues every photo in `which` (failed: a retry; cancelled: a resume) as a new
    /// attempt with the recipe it last ran. A photo another request restarted meanwhile is
    /// left to it. Returns each photo restarted, with its attempt.
    pub async fn restart(&self, job: &JobManifest, which: PhotoState) -> Result<Vec<(PhotoId, u32)>, JobsError> {
        let view = self.load_view(job).await?;
        let mut restarted = Vec::new();
        for photo in view.photos.iter().filter(|p| p.state == which) {
            let recipe = self.recipe_of_attempt(job, &photo.id, photo.attempt).await?;
            let attempt = match self.restart_attempt(job, &photo.id, photo.attempt, recipe).await {
                Ok(attempt) => attempt,
                // The view can be a second old: another request restarted this photo meanwhile.
                Err(JobsError::AlreadyStarted) => continue,
                Err(error) => return Err(error),
            };
            tracing::info!(job_id = %job.id, photo_id = %photo.id, attempt, from = which.as_str(), "photo restarted");
            restarted.push((photo.id.clone(), attempt));
        }
        Ok(restarted)
    }

    /// Starts a new attempt with `recipe` for each photo, after the attempt given with it,
    /// eight at a time. A photo whose next attempt another request started meanwhile (the
    /// same request sent twice, two tabs) is left to it, so two requests that read the job
    /// alike start each photo once; a photo that cannot be started now is logged and left out,
    /// and the others go on.
    pub async fn restart_each(&self, job: &JobManifest, photos: Vec<(PhotoId, u32)>, recipe: &Recipe) -> Restarts {
        let outcomes: Vec<Result<Option<(PhotoId, u32)>, String>> = futures::stream::iter(photos)
            .map(|(photo, current)| async move {
                match self.restart_attempt(job, &photo, current, recipe.clone()).await {
                    Ok(attempt) => Ok(Some((photo, attempt))),
                    Err(JobsError::AlreadyStarted) => Ok(None),
                    Err(error) => {
                        tracing::warn!(job_id = %job.id, photo_id = %photo, error.message = %error, "a photo could not be sent to work again; it keeps its state");
                        Err(error.to_string())
                    }
                }
            })
            .buffer_unordered(CONCURRENT_RESTARTS)
            .collect()
            .await;
        let mut restarts = Restarts::default();
        for outcome in outcomes {
            match outcome {
                Ok(Some(started)) => restarts.started.push(started),
                Ok(None) => restarts.left_to_others += 1,
                Err(error) => restarts.failed.push(error),
            }
        }
        restarts
    }

    /// Starts a new attempt of one photo with `recipe`; [`JobsError::NotFound`] when the job
    /// has no such photo. Returns the attempt's number.
    pub async fn reprocess(&self, job: &JobManifest, photo: &PhotoId, recipe: Recipe) -> Result<u32, JobsError> {
        let (_, latest) = self.load_photo(&job.id, photo).await?.ok_or(JobsError::NotFound)?;
        let current_attempt = latest.map_or(1, |event| event.attempt);
        let attempt = self.start_attempt(job, photo, current_attempt, recipe, None).await?;
        tracing::info!(job_id = %job.id, photo_id = %photo, attempt, "photo reprocessing");
        Ok(attempt)
    }

    /// Writes each photo's own recipe (as its first attempt's queued event, where retries,
    /// the reconciler and a replayed batch find it), then the photo manifests: a photo that
    /// exists has its recipe.
    async fn write_photos(&self, job: &JobId, photos: &[NewPhoto]) -> Result<(), JobsError> {
        // Each write owns what it needs: a commit runs on a task of its own, so its future
        // must be `Send` for every lifetime, which futures borrowing from a closure are not.
        let own_recipes: Vec<(String, EventDoc)> = photos
            .iter()
            .filter_map(|photo| {
                let mut queued = EventDoc::new(1, PhotoState::Queued);
                queued.recipe = Some(photo.own_recipe.clone()?);
                Some((keys::queued_event(job, &photo.manifest.id, 1), queued))
            })
            .collect();
        self.put_all(own_recipes).await?;
        let manifests: Vec<(String, PhotoManifest)> = photos
            .iter()
            .map(|photo| (keys::photo_manifest(job, &photo.manifest.id), photo.manifest.clone()))
            .collect();
        self.put_all(manifests).await
    }

    /// Stores each document at its key, [`CONCURRENT_WRITES`] at a time.
    async fn put_all<T: serde::Serialize + Send + Sync + 'static>(
        &self,
        documents: Vec<(String, T)>,
    ) -> Result<(), JobsError> {
        let writes = documents.into_iter().map(|(key, document)| {
            let store = self.store.clone();
            async move { put_json(store.as_ref(), &key, &document).await }
        });
        futures::stream::iter(writes).buffer_unordered(CONCURRENT_WRITES).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    /// Sends the photos' first attempts: those of the job's recipe together, the others with
    /// their own.
    async fn enqueue_first_attempts(&self, manifest: &JobManifest, photos: &[NewPhoto]) -> Result<(), JobsError> {
        let each: Vec<(PhotoId, u32, Recipe)> = photos
            .iter()
            .map(|photo| {
                let recipe = photo.own_recipe.as_ref().unwrap_or(&manifest.recipe).clone();
                (photo.manifest.id.clone(), 1, recipe)
            })
            .collect();
        Ok(self.enqueue_each(manifest, &each).await?)
    }
}
