//! A job's photo seats: the photo-count limit as objects, so that batches uploaded in
//! parallel cannot together pass it, and adding photos costs O(batch), not O(job).
//!
//! Seat `n` of a job is the object `jobs/{job}/seats/{n}`, taken with a conditional create
//! (`put_if_absent`): two batches racing for the last seat cannot both get it. A batch lists
//! the seats once (one LIST page at the default 1000-photo limit, instead of every object of
//! every photo), then takes a seat per accepted photo. A batch that fails gives its seats
//! back with its originals; photos otherwise leave a job only with the whole job.

use darkroom_core::keys;
use darkroom_core::JobId;
use darkroom_store::{ObjectStore, PutOutcome, StoreError};
use std::collections::BTreeSet;

pub struct Seats {
    job: JobId,
    max: usize,
    /// Seat numbers known to be taken (listed, or lost to another batch).
    taken: BTreeSet<usize>,
    /// Where to look for a free seat next.
    next: usize,
}

impl Seats {
    /// A new job's seats: none taken.
    pub fn for_new_job(job: &JobId, max: usize) -> Self {
        Self { job: job.clone(), max, taken: BTreeSet::new(), next: 0 }
    }

    /// An existing job's seats, from one listing. A job created before seats existed has
    /// photos without seats: the first batch that finds none gives each of them its seat
    /// (once, for good), so the count holds from then on.
    pub async fn of_existing_job(store: &dyn ObjectStore, job: &JobId, max: usize) -> Result<Self, StoreError> {
        let prefix = keys::seats_prefix(job);
        let listed = store.list(&prefix).await?;
        let mut taken: BTreeSet<usize> =
            listed.iter().filter_map(|object| object.key.strip_prefix(&prefix)?.parse().ok()).collect();
        if taken.is_empty() {
            let photos = store.list(&keys::photos_prefix(job)).await?;
            let count = photos
                .iter()
                .filter(|o| matches!(keys::classify(job, &o.key), keys::PhotoKey::Manifest { .. }))
                .count();
            for seat in 0..count {
                store.put_if_absent(&keys::seat(job, seat), bytes::Bytes::new(), "application/octet-stream").await?;
                taken.insert(seat);
            }
        }
        Ok(Self { job: job.clone(), max, taken, next: 0 })
    }

    /// Whether every seat is known to be taken (no need to store a photo to find out).
    pub fn full(&self) -> bool {
        self.taken.len() >= self.max
    }

    /// Takes a free seat; its key, or `None` when the job is full.
    pub async fn take(&mut self, store: &dyn ObjectStore) -> Result<Option<String>, StoreError> {
        while self.next < self.max {
            let seat = self.next;
            self.next += 1;
            if self.taken.contains(&seat) {
                continue;
            }
            let key = keys::seat(&self.job, seat);
            match store.put_if_absent(&key, bytes::Bytes::new(), "application/octet-stream").await? {
                PutOutcome::Created => {
                    self.taken.insert(seat);
                    return Ok(Some(key));
                }
                // Another batch got there first: on to the next.
                PutOutcome::AlreadyExists => {
                    self.taken.insert(seat);
                }
            }
        }
        Ok(None)
    }
}
