//! What became of a message, and the policy for messages that could not be finished:
//! how long to hold one through an outage, when to defer it, when to give up.

use std::time::Duration;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last segment is done and the response sent.
    Completed,
    /// This segment is done and the photo handed to the next stage.
    Forwarded,
    /// The photo cannot be processed (undecodable, over limits, bad crop box, out of time
    /// on its last attempt): reported failed.
    Failed,
    /// This attempt was already finished by an earlier delivery.
    Duplicate,
    /// The job was deleted while the message waited, or its owner cancelled the photo.
    Cancelled,
    /// A message this build cannot read: handed back for a newer process, or left to the
    /// dead-letter queue if it never parses. Never deleted.
    Unreadable,
    /// The store or a queue was unavailable for longer than the worker holds a message:
    /// sent back with a delay, its receive budget untouched.
    Deferred,
    /// Released for a retry, counting one receive (the queue itself was unreachable, or
    /// the photo ran out of time on an attempt that was not its last).
    Retrying,
    /// The photo ran past its stage's time budget; released for another attempt.
    TimedOut,
    /// The operation panicked: the message is left to come back, and after
    /// max_receive_count deliveries it goes to the dead-letter queue.
    Panicked,
    /// Shutdown ran out of time: the message was made visible again for another worker.
    Released,
    /// Heartbeats failed for a whole visibility timeout: the message may be someone
    /// else's now, so it was let go.
    LeaseLost,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Forwarded => "forwarded",
            Self::Failed => "failed",
            Self::Duplicate => "duplicate",
            Self::Cancelled => "cancelled",
            Self::Unreadable => "unreadable",
            Self::Deferred => "deferred",
            Self::Retrying => "retrying",
            Self::TimedOut => "timed_out",
            Self::Panicked => "panicked",
            Self::Released => "released",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// How long a worker keeps a message in hand through an outage, retrying in place while
/// the heartbeat keeps it hidden (work already done, such as a render, is not lost). After
/// that it defers the message instead of holding a slot.
pub const MAX_HOLD: Duration = Duration::from_secs(10 * 60);

/// In-place retries of one step before the message is deferred: a step that keeps failing
/// while the store answers the breaker's probe is this photo's problem, not an outage's.
pub const MAX_HOLD_RETRIES: u32 = 8;

/// The pause before the n-th in-place retry (at least; the breaker may keep it longer).
pub fn hold_pause(retry: u32) -> Duration {
    Duration::from_secs(1u64 << retry.min(5)).min(Duration::from_secs(30))
}

/// Deferrals before a photo is failed as unreachable: with the delays of [`defer_delay`],
/// about four hours of trying.
pub const MAX_DEFERRALS: u32 = 24;

/// The delay of the n-th deferral: 5 s doubling, at most SQS's 15 minutes.
pub fn defer_delay(deferrals: u32) -> Duration {
    Duration::from_secs(5u64 << deferrals.min(8)).min(darkroom_queue::MAX_DELAY)
}

/// How long a released message stays hidden before it is retried: doubling with each
/// delivery, capped at a minute.
pub fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.clamp(1, 6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferrals_cover_hours_and_respect_the_sqs_delay_limit() {
        let total: Duration = (0..MAX_DEFERRALS).map(defer_delay).sum();
        assert!(total > Duration::from_secs(3 * 3600) && total < Duration::from_secs(6 * 3600), "{total:?}");
        assert!((0..100).map(defer_delay).all(|d| d <= darkroom_queue::MAX_DELAY));
        assert_eq!(defer_delay(0), Duration::from_secs(5));
    }

    #[test]
    fn holding_pauses_grow_to_half_a_minute() {
        let pauses: Vec<u64> = (0..MAX_HOLD_RETRIES).map(|n| hold_pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
