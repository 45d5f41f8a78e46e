//! Jobs in the object store, as both the web tier and the status process need them: creating
//! a job and adding photos to it (whole or not at all), reading a job's view, starting a
//! photo's next attempt (and enqueueing it), the index of jobs with work outstanding, and
//! durable deletion (tombstone first, then batched deletes that
//! a sweeper resumes after a crash). One home for these rules, so the web tier (which acts
//! for users) and status (whose reconciler and sweeper act on their own) cannot drift apart.

mod attempts;
mod cancel;
pub mod changes;
mod create;
mod deletion;
mod error;
mod finish;
mod read;
mod topology;

pub use attempts::{recipe_of, Recovery};
pub use changes::{event_change, log_change, Change};
pub use create::{NewPhoto, Restarts};
pub use deletion::{sweep_deleted_photo, DeleteOutcome, SweepReport};
pub use error::JobsError;
pub use finish::{finish_name, Scheduling};
pub use topology::{QueueSettings, QueueSetupError};

use darkroom_core::{QueueNames, StageMap};
use darkroom_queue::QueueDirectory;
use darkroom_store::ObjectStore;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Jobs {
    store: Arc<dyn ObjectStore>,
    queues: QueueDirectory,
    names: QueueNames,
    stage_map: StageMap,
    /// Immutable documents (photo manifests, state events) by key: a job view re-reads
    /// only what changed since the last read.
    documents: Arc<quick_cache::sync::Cache<String, bytes::Bytes>>,
    /// Job views folded so far, kept up to date from each job's change log.
    views: Arc<read::FoldedViews>,
    /// How long a folded view is served without looking for changes.
    view_refresh: std::time::Duration,
    /// How often a folded view is read again in full (see [`changes::FULL_READ_EVERY`]).
    full_read_every: std::time::Duration,
    /// Jobs seen to exist, and when (see [`Jobs::job_exists`]).
    seen_existing: Arc<quick_cache::sync::Cache<darkroom_core::JobId, std::time::Instant>>,
}

/// Jobs whose folded views a process keeps (a 1000-photo job's is about half a megabyte).
const FOLDED_VIEWS: usize = 128;

impl Jobs {
    pub fn new(store: Arc<dyn ObjectStore>, queues: QueueDirectory, names: QueueNames, stage_map: StageMap) -> Self {
        Self {
            store,
            queues,
            names,
            stage_map,
            documents: Arc::new(quick_cache::sync::Cache::new(50_000)),
            views: Arc::new(quick_cache::sync::Cache::new(FOLDED_VIEWS)),
            view_refresh: std::time::Duration::from_millis(500),
            full_read_every: changes::FULL_READ_EVERY,
            seen_existing: Arc::new(quick_cache::sync::Cache::new(10_000)),
        }
    }

    /// How often a job view kept up to date from the change log is read again in full
    /// (default [`changes::FULL_READ_EVERY`]).
    pub fn with_full_read_every(mut self, every: std::time::Duration) -> Self {
        self.full_read_every = every;
        self
    }

    /// How long a job view read from the store is served to other readers before the next
    /// one looks for changes (default 0.5 s): within it, any number of readers of one job
    /// cost one read. Zero reads for every reader.
    pub fn with_view_refresh(mut self, refresh: std::time::Duration) -> Self {
        self.view_refresh = refresh;
        self
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn stage_map(&self) -> &StageMap {
        &self.stage_map
    }

    pub fn queues(&self) -> &QueueDirectory {
        &self.queues
    }

    pub fn names(&self) -> &QueueNames {
        &self.names
    }

    /// Messages in every stage's request queue — waiting, in work, or delayed (deferred
    /// through an outage) — and in the response queue: while there are any, a photo that
    /// seems stuck may be one of them. Responses count too: a photo whose worker finished
    /// while status was down shows `queued` with no request anywhere until its responses
    /// are recorded, and restarting it then would process it twice.
    pub async fn waiting_requests(&self) -> Result<u64, darkroom_queue::QueueError> {
        let mut queues: Vec<String> = self.stage_map.stages().iter().map(|stage| self.names.requests(stage)).collect();
        queues.push(self.names.responses());
        queues.push(QueueNames::dead_letter(&self.names.responses())); // drained by status as responses
        let mut waiting = 0;
        for queue in queues {
            let counts = self.queues.get(&queue).await?.counts().await?;
            waiting += counts.visible + counts.in_flight;
        }
        Ok(waiting)
    }
}
