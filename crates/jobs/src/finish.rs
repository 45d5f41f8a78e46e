//! A job's finish, for its webhook: when the last photo of a job with a `callback_url`
//! reaches a final state, the finish is handed to the webhook queue — once, however many
//! processes see it. A finish is named by a digest of the photo states it ended with, so
//! a job retried and finished again is reported again, and the same finish seen twice
//! (two status processes, a redelivered response) is not.
//!
//! One process claims the finish (a conditional create of its "scheduled" marker), sends
//! the message, and marks the claim sent. A claim left unsent for a minute — its process
//! died in between — is taken over by whoever looks next (the housekeeping pass does), so
//! a crash may send the webhook twice (its receiver sees the same `X-Darkroom-Delivery`
//! twice), never not at all. Deliveries are at least once.

use crate::{Jobs, JobsError};
use darkroom_core::ids::sha256_hex;
use darkroom_core::view::JobView;
use darkroom_core::{keys, JobManifest, WebhookRequest};
use darkroom_queue::OutgoingMessage;
use darkroom_store::json::{get_json, put_json, put_json_if_absent};
use darkroom_store::PutOutcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Finishes of one job reported by webhook: a job retried and cancelled over and over does
/// not become a stream of webhooks (each tried up to a dozen times).
pub const MAX_FINISHES_REPORTED: usize = 20;

/// How long a claim may stay unsent before another process takes it over.
const CLAIM_LEASE_MILLIS: u64 = 60_000;

/// The "scheduled" marker of a finish.
#[derive(Debug, Serialize, Deserialize)]
struct Scheduled {
    /// When the claim was made or taken over (ms).
    at: u64,
    /// Whether the message is on its way.
    sent: bool,
}

/// What [`Jobs::schedule_webhook_if_finished`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// The job has no webhook, or is not finished.
    NotDue,
    /// This call sent the finish to the webhook queue.
    Sent,
    /// The finish was sent already.
    AlreadySent,
    /// Another process is sending it now (its claim is less than a minute old).
    InProgress,
}

/// The name of the finish `view` shows: the same for the same photo states.
pub fn finish_name(view: &JobView) -> String {
    let mut states: Vec<String> =
        view.photos.iter().map(|photo| format!("{}:{}:{}", photo.id, photo.attempt, photo.state)).collect();
    states.sort_unstable();
    let digest = sha256_hex(states.join("\n").as_bytes());
    digest[..24].to_owned()
}

impl Jobs {
    /// Hands the job's finish to the webhook queue if the job has a webhook, is finished
    /// and this finish has not been handed over yet. `fresh` is a view just read in full, if
    /// the caller has one (the housekeeping pass): without it, the shared fold is read, and a
    /// job it shows finished is read again in full before anything is sent (the fold is
    /// shared with the web tier in one process and kept up from a best-effort change log:
    /// a finish is named from what the store holds, never from a cache).
    pub async fn schedule_webhook_if_finished(
        &self,
        job: &JobManifest,
        fresh: Option<&JobView>,
    ) -> Result<Scheduling, JobsError> {
        if job.callback_url.is_none() {
            return Ok(Scheduling::NotDue);
        }
        let read_in_full;
        let view = match fresh {
            Some(view) => view,
            None => {
                if !self.load_view(job).await?.state.is_finished() {
                    return Ok(Scheduling::NotDue);
                }
                read_in_full = self.load_view_in_full(job).await?;
                &read_in_full
            }
        };
        if !view.state.is_finished() {
            return Ok(Scheduling::NotDue);
        }
        let finish = finish_name(view);
        let marker = keys::webhook_scheduled(&job.id, &finish);
        if self.store.list(&keys::webhook_scheduled_prefix(&job.id)).await?.len() >= MAX_FINISHES_REPORTED {
            tracing::warn!(job_id = %job.id, finish, "this job has finished {MAX_FINISHES_REPORTED} times already; no more webhooks are sent for it");
            return Ok(Scheduling::NotDue);
        }
        let now = darkroom_core::now_millis();
        let claim = Scheduled { at: now, sent: false };
        if put_json_if_absent(self.store.as_ref(), &marker, &claim).await? == PutOutcome::AlreadyExists {
            let existing: Scheduled = get_json(self.store.as_ref(), &marker).await?;
            if existing.sent {
                return Ok(Scheduling::AlreadySent);
            }
            if now.saturating_sub(existing.at) < CLAIM_LEASE_MILLIS {
                return Ok(Scheduling::InProgress);
            }
            tracing::warn!(job_id = %job.id, finish, "taking over a webhook claim left unsent for a minute");
            put_json(self.store.as_ref(), &marker, &claim).await?;
        }
        let sent = async {
            let queue = self.queues.get(&self.names.webhooks()).await?;
            let request = WebhookRequest::new(job.id.clone(), finish.clone());
            let attributes = BTreeMap::from([("job_id".to_owned(), job.id.to_string())]);
            queue.send(OutgoingMessage::new(request.encode(), attributes)).await
        }
        .await;
        if let Err(error) = sent {
            // Released, so the next look (the housekeeping pass) tries again at once.
            if let Err(undo) = self.store.delete(&marker).await {
                tracing::warn!(job_id = %job.id, error.message = %undo, "could not release a webhook claim; it is taken over in a minute");
            }
            return Err(error.into());
        }
        put_json(self.store.as_ref(), &marker, &Scheduled { at: now, sent: true }).await?;
        tracing::info!(job_id = %job.id, finish, state = view.state.as_str(), "job finished; webhook scheduled");
        Ok(Scheduling::Sent)
    }
}
