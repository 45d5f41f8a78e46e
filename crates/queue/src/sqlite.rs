//! The embedded queue: every queue of a data directory in one SQLite database (WAL mode,
//! `synchronous=FULL`), so an acknowledged send survives `kill -9` of every process and a
//! power cut, and several processes on one machine can share the queues safely.
//!
//! Each receive is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock before
//! reading, so two receivers (threads or processes) can never pick the same message. The
//! receipt handle is regenerated on every receive, which is what makes a stale handle
//! harmless. Long polls wake at once on a send from this process (a `Notify` per queue)
//! and re-check every 50 ms for sends from other processes.
//!
//! Receives take turns between message groups (`turns.rs`; docs/ARCHITECTURE.md, "Fair
//! sharing"): a one-photo job waits behind about one photo of each other active tenant,
//! never behind their whole backlog.

use crate::turns::{next_in_turn, TURNS_INDEXES_AND_TRIGGERS, TURNS_SCHEMA};
use crate::{
    check_batch, MessageGroup, OutgoingMessage, Queue, QueueBackend, QueueCounts, QueueError, QueueSpec, ReceiptHandle,
    ReceivedMessage, MAX_BATCH, MAX_DELAY, MAX_VISIBILITY_TIMEOUT, MAX_WAIT,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// How often a long poll re-reads the database for messages sent by other processes.
const CROSS_PROCESS_POLL: Duration = Duration::from_millis(50);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_timeout_ms INTEGER NOT NULL,
    max_receive_count INTEGER NOT NULL,
    dead_letter_queue TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt_handle TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at_ms, id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt_handle);
";

/// Added when receives began to take turns: a database written by an older darkroom gets
/// the columns (its messages join one shared group) and a turn for every group it holds.
const FAIRNESS_MIGRATION: &str = "
ALTER TABLE messages ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN flow TEXT NOT NULL DEFAULT '';
";

/// The embedded queue backend: one SQLite file holding every queue.
#[derive(Debug, Clone)]
pub struct SqliteQueues {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// One connection per process: SQLite serialises writers anyway, and receives are
    /// short transactions, so a pool would buy nothing but lock contention.
    connection: Mutex<Connection>,
    /// Wakes this process's long polls when this process sends.
    arrivals: Mutex<HashMap<String, Arc<Notify>>>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn db_error(queue: &str, error: rusqlite::Error) -> QueueError {
    QueueError::Unavailable { queue: queue.to_owned(), message: format!("embedded queue database: {error}") }
}

impl SqliteQueues {
    /// Opens (creating if needed) the queue database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, QueueError> {
        let path = path.as_ref().to_path_buf();
        let label = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| QueueError::Unavailable {
                queue: label.clone(),
                message: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
        let mut connection = Connection::open(&path).map_err(|e| db_error(&label, e))?;
        connection.busy_timeout(Duration::from_secs(30)).map_err(|e| db_error(&label, e))?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(|e| db_error(&label, e))?;
        connection.pragma_update(None, "synchronous", "FULL").map_err(|e| db_error(&label, e))?;
        connection.execute_batch(SCHEMA).map_err(|e| db_error(&label, e))?;
        connection.execute_batch(TURNS_SCHEMA).map_err(|e| db_error(&label, e))?;
        migrate(&mut connection).map_err(|e| db_error(&label, e))?;
        Ok(Self {
            shared: Arc::new(Shared { path, connection: Mutex::new(connection), arrivals: Mutex::new(HashMap::new()) }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

/// Brings a database of an older darkroom up to date, in one transaction (idempotent).
fn migrate(connection: &mut Connection) -> Result<(), rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let has_groups: bool = transaction.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'tenant'",
        [],
        |row| row.get(0),
    )?;
    if !has_groups {
        transaction.execute_batch(FAIRNESS_MIGRATION)?;
    }
    transaction.execute_batch(TURNS_INDEXES_AND_TRIGGERS)?;
    transaction.commit()
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (the transaction
        // rolls back on drop), so a poisoned lock is safe to keep using.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn arrivals(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.arrivals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(queue.to_owned()).or_default().clone()
    }
}

/// Runs database work off the async runtime.
async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    queue: &str,
    work: impl FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || work(&mut shared.lock())).await.map_err(|e| QueueError::Unavailable {
        queue: queue.to_owned(),
        message: format!("database task failed: {e}"),
    })?
}

#[derive(Debug, Clone)]
struct Attributes {
    visibility_timeout: Duration,
    max_receive_count: u32,
    dead_letter_queue: Option<String>,
}

fn read_attributes(connection: &Connection, name: &str) -> Result<Option<Attributes>, QueueError> {
    connection
        .query_row(
            "SELECT visibility_timeout_ms, max_receive_count, dead_letter_queue FROM queues WHERE name = ?1",
            params![name],
            |row| {
                Ok(Attributes {
                    visibility_timeout: Duration::from_millis(row.get::<_, i64>(0)?.max(0) as u64),
                    max_receive_count: row.get::<_, i64>(1)?.max(0) as u32,
                    dead_letter_queue: row.get(2)?,
                })
            },
        )
        .optional()
        .map_err(|e| db_error(name, e))
}

#[async_trait]
impl QueueBackend for SqliteQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<(), QueueError> {
        if spec.visibility_timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(QueueError::InvalidSetting {
                queue: spec.name.clone(),
                message: "visibility timeout over 12 hours".into(),
            });
        }
        let spec = spec.clone();
        blocking(&self.shared, &spec.name.clone(), move |connection| {
            if let Some(dlq) = &spec.dead_letter_queue {
                if read_attributes(connection, dlq)?.is_none() {
                    return Err(QueueError::QueueNotFound { queue: dlq.clone() });
                }
            }
            connection
                .execute(
                    "INSERT INTO queues (name, visibility_timeout_ms, max_receive_count, dead_letter_queue)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET visibility_timeout_ms = ?2, max_receive_count = ?3, dead_letter_queue = ?4",
                    params![spec.name, spec.visibility_timeout.as_millis() as i64, spec.max_receive_count, spec.dead_letter_queue],
                )
                .map_err(|e| db_error(&spec.name, e))?;
            Ok(())
        })
        .await
    }

    async fn open(&self, name: &str) -> Result<Arc<dyn Queue>, QueueError> {
        let owned = name.to_owned();
        let attributes = blocking(&self.shared, name, move |connection| read_attributes(connection, &owned)).await?;
        let attributes = attributes.ok_or_else(|| QueueError::QueueNotFound { queue: name.to_owned() })?;
        Ok(Arc::new(SqliteQueue {
            name: name.to_owned(),
            attributes,
            arrivals: self.shared.arrivals(name),
            shared: self.shared.clone(),
        }))
    }
}

#[derive(Debug)]
struct SqliteQueue {
    name: String,
    attributes: Attributes,
    arrivals: Arc<Notify>,
    shared: Arc<Shared>,
}

impl SqliteQueue {
    /// One non-blocking receive: claims up to `max` visible messages, taking turns between
    /// groups, and moves those past their last allowed receive to the dead-letter queue
    /// instead of returning them.
    async fn try_receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let name = self.name.clone();
        let attributes = self.attributes.clone();
        let (received, dead_lettered) = blocking(&self.shared, &self.name, move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| db_error(&name, e))?;
            let now = now_ms();
            let mut received = Vec::new();
            let mut dead_lettered = 0usize;
            // Dead-lettering does not count towards `max`; the guard bounds the transaction.
            let mut guard = 0;
            while received.len() < max && guard < 100 {
                guard += 1;
                let Some(candidate) = next_in_turn(&transaction, &name, now).map_err(|e| db_error(&name, e))? else {
                    break;
                };
                let exhausted = attributes.max_receive_count > 0 && candidate.receive_count >= attributes.max_receive_count;
                match (&attributes.dead_letter_queue, exhausted) {
                    (Some(dlq), true) => {
                        transaction
                            .execute(
                                "UPDATE messages SET queue = ?1, visible_at_ms = ?2, receive_count = 0, receipt_handle = NULL WHERE id = ?3",
                                params![dlq, now, candidate.id],
                            )
                            .map_err(|e| db_error(&name, e))?;
                        dead_lettered += 1;
                        tracing::warn!(queue = %name, dead_letter_queue = %dlq, message_id = %candidate.message_id, receive_count = candidate.receive_count, "message moved to the dead-letter queue");
                    }
                    _ => {
                        let handle = random_token();
                        let visible_at = now + attributes.visibility_timeout.as_millis() as i64;
                        transaction
                            .execute(
                                "UPDATE messages SET receive_count = receive_count + 1, visible_at_ms = ?1, receipt_handle = ?2 WHERE id = ?3",
                                params![visible_at, handle, candidate.id],
                            )
                            .map_err(|e| db_error(&name, e))?;
                        received.push(ReceivedMessage {
                            message_id: candidate.message_id,
                            receipt_handle: ReceiptHandle(handle),
                            body: candidate.body,
                            attributes: decode_attributes(&candidate.attributes),
                            receive_count: candidate.receive_count + 1,
                            group: (!candidate.group.tenant.is_empty() || !candidate.group.flow.is_empty())
                                .then_some(candidate.group),
                            partition: 0,
                        });
                    }
                }
            }
            transaction.commit().map_err(|e| db_error(&name, e))?;
            Ok((received, dead_lettered))
        })
        .await?;
        if dead_lettered > 0 {
            if let Some(dlq) = &self.attributes.dead_letter_queue {
                self.shared.arrivals(dlq).notify_waiters();
            }
        }
        Ok(received)
    }
}

/// Attributes are stored as a JSON object of strings; written only by `send_batch`.
fn decode_attributes(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn encode_attributes(attributes: &BTreeMap<String, String>) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".to_owned())
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
        check_batch(&self.name, messages)?;
        let name = self.name.clone();
        let rows: Vec<(String, String, i64, MessageGroup)> = messages
            .iter()
            .map(|m| {
                let delay = m.delay.min(MAX_DELAY).as_millis() as i64;
                (m.body.clone(), encode_attributes(&m.attributes), delay, m.group.clone().unwrap_or_default())
            })
            .collect();
        blocking(&self.shared, &self.name, move |connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| db_error(&name, e))?;
            let now = now_ms();
            for (body, attributes, delay_ms, group) in rows {
                transaction
                    .execute(
                        "INSERT INTO messages (queue, message_id, body, attributes, sent_at_ms, visible_at_ms, tenant, flow) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![name, random_token(), body, attributes, now, now + delay_ms, group.tenant, group.flow],
                    )
                    .map_err(|e| db_error(&name, e))?;
            }
            transaction.commit().map_err(|e| db_error(&name, e))
        })
        .await?;
        self.arrivals.notify_waiters();
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = max.clamp(1, MAX_BATCH);
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Register for the wake-up before looking, so a send between the look and the
            // wait is not missed.
            let arrival = self.arrivals.notified();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let received = self.try_receive(max).await?;
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            let nap = CROSS_PROCESS_POLL.min(deadline - now);
            tokio::select! {
                _ = arrival => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        let name = self.name.clone();
        let handle = handle.0.clone();
        blocking(&self.shared, &self.name, move |connection| {
            connection
                .execute("DELETE FROM messages WHERE queue = ?1 AND receipt_handle = ?2", params![name, handle])
                .map_err(|e| db_error(&name, e))?;
            Ok(())
        })
        .await
    }

    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError> {
        if timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(QueueError::InvalidSetting {
                queue: self.name.clone(),
                message: "visibility timeout over 12 hours".into(),
            });
        }
        let name = self.name.clone();
        let handle = handle.0.clone();
        let changed = blocking(&self.shared, &self.name, move |connection| {
            connection
                .execute(
                    "UPDATE messages SET visible_at_ms = ?1 WHERE queue = ?2 AND receipt_handle = ?3",
                    params![now_ms() + timeout.as_millis() as i64, name, handle],
                )
                .map_err(|e| db_error(&name, e))
        })
        .await?;
        if changed == 0 {
            return Err(QueueError::InvalidReceiptHandle { queue: self.name.clone() });
        }
        if timeout.is_zero() {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let name = self.name.clone();
        blocking(&self.shared, &self.name, move |connection| {
            connection
                .query_row(
                    "SELECT COALESCE(SUM(visible_at_ms <= ?2), 0), COALESCE(SUM(visible_at_ms > ?2), 0) FROM messages WHERE queue = ?1",
                    params![name, now_ms()],
                    |row| Ok(QueueCounts { visible: row.get::<_, i64>(0)? as u64, in_flight: row.get::<_, i64>(1)? as u64 }),
                )
                .map_err(|e| db_error(&name, e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_their_encoding() {
        let attributes = BTreeMap::from([
            ("job_id".to_owned(), "abc".to_owned()),
            ("odd \"key\"".to_owned(), "line\nbreak \\ é".to_owned()),
        ]);
        assert_eq!(decode_attributes(&encode_attributes(&attributes)), attributes);
        assert!(decode_attributes("{}").is_empty());
    }
}
