//! The processing server (the seed's "Photo Processing Server"): long-polls its stages'
//! request queues, processes each photo on a blocking thread while a heartbeat keeps the
//! message hidden, stores the outputs, reports to the Response queue (or forwards to the
//! next stage), and only then deletes the request.
//!
//! Workers are interchangeable and stateless: start more to go faster, kill one and its
//! photo reappears for another after the visibility timeout.

mod abandoned_renders;
mod delivery;
mod lease;
mod outcome;
pub mod render;
mod segment;

pub use darkroom_core::{BudgetError, TimeBudgets};
pub use outcome::Outcome;

use darkroom_consumer::{serve, Breaker, Handler, LoopSettings, Place, Settle, StoreAndQueueProbe};
use darkroom_core::{Limits, QueueNames};
use darkroom_queue::{Queue, QueueDirectory, QueueError, ReceivedMessage};
use darkroom_store::ObjectStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The stages whose request queues this worker serves.
    pub stages: Vec<String>,
    /// Photos in work at once in this process, across all its stages.
    pub concurrency: usize,
    pub visibility_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub wait_time: Duration,
    /// On shutdown, how long in-flight photos may take before they are released.
    pub drain_deadline: Duration,
    pub limits: Limits,
    /// How long one segment of one photo may render, per stage.
    pub time_budgets: TimeBudgets,
    /// The queues' redrive setting: the attempt that reaches it is a photo's last, so a
    /// photo out of time is reported failed (with the reason) instead of dead-lettered.
    pub max_receive_count: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("--heartbeat-interval ({heartbeat:?}) must be at most a third of --visibility-timeout ({visibility:?}), or a slow photo could be handed to a second worker")]
    HeartbeatTooSlow { heartbeat: Duration, visibility: Duration },
    #[error("--heartbeat-interval must be at least 1 second")]
    HeartbeatTooFast,
    #[error("--concurrency must be at least 1")]
    NoConcurrency,
    #[error("a worker needs at least one stage to serve")]
    NoStages,
    #[error("--max-receive-count must be at least 1")]
    NoReceives,
}

impl WorkerSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.heartbeat_interval < Duration::from_secs(1) {
            return Err(SettingsError::HeartbeatTooFast);
        }
        if self.heartbeat_interval * 3 > self.visibility_timeout {
            return Err(SettingsError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval,
                visibility: self.visibility_timeout,
            });
        }
        if self.concurrency == 0 {
            return Err(SettingsError::NoConcurrency);
        }
        if self.stages.is_empty() {
            return Err(SettingsError::NoStages);
        }
        if self.max_receive_count == 0 {
            return Err(SettingsError::NoReceives);
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct Worker {
    store: Arc<dyn ObjectStore>,
    queues: QueueDirectory,
    names: QueueNames,
    settings: WorkerSettings,
    /// Image work in progress, across every stage of this process: `concurrency` bounds
    /// the CPU a process uses. Each stage loop also bounds its own messages in flight (see
    /// `Worker::run`), so an idle stage's long poll never holds a slot another stage needs.
    cpu_slots: Arc<Semaphore>,
    /// Open while the store or a queue is unreachable: no stage loop receives then.
    breaker: Breaker,
    abandoned_renders: abandoned_renders::AbandonedRenders,
}

impl Worker {
    /// A worker over the store and queues of `jobs`, the process's one job context.
    pub fn new(jobs: &darkroom_jobs::Jobs, settings: WorkerSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        let (store, queues, names) = (jobs.store().clone(), jobs.queues().clone(), jobs.names().clone());
        let cpu_slots = Arc::new(Semaphore::new(settings.concurrency));
        let probe = StoreAndQueueProbe { store: store.clone(), queues: queues.clone(), queue: names.responses() };
        let breaker = Breaker::new("worker", Arc::new(probe));
        Ok(Self {
            store,
            queues,
            names,
            settings,
            cpu_slots,
            breaker,
            abandoned_renders: abandoned_renders::AbandonedRenders::default(),
        })
    }

    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The dependency breaker, for `/readyz`.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Renders given up on (past their time budget) that have not stopped yet.
    pub fn stuck_renders(&self) -> usize {
        self.abandoned_renders.stuck()
    }

    /// Opens every queue this worker uses; fails if `darkroom setup` has not been run.
    pub async fn check_queues(&self) -> Result<Vec<Arc<dyn Queue>>, QueueError> {
        self.queues.get(&self.names.responses()).await?;
        let mut queues = Vec::new();
        for stage in &self.settings.stages {
            queues.push(self.queues.get(&self.names.requests(stage)).await?);
        }
        Ok(queues)
    }

    /// Serves until `shutdown` is cancelled, then drains: stops receiving, lets in-flight
    /// photos finish within the drain deadline, releases the rest, and returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), QueueError> {
        let queues = self.check_queues().await?;
        let mut loops = JoinSet::new();
        // A queue spread over lanes is served a lane at a time: each lane's loop hands its
        // photos to the CPU slots in arrival order, so the slots take turns between lanes.
        for stage_queue in &queues {
            let parts = darkroom_queue::receiving_parts(stage_queue);
            // A stage's messages waiting for a CPU slot: about `concurrency` in all, at least
            // one per lane, so no lane waits for another and none hoards a backlog. A
            // message gives its place back once it holds a CPU slot (see `segment.rs`): the
            // loop reads ahead while the slots render, so a slot that frees starts the next
            // photo at once, but no more (another worker may be idle). A message waiting
            // for a CPU slot keeps its heartbeat, so it is never handed to a second worker.
            let settings = LoopSettings {
                places: (self.settings.concurrency / parts.len()).max(1),
                wait_time: self.settings.wait_time,
                drain_deadline: self.settings.drain_deadline,
            };
            for queue in parts {
                let handler = Arc::new(StageHandler { worker: self.clone() });
                let (breaker, shutdown) = (Some(self.breaker.clone()), shutdown.clone());
                let span = tracing::info_span!("stage_loop", queue = queue.name());
                loops.spawn(serve(queue, handler, settings.clone(), breaker, shutdown).instrument(span));
            }
        }
        tracing::info!(stages = ?self.settings.stages, concurrency = self.settings.concurrency, "worker started");
        while loops.join_next().await.is_some() {}
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// The worker as the consumer loop runs it: one photo's segment per message.
struct StageHandler {
    worker: Arc<Worker>,
}

#[darkroom_consumer::async_trait]
impl Handler for StageHandler {
    async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        place: Place,
        abandon: &CancellationToken,
    ) -> Settle {
        self.worker.handle_waiting(queue, message, abandon, Some(place)).await;
        // Settled already: a request is deleted (or released) under its heartbeat lease,
        // only once its response is sent (see `delivery.rs`).
        Settle::Leave
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerSettings {
        WorkerSettings {
            stages: vec!["quick".into()],
            concurrency: 2,
            visibility_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            wait_time: Duration::from_secs(20),
            drain_deadline: Duration::from_secs(30),
            limits: Limits::default(),
            time_budgets: TimeBudgets::uniform(Duration::from_secs(300)),
            max_receive_count: 5,
        }
    }

    #[test]
    fn refuses_a_heartbeat_slower_than_a_third_of_the_visibility_timeout() {
        assert_eq!(settings().validate(), Ok(()));
        let slow = WorkerSettings { heartbeat_interval: Duration::from_secs(11), ..settings() };
        assert!(matches!(slow.validate(), Err(SettingsError::HeartbeatTooSlow { .. })));
        assert_eq!(WorkerSettings { concurrency: 0, ..settings() }.validate(), Err(SettingsError::NoConcurrency));
    }
}
