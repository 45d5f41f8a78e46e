//! The queue contract (docs/ARCHITECTURE.md "Queue semantics"), written once and run against every
//! implementation: each backend module provides a fresh backend, and each check makes its
//! own uniquely named queues, so the same checks can share one LocalStack.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_queue::{MessageGroup, OutgoingMessage, Queue, QueueBackend, QueueSpec};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_secs(1);

fn unique(name: &str) -> String {
    format!("contract-{name}-{:08x}", rand::random::<u32>())
}

async fn make_queue(
    backend: &dyn QueueBackend,
    name: &str,
    visibility: Duration,
    max_receives: u32,
) -> (Arc<dyn Queue>, Arc<dyn Queue>) {
    let name = unique(name);
    let dlq = format!("{name}-dlq");
    backend.create_queue(&QueueSpec::dead_letter(&dlq, visibility)).await.unwrap();
    backend.create_queue(&QueueSpec::new(name.clone(), visibility, max_receives, dlq.clone())).await.unwrap();
    (backend.open(&name).await.unwrap(), backend.open(&dlq).await.unwrap())
}

fn message(body: &str) -> OutgoingMessage {
    OutgoingMessage::new(body, BTreeMap::from([("job_id".to_owned(), "j1".to_owned())]))
}

async fn receive_one(queue: &dyn Queue, wait: Duration) -> Option<darkroom_queue::ReceivedMessage> {
    let mut batch = queue.receive(1, wait).await.unwrap();
    assert!(batch.len() <= 1);
    batch.pop()
}

async fn delivers_body_and_attributes(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "deliver", Duration::from_secs(30), 5).await;
    queue.send(message("hello")).await.unwrap();
    let got = receive_one(queue.as_ref(), Duration::from_secs(5)).await.expect("message delivered");
    assert_eq!(got.body, "hello");
    assert_eq!(got.attributes.get("job_id").map(String::as_str), Some("j1"));
    assert_eq!(got.receive_count, 1);
    queue.delete(&got.receipt_handle).await.unwrap();
}

async fn visibility_hides_a_received_message(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "hide", Duration::from_secs(30), 5).await;
    queue.send(message("once")).await.unwrap();
    assert!(receive_one(queue.as_ref(), Duration::from_secs(5)).await.is_some());
    assert!(
        receive_one(queue.as_ref(), SHORT).await.is_none(),
        "a received message was delivered again within its visibility timeout"
    );
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (0, 1));
}

async fn expiry_redelivers_with_a_higher_receive_count(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "expire", SHORT, 5).await;
    queue.send(message("again")).await.unwrap();
    let first = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
    // Not deleted: it must come back once the visibility timeout lapses.
    let second =
        receive_one(queue.as_ref(), Duration::from_secs(10)).await.expect("redelivered after the visibility timeout");
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt_handle, first.receipt_handle);
}

async fn delete_is_final(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "delete", SHORT, 5).await;
    queue.send(message("gone")).await.unwrap();
    let got = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
    queue.delete(&got.receipt_handle).await.unwrap();
    assert!(receive_one(queue.as_ref(), Duration::from_secs(3)).await.is_none(), "a deleted message came back");
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (0, 0));
}

async fn change_visibility_extends_and_releases(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "heartbeat", Duration::from_secs(2), 5).await;
    queue.send(message("slow photo")).await.unwrap();
    let got = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
    queue.change_visibility(&got.receipt_handle, Duration::from_secs(30)).await.unwrap();
    assert!(receive_one(queue.as_ref(), Duration::from_secs(4)).await.is_none(), "an extended message reappeared");
    queue.change_visibility(&got.receipt_handle, Duration::ZERO).await.unwrap();
    let again = receive_one(queue.as_ref(), Duration::from_secs(5)).await.expect("released message is visible at once");
    assert_eq!(again.receive_count, 2);
}

async fn a_stale_receipt_handle_never_fails_the_current_holder(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "stale", SHORT, 5).await;
    queue.send(message("contested")).await.unwrap();
    let first = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
    let second = receive_one(queue.as_ref(), Duration::from_secs(10)).await.unwrap();
    assert_ne!(first.receipt_handle, second.receipt_handle);
    // What a superseded handle does differs: SQS documents that such a delete "might not"
    // delete, LocalStack deletes, the embedded queue does not (see the sqlite module).
    // darkroom deletes only after a photo's work is recorded, so either is safe; what
    // every backend must do is let the current holder finish without an error.
    let _ = queue.change_visibility(&first.receipt_handle, Duration::from_secs(30)).await;
    let _ = queue.delete(&first.receipt_handle).await;
    queue.delete(&second.receipt_handle).await.unwrap();
    assert!(
        receive_one(queue.as_ref(), Duration::from_secs(3)).await.is_none(),
        "the message survived its holder's delete"
    );
}

async fn dead_letters_after_max_receives(backend: &dyn QueueBackend) {
    let (queue, dlq) = make_queue(backend, "poison", Duration::from_secs(30), 2).await;
    queue.send(message("poison")).await.unwrap();
    for expected_count in 1..=2 {
        let got = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.receive_count, expected_count);
        queue.change_visibility(&got.receipt_handle, Duration::ZERO).await.unwrap();
    }
    assert!(
        receive_one(queue.as_ref(), Duration::from_secs(2)).await.is_none(),
        "received more than max_receive_count times"
    );
    let dead = receive_one(dlq.as_ref(), Duration::from_secs(10)).await.expect("message is in the dead-letter queue");
    assert_eq!(dead.body, "poison");
    assert_eq!(dead.attributes.get("job_id").map(String::as_str), Some("j1"));
}

async fn long_poll_returns_early_on_arrival(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "longpoll", Duration::from_secs(30), 5).await;
    let receiver = queue.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { receiver.receive(1, Duration::from_secs(20)).await });
    // Give the receive time to start waiting: the point is that it wakes on arrival.
    tokio::time::sleep(Duration::from_millis(300)).await;
    queue.send(message("wake up")).await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10), "long poll took {:?}", started.elapsed());
}

async fn batches_hold_one_to_ten_messages_of_at_most_256_kib(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "batch", Duration::from_secs(30), 5).await;
    let ten: Vec<_> = (0..10).map(|i| message(&format!("m{i}"))).collect();
    queue.send_batch(&ten).await.unwrap();
    let eleven: Vec<_> = (0..11).map(|i| message(&format!("m{i}"))).collect();
    assert!(queue.send_batch(&eleven).await.is_err());
    assert!(queue.send(message(&"x".repeat(256 * 1024 + 1))).await.is_err());
    let mut seen = HashSet::new();
    while seen.len() < 10 {
        let batch = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "only {} of 10 received", seen.len());
        for got in batch {
            assert!(seen.insert(got.body.clone()), "{} delivered twice", got.body);
            queue.delete(&got.receipt_handle).await.unwrap();
        }
    }
}

async fn a_delayed_message_stays_hidden_until_its_delay_passes(backend: &dyn QueueBackend) {
    let (queue, _) = make_queue(backend, "delay", Duration::from_secs(30), 5).await;
    let sent = Instant::now();
    queue.send(message("later").with_delay(Duration::from_secs(3))).await.unwrap();
    queue.send(message("now")).await.unwrap();
    let first = receive_one(queue.as_ref(), Duration::from_secs(2)).await.expect("the undelayed message");
    assert_eq!(first.body, "now");
    let later = receive_one(queue.as_ref(), Duration::from_secs(10)).await.expect("the delayed message, in time");
    assert_eq!(later.body, "later");
    assert!(sent.elapsed() >= Duration::from_millis(2900), "delivered after {:?}", sent.elapsed());
    assert_eq!(later.receive_count, 1, "a delay is not a receive");
}

async fn opening_a_missing_queue_says_to_run_setup(backend: &dyn QueueBackend) {
    let error = backend.open(&unique("missing")).await.unwrap_err();
    assert!(error.to_string().contains("darkroom setup"), "{error}");
}

/// A fairly shared queue: spread over lanes where the backend needs them.
async fn make_fair_queue(backend: &dyn QueueBackend, name: &str) -> Arc<dyn Queue> {
    let name = unique(name);
    let dlq = format!("{name}-dlq");
    backend.create_queue(&QueueSpec::dead_letter(&dlq, Duration::from_secs(30))).await.unwrap();
    backend.create_queue(&QueueSpec::new(name.clone(), Duration::from_secs(30), 5, dlq).with_lanes(4)).await.unwrap();
    backend.open(&name).await.unwrap()
}

fn grouped(body: &str, tenant: &str, flow: &str) -> OutgoingMessage {
    message(body).in_group(Some(MessageGroup::new(tenant, flow)))
}

/// Receives `count` messages one at a time the way a worker does: from each of the
/// queue's receiving parts in turn, and deletes them; returns their bodies in order.
async fn consume_fairly(queue: &Arc<dyn Queue>, count: usize) -> Vec<String> {
    let parts = darkroom_queue::receiving_parts(queue);
    let mut bodies = Vec::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while bodies.len() < count && Instant::now() < deadline {
        let part = &parts[next % parts.len()];
        next += 1;
        for got in part.receive(1, Duration::ZERO).await.unwrap() {
            part.delete(&got.receipt_handle).await.unwrap();
            bodies.push(got.body);
        }
    }
    bodies
}

async fn a_new_group_waits_behind_about_one_message_of_a_backlog(backend: &dyn QueueBackend) {
    let queue = make_fair_queue(backend, "fair-newcomer").await;
    let backlog: Vec<OutgoingMessage> = (0..30).map(|i| grouped(&format!("big-{i}"), "alice", "job-a")).collect();
    for batch in backlog.chunks(10) {
        queue.send_batch(batch).await.unwrap();
    }
    queue.send(grouped("small", "bob", "job-b")).await.unwrap();
    let order = consume_fairly(&queue, 31).await;
    assert_eq!(order.len(), 31, "every message is delivered once: {order:?}");
    let position = order.iter().position(|body| body == "small").unwrap();
    assert!(position <= 2, "the newcomer waited behind {position} messages of the backlog: {order:?}");
    let big: Vec<&String> = order.iter().filter(|body| body.starts_with("big")).collect();
    let in_order: Vec<String> = (0..30).map(|i| format!("big-{i}")).collect();
    if queue.partitions().is_empty() {
        // One queue taking turns keeps each flow in order (SQS gives no order at all).
        assert_eq!(big, in_order.iter().collect::<Vec<_>>());
    }
}

async fn two_tenants_with_backlogs_take_turns(backend: &dyn QueueBackend) {
    let queue = make_fair_queue(backend, "fair-turns").await;
    for tenant in ["alice", "bob"] {
        let backlog: Vec<OutgoingMessage> =
            (0..20).map(|i| grouped(&format!("{tenant}-{i}"), tenant, &format!("job-{tenant}"))).collect();
        for batch in backlog.chunks(10) {
            queue.send_batch(batch).await.unwrap();
        }
    }
    let order = consume_fairly(&queue, 40).await;
    assert_eq!(order.len(), 40);
    let first_half = &order[..20];
    let alice = first_half.iter().filter(|body| body.starts_with("alice")).count();
    assert!((8..=12).contains(&alice), "alice got {alice} of the first 20 turns: {order:?}");
}

/// Every check of the contract, for `darkroom_testkit::contract_tests!`.
macro_rules! every_check {
    ($make:path) => {
        darkroom_testkit::contract_tests!($make;
            delivers_body_and_attributes,
            visibility_hides_a_received_message,
            expiry_redelivers_with_a_higher_receive_count,
            delete_is_final,
            change_visibility_extends_and_releases,
            a_stale_receipt_handle_never_fails_the_current_holder,
            dead_letters_after_max_receives,
            long_poll_returns_early_on_arrival,
            batches_hold_one_to_ten_messages_of_at_most_256_kib,
            a_delayed_message_stays_hidden_until_its_delay_passes,
            opening_a_missing_queue_says_to_run_setup,
            a_new_group_waits_behind_about_one_message_of_a_backlog,
            two_tenants_with_backlogs_take_turns);
    };
}

mod sqlite {
    use super::*;
    use darkroom_queue::SqliteQueues;

    async fn make() -> Option<(Box<dyn QueueBackend>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteQueues::open(dir.path().join("queues.sqlite3")).unwrap();
        Some((Box::new(backend), dir))
    }

    every_check!(make);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_receipt_handle_deletes_nothing() {
        let (backend, _dir) = make().await.unwrap();
        let (queue, _) = make_queue(backend.as_ref(), "stale-strict", SHORT, 5).await;
        queue.send(message("contested")).await.unwrap();
        let first = receive_one(queue.as_ref(), Duration::from_secs(5)).await.unwrap();
        let second = receive_one(queue.as_ref(), Duration::from_secs(10)).await.unwrap();
        assert!(queue.change_visibility(&first.receipt_handle, Duration::from_secs(30)).await.is_err());
        queue.delete(&first.receipt_handle).await.unwrap();
        queue.change_visibility(&second.receipt_handle, Duration::ZERO).await.unwrap();
        assert!(
            receive_one(queue.as_ref(), Duration::from_secs(5)).await.is_some(),
            "a stale handle deleted the message"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_with_many_flows_gets_one_share_and_its_flows_take_turns() {
        let (backend, _dir) = make().await.unwrap();
        let queue = make_fair_queue(backend.as_ref(), "fair-tenants").await;
        // Alice has ten jobs of five; Bob has one job of ten.
        for job in 0..10 {
            let batch: Vec<OutgoingMessage> =
                (0..5).map(|i| grouped(&format!("alice-{job}-{i}"), "alice", &format!("a{job}"))).collect();
            queue.send_batch(&batch).await.unwrap();
        }
        let batch: Vec<OutgoingMessage> = (0..10).map(|i| grouped(&format!("bob-{i}"), "bob", "b")).collect();
        queue.send_batch(&batch).await.unwrap();
        let order = consume_fairly(&queue, 20).await;
        let bob = order.iter().filter(|body| body.starts_with("bob")).count();
        assert_eq!(bob, 10, "one tenant, one share, however many jobs it has: {order:?}");
        // Alice's ten turns went to ten different jobs.
        let alice_jobs: HashSet<&str> =
            order.iter().filter(|body| body.starts_with("alice")).map(|body| &body[..7]).collect();
        assert_eq!(alice_jobs.len(), 10, "{order:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_of_an_older_darkroom_keeps_its_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.sqlite3");
        {
            // The schema before message groups, with a queue holding one message.
            let connection = rusqlite::Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE queues (name TEXT PRIMARY KEY, visibility_timeout_ms INTEGER NOT NULL,
                         max_receive_count INTEGER NOT NULL, dead_letter_queue TEXT);
                     CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
                         message_id TEXT NOT NULL, body TEXT NOT NULL, attributes TEXT NOT NULL,
                         sent_at_ms INTEGER NOT NULL, visible_at_ms INTEGER NOT NULL,
                         receive_count INTEGER NOT NULL DEFAULT 0, receipt_handle TEXT);
                     INSERT INTO queues VALUES ('old', 30000, 5, NULL);
                     INSERT INTO messages (queue, message_id, body, attributes, sent_at_ms, visible_at_ms)
                         VALUES ('old', 'm1', 'sent before the upgrade', '{}', 0, 0);",
                )
                .unwrap();
        }
        let backend = SqliteQueues::open(&path).unwrap();
        let queue = backend.open("old").await.unwrap();
        queue.send(grouped("sent after", "t", "f")).await.unwrap();
        let mut bodies = Vec::new();
        for got in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            queue.delete(&got.receipt_handle).await.unwrap();
            bodies.push(got.body);
        }
        bodies.sort();
        assert_eq!(bodies, ["sent after", "sent before the upgrade"]);
        // Opening again is harmless.
        drop(backend);
        let backend = SqliteQueues::open(&path).unwrap();
        let queue = backend.open("old").await.unwrap();
        // An older process still sharing the database sends without a group, while a new
        // one has a backlog: the old message gets a turn all the same.
        let backlog: Vec<OutgoingMessage> = (0..5).map(|i| grouped(&format!("new-{i}"), "t", "f")).collect();
        queue.send_batch(&backlog).await.unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO messages (queue, message_id, body, attributes, sent_at_ms, visible_at_ms)
                 VALUES ('old', 'm2', 'from an older process', '{}', 0, 0)",
                [],
            )
            .unwrap();
        let first_two: Vec<String> =
            queue.receive(2, Duration::from_secs(1)).await.unwrap().into_iter().map(|got| got.body).collect();
        assert!(first_two.contains(&"from an older process".to_owned()), "{first_two:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_survives_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.sqlite3");
        {
            let backend = SqliteQueues::open(&path).unwrap();
            let (queue, _) = make_queue(&backend, "durable", Duration::from_secs(30), 5).await;
            queue.send(message("received before the restart")).await.unwrap();
            queue.send(message("waiting")).await.unwrap();
            let in_flight = receive_one(queue.as_ref(), Duration::from_secs(1)).await.unwrap();
            assert_eq!(in_flight.body, "received before the restart");
            std::fs::write(dir.path().join("name"), queue.name()).unwrap();
        }
        let name = std::fs::read_to_string(dir.path().join("name")).unwrap();
        let reopened = SqliteQueues::open(&path).unwrap();
        let queue = reopened.open(&name).await.unwrap();
        let counts = queue.counts().await.unwrap();
        assert_eq!((counts.visible, counts.in_flight), (1, 1));
        assert_eq!(receive_one(queue.as_ref(), Duration::from_secs(1)).await.unwrap().body, "waiting");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_connection_sees_sends_within_100ms_and_never_shares_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.sqlite3");
        // Two backends on one file stand in for two processes: separate connections, and
        // no in-process wake-up between them.
        let sender_side = SqliteQueues::open(&path).unwrap();
        let receiver_side = SqliteQueues::open(&path).unwrap();
        let (queue, _) = make_queue(&sender_side, "xproc", Duration::from_secs(30), 5).await;
        let other = receiver_side.open(queue.name()).await.unwrap();
        let waiting = tokio::spawn({
            let other = other.clone();
            async move {
                let batch = other.receive(1, Duration::from_secs(20)).await.unwrap();
                (batch, Instant::now())
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent_at = Instant::now();
        queue.send(message("across")).await.unwrap();
        let (batch, received_at) = waiting.await.unwrap();
        assert_eq!(batch.len(), 1);
        let lag = received_at.duration_since(sent_at);
        assert!(lag < Duration::from_millis(100) + Duration::from_millis(150), "cross-process lag {lag:?}");

        for i in 0..40 {
            queue.send(message(&format!("m{i}"))).await.unwrap();
        }
        let drain = |q: Arc<dyn Queue>| async move {
            let mut ids = Vec::new();
            loop {
                let batch = q.receive(10, Duration::from_millis(200)).await.unwrap();
                if batch.is_empty() {
                    return ids;
                }
                ids.extend(batch.into_iter().map(|m| m.message_id));
            }
        };
        let (a, b) = tokio::join!(drain(queue.clone()), drain(other.clone()));
        let all: HashSet<_> = a.iter().chain(b.iter()).collect();
        assert_eq!(a.len() + b.len(), 40);
        assert_eq!(all.len(), 40, "a message was handed to both connections");
    }
}

#[cfg(feature = "sqs")]
mod sqs {
    use super::*;
    use darkroom_queue::aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    use darkroom_queue::SqsQueues;

    async fn make() -> Option<(Box<dyn QueueBackend>, ())> {
        let endpoint = darkroom_testkit::localstack_endpoint()?;
        let config = darkroom_queue::aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "contract-tests"))
            .build();
        Some((Box::new(SqsQueues::new(darkroom_queue::aws_sdk_sqs::Client::from_conf(config))), ()))
    }

    every_check!(make);
}
