//! One queue spread over several lanes, for a backend that cannot take turns between
//! message groups by itself (LocalStack's SQS: first in, first out; docs/ARCHITECTURE.md,
//! "Fair sharing"). Each flow is sent to a lane of its own while there are free lanes, and
//! a consumer receives from every lane separately ([`Queue::partitions`]), so a worker takes
//! turns between flows instead of working through one flow's backlog before the next.
//!
//! Which lane a flow goes to is decided by the sender, with nothing shared but the lanes
//! themselves: a flow keeps the lane this process gave it last (sticky, while it is in use),
//! a message forwarded from another stage keeps the lane it came from (so every worker
//! forwards a flow to the same lane), and a new flow takes the first empty lane in an order
//! derived from its name — unless its tenant already holds half the lanes, when it shares
//! the least loaded of its tenant's own (one client with many jobs cannot take every lane) —
//! else the least loaded lane. A lane shared by two flows is only less fair, never less
//! correct: every lane is an ordinary queue with the same redrive.

use crate::{MessageGroup, OutgoingMessage, Queue, QueueCounts, QueueError, ReceiptHandle, ReceivedMessage};
use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name of lane `lane` (≥ 1) of queue `name`; lane 0 is the queue itself.
pub fn lane_name(name: &str, lane: usize) -> String {
    format!("{name}-lane{lane}")
}

/// How long a flow keeps its lane after this process last sent to it.
const STICKY_FOR: Duration = Duration::from_secs(300);
/// How long lane loads read from the queue are trusted before they are read again.
const LOADS_FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a lane just given to a flow counts as taken, before its messages show in the
/// loads (so two flows starting together take different lanes).
const JUST_GIVEN_FOR: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct LanedQueue {
    name: String,
    lanes: Vec<Arc<dyn Queue>>,
    picker: Mutex<LanePicker>,
    /// Where a whole-queue receive starts, so it takes turns between lanes too.
    next_lane: AtomicUsize,
}

#[derive(Debug, Default)]
struct LanePicker {
    /// Flow id → (lane, its tenant, last sent).
    sticky: HashMap<String, (usize, String, Instant)>,
    /// Messages in each lane (waiting and in flight), and when they were read.
    loads: Option<(Instant, Vec<u64>)>,
}

impl LanedQueue {
    pub fn new(name: &str, lanes: Vec<Arc<dyn Queue>>) -> Self {
        Self { name: name.to_owned(), lanes, picker: Mutex::default(), next_lane: AtomicUsize::new(0) }
    }

    fn picker(&self) -> std::sync::MutexGuard<'_, LanePicker> {
        // The picker holds hints only: one left half-updated by a panic is still usable.
        self.picker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn loads(&self) -> Vec<u64> {
        if let Some((read_at, loads)) = &self.picker().loads {
            if read_at.elapsed() < LOADS_FRESH_FOR {
                return loads.clone();
            }
        }
        let counts = futures::future::join_all(self.lanes.iter().map(|lane| lane.counts())).await;
        // A lane whose load cannot be read counts as busy: it is the last one to give out.
        let loads: Vec<u64> =
            counts.into_iter().map(|counts| counts.map_or(u64::MAX, |c| c.visible + c.in_flight)).collect();
        self.picker().loads = Some((Instant::now(), loads.clone()));
        loads
    }

    /// The lane for a message of `group`, sent with `hint` (the lane it had before, if any).
    async fn lane_for(&self, group: Option<&MessageGroup>, hint: Option<usize>) -> usize {
        let Some(group) = group else { return 0 };
        let id = group.id();
        let now = Instant::now();
        {
            let mut picker = self.picker();
            picker.sticky.retain(|_, (_, _, used)| now.duration_since(*used) < STICKY_FOR);
            let known = picker.sticky.get(&id).map(|(lane, _, _)| *lane);
            if let Some(lane) = hint.filter(|lane| *lane < self.lanes.len()).or(known) {
                picker.sticky.insert(id, (lane, group.tenant.clone(), now));
                return lane;
            }
        }
        let loads = self.loads().await;
        let mut picker = self.picker();
        let load = |lane: usize| loads.get(lane).copied().unwrap_or(u64::MAX);
        let just_given: Vec<usize> = picker
            .sticky
            .values()
            .filter(|(_, _, used)| now.duration_since(*used) < JUST_GIVEN_FOR)
            .map(|(lane, _, _)| *lane)
            .collect();
        let mut tenants_lanes: Vec<usize> =
            picker.sticky.values().filter(|(_, tenant, _)| *tenant == group.tenant).map(|(lane, _, _)| *lane).collect();
        tenants_lanes.sort_unstable();
        tenants_lanes.dedup();
        let order = preference(&id, self.lanes.len());
        let share_of_tenant = (self.lanes.len() / 2).max(1);
        let lane = if tenants_lanes.len() >= share_of_tenant {
            tenants_lanes.iter().copied().min_by_key(|lane| load(*lane))
        } else {
            order.iter().copied().find(|lane| load(*lane) == 0 && !just_given.contains(lane))
        }
        .or_else(|| order.iter().copied().min_by_key(|lane| load(*lane)))
        .unwrap_or(0);
        picker.sticky.insert(id, (lane, group.tenant.clone(), now));
        lane
    }
}

/// The lanes in the order a flow prefers them (rendezvous hashing on the flow's id), so
/// processes that know nothing of each other tend to agree.
fn preference(id: &str, lanes: usize) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = (0..lanes)
        .map(|lane| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (id, lane).hash(&mut hasher);
            (hasher.finish(), lane)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, lane)| lane).collect()
}

/// A whole-queue receipt handle names its lane: `<lane>:<handle>`.
fn split_handle(handle: &ReceiptHandle) -> Option<(usize, ReceiptHandle)> {
    let (lane, rest) = handle.0.split_once(':')?;
    Some((lane.parse().ok()?, ReceiptHandle(rest.to_owned())))
}

#[async_trait]
impl Queue for LanedQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send_batch(&self, messages: &[OutgoingMessage]) -> Result<(), QueueError> {
        crate::check_batch(&self.name, messages)?;
        let mut by_lane: Vec<Vec<OutgoingMessage>> = vec![Vec::new(); self.lanes.len()];
        for message in messages {
            let lane = self.lane_for(message.group.as_ref(), message.partition_hint).await;
            by_lane[lane].push(message.clone());
        }
        for (lane, batch) in by_lane.iter().enumerate().filter(|(_, batch)| !batch.is_empty()) {
            self.lanes[lane].send_batch(batch).await?;
        }
        Ok(())
    }

    /// Receives from the lanes in turn (consumers that want fairness receive from each lane
    /// on its own, see [`Queue::partitions`]; this serves tools and tests).
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait.min(crate::MAX_WAIT);
        loop {
            let start = self.next_lane.fetch_add(1, Ordering::Relaxed);
            let mut received = Vec::new();
            for offset in 0..self.lanes.len() {
                let lane = (start + offset) % self.lanes.len();
                if received.len() >= max {
                    break;
                }
                let got = match self.lanes[lane].receive(max - received.len(), Duration::ZERO).await {
                    Ok(got) => got,
                    // What other lanes gave is returned, not left hidden for a visibility timeout.
                    Err(error) if received.is_empty() => return Err(error),
                    Err(_) => break,
                };
                for mut message in got {
                    message.receipt_handle = ReceiptHandle(format!("{lane}:{}", message.receipt_handle.0));
                    received.push(message);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !received.is_empty() || left.is_zero() {
                return Ok(received);
            }
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
    }

    async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        let (lane, handle) =
            split_handle(handle).ok_or_else(|| QueueError::InvalidReceiptHandle { queue: self.name.clone() })?;
        self.lanes
            .get(lane)
            .ok_or_else(|| QueueError::InvalidReceiptHandle { queue: self.name.clone() })?
            .delete(&handle)
            .await
    }

    async fn change_visibility(&self, handle: &ReceiptHandle, timeout: Duration) -> Result<(), QueueError> {
        let (lane, handle) =
            split_handle(handle).ok_or_else(|| QueueError::InvalidReceiptHandle { queue: self.name.clone() })?;
        self.lanes
            .get(lane)
            .ok_or_else(|| QueueError::InvalidReceiptHandle { queue: self.name.clone() })?
            .change_visibility(&handle, timeout)
            .await
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let mut total = QueueCounts::default();
        for counts in futures::future::join_all(self.lanes.iter().map(|lane| lane.counts())).await {
            let counts = counts?;
            total.visible += counts.visible;
            total.in_flight += counts.in_flight;
        }
        Ok(total)
    }

    fn partitions(&self) -> Vec<Arc<dyn Queue>> {
        self.lanes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flow_orders_every_lane_once() {
        for id in ["a/1", "b/2", "tenant/job"] {
            let mut order = preference(id, 8);
            order.sort_unstable();
            assert_eq!(order, (0..8).collect::<Vec<_>>());
        }
        assert_ne!(preference("a/1", 8), preference("b/2", 8), "two flows should not prefer lanes alike");
    }

    #[test]
    fn whole_queue_handles_name_their_lane() {
        assert_eq!(split_handle(&ReceiptHandle("3:abc:def".into())), Some((3, ReceiptHandle("abc:def".into()))));
        assert_eq!(split_handle(&ReceiptHandle("abc".into())), None);
    }
}
