//! Waiting after failed receives, shared by every consumer loop (workers, status): an
//! outage of the queue service costs a doubling wait, never a hot loop.

use crate::QueueError;
use std::time::Duration;

const FIRST: Duration = Duration::from_millis(500);
const LONGEST: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct ReceiveBackoff {
    consecutive_failures: u32,
}

impl ReceiveBackoff {
    pub fn succeeded(&mut self) {
        self.consecutive_failures = 0;
    }

    /// Records a failed receive (logged and counted) and returns how long to wait before
    /// the next one: 0.5 s, doubling, at most 30 s.
    pub fn failed(&mut self, queue: &str, error: &QueueError) -> Duration {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let delay = FIRST.saturating_mul(1 << (self.consecutive_failures - 1).min(6)).min(LONGEST);
        metrics::counter!("darkroom_receive_failures_total", "queue" => queue.to_owned()).increment(1);
        tracing::warn!(queue, error.message = %error, retry_in_ms = delay.as_millis() as u64, "receive failed; backing off");
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_thirty_seconds_and_reset_on_success() {
        let error = QueueError::Unavailable { queue: "q".into(), message: "down".into() };
        let mut backoff = ReceiveBackoff::default();
        let waits: Vec<u64> = (0..9).map(|_| backoff.failed("q", &error).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        backoff.succeeded();
        assert_eq!(backoff.failed("q", &error), Duration::from_millis(500));
    }
}
