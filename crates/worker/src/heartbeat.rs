//! Keeps a message invisible while its photo is in work: every `interval` (at most a third
//! of the visibility timeout, checked at start-up) the visibility is extended to a full
//! timeout again, so a slow photo is never handed to a second worker, and a crashed
//! worker's photo reappears within one timeout.

use darkroom_queue::{Queue, ReceiptHandle};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    pub fn start(
        queue: Arc<dyn Queue>,
        handle: ReceiptHandle,
        visibility_timeout: Duration,
        interval: Duration,
    ) -> Self {
        let task = tokio::spawn(
            async move {
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                loop {
                    ticks.tick().await;
                    match queue.change_visibility(&handle, visibility_timeout).await {
                        Ok(()) => tracing::debug!("heartbeat extended visibility"),
                        Err(error) => {
                            // Harmless if the photo finishes within the timeout; if not, the
                            // message reappears and the next receiver redoes the photo.
                            metrics::counter!("darkroom_heartbeat_failures_total").increment(1);
                            tracing::warn!(error.message = %error, "heartbeat could not extend visibility");
                        }
                    }
                }
            }
            .in_current_span(),
        );
        Self { task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
