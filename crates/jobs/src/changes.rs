//! A job's change log: what a reader of the job view needs to know, in time order, so that a
//! view already read is brought up to date by listing what is new instead of every object of
//! the job.
//!
//! Each entry is an object `jobs/{job}/changes/{ms}-{unique}.json` written after the fact it
//! reports (photos added, a state recorded, an attempt started): the per-photo documents stay
//! the truth, the log is an index into them. Writing it is best effort — a reader folds the
//! whole job again every [`FULL_READ_EVERY`], so an entry lost to a crash or an outage costs
//! at most that much delay, never a wrong state for good.

use darkroom_core::job::Progress;
use darkroom_core::keys;
use darkroom_core::{EventDoc, JobId, PhotoId, PhotoManifest, RejectedBatch};
use darkroom_store::json::put_json;
use darkroom_store::ObjectStore;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often a view kept up to date from the log is read again in full from the per-photo
/// documents, to pick up anything the log missed.
pub const FULL_READ_EVERY: Duration = Duration::from_secs(30);

/// How far back each incremental read looks again: entries are named by their writer's
/// clock when written, so one written a little late (a slow PUT, a clock a little behind)
/// may sort before entries already read.
pub const LOOKBACK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Photos added to the job (its creation, or a later batch).
    Photos {
        photos: Vec<PhotoManifest>,
        /// The files the same upload left out, if any (see `keys::rejected_batch`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rejected: Option<RejectedBatch>,
    },
    /// A state event recorded under `key` for `photo`.
    Event { photo: PhotoId, key: String, event: EventDoc },
}

/// One entry of a job's change log, as read.
pub(crate) enum LogEntry {
    Change(Box<Change>),
    /// Deleted meanwhile (the job is being deleted).
    Gone,
    /// Corrupt, or written by a newer darkroom.
    Unreadable,
}

/// The key of a change written at `millis`.
pub fn change_key(job: &JobId, millis: u64) -> String {
    format!("{}{millis:013}-{}.json", keys::changes_prefix(job), PhotoId::generate())
}

/// Where in the log to start listing to see everything written since `millis`.
pub fn listing_start(job: &JobId, millis: u64) -> String {
    format!("{}{millis:013}", keys::changes_prefix(job))
}

/// The time a change's key carries.
pub fn change_millis(job: &JobId, key: &str) -> Option<u64> {
    key.strip_prefix(&keys::changes_prefix(job))?.get(..13)?.parse().ok()
}

/// Appends `change` to the job's log. Best effort (see the module): a failure is logged,
/// not returned.
pub async fn log_change(store: &dyn ObjectStore, job: &JobId, change: &Change) {
    let key = change_key(job, darkroom_core::now_millis());
    if let Err(error) = put_json(store, &key, change).await {
        tracing::warn!(job_id = %job, error.message = %error, "could not append to the job's change log; its view catches up within {}s", FULL_READ_EVERY.as_secs());
    }
}

/// A state event as a change, with the progress it stands for.
pub fn event_change(job: &JobId, photo: &PhotoId, step: u32, event: &EventDoc) -> Change {
    Change::Event {
        photo: photo.clone(),
        key: keys::event(job, photo, event.attempt, event.state, step),
        event: event.clone(),
    }
}

/// The progress an event change stands for (from its key, as the full read orders them).
pub(crate) fn progress_of(job: &JobId, key: &str) -> Option<Progress> {
    keys::classify(job, key).progress()
}
