//! Handing a message back for later without spending its receive budget.
//!
//! A released message (visibility changed) counts one more receive when it returns, and
//! after `max_receive_count` receives the queue dead-letters it — right for a photo that
//! keeps crashing a worker, wrong for one that merely waited out an outage or reached a
//! process too old to read it. Deferring sends a copy with a delay (the receive count
//! starts again at zero) and only then deletes the original, so a crash in between leaves
//! a duplicate, never a loss; every consumer is idempotent. The number of deferrals travels
//! in message attributes — outside the body, so even a process that cannot read the body
//! can count them — one per reason, and callers cap each: hours of a rolling upgrade's
//! deferrals must not use up the budget of the next short outage.

use darkroom_queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
use std::time::Duration;

/// Why a message is handed back; each reason has its own count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferralReason {
    /// The store or a queue was unavailable while the message was handled.
    Outage,
    /// This process cannot read the message (a newer version wrote it).
    Unreadable,
}

impl DeferralReason {
    /// The message attribute that counts deferrals for this reason. Unreadable deferrals
    /// keep the attribute every deferral used before the reasons were told apart, which is
    /// what processes of that version still write during a rolling upgrade.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Outage => "darkroom_outage_deferrals",
            Self::Unreadable => "darkroom_deferrals",
        }
    }
}

/// How often a message nobody here can read is handed back before it is left to the normal
/// receive budget (and so to the dead-letter queue): about a day at the longest delay, time
/// for a rolling upgrade to bring up processes that can read it.
const MAX_UNREADABLE_DEFERRALS: u32 = 100;

/// How many times the message was deferred before for `reason`.
pub fn deferrals(message: &ReceivedMessage, reason: DeferralReason) -> u32 {
    counted(&message.attributes, reason)
}

fn counted(attributes: &std::collections::BTreeMap<String, String>, reason: DeferralReason) -> u32 {
    attributes.get(reason.attribute()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The copy a deferral sends: the same body and group, one more deferral for `reason`.
fn deferred_copy(message: &ReceivedMessage, delay: Duration, reason: DeferralReason) -> OutgoingMessage {
    let mut attributes = message.attributes.clone();
    attributes.insert(reason.attribute().to_owned(), (deferrals(message, reason) + 1).to_string());
    // Same group, same partition (the queue is the one it was received from): it waits for
    // its own turn again.
    OutgoingMessage::new(message.body.clone(), attributes).in_group(message.group.clone()).with_delay(delay)
}

/// Sends a copy of `message` to `queue`, invisible for `delay`, then deletes the original.
pub async fn defer(
    queue: &dyn Queue,
    message: &ReceivedMessage,
    delay: Duration,
    reason: DeferralReason,
) -> Result<(), QueueError> {
    queue.send(deferred_copy(message, delay, reason)).await?;
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
    let deferred = deferrals(message, DeferralReason::Unreadable);
    metrics::counter!("darkroom_messages_unreadable_total", "queue" => queue.name().to_owned()).increment(1);
    // 30 s, doubling, at most SQS's 15-minute delay.
    let delay = Duration::from_secs(30u64 << deferred.min(5)).min(darkroom_queue::MAX_DELAY);
    if deferred < MAX_UNREADABLE_DEFERRALS {
        tracing::warn!(queue = queue.name(), message_id = %message.message_id, deferrals = deferred, retry_in_seconds = delay.as_secs(), reason, "a message this version cannot read: handing it back for a process that can (is a newer darkroom being rolled out?)");
        match defer(queue, message, delay, DeferralReason::Unreadable).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn received(attributes: std::collections::BTreeMap<String, String>) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "m".into(),
            receipt_handle: darkroom_queue::ReceiptHandle("r".to_owned()),
            body: "{}".into(),
            attributes,
            receive_count: 1,
            group: None,
            partition: 0,
        }
    }

    /// Hours of a rolling upgrade's deferrals leave the outage budget whole, and the other
    /// way round.
    #[test]
    fn each_reason_counts_its_own_deferrals() {
        let mut message = received(Default::default());
        for _ in 0..30 {
            message = received(deferred_copy(&message, Duration::ZERO, DeferralReason::Unreadable).attributes);
        }
        assert_eq!(deferrals(&message, DeferralReason::Unreadable), 30);
        assert_eq!(deferrals(&message, DeferralReason::Outage), 0, "an outage after an upgrade starts from zero");
        let message = received(deferred_copy(&message, Duration::ZERO, DeferralReason::Outage).attributes);
        assert_eq!(deferrals(&message, DeferralReason::Outage), 1);
        assert_eq!(deferrals(&message, DeferralReason::Unreadable), 30);
    }

    /// A process of the version before the reasons were told apart counted every deferral
    /// in one attribute; this version reads that count as unreadable deferrals.
    #[test]
    fn the_old_single_count_is_read_as_unreadable_deferrals() {
        let message = received([("darkroom_deferrals".to_owned(), "7".to_owned())].into());
        assert_eq!(deferrals(&message, DeferralReason::Unreadable), 7);
        assert_eq!(deferrals(&message, DeferralReason::Outage), 0);
    }
}
