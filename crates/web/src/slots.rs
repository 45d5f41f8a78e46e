//! Slots earned by progress, for uploads and archive downloads. An upload holds a slot for
//! as long as its body arrives, an archive for as long as its client reads it, so slots
//! must not be something a slow client can simply sit on: a few dozen connections trickling
//! a byte a second would otherwise lock every other user out (429) for as long as they like.
//!
//! So a slot is *earned by progress*: each client holds at most `per_client` slots, the
//! process at most `capacity`, and when a newcomer finds no free slot, the slowest holder
//! that has been going for a moment at less than `min_rate` is evicted (an upload ends with
//! 408 and a message saying why, an archive is cut off) and the newcomer takes its place. A
//! fast one is never evicted; a slow one only loses its slot while others are waiting for
//! one. The body reader (see `upload.rs`) also ends uploads that go quiet or run past a
//! deadline, and the archive writer (`downloads.rs`) archives that stall or run too long.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// An upload younger than this is not judged on its rate yet (its first bytes may still
/// be on the way).
const GRACE: Duration = Duration::from_secs(1);
/// How long a new upload may wait for a slow one to become evictable before it gets 429.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(3);

/// What a set of slots is for, in logs, and the gauge and counter it reports to.
#[derive(Debug)]
struct Reporting {
    what: &'static str,
    in_use_gauge: &'static str,
    evicted_counter: &'static str,
}

const UPLOADS: Reporting = Reporting {
    what: "upload",
    in_use_gauge: "darkroom_upload_slots_in_use",
    evicted_counter: "darkroom_uploads_evicted_total",
};
const ARCHIVES: Reporting = Reporting {
    what: "archive",
    in_use_gauge: "darkroom_archive_slots_in_use",
    evicted_counter: "darkroom_archives_evicted_total",
};

#[derive(Debug)]
pub struct ProgressSlots {
    reporting: Reporting,
    capacity: usize,
    per_client: usize,
    /// Bytes per second below which an upload may be evicted when slots run out.
    min_rate: u64,
    entries: Mutex<Vec<Entry>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    client: IpAddr,
    started: Instant,
    received: Arc<AtomicU64>,
    evict: CancellationToken,
    /// Bytes received by a recent moment: the pace is judged on the recent past too, so a
    /// fast start cannot buy a slot for a trickle afterwards.
    checkpoint: (Instant, u64),
}

/// How far back the recent pace looks.
const RECENT: Duration = Duration::from_secs(10);

impl Entry {
    /// The slower of the average since the start and the pace since the last checkpoint.
    fn rate(&self, now: Instant) -> u64 {
        let received = self.received.load(Ordering::Relaxed);
        let since_start = now.duration_since(self.started).as_secs_f64().max(0.001);
        let average = received as f64 / since_start;
        let (at, then) = self.checkpoint;
        let recent_seconds = now.duration_since(at).as_secs_f64();
        let recent =
            if recent_seconds >= 1.0 { received.saturating_sub(then) as f64 / recent_seconds } else { average };
        average.min(recent) as u64
    }

    /// Moves the checkpoint on once it is a full window old.
    fn advance_checkpoint(&mut self, now: Instant) {
        if now.duration_since(self.checkpoint.0) >= RECENT {
            self.checkpoint = (now, self.received.load(Ordering::Relaxed));
        }
    }

    fn evictable(&self, now: Instant, min_rate: u64) -> bool {
        now.duration_since(self.started) >= GRACE && self.rate(now) < min_rate
    }
}

/// A held slot; released when dropped.
#[derive(Debug)]
pub struct ProgressSlot {
    id: u64,
    slots: Arc<ProgressSlots>,
    /// Bytes moved so far: received of an upload's body, sent of an archive.
    pub received: Arc<AtomicU64>,
    /// Cancelled when a newcomer takes this slot.
    pub evicted: CancellationToken,
}

impl Drop for ProgressSlot {
    fn drop(&mut self) {
        let mut entries = self.slots.lock();
        entries.retain(|entry| entry.id != self.id);
        metrics::gauge!(self.slots.reporting.in_use_gauge).set(entries.len() as f64);
    }
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client already has its share of uploads going, none of them slow.
    ClientBusy,
    /// Every slot is taken by uploads that are making progress.
    Full,
}

impl ProgressSlots {
    /// Slots for uploads.
    pub fn for_uploads(capacity: usize, per_client: usize, min_rate: u64) -> Self {
        Self::new(UPLOADS, capacity, per_client, min_rate)
    }

    /// Slots for archive downloads.
    pub fn for_archives(capacity: usize, per_client: usize, min_rate: u64) -> Self {
        Self::new(ARCHIVES, capacity, per_client, min_rate)
    }

    fn new(reporting: Reporting, capacity: usize, per_client: usize, min_rate: u64) -> Self {
        Self {
            reporting,
            capacity: capacity.max(1),
            per_client: per_client.max(1),
            min_rate,
            entries: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // Entries are pushed and removed whole: consistent even after a panic elsewhere.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for `client`, evicting the slowest upload if none is free. A client at its
    /// share is answered at once; when the whole process is full, the request waits a few
    /// seconds for a slot to free up or become evictable.
    pub async fn acquire(self: &Arc<Self>, client: IpAddr) -> Result<ProgressSlot, Refused> {
        let deadline = Instant::now() + WAIT_FOR_SLOT;
        loop {
            match self.try_acquire(client) {
                Ok(slot) => return Ok(slot),
                Err(Refused::Full) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(refused) => return Err(refused),
            }
        }
    }

    pub fn try_acquire(self: &Arc<Self>, client: IpAddr) -> Result<ProgressSlot, Refused> {
        let now = Instant::now();
        let mut entries = self.lock();
        let decided = self.admit(&mut entries, client, now);
        // Judged on the window that ended now; the next judgement looks at the next one.
        entries.iter_mut().for_each(|entry| entry.advance_checkpoint(now));
        decided?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let received = Arc::new(AtomicU64::new(0));
        let evicted = CancellationToken::new();
        entries.push(Entry {
            id,
            client,
            started: now,
            received: received.clone(),
            evict: evicted.clone(),
            checkpoint: (now, 0),
        });
        metrics::gauge!(self.reporting.in_use_gauge).set(entries.len() as f64);
        Ok(ProgressSlot { id, slots: self.clone(), received, evicted })
    }

    /// Makes room for one more upload of `client`, evicting a slow one if needed.
    fn admit(&self, entries: &mut Vec<Entry>, client: IpAddr, now: Instant) -> Result<(), Refused> {
        let mine = entries.iter().filter(|entry| entry.client == client).count();
        if mine >= self.per_client {
            self.evict_slowest(entries, now, Some(client)).ok_or(Refused::ClientBusy)
        } else if entries.len() >= self.capacity {
            self.evict_slowest(entries, now, None).ok_or(Refused::Full)
        } else {
            Ok(())
        }
    }

    /// Evicts the slowest evictable upload (of `client`, if given); `None` if there is none.
    fn evict_slowest(&self, entries: &mut Vec<Entry>, now: Instant, client: Option<IpAddr>) -> Option<()> {
        let (index, _) = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| client.is_none_or(|c| entry.client == c) && entry.evictable(now, self.min_rate))
            .min_by_key(|(_, entry)| entry.rate(now))?;
        let victim = entries.swap_remove(index);
        tracing::info!(client = %victim.client, rate_bytes_per_second = victim.rate(now), slot = self.reporting.what, "evicting a slow holder of a slot to make room for a waiting one");
        metrics::counter!(self.reporting.evicted_counter).increment(1);
        victim.evict.cancel();
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_slow_upload_gives_way_a_fast_one_never_does() {
        let slots = Arc::new(ProgressSlots::for_uploads(2, 2, 1024));
        let slow = slots.try_acquire(ip(1)).unwrap();
        let fast = slots.try_acquire(ip(2)).unwrap();
        assert_eq!(slots.try_acquire(ip(3)).unwrap_err(), Refused::Full, "no one is evictable within the grace");
        // Two seconds later (the entries are aged by hand rather than slept through):
        for entry in slots.lock().iter_mut() {
            entry.started -= Duration::from_secs(2);
            entry.checkpoint.0 -= Duration::from_secs(2);
        }
        slow.received.store(10, Ordering::Relaxed);
        fast.received.store(1 << 20, Ordering::Relaxed);
        let newcomer = slots.try_acquire(ip(3)).unwrap();
        assert!(slow.evicted.is_cancelled() && !fast.evicted.is_cancelled());
        drop(newcomer);
        drop(slow);
        assert_eq!(slots.lock().len(), 1);
    }

    #[test]
    fn a_fast_start_does_not_buy_a_slot_for_a_trickle_afterwards() {
        let slots = Arc::new(ProgressSlots::for_uploads(1, 1, 1024));
        let sprinter = slots.try_acquire(ip(1)).unwrap();
        for entry in slots.lock().iter_mut() {
            entry.started -= Duration::from_secs(60);
            entry.checkpoint = (Instant::now() - Duration::from_secs(30), 15 << 20);
        }
        // 15 MiB in its first half minute, then 30 s with nothing more: a good average, no pace.
        sprinter.received.store(15 << 20, Ordering::Relaxed);
        assert!(slots.try_acquire(ip(2)).is_ok());
        assert!(sprinter.evicted.is_cancelled());
    }

    #[test]
    fn one_client_cannot_take_more_than_its_share() {
        let slots = Arc::new(ProgressSlots::for_uploads(10, 2, 1024));
        let _a = slots.try_acquire(ip(1)).unwrap();
        let _b = slots.try_acquire(ip(1)).unwrap();
        assert_eq!(slots.try_acquire(ip(1)).unwrap_err(), Refused::ClientBusy);
        assert!(slots.try_acquire(ip(2)).is_ok(), "another client still gets a slot");
    }
}
