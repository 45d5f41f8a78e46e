//! The worker driven one message at a time against the real embedded store and queue,
//! with faults injected at the IO boundary (the test kit's faulty store and queues).
//! Transient errors must be retried without failing the photo or spending the message's
//! receive budget; a failed delete must be harmless; an outage must stop the worker from
//! taking messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::{
    keys, now_millis, JobId, JobManifest, Limits, OwnerToken, PhotoId, PhotoRequest, PhotoState, QueueNames, Recipe,
    StageMap,
};
use darkroom_queue::{OutgoingMessage, Queue, QueueBackend, QueueDirectory, QueueSpec, ReceivedMessage, SqliteQueues};
use darkroom_store::{LocalStore, ObjectStore};
use darkroom_testkit::{eventually, FaultyQueues, FaultyStore};
use darkroom_worker::{Outcome, TimeBudgets, Worker, WorkerSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Setup {
    _dir: tempfile::TempDir,
    local: LocalStore,
    store: Arc<FaultyStore>,
    faulty_queues: Arc<FaultyQueues>,
    queues: QueueDirectory,
    requests: Arc<dyn Queue>,
    names: QueueNames,
    recipe: Recipe,
    job: JobId,
}

const RECIPE: &str = r#"{"ops":[{"op":"thumbnail","size":64}]}"#;

async fn setup(visibility: Duration, recipe: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path().join("store")).unwrap();
    let backend = Arc::new(SqliteQueues::open(dir.path().join("queues.sqlite3")).unwrap());
    let names = QueueNames::new("t");
    for name in [names.requests("quick"), names.responses()] {
        let dlq = QueueNames::dead_letter(&name);
        backend.create_queue(&QueueSpec::dead_letter(&dlq, visibility)).await.unwrap();
        backend.create_queue(&QueueSpec::new(name, visibility, 5, dlq)).await.unwrap();
    }
    let recipe = Recipe::from_json(recipe).unwrap();
    let job = JobId::generate();
    let manifest = JobManifest {
        v: 1,
        id: job.clone(),
        created_at: now_millis(),
        owner_token_sha256: OwnerToken::generate().sha256_hex(),
        recipe: recipe.clone(),
        callback_url: None,
        tenant: None,
        name: None,
    };
    darkroom_store::json::put_json(&local, &keys::job_manifest(&job), &manifest).await.unwrap();
    let faulty_queues = Arc::new(FaultyQueues::new(backend));
    let queues = QueueDirectory::new(faulty_queues.clone());
    let requests = queues.get(&names.requests("quick")).await.unwrap();
    let store = Arc::new(FaultyStore::new(Arc::new(local.clone())));
    Setup { _dir: dir, local, store, faulty_queues, queues, requests, names, recipe, job }
}

impl Setup {
    /// Stores an original and queues its request.
    async fn add_photo(&self) -> PhotoRequest {
        let photo = PhotoId::generate();
        let original = darkroom_testkit::fixture("chelsea.jpg");
        self.local.put(&keys::original(&self.job, &photo), original.into(), "image/jpeg").await.unwrap();
        let request =
            PhotoRequest::new(self.job.clone(), photo, 1, self.recipe.clone(), StageMap::default().plan(&self.recipe));
        self.requests.send(OutgoingMessage::new(request.encode(), request.attributes())).await.unwrap();
        request
    }

    fn worker(&self, visibility: Duration, budget: Duration) -> Worker {
        let settings = WorkerSettings {
            stages: vec!["quick".into()],
            concurrency: 1,
            visibility_timeout: visibility,
            heartbeat_interval: Duration::from_secs(1),
            wait_time: Duration::from_secs(1),
            drain_deadline: Duration::from_secs(5),
            limits: Limits::default(),
            time_budgets: TimeBudgets::uniform(budget),
            max_receive_count: 5,
        };
        let jobs = darkroom_jobs::Jobs::new(
            self.store.clone(),
            self.queues.clone(),
            self.names.clone(),
            darkroom_core::StageMap::default(),
        );
        Worker::new(&jobs, settings).unwrap()
    }

    /// The states reported on the response queue so far (drained).
    async fn reported_states(&self) -> Vec<String> {
        let responses = self.queues.get(&self.names.responses()).await.unwrap();
        let mut states = Vec::new();
        while let Some(message) = receive_one(responses.as_ref(), Duration::ZERO).await {
            let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
            states.push(body["state"].as_str().unwrap().to_owned());
            responses.delete(&message.receipt_handle).await.unwrap();
        }
        states
    }
}

async fn receive_one(queue: &dyn Queue, wait: Duration) -> Option<ReceivedMessage> {
    queue.receive(1, wait).await.unwrap().pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_store_error_is_retried_in_place_without_spending_a_receive() {
    let visibility = Duration::from_secs(30);
    let setup = setup(visibility, RECIPE).await;
    setup.add_photo().await;
    setup.store.fail_next_puts(1);
    let worker = setup.worker(visibility, Duration::from_secs(60));

    let first = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&setup.requests, first, &CancellationToken::new()).await, Outcome::Completed);
    let states = setup.reported_states().await;
    assert!(states.contains(&"done".to_owned()), "{states:?}");
    assert!(!states.contains(&"failed".to_owned()), "a transient error failed the photo: {states:?}");
    let counts = setup.requests.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (0, 0), "the request was not finished in one receive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_stops_the_worker_taking_messages_and_fails_nothing() {
    let visibility = Duration::from_secs(6);
    let setup = setup(visibility, RECIPE).await;
    for _ in 0..4 {
        setup.add_photo().await;
    }
    setup.store.set_down(true);
    let worker = Arc::new(setup.worker(visibility, Duration::from_secs(60)));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));

    eventually(Duration::from_secs(10), "the breaker opens", || async { !worker.breaker().is_closed() }).await;
    // Longer than the visibility timeout: a worker that kept receiving would have spent
    // receives on every message by now.
    tokio::time::sleep(Duration::from_secs(8)).await; // the outage's length is the input, not a synchronisation
    let counts = setup.requests.counts().await.unwrap();
    assert_eq!(counts.visible + counts.in_flight, 4, "a message was lost or finished during the outage");
    assert!(counts.visible >= 3, "the worker kept taking messages during the outage: {counts:?}");

    setup.store.set_down(false);
    eventually(Duration::from_secs(60), "every photo done", || async {
        let counts = setup.requests.counts().await.unwrap();
        counts.visible + counts.in_flight == 0
    })
    .await;
    let states = setup.reported_states().await;
    assert_eq!(states.iter().filter(|s| *s == "done").count(), 4, "{states:?}");
    assert!(!states.contains(&"failed".to_owned()), "{states:?}");
    let dead = setup.queues.get(&QueueNames::dead_letter(&setup.names.requests("quick"))).await.unwrap();
    assert_eq!(dead.counts().await.unwrap().visible, 0, "an outage dead-lettered a photo");
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_outage_pauses_receiving_and_the_work_resumes_by_itself() {
    let visibility = Duration::from_secs(6);
    let setup = setup(visibility, RECIPE).await;
    setup.faulty_queues.set_down(true);
    let worker = Arc::new(setup.worker(visibility, Duration::from_secs(60)));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.clone().run(shutdown.clone()));
    eventually(Duration::from_secs(10), "the breaker opens", || async { !worker.breaker().is_closed() }).await;
    setup.faulty_queues.set_down(false);
    setup.add_photo().await;
    eventually(Duration::from_secs(60), "the photo is done", || async {
        let counts = setup.requests.counts().await.unwrap();
        counts.visible + counts.in_flight == 0
    })
    .await;
    assert!(worker.breaker().is_closed());
    assert_eq!(setup.reported_states().await.last().map(String::as_str), Some("done"));
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delete_is_harmless_and_the_redelivery_is_a_duplicate() {
    let visibility = Duration::from_secs(3);
    let setup = setup(visibility, RECIPE).await;
    let request = setup.add_photo().await;
    let worker = setup.worker(visibility, Duration::from_secs(60));
    let abandon = CancellationToken::new();

    setup.faulty_queues.fail_deletes(true);
    let first = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&setup.requests, first, &abandon).await, Outcome::Completed);
    setup.faulty_queues.fail_deletes(false);
    // Status records the responses, as it would in a running system.
    let jobs = darkroom_jobs::Jobs::new(
        Arc::new(setup.local.clone()),
        setup.queues.clone(),
        setup.names.clone(),
        StageMap::default(),
    );
    let status = darkroom_status::StatusUpdater::new(
        jobs,
        darkroom_status::StatusSettings {
            wait_time: Duration::ZERO,
            max_receive_count: 5,
            housekeeping: darkroom_status::HousekeepingSettings {
                interval: Duration::from_secs(60),
                stuck_after: Duration::from_secs(1800),
                retention: None,
                visibility_timeout: visibility,
                time_budgets: TimeBudgets::uniform(Duration::from_secs(60)),
                max_receive_count: 5,
            },
        },
    );
    let responses = setup.queues.get(&setup.names.responses()).await.unwrap();
    while let Some(message) = receive_one(responses.as_ref(), Duration::ZERO).await {
        status.apply_response_message(&message.body).await.unwrap();
    }
    // The undeleted request comes back after the visibility timeout...
    let again = receive_one(setup.requests.as_ref(), Duration::from_secs(10)).await.expect("redelivered");
    assert_eq!(again.receive_count, 2);
    // ... and is recognised as already done: deleted, nothing redone.
    assert_eq!(worker.handle(&setup.requests, again, &abandon).await, Outcome::Duplicate);
    assert!(
        receive_one(setup.requests.as_ref(), Duration::from_secs(4)).await.is_none(),
        "the duplicate was not deleted"
    );
    let [done, _failed] = keys::terminal_events(&request.job_id, &request.photo_id, 1);
    assert!(setup.local.head(&done).await.unwrap().is_some());
    assert!(done.ends_with(&format!("-{}.json", PhotoState::Done)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_a_newer_version_is_handed_back_not_deleted() {
    let visibility = Duration::from_secs(30);
    let setup = setup(visibility, RECIPE).await;
    let newer = r#"{"v":99,"job_id":"from-the-future","something_new":true}"#;
    setup.requests.send(OutgoingMessage::new(newer, Default::default())).await.unwrap();
    let worker = setup.worker(visibility, Duration::from_secs(60));
    let message = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&setup.requests, message, &CancellationToken::new()).await, Outcome::Unreadable);
    // Deferred: a copy waits (with its receive count reset), the original is gone.
    let counts = setup.requests.counts().await.unwrap();
    assert_eq!(counts.visible + counts.in_flight, 1, "{counts:?}");
    assert!(receive_one(setup.requests.as_ref(), Duration::ZERO).await.is_none(), "handed back without a delay");
}

/// A render that runs long (as a long image loop does, noticing when it is told to stop) is
/// abandoned at its budget. (A render that never returns is the end-to-end test's:
/// `a_hung_render_fails_after_its_time_budget_and_sigterm_still_exits_in_time`.)
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_past_its_budget_is_abandoned_and_fails_on_its_last_attempt() {
    let visibility = Duration::from_secs(30);
    let recipe = r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=600000"}}]}"#;
    let setup = setup(visibility, recipe).await;
    setup.add_photo().await;
    let worker = setup.worker(visibility, Duration::from_secs(1));
    let abandon = CancellationToken::new();

    let first = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(worker.handle(&setup.requests, first, &abandon).await, Outcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5), "the budget was not kept: {:?}", started.elapsed());
    // Told to stop, the render does, and stops counting as stuck.
    eventually(Duration::from_secs(5), "the abandoned render stops", || async { worker.stuck_renders() == 0 }).await;

    // Redelivered until its last receive, where it is reported failed with the reason.
    let mut last = None;
    for _ in 0..4 {
        // Released with a growing delay (up to 16 s): wait for it, a long poll at a time.
        let mut message = None;
        for _ in 0..5 {
            message = receive_one(setup.requests.as_ref(), Duration::from_secs(20)).await;
            if message.is_some() {
                break;
            }
        }
        let message = message.expect("released for another attempt");
        last = Some(worker.handle(&setup.requests, message, &abandon).await);
    }
    assert_eq!(last, Some(Outcome::Failed));
    let responses = setup.queues.get(&setup.names.responses()).await.unwrap();
    let mut failure = None;
    while let Some(message) = receive_one(responses.as_ref(), Duration::ZERO).await {
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        if body["state"] == "failed" {
            failure = Some(body["error"].clone());
        }
    }
    let failure = failure.expect("a failed response");
    assert_eq!(failure["code"], "timed_out");
    assert!(failure["message"].as_str().unwrap().contains("1-second limit"), "{failure}");
}

/// A segment done within moments reports only its end; one still at work after 750 ms
/// reports `processing` first, while it goes on (docs/ARCHITECTURE.md "One photo's path").
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_is_reported_only_for_a_segment_still_at_work_after_a_moment() {
    let visibility = Duration::from_secs(30);
    let quick = setup(visibility, RECIPE).await;
    quick.add_photo().await;
    let worker = quick.worker(visibility, Duration::from_secs(60));
    let message = receive_one(quick.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&quick.requests, message, &CancellationToken::new()).await, Outcome::Completed);
    assert_eq!(quick.reported_states().await, ["done"]);

    let slow =
        setup(visibility, r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=2000"}}]}"#).await;
    slow.add_photo().await;
    let worker = slow.worker(visibility, Duration::from_secs(60));
    let message = receive_one(slow.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&slow.requests, message, &CancellationToken::new()).await, Outcome::Completed);
    assert_eq!(slow.reported_states().await, ["processing", "done"]);
}

/// A photo at work is shown queued until it reports `processing`, so its owner may cancel
/// it then: the cancel holds, the render is dropped, and nothing more is stored or reported.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_cancelled_while_at_work_is_dropped_not_stored() {
    let visibility = Duration::from_secs(30);
    let setup =
        setup(visibility, r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=3000"}}]}"#).await;
    let request = setup.add_photo().await;
    let worker = setup.worker(visibility, Duration::from_secs(60));
    let message = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    let cancel = keys::cancelled_event(&setup.job, &request.photo_id, request.attempt);
    let abandon = CancellationToken::new();
    let handled = worker.handle(&setup.requests, message, &abandon);
    // The cancel lands while the render runs (after the checks at the segment's start): once
    // the worker has said it is at work.
    let cancelled = async {
        let responses = setup.queues.get(&setup.names.responses()).await.unwrap();
        let report = receive_one(responses.as_ref(), Duration::from_secs(20)).await.expect("a report");
        assert!(report.body.contains("processing"), "{}", report.body);
        responses.delete(&report.receipt_handle).await.unwrap();
        setup.local.put(&cancel, bytes::Bytes::from_static(b"{}"), "application/json").await.unwrap();
    };
    let (outcome, ()) = tokio::join!(handled, cancelled);
    assert_eq!(outcome, Outcome::Cancelled);
    assert!(setup.reported_states().await.is_empty(), "nothing reported for a cancelled photo");
    let outputs = setup.local.list(&keys::photo_prefix(&setup.job, &request.photo_id)).await.unwrap();
    assert!(outputs.iter().all(|object| !object.key.contains("/a1/")), "an output was stored: {outputs:?}");
    let counts = setup.requests.counts().await.unwrap();
    assert_eq!((counts.visible, counts.in_flight), (0, 0), "the request was deleted");
}
