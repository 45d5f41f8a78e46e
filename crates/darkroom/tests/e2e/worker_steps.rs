//! The worker driven one message at a time against the real embedded store and queue,
//! with faults injected at the IO boundary: a store that fails transiently, a queue whose
//! deletes fail. Transient errors must be retried after a backoff, never fail the photo;
//! a failed delete must be harmless.

use async_trait::async_trait;
use bytes::Bytes;
use darkroom_core::{
    keys, now_millis, JobId, JobManifest, Limits, OwnerToken, PhotoId, PhotoRequest, QueueNames, Recipe, StageMap,
};
use darkroom_queue::{
    OutgoingMessage, Queue, QueueBackend, QueueCounts, QueueDirectory, QueueError, QueueSpec, ReceiptHandle,
    ReceivedMessage, SqliteQueues,
};
use darkroom_store::{ByteStream, LocalStore, ObjectMeta, ObjectStore, PutOutcome, StoreError, Upload};
use darkroom_worker::{Outcome, Worker, WorkerSettings};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The local store, except that the next `failing_puts` puts fail as an outage would.
#[derive(Debug)]
struct FlakyStore {
    inner: LocalStore,
    failing_puts: AtomicUsize,
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        if self.failing_puts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::Unavailable { operation: "put", message: "injected outage".into() });
        }
        self.inner.put(key, body, content_type).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError> {
        self.inner.put_if_absent(key, body, content_type).await
    }
    async fn start_upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, StoreError> {
        self.inner.start_upload(key, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<(ObjectMeta, ByteStream), StoreError> {
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }
}

/// A real queue whose deletes always fail.
#[derive(Debug)]
struct UndeletableQueue(Arc<dyn Queue>);

#[async_trait]
impl Queue for UndeletableQueue {
    fn name(&self) -> &str {
        self.0.name()
    }
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
        self.0.send_batch(messages).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.0.receive(max, wait).await
    }
    async fn delete(&self, _handle: &ReceiptHandle) -> Result<(), QueueError> {
        Err(QueueError::Unavailable { queue: self.0.name().to_owned(), message: "injected delete failure".into() })
    }
    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError> {
        self.0.change_visibility(handle, timeout).await
    }
    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.0.counts().await
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    local: LocalStore,
    queues: QueueDirectory,
    requests: Arc<dyn Queue>,
    names: QueueNames,
}

async fn setup(visibility: Duration) -> (Setup, PhotoRequest) {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path().join("store")).unwrap();
    let backend = SqliteQueues::open(dir.path().join("queues.sqlite3")).unwrap();
    let names = QueueNames::new("t");
    for name in [names.requests("quick"), names.responses()] {
        let dlq = QueueNames::dead_letter(&name);
        backend.create_queue(&QueueSpec::dead_letter(&dlq, visibility)).await.unwrap();
        backend
            .create_queue(&QueueSpec {
                name,
                visibility_timeout: visibility,
                max_receive_count: 5,
                dead_letter_queue: Some(dlq),
            })
            .await
            .unwrap();
    }
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":64}]}"#).unwrap();
    let (job, photo) = (JobId::generate(), PhotoId::generate());
    let manifest = JobManifest {
        v: 1,
        id: job.clone(),
        created_at: now_millis(),
        owner_token_sha256: OwnerToken::generate().sha256_hex(),
        recipe: recipe.clone(),
    };
    darkroom_store::json::put_json(&local, &keys::job_manifest(&job), &manifest).await.unwrap();
    let original = std::fs::read(crate::helpers::fixture_path("chelsea.jpg")).unwrap();
    local.put(&keys::original(&job, &photo), original.into(), "image/jpeg").await.unwrap();
    let request = PhotoRequest::new(job, photo, 1, recipe.clone(), StageMap::default().plan(&recipe));
    let queues = QueueDirectory::new(Arc::new(backend));
    let requests = queues.get(&names.requests("quick")).await.unwrap();
    requests.send(OutgoingMessage::new(request.encode(), request.attributes())).await.unwrap();
    (Setup { _dir: dir, local, queues, requests, names }, request)
}

fn worker(store: Arc<dyn ObjectStore>, setup: &Setup, visibility: Duration) -> Worker {
    let settings = WorkerSettings {
        stages: vec!["quick".into()],
        concurrency: 1,
        visibility_timeout: visibility,
        heartbeat_interval: Duration::from_secs(1),
        wait_time: Duration::from_secs(1),
        drain_deadline: Duration::from_secs(5),
        limits: Limits::default(),
    };
    Worker::new(store, setup.queues.clone(), setup.names.clone(), settings).unwrap()
}

async fn receive_one(queue: &dyn Queue, wait: Duration) -> Option<ReceivedMessage> {
    queue.receive(1, wait).await.unwrap().pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_store_error_is_retried_after_a_backoff_not_failed() {
    let visibility = Duration::from_secs(30);
    let (setup, _) = setup(visibility).await;
    let store = Arc::new(FlakyStore { inner: setup.local.clone(), failing_puts: AtomicUsize::new(1) });
    let worker = worker(store, &setup, visibility);
    let abandon = CancellationToken::new();

    let first = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&setup.requests, first, &abandon).await, Outcome::Retrying);
    // Released with a backoff, not for the whole 30 s visibility timeout, and not at once.
    assert!(receive_one(setup.requests.as_ref(), Duration::ZERO).await.is_none(), "retried without a backoff");
    let again = receive_one(setup.requests.as_ref(), Duration::from_secs(10))
        .await
        .expect("released for a retry within seconds");
    assert_eq!(again.receive_count, 2);
    assert_eq!(worker.handle(&setup.requests, again, &abandon).await, Outcome::Completed);
    let responses = setup.queues.get(&setup.names.responses()).await.unwrap();
    let mut states = Vec::new();
    while let Some(message) = receive_one(responses.as_ref(), Duration::ZERO).await {
        states.push(
            serde_json::from_str::<serde_json::Value>(&message.body).unwrap()["state"].as_str().unwrap().to_owned(),
        );
    }
    assert!(states.contains(&"done".to_owned()), "{states:?}");
    assert!(!states.contains(&"failed".to_owned()), "a transient error failed the photo: {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delete_is_harmless_and_the_redelivery_is_a_duplicate() {
    let visibility = Duration::from_secs(3);
    let (setup, request) = setup(visibility).await;
    let worker = worker(Arc::new(setup.local.clone()), &setup, visibility);
    let undeletable: Arc<dyn Queue> = Arc::new(UndeletableQueue(setup.requests.clone()));
    let abandon = CancellationToken::new();

    let first = receive_one(setup.requests.as_ref(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(worker.handle(&undeletable, first, &abandon).await, Outcome::Completed);
    // Status records the responses, as it would in a running system.
    let status = darkroom_status::StatusUpdater::new(
        Arc::new(setup.local.clone()),
        setup.queues.clone(),
        setup.names.clone(),
        darkroom_status::StatusSettings {
            stages: vec!["quick".into()],
            wait_time: Duration::ZERO,
            max_receive_count: 5,
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
    let done = keys::event(&request.job_id, &request.photo_id, 1, darkroom_core::PhotoState::Done, 0);
    assert!(setup.local.head(&done).await.unwrap().is_some());
}
