//! Handing a message back for later without spending its receive budget.
//!
//! A released message (visibility changed) counts one more receive when it returns, and
//! after `max_receive_count` receives the queue dead-letters it — right for a photo that
//! keeps crashing a worker, wrong for one that merely waited out an outage or reached a
//! process too old to read it. Deferring sends a copy with a delay (the receive count
//! starts again at zero) and only then deletes the original, so a crash in between leaves
//! a duplicate, never a loss; every consumer is idempotent. The number of deferrals travels
//! in a message attribute — outside the body, so even a process that cannot read the body
//! can count them — and callers cap it.

use darkroom_queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use std::time::Duration;

/// The message attribute that counts deferrals.
pub const DEFERRALS_ATTRIBUTE: &str = "darkroom_deferrals";

/// How often a message nobody here can read is handed back before it is left to the normal
/// receive budget (and so to the dead-letter queue): about a day at the longest delay, time
/// for a rolling upgrade to bring up processes that can read it.
const MAX_UNREADABLE_DEFERRALS: u32 = 100;

/// How many times the message was deferred before.
pub fn deferrals(message: &ReceivedMessage) -> u32 {
    message.attributes.get(DEFERRALS_ATTRIBUTE).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Sends a copy of `message` to `queue`, invisible for `delay`, then deletes the original.
pub async fn defer(queue: &dyn Queue, message: &ReceivedMessage, delay: Duration) -> Result<(), QueueError> {
    let mut attributes = message.attributes.clone();
    attributes.insert(DEFERRALS_ATTRIBUTE.to_owned(), (deferrals(message) + 1).to_string());
    // Same group, same partition (`queue` is the one it was received from): it waits for
    // its own turn again.
    let copy = OutgoingMessage::new(message.body.clone(), attributes).in_group(message.group.clone()).with_delay(delay);
    queue.send(copy).await?;
    if let Err(error) = queue.delete(&message.receipt_handle).await {
        // The copy is queued: the original coming back later is a duplicate, which every
        // consumer recognises.
        tracing::warn!(message_id = %message.message_id, error.message = %error, "deferred a message but could not delete the original; it will come back as a duplicate");
    }
    Ok(())
}

/// Never deletes a message it cannot read (docs/ARCHITECTURE.md: mixed versions run side by side):
/// another process — a newer darkroom during a rolling upgrade — may understand it. It is
/// deferred for such a process; deferred too often (or if deferring fails), it is released
/// with a delay instead, counting one receive, towards the dead-letter queue.
pub async fn leave_unreadable(queue: &dyn Queue, message: &ReceivedMessage, reason: &str) {
    let deferred = deferrals(message);
    metrics::counter!("darkroom_messages_unreadable_total", "queue" => queue.name().to_owned()).increment(1);
    // 30 s, doubling, at most SQS's 15-minute delay.
    let delay = Duration::from_secs(30u64 << deferred.min(5)).min(darkroom_queue::MAX_DELAY);
    if deferred < MAX_UNREADABLE_DEFERRALS {
        tracing::warn!(queue = queue.name(), message_id = %message.message_id, deferrals = deferred, retry_in_seconds = delay.as_secs(), reason, "a message this version cannot read: handing it back for a process that can (is a newer darkroom being rolled out?)");
        match defer(queue, message, delay).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(queue = queue.name(), error.message = %error, "could not defer the unreadable message; releasing it instead");
            }
        }
    } else {
        tracing::error!(queue = queue.name(), message_id = %message.message_id, deferrals = deferred, reason, "no process has read this message for a day: leaving it to the dead-letter queue for an operator");
    }
    if let Err(error) = queue.change_visibility(&message.receipt_handle, delay).await {
        tracing::warn!(queue = queue.name(), error.message = %error, "could not release the unreadable message; it returns after its visibility timeout");
    }
}
