//! Opened queues by name, so a process opens each queue once however many tasks use it
//! (a worker forwards to whichever stage a photo's plan names next).

use crate::{Queue, QueueBackend, QueueError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct QueueDirectory {
    backend: Arc<dyn QueueBackend>,
    opened: Arc<Mutex<HashMap<String, Arc<dyn Queue>>>>,
}

impl QueueDirectory {
    pub fn new(backend: Arc<dyn QueueBackend>) -> Self {
        Self { backend, opened: Arc::default() }
    }

    pub fn backend(&self) -> &Arc<dyn QueueBackend> {
        &self.backend
    }

    pub async fn get(&self, name: &str) -> Result<Arc<dyn Queue>, QueueError> {
        if let Some(queue) = self.opened.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(queue.clone());
        }
        let queue = self.backend.open(name).await?;
        self.opened.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), queue.clone());
        Ok(queue)
    }
}
