//! A store that fails on demand, and counts what reaches it.

use async_trait::async_trait;
use bytes::Bytes;
use darkroom_store::{ByteStream, ObjectMeta, ObjectStore, PutOutcome, StoreError, Upload};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Requests that reached the store, by kind (failed ones included).
#[derive(Debug, Default)]
pub struct StoreRequests {
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    pub lists: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
}

impl StoreRequests {
    pub fn total(&self) -> u64 {
        [&self.gets, &self.heads, &self.lists, &self.puts, &self.deletes].iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }
}

/// Which puts a rule applies to: by key and body.
pub type PutRule = Arc<dyn Fn(&str, &[u8]) -> bool + Send + Sync>;

/// Puts held back by [`FaultyStore::hold_puts_where`] until the test releases them.
#[derive(Debug)]
pub struct HeldPuts {
    reached: tokio::sync::watch::Sender<bool>,
    released: tokio::sync::watch::Sender<bool>,
}

impl HeldPuts {
    /// Waits until a put matching the rule has arrived (and is being held).
    pub async fn reached(&self) {
        let _ = self.reached.subscribe().wait_for(|reached| *reached).await;
    }

    /// Lets every held put (and every later one) through.
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    down: AtomicBool,
    failing_puts: AtomicUsize,
    failing_deletes: AtomicUsize,
    failing_where: std::sync::Mutex<Option<PutRule>>,
    held_where: std::sync::Mutex<Option<(PutRule, Arc<HeldPuts>)>>,
    pub requests: StoreRequests,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore").field("down", &self.down).finish_non_exhaustive()
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            failing_puts: AtomicUsize::new(0),
            failing_deletes: AtomicUsize::new(0),
            failing_where: std::sync::Mutex::new(None),
            held_where: std::sync::Mutex::new(None),
            requests: StoreRequests::default(),
        }
    }

    /// Every put (plain or conditional) for which `rule` holds fails, until cleared (`None`).
    pub fn fail_puts_where(&self, rule: Option<PutRule>) {
        *self.failing_where.lock().unwrap() = rule;
    }

    /// Every put for which `rule` holds waits until the returned handle releases it.
    pub fn hold_puts_where(&self, rule: PutRule) -> Arc<HeldPuts> {
        let held = Arc::new(HeldPuts {
            reached: tokio::sync::watch::channel(false).0,
            released: tokio::sync::watch::channel(false).0,
        });
        *self.held_where.lock().unwrap() = Some((rule, held.clone()));
        held
    }

    /// Applies the put rules: fails, or waits while held.
    async fn gate_put(&self, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let fails = self.failing_where.lock().unwrap().as_ref().is_some_and(|rule| rule(key, body));
        if fails {
            return Err(StoreError::Unavailable { operation: "put", message: "injected failure".into() });
        }
        let held = self.held_where.lock().unwrap().as_ref().filter(|(rule, _)| rule(key, body)).map(|(_, h)| h.clone());
        if let Some(held) = held {
            held.reached.send_replace(true);
            let _ = held.released.subscribe().wait_for(|released| *released).await;
        }
        Ok(())
    }

    /// While down, every call fails as an unreachable store does.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` puts fail (then the store works again).
    pub fn fail_next_puts(&self, n: usize) {
        self.failing_puts.store(n, Ordering::SeqCst);
    }

    /// The next `n` bulk deletes fail (as a throttled DeleteObjects does).
    pub fn fail_next_bulk_deletes(&self, n: usize) {
        self.failing_deletes.store(n, Ordering::SeqCst);
    }

    fn gate_delete(&self) -> Result<(), StoreError> {
        self.gate("delete")?;
        if self.failing_deletes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::Unavailable {
                operation: "delete",
                message: "injected failure (throttled)".into(),
            });
        }
        Ok(())
    }

    fn gate(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable { operation, message: "injected outage".into() });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.requests.puts.fetch_add(1, Ordering::SeqCst);
        self.gate("put")?;
        if self.failing_puts.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(StoreError::Unavailable { operation: "put", message: "injected failure".into() });
        }
        self.gate_put(key, &body).await?;
        self.inner.put(key, body, content_type).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes, content_type: &str) -> Result<PutOutcome, StoreError> {
        self.requests.puts.fetch_add(1, Ordering::SeqCst);
        self.gate("put")?;
        self.gate_put(key, &body).await?;
        self.inner.put_if_absent(key, body, content_type).await
    }
    async fn start_upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>, StoreError> {
        self.requests.puts.fetch_add(1, Ordering::SeqCst);
        self.gate("upload")?;
        self.inner.start_upload(key, content_type).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.requests.gets.fetch_add(1, Ordering::SeqCst);
        self.gate("get")?;
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<(ObjectMeta, ByteStream), StoreError> {
        self.requests.gets.fetch_add(1, Ordering::SeqCst);
        self.gate("get")?;
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.requests.heads.fetch_add(1, Ordering::SeqCst);
        self.gate("head")?;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.requests.lists.fetch_add(1, Ordering::SeqCst);
        self.gate("list")?;
        self.inner.list(prefix).await
    }
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        self.requests.lists.fetch_add(1, Ordering::SeqCst);
        self.gate("list")?;
        self.inner.list_page(prefix, start_after, max).await
    }
    async fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.requests.deletes.fetch_add(1, Ordering::SeqCst);
        self.gate_delete()?;
        self.inner.delete_many(keys).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.requests.deletes.fetch_add(1, Ordering::SeqCst);
        self.gate("delete")?;
        self.inner.delete(key).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.gate("check")?;
        self.inner.check().await
    }
}
