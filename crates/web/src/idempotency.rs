//! `Idempotency-Key` on `POST /api/v1/jobs/{job}/photos`: a retried batch adds its photos
//! once, whatever happened to the first request.
//!
//! The key's record (`keys::batch_reply`) goes through three states:
//! - `pending`: claimed before the photos are read. A request that dies while reading
//!   releases it, so its retry starts afresh.
//! - `committing`: written just before the batch is committed, with the reply and the photo
//!   ids. From here on the commit runs to its end apart from the request (see
//!   `job_actions::add_photos`), and only a failed commit releases the key.
//! - `done`: the reply, replayed to every retry.
//!
//! If `done` cannot be written (the store failed just then), `committing` stays: once the
//! commit must be over (the claim's lease), a retry that finds every photo of the batch
//! (manifest and original) rolls the commit forward — the job marked active, photos not yet
//! past `queued` sent to work again, which consumers take idempotently — and replays the
//! reply instead of adding them again. If they are not all there, it takes the key over.
//! The same covers a commit whose rollback could not delete what it had written (an outage)
//! and a process killed mid-commit: what a retry is told always matches what is stored.

use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use darkroom_core::job::PhotoState;
use darkroom_core::{keys, ErrorCode, JobId, JobManifest, PhotoId};
use darkroom_store::json::{get_json, put_json, put_json_if_absent};
use darkroom_store::{delete_prefix, ObjectStore, PutOutcome};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum BatchReply {
    /// A request with this key is uploading; `since` (ms) lets a claim outlive a dead
    /// handler only until the upload deadline has surely passed.
    Pending {
        #[serde(default)]
        since: u64,
    },
    /// The batch is being committed (or was, if `done` could not be written after).
    Committing {
        since: u64,
        body: serde_json::Value,
        photos: Vec<PhotoId>,
    },
    Done {
        body: serde_json::Value,
    },
}

/// What a request with an `Idempotency-Key` may do.
pub enum Claimed {
    /// This request holds the key: it adds the batch.
    Held(BatchClaim),
    /// An earlier request with this key answered: its reply, replayed.
    Answered(HttpResponse),
}

/// The key this request holds. Dropped before the commit began, it releases the key (the
/// request died while reading photos: its retry starts afresh).
pub struct BatchClaim {
    store: Arc<dyn ObjectStore>,
    key: Option<String>,
}

/// How long a claim may be held: past this its handler is surely gone, and so is any
/// commit it started (a commit takes seconds); also how long a seat with no photo is kept
/// for its batch (`seats`).
pub(crate) fn lease(state: &AppState) -> Duration {
    state.settings.upload_deadline + Duration::from_secs(60)
}

fn replay(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Created().insert_header(("Idempotent-Replayed", "true")).json(body)
}

fn in_progress(message: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidRequest, message)
}

/// Claims `reply_key` before the photos are read: held by this request, or answered by an
/// earlier request with the same key (replayed, or 409 while it is still in progress).
pub async fn claim(state: &AppState, manifest: &JobManifest, reply_key: &str) -> Result<Claimed, ApiError> {
    let store = state.store.as_ref();
    let job = &manifest.id;
    let lease = lease(state).as_millis() as u64;
    let held = || Claimed::Held(BatchClaim { store: state.store.clone(), key: Some(reply_key.to_owned()) });
    for _ in 0..2 {
        let pending = BatchReply::Pending { since: darkroom_core::now_millis() };
        if put_json_if_absent(store, reply_key, &pending).await? == PutOutcome::Created {
            return Ok(held());
        }
        let (since, partly_committed) = match get_json::<BatchReply>(store, reply_key).await {
            Ok(BatchReply::Done { body }) => return Ok(Claimed::Answered(replay(body))),
            Ok(BatchReply::Pending { since }) if darkroom_core::now_millis().saturating_sub(since) < lease => {
                return Err(in_progress(
                    "a batch with this Idempotency-Key is still being uploaded; retry it once that request has finished",
                ));
            }
            Ok(BatchReply::Committing { since, .. }) if darkroom_core::now_millis().saturating_sub(since) < lease => {
                return Err(in_progress(
                    "a batch with this Idempotency-Key is being added right now; retry it in a few seconds",
                ));
            }
            // The commit is long over, but its reply was never recorded: if its photos are
            // there, it is finished now and the retry gets its reply.
            Ok(BatchReply::Committing { since, body, photos }) => {
                if roll_forward(state, manifest, &photos).await? {
                    if let Err(error) = put_json(store, reply_key, &BatchReply::Done { body: body.clone() }).await {
                        tracing::warn!(job_id = %job, key = reply_key, error.message = %error, "could not record a batch's reply");
                    }
                    return Ok(Claimed::Answered(replay(body)));
                }
                (since, photos)
            }
            Ok(BatchReply::Pending { since }) => (since, Vec::new()),
            Err(error) if error.is_not_found() => continue, // released meanwhile: claim again
            Err(error) => return Err(error.into()),
        };
        // A commit cut off half-way (its process killed) left some of its photos: they go,
        // or the retry, which adds the batch afresh, would leave the job with photos nobody
        // was told of. Before the takeover, so that a failure here leaves the claim for the
        // next retry to clean up and take. Their seats, naming photos with no manifest, are
        // taken over later.
        for photo in &partly_committed {
            delete_prefix(store, &keys::photo_prefix(job, photo)).await?;
        }
        if !partly_committed.is_empty() {
            state.jobs.changed(job);
            tracing::warn!(job_id = %job, photos = partly_committed.len(), "removed the photos of a batch whose commit was cut off");
        }
        // A claim older than any upload may take: its handler died. One retry takes it
        // over — the one that creates the takeover marker for this claim's age; the
        // others are told it is in progress.
        let takeover = format!("{reply_key}.takeover-{since}");
        if put_json_if_absent(store, &takeover, &json!({})).await? == PutOutcome::AlreadyExists {
            return Err(in_progress("a batch with this Idempotency-Key is being retried by another request"));
        }
        tracing::warn!(job_id = %job, key = reply_key, "taking over an abandoned Idempotency-Key claim");
        if let Err(error) = put_json(store, reply_key, &pending).await {
            // Not taken over after all: the marker goes, or every later retry would be
            // told another request is retrying the key.
            if let Err(undo) = store.delete(&takeover).await {
                tracing::warn!(job_id = %job, key = reply_key, error.message = %undo, "could not withdraw an Idempotency-Key takeover");
            }
            return Err(error.into());
        }
        return Ok(held());
    }
    Err(in_progress("this Idempotency-Key is contended; retry"))
}

/// Finishes a batch whose commit ended without recording its reply, if every photo of it
/// is stored: `false` if one is missing (the batch was rolled back, or never got that far).
async fn roll_forward(state: &AppState, manifest: &JobManifest, photos: &[PhotoId]) -> Result<bool, ApiError> {
    let store = state.store.as_ref();
    let job = &manifest.id;
    for photo in photos {
        if store.head(&keys::photo_manifest(job, photo)).await?.is_none()
            || store.head(&keys::original(job, photo)).await?.is_none()
        {
            return Ok(false);
        }
    }
    if photos.is_empty() {
        return Ok(false);
    }
    state.jobs.mark_active(job).await?;
    let view = state.jobs.load_view_in_full(manifest).await?;
    let waiting: Vec<(PhotoId, u32)> = view
        .photos
        .iter()
        .filter(|photo| photo.state == PhotoState::Queued && photos.contains(&photo.id))
        .map(|photo| (photo.id.clone(), photo.attempt.max(1)))
        .collect();
    state.jobs.enqueue_as_recorded(manifest, &waiting).await?;
    state.jobs.changed(job);
    tracing::warn!(job_id = %job, photos = photos.len(), resent = waiting.len(), "finished a batch whose reply was never recorded");
    Ok(true)
}

/// Tries for this long to record a reply before leaving the claim as `committing`.
const REPLY_WRITE_TRIES: u32 = 5;

impl BatchClaim {
    /// Records that the batch is about to be committed, with the reply it will get. After
    /// this the claim is released only by a failed commit (dropping it).
    pub async fn committing(
        &self,
        job: &JobId,
        body: &serde_json::Value,
        photos: Vec<PhotoId>,
    ) -> Result<(), ApiError> {
        let Some(key) = &self.key else { return Ok(()) };
        let record = BatchReply::Committing { since: darkroom_core::now_millis(), body: body.clone(), photos };
        if let Err(error) = put_json(self.store.as_ref(), key, &record).await {
            tracing::warn!(job_id = %job, key, error.message = %error, "could not record a batch as committing; it is not added");
            return Err(error.into());
        }
        Ok(())
    }

    /// Records the reply of the committed batch. The photos are added whatever happens
    /// here: if the store keeps failing, the `committing` record answers retries instead.
    pub async fn done(mut self, job: &JobId, body: serde_json::Value) {
        let Some(key) = self.key.take() else { return };
        let record = BatchReply::Done { body };
        for attempt in 0..REPLY_WRITE_TRIES {
            match put_json(self.store.as_ref(), &key, &record).await {
                Ok(()) => return,
                Err(error) if attempt + 1 < REPLY_WRITE_TRIES => {
                    tracing::debug!(job_id = %job, key, error.message = %error, attempt, "could not record a batch's reply yet");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(error) => {
                    tracing::warn!(job_id = %job, key, error.message = %error, "could not record a batch's reply; a retry of it is answered from its photos once the claim's lease is over");
                }
            }
        }
    }
}

impl BatchClaim {
    /// Releases the key of a failed commit, once what it wrote is removed again (the jobs
    /// crate removes it before it returns the error): a retry meanwhile is told the batch is
    /// being added, and one after starts afresh, never finding half a batch.
    pub async fn release(mut self) {
        let Some(key) = self.key.take() else { return };
        if let Err(error) = self.store.delete(&key).await {
            tracing::warn!(key, error.message = %error, "could not release the Idempotency-Key of a failed batch; a retry after its lease decides from what is stored");
        }
    }
}

impl Drop for BatchClaim {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.delete(&key).await {
                    tracing::warn!(key, error.message = %error, "could not release an abandoned Idempotency-Key claim; it expires with the upload deadline");
                }
            });
        }
    }
}
