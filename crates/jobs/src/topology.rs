//! The queues darkroom reads and writes, made in one place: each stage's request queue, the
//! response queue and the webhook queue, each with its dead-letter queue
//! (docs/ARCHITECTURE.md, "Queues"). The binary's `setup` and the test world both make them
//! here, so a test runs on the topology a deployment has.

use crate::Jobs;
use darkroom_queue::{QueueError, QueueSpec};
use std::time::Duration;

/// How each queue is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays hidden before another consumer may take it.
    pub visibility_timeout: Duration,
    /// Receives after which a message moves to its dead-letter queue.
    pub max_receive_count: u32,
    /// Lanes a fairly shared (request) queue is spread over where the backend needs them.
    pub fair_lanes: usize,
}

/// A queue that could not be made, and why.
#[derive(Debug, thiserror::Error)]
#[error("creating queue {queue}")]
pub struct QueueSetupError {
    pub queue: String,
    #[source]
    pub source: QueueError,
}

impl Jobs {
    /// Creates every queue (dead-letter queue first, so the redrive has a target); safe to
    /// run any number of times. Returns the names of the queues, without their DLQs.
    pub async fn create_queues(&self, settings: &QueueSettings) -> Result<Vec<String>, QueueSetupError> {
        let backend = self.queues.backend();
        let all = self.names.all(&self.stage_map.stages());
        for pair in &all {
            let failed = |source| QueueSetupError { queue: pair.queue.clone(), source };
            backend
                .create_queue(&QueueSpec::dead_letter(pair.dead_letter.as_str(), settings.visibility_timeout))
                .await
                .map_err(|source| QueueSetupError { queue: pair.dead_letter.clone(), source })?;
            let lanes = if pair.shared_fairly { settings.fair_lanes } else { 1 };
            let spec = QueueSpec::new(
                pair.queue.clone(),
                settings.visibility_timeout,
                settings.max_receive_count,
                pair.dead_letter.as_str(),
            )
            .with_lanes(lanes);
            backend.create_queue(&spec).await.map_err(failed)?;
        }
        Ok(all.into_iter().map(|pair| pair.queue).collect())
    }

    /// Whether every queue (and dead-letter queue) [`Jobs::create_queues`] makes is there.
    pub async fn all_queues_exist(&self) -> bool {
        for pair in self.names.all(&self.stage_map.stages()) {
            for name in [&pair.queue, &pair.dead_letter] {
                if self.queues.get(name.as_str()).await.is_err() {
                    return false;
                }
            }
        }
        true
    }
}
