//! What the breaker asks before it closes: can the store be written and the queues be read?

use darkroom_queue::QueueDirectory;
use darkroom_store::ObjectStore;
use std::sync::Arc;

#[async_trait::async_trait]
pub trait Probe: Send + Sync + std::fmt::Debug {
    /// `Ok` when the dependencies answer; otherwise why not, for `/readyz` and the logs.
    async fn probe(&self) -> Result<(), String>;
}

/// Checks the object store (`ObjectStore::check`: a write on the local store, so a full disk
/// keeps the breaker open) and one queue's counts (a cheap call that needs the queue service).
#[derive(Debug)]
pub struct StoreAndQueueProbe {
    pub store: Arc<dyn ObjectStore>,
    pub queues: QueueDirectory,
    pub queue: String,
}

#[async_trait::async_trait]
impl Probe for StoreAndQueueProbe {
    async fn probe(&self) -> Result<(), String> {
        self.store.check().await.map_err(|e| e.to_string())?;
        let queue = self.queues.get(&self.queue).await.map_err(|e| e.to_string())?;
        queue.counts().await.map_err(|e| e.to_string())?;
        Ok(())
    }
}
