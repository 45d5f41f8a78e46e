//! What the API and the pages do to jobs: create, add photos, retry, reprocess, delete.
//! Nothing is acknowledged before it is durable: the originals, the photo manifests and
//! the job manifest are stored, and the request messages sent, before a job is answered;
//! if sending fails, everything stored for the request is deleted again (503), so no job
//! is left looking queued with nothing in the queue. Once an upload is read, its commit
//! runs apart from the request (`Commits`): a client that goes away then cannot leave it
//! half done.

use crate::idempotency::{self, BatchClaim};
use crate::seats::Seats;
use crate::upload::{self, AcceptedPhoto, BodyReader, Intake};
use crate::upload_parts::{
    enqueue_first_attempts, keep_rejected, name_from, own_recipes, write_own_recipes, OwnRecipes,
};
use crate::view::load_photo;
use crate::{ApiError, AppState};
use darkroom_core::job::{PhotoState, MANIFEST_VERSION};
use darkroom_core::keys;
use darkroom_core::{
    now_millis, DeletionCause, ErrorCode, JobId, JobManifest, OwnerToken, PhotoId, PhotoManifest, Recipe,
};
use darkroom_jobs::{log_change, Change, DeleteOutcome};
use darkroom_store::delete_prefix;
use darkroom_store::json::put_json;
use futures::{StreamExt, TryStreamExt};

/// Where the recipe of a new job comes from.
pub enum RecipeSource {
    /// The API's `recipe` part, JSON.
    JsonPart,
    /// The plain HTML form's fields.
    FormFields,
}

pub struct CreatedJob {
    pub manifest: JobManifest,
    pub token: OwnerToken,
    pub intake: Intake,
}

fn recipe_from(source: RecipeSource, intake: &Intake) -> Result<Recipe, ApiError> {
    let parsed = match source {
        RecipeSource::JsonPart => {
            let text = intake.fields.get("recipe").ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidRecipe,
                    "recipe: missing; send a text part named \"recipe\" holding the recipe JSON",
                )
            })?;
            Recipe::from_json(text)
        }
        RecipeSource::FormFields => {
            // A logo chosen in the form's watermark: the recipe names it as it was stored.
            let mut fields = intake.fields.clone();
            if let Some(logo) = intake.assets.first() {
                fields.entry("watermark_image".to_owned()).or_insert_with(|| logo.name.clone());
            }
            crate::form::recipe_from_fields(&fields)
        }
    };
    parsed.map_err(|error| ApiError::bad_request(ErrorCode::InvalidRecipe, error.to_string()))
}

/// The job's webhook, from the optional `callback_url` part.
fn callback_url_from(state: &AppState, intake: &Intake) -> Result<Option<String>, ApiError> {
    let Some(text) = intake.fields.get("callback_url").map(|text| text.trim()).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if !state.settings.webhooks_enabled {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "callback_url: this darkroom has no webhook secret configured (--webhook-secret), so it sends no webhooks; poll the job or follow /api/v1/jobs/<id>/events instead",
        ));
    }
    let url = darkroom_webhooks::target::check_url(text, state.settings.webhook_allow_internal)
        .map_err(|error| ApiError::bad_request(ErrorCode::InvalidRequest, error.to_string()))?;
    Ok(Some(url.to_string()))
}

fn nothing_acceptable(intake: &Intake) -> ApiError {
    let reasons: Vec<String> = intake.rejected.iter().map(|r| format!("{}: {}", r.name, r.error.message)).collect();
    let message = if reasons.is_empty() {
        "no photo was sent; add file parts named \"photos\"".to_owned()
    } else {
        format!("no acceptable photo in the upload ({})", reasons.join("; "))
    };
    let code = match intake.rejected.as_slice() {
        [only] => only.error.code,
        _ => ErrorCode::InvalidRequest,
    };
    ApiError::bad_request(code, message)
        .with_extra("rejected", serde_json::to_value(&intake.rejected).unwrap_or_default())
}

/// Creates a job for `tenant` (see `tenant.rs`) from an upload.
pub async fn create(
    state: &AppState,
    body: BodyReader,
    source: RecipeSource,
    tenant: String,
) -> Result<CreatedJob, ApiError> {
    let job = JobId::generate();
    let mut seats = Seats::for_new_job(&job, state.settings.limits.max_photos_per_job);
    let mut intake = upload::receive(state, &job, body, &mut seats).await?;
    let recipe = match recipe_from(source, &intake) {
        Ok(recipe) => recipe,
        Err(error) => {
            intake.discard().await;
            return Err(error);
        }
    };
    let callback_url = match callback_url_from(state, &intake) {
        Ok(url) => url,
        Err(error) => {
            intake.discard().await;
            return Err(error);
        }
    };
    let name = match name_from(&intake) {
        Ok(name) => name,
        Err(error) => {
            intake.discard().await;
            return Err(error);
        }
    };
    let own_recipes = match own_recipes(&intake) {
        Ok(own) => own,
        Err(error) => {
            intake.discard().await;
            return Err(error);
        }
    };
    if intake.accepted.is_empty() {
        intake.discard().await;
        return Err(nothing_acceptable(&intake));
    }
    // Every PNG a recipe names was sent, and can be drawn.
    let recipes = std::iter::once(&recipe).chain(own_recipes.values()).cloned().collect();
    if let Err(error) = crate::watermark_parts::check_sent(recipes, &intake.assets, false).await {
        intake.discard().await;
        return Err(error);
    }
    let token = OwnerToken::generate();
    let manifest = JobManifest {
        v: MANIFEST_VERSION,
        id: job.clone(),
        created_at: now_millis(),
        owner_token_sha256: token.sha256_hex(),
        recipe,
        callback_url,
        tenant: Some(tenant),
        name,
    };
    // From here on the job is created whole or not at all, whatever becomes of the request.
    let committing = state.clone();
    let (manifest, intake) = state.commits.run(commit_job(committing, manifest, intake, own_recipes)).await?;
    Ok(CreatedJob { manifest, token, intake })
}

/// Stores a new job's documents and sends its photos to work; on any failure removes
/// everything stored for it again. Runs apart from the request (see `Commits`).
async fn commit_job(
    state: AppState,
    manifest: JobManifest,
    mut intake: Intake,
    own_recipes: OwnRecipes,
) -> Result<(JobManifest, Intake), ApiError> {
    let job = manifest.id.clone();
    let stored = async {
        write_own_recipes(&state, &job, &own_recipes).await?;
        let photo_manifests = write_photo_manifests(&state, &job, &intake.accepted).await?;
        // Indexed before the manifest makes the job visible: retention and the reconciler
        // must know every job that exists.
        state.jobs.index_created(&manifest).await?;
        state.jobs.mark_active(&job).await?;
        put_json(state.store.as_ref(), &keys::job_manifest(&job), &manifest).await?;
        enqueue_first_attempts(&state, &manifest, &intake.accepted, &own_recipes).await?;
        Ok::<_, ApiError>(photo_manifests)
    }
    .await;
    let photo_manifests = match stored {
        Ok(photo_manifests) => photo_manifests,
        Err(error) => {
            intake.discard().await;
            if let Err(cleanup) = delete_prefix(state.store.as_ref(), &keys::job_prefix(&job)).await {
                tracing::error!(job_id = %job, error.message = %cleanup, "could not remove a job whose creation failed; retention will");
            }
            let _ = state.store.delete(&keys::active_marker(&job)).await;
            return Err(error);
        }
    };
    intake.commit();
    let rejected = keep_rejected(&state, &job, &intake, true).await;
    log_change(state.store.as_ref(), &job, &Change::Photos { photos: photo_manifests, rejected }).await;
    state.jobs.changed(&job);
    tracing::info!(job_id = %job, photos = intake.accepted.len(), rejected = intake.rejected.len(), "job created");
    metrics::counter!("darkroom_jobs_created_total").increment(1);
    metrics::counter!("darkroom_photos_uploaded_total").increment(intake.accepted.len() as u64);
    Ok((manifest, intake))
}

/// The reply an added batch gets, made from what was accepted (see `idempotency`).
pub type BatchReplyOf = fn(&JobId, &Intake) -> serde_json::Value;

/// Adds a batch of photos to a job: reads them (a request that ends meanwhile leaves
/// nothing), then commits them whole or not at all, whatever becomes of the request.
/// Returns what was received and the batch's reply.
pub async fn add_photos(
    state: &AppState,
    manifest: &JobManifest,
    body: BodyReader,
    claim: Option<BatchClaim>,
    reply_of: BatchReplyOf,
) -> Result<(Intake, serde_json::Value), ApiError> {
    let job = &manifest.id;
    let mut seats = Seats::of_existing_job(
        state.store.as_ref(),
        job,
        state.settings.limits.max_photos_per_job,
        idempotency::lease(state),
        state.seat_scans.clone(),
    )
    .await?;
    let mut intake = upload::receive(state, job, body, &mut seats).await?;
    if intake.accepted.is_empty() {
        intake.discard().await;
        // The job page still lists what this batch left out, and why.
        if let Some(rejected) = keep_rejected(state, job, &intake, false).await {
            log_change(state.store.as_ref(), job, &Change::Photos { photos: Vec::new(), rejected: Some(rejected) })
                .await;
            // Written, then looked (as `commit_batch` does): a job deleted meanwhile, whose sweep
            // may have passed, loses what was just written. (Never on a failed look: that would
            // remove a live job.)
            if matches!(state.jobs.load_job(job).await, Ok(None)) {
                if let Err(error) = delete_prefix(state.store.as_ref(), &keys::job_prefix(job)).await {
                    tracing::error!(job_id = %job, error.message = %error, "could not remove a note written to a job deleted meanwhile; retention will");
                }
                return Err(ApiError::not_found());
            }
            state.jobs.changed(job);
        }
        return Err(nothing_acceptable(&intake));
    }
    let own_recipes = match own_recipes(&intake) {
        Ok(own) => own,
        Err(error) => {
            intake.discard().await;
            return Err(error);
        }
    };
    // The PNGs the added photos' recipes name: sent now (and drawable), or with the job;
    // each name looked up and each PNG decoded once, however many photos name it.
    let recipes: Vec<_> = own_recipes.values().cloned().collect();
    let checked =
        match crate::watermark_parts::require_stored(state.store.as_ref(), job, &recipes, &intake.assets).await {
            Ok(()) => crate::watermark_parts::check_sent(recipes, &intake.assets, true).await,
            Err(error) => Err(error),
        };
    if let Err(error) = checked {
        intake.discard().await;
        return Err(error);
    }
    let reply = reply_of(job, &intake);
    state.commits.run(commit_batch(state.clone(), manifest.clone(), intake, own_recipes, claim, reply)).await
}

/// Stores a batch's documents and sends its photos to work; on any failure removes what
/// was stored for it again and releases its Idempotency-Key. Runs apart from the request.
async fn commit_batch(
    state: AppState,
    manifest: JobManifest,
    mut intake: Intake,
    own_recipes: OwnRecipes,
    claim: Option<BatchClaim>,
    reply: serde_json::Value,
) -> Result<(Intake, serde_json::Value), ApiError> {
    let job = &manifest.id;
    let stored = async {
        if let Some(claim) = &claim {
            claim.committing(job, &reply, intake.accepted.iter().map(|p| p.id.clone()).collect()).await?;
        }
        // A job deleted while the batch was read is not written into (its sweep would
        // miss what lands after it).
        if state.jobs.load_job(job).await?.is_none() {
            return Err(ApiError::not_found());
        }
        // Marked active before the photos exist: the reconciler must know every job that
        // has photos waiting, whatever interrupts the commit after this.
        state.jobs.mark_active(job).await?;
        write_own_recipes(&state, job, &own_recipes).await?;
        let photo_manifests = write_photo_manifests(&state, job, &intake.accepted).await?;
        // And again once they do: a reconciler that read the job as finished before them
        // may have removed the first mark (see `Jobs::start_attempt`).
        state.jobs.mark_active(job).await?;
        enqueue_first_attempts(&state, &manifest, &intake.accepted, &own_recipes).await?;
        Ok::<_, ApiError>(photo_manifests)
    }
    .await;
    let photo_manifests = match stored {
        Ok(photo_manifests) => photo_manifests,
        Err(error) => {
            if let Some(claim) = claim {
                claim.release().await;
            }
            intake.discard().await;
            for photo in &intake.accepted {
                if let Err(cleanup) = delete_prefix(state.store.as_ref(), &keys::photo_prefix(job, &photo.id)).await {
                    tracing::error!(job_id = %job, photo_id = %photo.id, error.message = %cleanup, "could not remove a photo of a failed batch; the reconciler fails it as missing its input");
                }
            }
            return Err(error);
        }
    };
    intake.commit();
    let rejected = keep_rejected(&state, job, &intake, false).await;
    log_change(state.store.as_ref(), job, &Change::Photos { photos: photo_manifests, rejected }).await;
    state.jobs.changed(job);
    tracing::info!(job_id = %job, photos = intake.accepted.len(), rejected = intake.rejected.len(), "photos added");
    metrics::counter!("darkroom_photos_uploaded_total").increment(intake.accepted.len() as u64);
    if let Some(claim) = claim {
        claim.done(job, reply.clone()).await;
    }
    // Deleted meanwhile: its sweep may have listed the job before these writes landed, so
    // whatever is left of it goes here (the messages sent find no job and are dropped). A
    // deletion after this look lists after every write above, and its own sweep takes them.
    if matches!(state.jobs.load_job(job).await, Ok(None)) {
        if let Err(error) = delete_prefix(state.store.as_ref(), &keys::job_prefix(job)).await {
            tracing::error!(job_id = %job, error.message = %error, "could not remove a batch added to a job deleted meanwhile; retention will");
        }
        return Err(ApiError::not_found());
    }
    Ok((intake, reply))
}

/// Writes each accepted photo's manifest; returns them, for the job's change log.
async fn write_photo_manifests(
    state: &AppState,
    job: &JobId,
    photos: &[AcceptedPhoto],
) -> Result<Vec<PhotoManifest>, ApiError> {
    let added_at = now_millis();
    let manifests: Vec<PhotoManifest> = photos
        .iter()
        .map(|photo| PhotoManifest {
            v: MANIFEST_VERSION,
            job_id: job.clone(),
            id: photo.id.clone(),
            name: photo.name.clone(),
            content_type: photo.content_type.clone(),
            size: photo.size,
            width: photo.dimensions.map(|d| d.0),
            height: photo.dimensions.map(|d| d.1),
            added_at,
            position: photo.position,
        })
        .collect();
    // Each write owns what it needs: the commit runs on a task of its own, so its future
    // must be `Send` for every lifetime, which futures borrowing from a closure are not.
    let writes = manifests.into_iter().map(|manifest| {
        let store = state.store.clone();
        async move {
            put_json(store.as_ref(), &keys::photo_manifest(&manifest.job_id, &manifest.id), &manifest).await?;
            Ok::<_, darkroom_store::StoreError>(manifest)
        }
    });
    futures::stream::iter(writes).buffer_unordered(16).try_collect::<Vec<PhotoManifest>>().await.map_err(ApiError::from)
}

/// Re-enqueues every photo in `state` (failed: a retry; cancelled: a resume) as a new
/// attempt with the recipe it last ran.
pub async fn restart(state: &AppState, job: &JobManifest, which: PhotoState) -> Result<Vec<(PhotoId, u32)>, ApiError> {
    let view = crate::view::load_view(state, job).await?;
    let mut retried = Vec::new();
    for photo in view.photos.iter().filter(|p| p.state == which) {
        let recipe = state.jobs.recipe_of_attempt(job, &photo.id, photo.attempt).await?;
        let attempt = match state.jobs.restart_attempt(job, &photo.id, photo.attempt, recipe).await {
            Ok(attempt) => attempt,
            // The view can be a second old: another request restarted this photo meanwhile.
            Err(darkroom_jobs::JobsError::AlreadyStarted) => continue,
            Err(error) => return Err(error.into()),
        };
        tracing::info!(job_id = %job.id, photo_id = %photo.id, attempt, from = which.as_str(), "photo restarted");
        retried.push((photo.id.clone(), attempt));
    }
    Ok(retried)
}

pub async fn reprocess(state: &AppState, job: &JobManifest, photo: &PhotoId, recipe: Recipe) -> Result<u32, ApiError> {
    let (_, latest) = load_photo(state, &job.id, photo).await?.ok_or_else(ApiError::not_found)?;
    let current_attempt = latest.map_or(1, |event| event.attempt);
    let attempt = state.jobs.start_attempt(job, photo, current_attempt, recipe, None).await?;
    tracing::info!(job_id = %job.id, photo_id = %photo, attempt, "photo reprocessing");
    Ok(attempt)
}

/// Which photos a job-wide reprocessing takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReprocessWhich {
    /// Every photo of the job.
    #[default]
    All,
    /// The failed photos only: "retry with another recipe".
    Failed,
}

/// Starts a new attempt with `recipe` for each photo `which` names. A photo whose next
/// attempt another request started meanwhile (the same request sent twice, two tabs) is left
/// to it, so two requests that read the job alike start each photo once; a photo that cannot be started now
/// is left out and counted, and the others go on. Runs apart from the request (`Commits`):
/// a client that goes away cannot stop it between a photo's attempt and its message.
/// Returns each photo started, with its attempt.
pub async fn reprocess_many(
    state: &AppState,
    job: &JobManifest,
    which: ReprocessWhich,
    recipe: Recipe,
) -> Result<Vec<(PhotoId, u32)>, ApiError> {
    // As the store has it now, not as this process last folded it: a photo another process
    // moved on since must not pass for one a concurrent twin of this request started.
    let view = state.jobs.load_view_in_full(job).await?;
    let chosen: Vec<(PhotoId, u32)> = view
        .photos
        .iter()
        .filter(|photo| which == ReprocessWhich::All || photo.state == PhotoState::Failed)
        .map(|photo| (photo.id.clone(), photo.attempt))
        .collect();
    let (state, job) = (state.clone(), job.clone());
    state
        .commits
        .clone()
        .run(async move {
            let (state, job, recipe) = (&state, &job, &recipe);
            let outcomes: Vec<Result<Option<(PhotoId, u32)>, String>> = futures::stream::iter(chosen)
                .map(|(photo, current)| async move {
                    match state.jobs.restart_attempt(job, &photo, current, recipe.clone()).await {
                        Ok(attempt) => Ok(Some((photo, attempt))),
                        Err(darkroom_jobs::JobsError::AlreadyStarted) => Ok(None),
                        Err(error) => {
                            tracing::warn!(job_id = %job.id, photo_id = %photo, error.message = %error, "a photo could not be reprocessed; it keeps its state");
                            Err(error.to_string())
                        }
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            let started: Vec<(PhotoId, u32)> = outcomes.iter().filter_map(|o| o.as_ref().ok().cloned().flatten()).collect();
            let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
            tracing::info!(job_id = %job.id, which = ?which, started = started.len(), left_to_others = outcomes.len() - started.len() - failed.len(), failed = failed.len(), "photos reprocessing");
            metrics::counter!("darkroom_photos_reprocessed_total").increment(started.len() as u64);
            match failed.first() {
                // Nothing started and something failed: say why (the store or queue is down).
                Some(first) if started.is_empty() => Err(ApiError::new(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    format!("no photo could be sent to work again ({first}); try again in a moment"),
                )),
                _ => Ok(started),
            }
        })
        .await
}

/// Deletes the job durably (see the jobs crate): answered once the deletion is recorded,
/// whether or not every object is gone yet.
pub async fn delete(state: &AppState, job: &JobManifest) -> Result<DeleteOutcome, ApiError> {
    Ok(state.jobs.delete(job, DeletionCause::Owner).await?)
}
