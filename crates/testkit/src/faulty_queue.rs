//! Queues that fail on demand: all of them (an SQS outage), or only deletes.

use async_trait::async_trait;
use darkroom_queue::{
    OutgoingMessage, Queue, QueueBackend, QueueCounts, QueueError, QueueSpec, ReceiptHandle, ReceivedMessage,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
struct Switches {
    down: AtomicBool,
    failing_deletes: AtomicBool,
}

/// A queue backend whose queues fail while switched down.
#[derive(Debug)]
pub struct FaultyQueues {
    inner: Arc<dyn QueueBackend>,
    switches: Arc<Switches>,
}

impl FaultyQueues {
    pub fn new(inner: Arc<dyn QueueBackend>) -> Self {
        Self { inner, switches: Arc::default() }
    }

    pub fn set_down(&self, down: bool) {
        self.switches.down.store(down, Ordering::SeqCst);
    }

    pub fn fail_deletes(&self, fail: bool) {
        self.switches.failing_deletes.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl QueueBackend for FaultyQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        self.inner.create_queue(spec).await
    }

    async fn open(&self, name: &str) -> Result<Arc<dyn Queue>, QueueError> {
        Ok(Arc::new(FaultyQueue { inner: self.inner.open(name).await?, switches: self.switches.clone() }))
    }
}

#[derive(Debug)]
struct FaultyQueue {
    inner: Arc<dyn Queue>,
    switches: Arc<Switches>,
}

impl FaultyQueue {
    fn gate(&self) -> Result<(), QueueError> {
        if self.switches.down.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                queue: self.inner.name().to_owned(),
                message: "injected outage".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
        self.gate()?;
        self.inner.send_batch(messages).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.gate()?;
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        self.gate()?;
        if self.switches.failing_deletes.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable {
                queue: self.inner.name().to_owned(),
                message: "injected delete failure".into(),
            });
        }
        self.inner.delete(handle).await
    }
    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError> {
        self.gate()?;
        self.inner.change_visibility(handle, timeout).await
    }
    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.gate()?;
        self.inner.counts().await
    }
    fn partitions(&self) -> Vec<Arc<dyn Queue>> {
        let switches = &self.switches;
        self.inner
            .partitions()
            .into_iter()
            .map(|inner| Arc::new(FaultyQueue { inner, switches: switches.clone() }) as Arc<dyn Queue>)
            .collect()
    }
}
