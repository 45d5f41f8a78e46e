//! Jobs in the object store, as both the web tier and the status process need them: reading
//! a job's view, starting a photo's next attempt (and enqueueing it), the index of jobs
//! with work outstanding, and durable deletion (tombstone first, then batched deletes that
//! a sweeper resumes after a crash). One home for these rules, so the web tier (which acts
//! for users) and status (whose reconciler and sweeper act on their own) cannot drift apart.

mod attempts;
mod deletion;
mod error;
mod read;

pub use attempts::{recipe_of, Recovery};
pub use deletion::{DeleteOutcome, SweepReport};
pub use error::JobsError;

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
}

impl Jobs {
    pub fn new(store: Arc<dyn ObjectStore>, queues: QueueDirectory, names: QueueNames, stage_map: StageMap) -> Self {
        Self { store, queues, names, stage_map, documents: Arc::new(quick_cache::sync::Cache::new(50_000)) }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn stage_map(&self) -> &StageMap {
        &self.stage_map
    }

    /// Messages in every stage's request queue — waiting, in work, or delayed (deferred
    /// through an outage): while there are any, a photo that seems stuck may be one of them.
    pub async fn waiting_requests(&self) -> Result<u64, darkroom_queue::QueueError> {
        let mut waiting = 0;
        for stage in self.stage_map.stages() {
            let counts = self.queues.get(&self.names.requests(&stage)).await?.counts().await?;
            waiting += counts.visible + counts.in_flight;
        }
        Ok(waiting)
    }
}
