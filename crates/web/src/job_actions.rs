//! What the API and the pages do to jobs: create, add photos, retry, reprocess, delete: the
//! HTTP side (reading the upload, the recipe, the name, the webhook; the Idempotency-Key)
//! over the jobs crate, which holds the lifecycle and its ordering rules. Nothing is
//! acknowledged before it is durable: the originals, the photo manifests and the job
//! manifest are stored, and the request messages sent, before a job is answered; if sending
//! fails, everything stored for the request is deleted again (503), so no job is left
//! looking queued with nothing in the queue. Once an upload is read, its commit runs apart
//! from the request (`Commits`): a client that goes away then cannot leave it half done.

use crate::body_reader::BodyReader;
use crate::idempotency::{self, BatchClaim};
use crate::seats::Seats;
use crate::upload::{self, AcceptedPhoto, Intake};
use crate::upload_parts::{keep_rejected, name_from, own_recipes, OwnRecipes};
use crate::{ApiError, AppState};
use darkroom_core::job::{PhotoState, MANIFEST_VERSION};
use darkroom_core::{
    now_millis, DeletionCause, ErrorCode, JobId, JobManifest, OwnerToken, PhotoId, PhotoManifest, Recipe,
};
use darkroom_jobs::{DeleteOutcome, NewPhoto};

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

/// Commits a new job through the jobs crate (whole or not at all), then keeps the note of
/// what the upload left out. Runs apart from the request (see `Commits`).
async fn commit_job(
    state: AppState,
    manifest: JobManifest,
    mut intake: Intake,
    own_recipes: OwnRecipes,
) -> Result<(JobManifest, Intake), ApiError> {
    let job = manifest.id.clone();
    let photos = new_photos(&job, &intake.accepted, own_recipes);
    if let Err(error) = state.jobs.create(&manifest, &photos).await {
        intake.discard().await;
        return Err(error.into());
    }
    intake.commit();
    let rejected = keep_rejected(&state, &job, &intake, true).await;
    state.jobs.photos_added(&job, photos.into_iter().map(|photo| photo.manifest).collect(), rejected).await;
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
            state.jobs.photos_added(job, Vec::new(), Some(rejected)).await;
            // Written, then looked (as `commit_batch` does): see `Jobs::remove_if_deleted`.
            if state.jobs.remove_if_deleted(job).await {
                return Err(ApiError::not_found());
            }
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

/// Commits a batch through the jobs crate (whole or not at all; on a failure its
/// Idempotency-Key is released), then keeps the note of what it left out and records the
/// key's reply. Runs apart from the request.
async fn commit_batch(
    state: AppState,
    manifest: JobManifest,
    mut intake: Intake,
    own_recipes: OwnRecipes,
    claim: Option<BatchClaim>,
    reply: serde_json::Value,
) -> Result<(Intake, serde_json::Value), ApiError> {
    let job = &manifest.id;
    let photos = new_photos(job, &intake.accepted, own_recipes);
    let committed = match &claim {
        Some(claim) => claim.committing(job, &reply, intake.accepted.iter().map(|p| p.id.clone()).collect()).await,
        None => Ok(()),
    };
    let committed = match committed {
        Ok(()) => state.jobs.add_photos(&manifest, &photos).await.map_err(ApiError::from),
        Err(error) => Err(error),
    };
    if let Err(error) = committed {
        if let Some(claim) = claim {
            claim.release().await;
        }
        intake.discard().await;
        return Err(error);
    }
    intake.commit();
    let rejected = keep_rejected(&state, job, &intake, false).await;
    state.jobs.photos_added(job, photos.into_iter().map(|photo| photo.manifest).collect(), rejected).await;
    tracing::info!(job_id = %job, photos = intake.accepted.len(), rejected = intake.rejected.len(), "photos added");
    metrics::counter!("darkroom_photos_uploaded_total").increment(intake.accepted.len() as u64);
    if let Some(claim) = claim {
        claim.done(job, reply.clone()).await;
    }
    // Last, after the key's reply too: a job deleted meanwhile loses all of it.
    if state.jobs.remove_if_deleted(job).await {
        return Err(ApiError::not_found());
    }
    Ok((intake, reply))
}

/// The accepted photos as the jobs crate commits them: each one's manifest, and its own
/// recipe where it has one.
fn new_photos(job: &JobId, accepted: &[AcceptedPhoto], mut own_recipes: OwnRecipes) -> Vec<NewPhoto> {
    let added_at = now_millis();
    accepted
        .iter()
        .map(|photo| NewPhoto {
            manifest: PhotoManifest {
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
            },
            own_recipe: own_recipes.remove(&photo.id),
        })
        .collect()
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
            let restarts = state.jobs.restart_each(&job, chosen, &recipe).await;
            let (started, failed) = (restarts.started, restarts.failed);
            tracing::info!(job_id = %job.id, which = ?which, started = started.len(), left_to_others = restarts.left_to_others, failed = failed.len(), "photos reprocessing");
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
