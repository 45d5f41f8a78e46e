//! The one loop that reads a queue (docs/ARCHITECTURE.md, "Consumers"): worker, status and
//! webhook delivery are handlers run by it. The loop owns what every consumer must get
//! right the same way:
//!
//! - receiving no more than it has places for (read-ahead bounded, so a message another
//!   process could take is not hoarded here), as many at once as it has free places;
//! - the dependency [`Breaker`]: nothing is received while it is open, and a receive that
//!   fails on an outage trips it;
//! - backing off after failed receives ([`ReceiveBackoff`]);
//! - the panic boundary: a handler that panics is logged with its message's id and counted
//!   (`darkroom_handler_panics_total`), and its message returns after its visibility
//!   timeout, to this process or another;
//! - messages a poll brings back after the breaker tripped are deferred for later without
//!   spending their receive budget;
//! - settling each message as its handler says ([`Settle`]);
//! - draining on shutdown: no more receives, the handlers under way get `drain_deadline`
//!   to finish, then `abandon` is cancelled and they are waited for.
//!
//! A handler holds its [`Place`] while it works; one that waits on something slower (the
//! worker, for a CPU slot) keeps it until then, and may let it go early.

use crate::deferral::{defer, leave_unreadable, DeferralReason};
use crate::Breaker;
use darkroom_queue::{Queue, ReceiveBackoff, ReceivedMessage, MAX_BATCH};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a message received as a dependency went down waits before it is offered again.
const OUTAGE_DEFERRAL: Duration = Duration::from_secs(30);

/// What becomes of a message once its handler is done with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Handled: delete it. A failed delete is logged; the message comes back after its
    /// visibility timeout, and handlers are idempotent, so it changes nothing then.
    Delete,
    /// Handed back for later without spending its receive budget (see [`defer`]).
    Defer { delay: Duration, reason: DeferralReason },
    /// Written by a newer darkroom: handed back for a process that reads it.
    LeaveUnreadable(String),
    /// Hidden for this long (a message that will never parse, left for an operator).
    Hide(Duration),
    /// Left as it is: it returns after its visibility timeout, or the handler settled it
    /// itself (the worker deletes a request only after its response is sent).
    Leave,
}

/// A place in a loop's read-ahead. The loop receives another message only when one is free.
#[derive(Debug)]
pub struct Place {
    _permit: OwnedSemaphorePermit,
}

/// Handles one message of a queue.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles `message` of `queue`. `abandon` is cancelled when a drain's deadline passes:
    /// a long handler stops and leaves its message for another process.
    async fn handle(
        &self,
        queue: &Arc<dyn Queue>,
        message: &ReceivedMessage,
        place: Place,
        abandon: &CancellationToken,
    ) -> Settle;
}

/// How a loop reads its queue.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// Messages received and not yet settled, at most.
    pub places: usize,
    /// Long-poll wait of each receive.
    pub wait_time: Duration,
    /// On shutdown, how long handlers under way may take before `abandon` is cancelled.
    pub drain_deadline: Duration,
}

/// Reads `queue` until `shutdown` is cancelled, handing each message to `handler`, then
/// drains (see the module comment). `breaker`: the process's dependency breaker, if its
/// messages' redeliveries count towards a dead-letter queue that an outage must not fill.
pub async fn serve(
    queue: Arc<dyn Queue>,
    handler: Arc<dyn Handler>,
    settings: LoopSettings,
    breaker: Option<Breaker>,
    shutdown: CancellationToken,
) {
    let abandon = CancellationToken::new();
    let mut in_flight = JoinSet::new();
    let mut backoff = ReceiveBackoff::default();
    let places = Arc::new(Semaphore::new(settings.places.max(1)));
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => match place { Ok(place) => place, Err(_) => break },
            () = shutdown.cancelled() => break,
        };
        // While the store or a queue is down, take nothing: every receive would count
        // towards the dead-letter queue for an outage that is not the message's fault.
        if let Some(breaker) = &breaker {
            tokio::select! {
                () = breaker.closed() => {}
                () = shutdown.cancelled() => break,
            }
        }
        // As many as there are free places, this one included.
        let want = (1 + places.available_permits()).min(MAX_BATCH);
        let received = tokio::select! {
            received = queue.receive(want, settings.wait_time) => received,
            () = shutdown.cancelled() => break,
        };
        let messages = match received {
            Ok(messages) => {
                backoff.succeeded();
                messages
            }
            Err(error) => {
                let delay = backoff.failed(queue.name(), &error);
                if let Some(breaker) = breaker.as_ref().filter(|_| error.is_retryable()) {
                    breaker.trip(format!("receiving from {}: {error}", queue.name()));
                }
                drop(place);
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    () = shutdown.cancelled() => break,
                }
            }
        };
        metrics::counter!("darkroom_messages_received_total", "queue" => queue.name().to_owned())
            .increment(messages.len() as u64);
        // Received by a poll that began before the breaker tripped (another message's store
        // failure): handed back for later without spending their receive budget, instead of
        // each failing on the outage.
        if let Some(breaker) = breaker.as_ref().filter(|breaker| !breaker.is_closed()) {
            drop(place);
            for message in &messages {
                let settle = Settle::Defer { delay: OUTAGE_DEFERRAL, reason: DeferralReason::Outage };
                settle_message(queue.as_ref(), message, settle).await;
            }
            tracing::info!(queue = queue.name(), messages = messages.len(), reason = ?breaker.open_state().map(|open| open.reason), "messages received as a dependency went down: handed back for later");
            reap(&mut in_flight, queue.name());
            continue;
        }
        let mut place = Some(place);
        for message in messages {
            let place = match place.take() {
                Some(place) => place,
                None => match places.clone().acquire_owned().await {
                    Ok(place) => place,
                    Err(_) => break,
                },
            };
            let (handler, queue, abandon) = (handler.clone(), queue.clone(), abandon.clone());
            in_flight.spawn(
                async move {
                    let handled = AssertUnwindSafe(handler.handle(&queue, &message, Place { _permit: place }, &abandon));
                    match handled.catch_unwind().await {
                        Ok(settle) => settle_message(queue.as_ref(), &message, settle).await,
                        // Left in the queue: it returns after its visibility timeout, and after
                        // its receive budget goes to the dead-letter queue.
                        Err(panic) => {
                            let what = panic_text(panic.as_ref());
                            metrics::counter!("darkroom_handler_panics_total", "queue" => queue.name().to_owned())
                                .increment(1);
                            tracing::error!(queue = queue.name(), message_id = %message.message_id, receive_count = message.receive_count, panic = what, "a message handler panicked; its message returns after its visibility timeout, and goes to the dead-letter queue after its receive budget (a bug: please report it with this log)");
                        }
                    }
                }
                .in_current_span(),
            );
        }
        reap(&mut in_flight, queue.name());
    }
    drain(&mut in_flight, &abandon, settings.drain_deadline, queue.name()).await;
}

/// Does what the handler said with its message.
async fn settle_message(queue: &dyn Queue, message: &ReceivedMessage, settle: Settle) {
    match settle {
        Settle::Delete => {
            if let Err(error) = queue.delete(&message.receipt_handle).await {
                tracing::warn!(queue = queue.name(), message_id = %message.message_id, error.message = %error, "could not delete a handled message; it returns after its visibility timeout and changes nothing then");
            }
        }
        Settle::Defer { delay, reason } => {
            if let Err(error) = defer(queue, message, delay, reason).await {
                tracing::warn!(queue = queue.name(), message_id = %message.message_id, error.message = %error, "could not hand a message back for later; it returns after its visibility timeout");
            }
        }
        Settle::LeaveUnreadable(reason) => leave_unreadable(queue, message, &reason).await,
        Settle::Hide(duration) => {
            if let Err(error) = queue.change_visibility(&message.receipt_handle, duration).await {
                tracing::warn!(queue = queue.name(), message_id = %message.message_id, error.message = %error, "could not hide a message; it returns after its visibility timeout");
            }
        }
        Settle::Leave => {}
    }
}

/// Collects the handlers that are done, so the set does not grow without bound.
fn reap(in_flight: &mut JoinSet<()>, queue: &str) {
    while let Some(done) = in_flight.try_join_next() {
        report_lost(done, queue);
    }
}

/// A handler's task that ended without finishing (its panic is caught inside it, so only a
/// runtime shutting down ends one this way).
fn report_lost(done: Result<(), tokio::task::JoinError>, queue: &str) {
    if let Err(error) = done {
        tracing::warn!(queue, error.message = %error, "a message handler's task ended before it finished; its message returns after its visibility timeout");
    }
}

/// What a panic said, when it said it with a string.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

async fn drain(in_flight: &mut JoinSet<()>, abandon: &CancellationToken, deadline: Duration, queue: &str) {
    reap(in_flight, queue);
    if in_flight.is_empty() {
        return;
    }
    tracing::info!(
        queue,
        messages = in_flight.len(),
        deadline_seconds = deadline.as_secs(),
        "draining the messages in work"
    );
    let finished = tokio::time::timeout(deadline, async {
        while let Some(done) = in_flight.join_next().await {
            report_lost(done, queue);
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(queue, messages = in_flight.len(), "the drain deadline passed: the messages still in work are abandoned and return to the queue for another process");
        abandon.cancel();
        while let Some(done) = in_flight.join_next().await {
            report_lost(done, queue);
        }
    }
}
