//! A received message's lease: while its photo is in work, a heartbeat extends the
//! message's visibility every `interval` (at most a third of the visibility timeout,
//! checked at start-up), so a slow photo is never handed to a second worker and a crashed
//! worker's photo reappears within one timeout.
//!
//! The lease also knows when it is *lost*: once heartbeats have failed for a whole
//! visibility timeout (the queue service unreachable), the message is visible again and
//! another worker may hold it. A worker waiting out an outage with the message in hand
//! then lets it go rather than finish work that is no longer its own.

use darkroom_queue::{Queue, ReceiptHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

pub struct Lease {
    task: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

impl Lease {
    pub fn start(
        queue: Arc<dyn Queue>,
        handle: ReceiptHandle,
        visibility_timeout: Duration,
        interval: Duration,
    ) -> Self {
        let (lost_sender, lost) = watch::channel(false);
        let task = tokio::spawn(
            async move {
                let mut extended_at = Instant::now();
                let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
                loop {
                    ticks.tick().await;
                    match queue.change_visibility(&handle, visibility_timeout).await {
                        Ok(()) => {
                            extended_at = Instant::now();
                            tracing::debug!("heartbeat extended visibility");
                        }
                        Err(error) => {
                            // Harmless if the photo finishes within the timeout; if not, the
                            // message reappears and the next receiver redoes the photo.
                            metrics::counter!("darkroom_heartbeat_failures_total").increment(1);
                            tracing::warn!(error.message = %error, "heartbeat could not extend visibility");
                            if extended_at.elapsed() >= visibility_timeout {
                                tracing::warn!("the message's visibility timeout has passed without a heartbeat: another worker may hold it now");
                                lost_sender.send_replace(true);
                                return;
                            }
                        }
                    }
                }
            }
            .in_current_span(),
        );
        Self { task, lost }
    }

    /// Resolves once the lease is lost; pending for ever while it holds.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        if lost.wait_for(|lost| *lost).await.is_err() {
            // The heartbeat task ended without losing the lease (stopped): never resolves.
            std::future::pending::<()>().await;
        }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use darkroom_queue::{OutgoingMessage, QueueCounts, QueueError, ReceivedMessage};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Records when visibility was extended; fails while `down`.
    #[derive(Debug, Default)]
    struct Recorder {
        extended_at: Mutex<Vec<Instant>>,
        down: AtomicBool,
    }

    #[async_trait]
    impl Queue for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        async fn send_batch(&self, _: &[OutgoingMessage]) -> Result<(), QueueError> {
            Ok(())
        }
        async fn receive(&self, _: usize, _: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
            Ok(Vec::new())
        }
        async fn delete(&self, _: &ReceiptHandle) -> Result<(), QueueError> {
            Ok(())
        }
        async fn change_visibility(&self, _: &ReceiptHandle, _: Duration) -> Result<(), QueueError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(QueueError::Unavailable { queue: "recorder".into(), message: "down".into() });
            }
            self.extended_at.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
            Ok(())
        }
        async fn counts(&self) -> Result<QueueCounts, QueueError> {
            Ok(QueueCounts::default())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn extends_every_interval_and_is_lost_after_a_visibility_timeout_of_failures() {
        let queue = Arc::new(Recorder::default());
        let started = Instant::now();
        let lease =
            Lease::start(queue.clone(), ReceiptHandle("h".into()), Duration::from_secs(30), Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(35)).await;
        let extended: Vec<u64> = queue
            .extended_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|at| at.duration_since(started).as_secs())
            .collect();
        assert_eq!(extended, [10, 20, 30]);

        queue.down.store(true, Ordering::SeqCst);
        let outage = Instant::now();
        tokio::time::timeout(Duration::from_secs(60), lease.lost()).await.expect("the lease is lost");
        // Last extension at 30 s: the message is visible again from 60 s on, noticed at the tick.
        assert_eq!(outage.duration_since(started).as_secs() + outage.elapsed().as_secs(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_lease_is_never_reported_lost() {
        let queue = Arc::new(Recorder::default());
        queue.down.store(true, Ordering::SeqCst);
        let lease =
            Lease::start(queue.clone(), ReceiptHandle("h".into()), Duration::from_secs(30), Duration::from_secs(10));
        let (lost, _) = (lease.lost.clone(), ());
        lease.stop();
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(!*lost.borrow());
    }
}
