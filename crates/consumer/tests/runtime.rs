//! The consumer loop on the real embedded queue, with handlers that stand for the worker's,
//! status's and the webhooks': each message is settled as its handler says, the loop never
//! holds more messages than it has places, a panicking handler leaves its message for later
//! and the loop goes on, and a drain gives the handlers under way their deadline, then
//! cancels `abandon`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_consumer::{serve, Handler, LoopSettings, Place, Settle};
use darkroom_queue::{OutgoingMessage, Queue, QueueBackend, QueueDirectory, QueueSpec, ReceivedMessage, SqliteQueues};
use darkroom_testkit::eventually;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const VISIBILITY: Duration = Duration::from_secs(30);

async fn queue(dir: &tempfile::TempDir) -> Arc<dyn Queue> {
    let backend = Arc::new(SqliteQueues::open(dir.path().join("queues.sqlite3")).unwrap());
    backend.create_queue(&QueueSpec::dead_letter("work-dlq", VISIBILITY)).await.unwrap();
    backend.create_queue(&QueueSpec::new("work", VISIBILITY, 5, "work-dlq")).await.unwrap();
    QueueDirectory::new(backend).get("work").await.unwrap()
}

async fn send(queue: &dyn Queue, bodies: &[&str]) {
    for body in bodies {
        queue.send(OutgoingMessage::new(*body, BTreeMap::new())).await.unwrap();
    }
}

fn settings(places: usize) -> LoopSettings {
    LoopSettings { places, wait_time: Duration::from_millis(100), drain_deadline: Duration::from_secs(5) }
}

/// Settles each message by its body: `delete`, `hide`, `leave`, or `panic`.
#[derive(Default)]
struct ByBody {
    handled: AtomicUsize,
}

#[darkroom_consumer::async_trait]
impl Handler for ByBody {
    async fn handle(&self, _: &Arc<dyn Queue>, message: &ReceivedMessage, _: Place, _: &CancellationToken) -> Settle {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match message.body.as_str() {
            "delete" => Settle::Delete,
            "hide" => Settle::Hide(Duration::from_secs(3600)),
            "leave" => Settle::Leave,
            _ => panic!("a handler's bug"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_is_settled_as_its_handler_says_and_a_panic_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue(&dir).await;
    send(queue.as_ref(), &["panic", "delete", "delete", "hide", "leave", "delete"]).await;
    let handler = Arc::new(ByBody::default());
    let shutdown = CancellationToken::new();
    let loop_ = tokio::spawn(serve(queue.clone(), handler.clone(), settings(2), None, shutdown.clone()));
    eventually(Duration::from_secs(10), "every message handled", || async {
        handler.handled.load(Ordering::SeqCst) == 6
    })
    .await;
    eventually(Duration::from_secs(10), "the deleted ones gone, the others hidden", || async {
        let counts = queue.counts().await.unwrap();
        counts.visible == 0 && counts.in_flight == 3
    })
    .await;
    shutdown.cancel();
    loop_.await.unwrap();
    assert_eq!(handler.handled.load(Ordering::SeqCst), 6, "nothing was handled twice");
}

/// Holds every message until told, counting how many it holds at once.
struct Holding {
    holding: AtomicUsize,
    most: AtomicUsize,
    release: CancellationToken,
    abandoned: AtomicUsize,
}

#[darkroom_consumer::async_trait]
impl Handler for Holding {
    async fn handle(&self, _: &Arc<dyn Queue>, _: &ReceivedMessage, _: Place, abandon: &CancellationToken) -> Settle {
        let now = self.holding.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::select! {
            () = self.release.cancelled() => {}
            () = abandon.cancelled() => { self.abandoned.fetch_add(1, Ordering::SeqCst); }
        }
        self.holding.fetch_sub(1, Ordering::SeqCst);
        Settle::Delete
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_holds_no_more_messages_than_its_places_and_a_drain_abandons_after_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue(&dir).await;
    send(queue.as_ref(), &["a", "b", "c", "d", "e"]).await;
    let handler = Arc::new(Holding {
        holding: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        release: CancellationToken::new(),
        abandoned: AtomicUsize::new(0),
    });
    let shutdown = CancellationToken::new();
    let drain = LoopSettings { drain_deadline: Duration::from_millis(200), ..settings(3) };
    let loop_ = tokio::spawn(serve(queue.clone(), handler.clone(), drain, None, shutdown.clone()));
    eventually(Duration::from_secs(10), "three messages held", || async {
        handler.holding.load(Ordering::SeqCst) == 3
    })
    .await;
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (2, 3), "two left for another process");
    shutdown.cancel();
    loop_.await.unwrap();
    assert_eq!(handler.abandoned.load(Ordering::SeqCst), 3, "the drain's deadline passed: every handler abandoned");
    assert_eq!(handler.most.load(Ordering::SeqCst), 3);
    assert_eq!(queue.counts().await.unwrap().visible, 2, "nothing received after shutdown");
}

/// A dependency that stays down: the breaker, once tripped, stays open.
#[derive(Debug)]
struct Down;

#[darkroom_consumer::async_trait]
impl darkroom_consumer::Probe for Down {
    async fn probe(&self) -> Result<(), String> {
        Err("still down".into())
    }
}

/// The real queue, whose receives with messages trip the breaker before they return (a poll
/// that began before another message's store failure tripped it), and which keeps what is
/// sent through it.
#[derive(Debug)]
struct TripsOnReceive {
    inner: Arc<dyn Queue>,
    breaker: darkroom_consumer::Breaker,
    sent: std::sync::Mutex<Vec<OutgoingMessage>>,
}

#[darkroom_consumer::async_trait]
impl Queue for TripsOnReceive {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), darkroom_queue::QueueError> {
        self.sent.lock().unwrap().extend_from_slice(messages);
        self.inner.send_batch(messages).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, darkroom_queue::QueueError> {
        let received = self.inner.receive(max, wait).await?;
        if !received.is_empty() {
            self.breaker.trip("the store went down meanwhile");
        }
        Ok(received)
    }
    async fn delete(&self, handle: &darkroom_queue::ReceiptHandle) -> Result<(), darkroom_queue::QueueError> {
        self.inner.delete(handle).await
    }
    async fn change_visibility(
        &self,
        handle: &darkroom_queue::ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), darkroom_queue::QueueError> {
        self.inner.change_visibility(handle, timeout).await
    }
    async fn counts(&self) -> Result<darkroom_queue::QueueCounts, darkroom_queue::QueueError> {
        self.inner.counts().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_a_poll_brings_after_the_breaker_tripped_are_deferred_without_spending_a_receive() {
    let dir = tempfile::tempdir().unwrap();
    let inner = queue(&dir).await;
    send(inner.as_ref(), &["delete", "delete"]).await;
    let breaker = darkroom_consumer::Breaker::new("test", Arc::new(Down));
    let tripping =
        Arc::new(TripsOnReceive { inner: inner.clone(), breaker: breaker.clone(), sent: Default::default() });
    let queue: Arc<dyn Queue> = tripping.clone();
    let handler = Arc::new(ByBody::default());
    let shutdown = CancellationToken::new();
    let loop_ = tokio::spawn(serve(queue, handler.clone(), settings(2), Some(breaker), shutdown.clone()));
    eventually(Duration::from_secs(10), "both handed back for later", || async {
        tripping.sent.lock().unwrap().len() >= 2
    })
    .await;
    shutdown.cancel();
    loop_.await.unwrap();
    let counts = inner.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (0, 2), "the originals deleted, the copies waiting out their delay");
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0, "none was handled on the outage");
    // Each was re-sent as a delayed copy that counts an outage deferral (its receive count
    // starts afresh), and the original deleted: none waits out a visibility timeout.
    let sent = tripping.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|copy| copy.delay > Duration::ZERO
        && copy.attributes.get("darkroom_outage_deferrals").map(String::as_str) == Some("1")));
}
