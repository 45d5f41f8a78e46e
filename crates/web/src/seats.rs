//! A job's photo seats: the photo-count limit as objects, so that batches uploaded in
//! parallel cannot together pass it, and adding photos costs O(batch), not O(job).
//!
//! Seat `n` of a job is the object `jobs/{job}/seats/{n}`, taken with a conditional create
//! (`put_if_absent`): two batches racing for the last seat cannot both get it. A batch lists
//! the seats once (one LIST page at the default 1000-photo limit, instead of every object of
//! every photo), then takes a seat per accepted photo. A batch that fails gives its seats
//! back with its originals; photos otherwise leave a job only with the whole job.
//!
//! A seat names the photo it was taken for and when. A batch whose process died before its
//! commit (a crash, a kill) cannot give its seats back; a batch that finds the job full
//! looks for such seats — no photo manifest, taken longer ago than any commit can run — and
//! takes them over, so a crash never shrinks a job's room for good.

use darkroom_core::{keys, now_millis, JobId, PhotoId};
use darkroom_store::{ObjectStore, PutOutcome, StoreError};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

/// What a seat holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct SeatDoc {
    photo: PhotoId,
    /// When it was taken (ms since the epoch).
    at: u64,
}

pub struct Seats {
    job: JobId,
    max: usize,
    /// Seat numbers known to be taken (listed, or lost to another batch).
    taken: BTreeSet<usize>,
    /// Where to look for a free seat next.
    next: usize,
    /// A seat with no photo manifest this long after it was taken belongs to a batch that
    /// died: the longest a commit can take.
    abandoned_after: Duration,
    /// Seats found abandoned (their keys and contents as read), once the job was full.
    abandoned: Option<Vec<(String, bytes::Bytes)>>,
}

impl Seats {
    /// A new job's seats: none taken.
    pub fn for_new_job(job: &JobId, max: usize, abandoned_after: Duration) -> Self {
        Self { job: job.clone(), max, taken: BTreeSet::new(), next: 0, abandoned_after, abandoned: None }
    }

    /// An existing job's seats, from one listing. A job created before seats existed has
    /// photos without seats: the first batch that finds none gives each of them its seat
    /// (once, for good), so the count holds from then on.
    pub async fn of_existing_job(
        store: &dyn ObjectStore,
        job: &JobId,
        max: usize,
        abandoned_after: Duration,
    ) -> Result<Self, StoreError> {
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
        Ok(Self { job: job.clone(), max, taken, next: 0, abandoned_after, abandoned: None })
    }

    /// Whether the job has no room left: every seat taken and none abandoned (looked for
    /// once, the first time every seat is found taken).
    pub async fn full(&mut self, store: &dyn ObjectStore) -> Result<bool, StoreError> {
        if self.taken.len() < self.max {
            return Ok(false);
        }
        if self.abandoned.is_none() {
            self.abandoned = Some(self.find_abandoned(store).await?);
        }
        Ok(self.abandoned.as_ref().is_none_or(Vec::is_empty))
    }

    /// Takes a free seat for `photo` (an abandoned one when no other is left); its key, or
    /// `None` when the job is full.
    pub async fn take(&mut self, store: &dyn ObjectStore, photo: &PhotoId) -> Result<Option<String>, StoreError> {
        let doc = SeatDoc { photo: photo.clone(), at: now_millis() };
        let body = bytes::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        while self.next < self.max {
            let seat = self.next;
            self.next += 1;
            if self.taken.contains(&seat) {
                continue;
            }
            let key = keys::seat(&self.job, seat);
            match store.put_if_absent(&key, body.clone(), "application/json").await? {
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
        if self.full(store).await? {
            return Ok(None);
        }
        while let Some((key, seen)) = self.abandoned.as_mut().and_then(Vec::pop) {
            // Read again just before it goes: another batch may have taken it over since.
            match store.get(&key).await {
                Ok(now) if now == seen => {}
                Ok(_) => continue,
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
            store.delete(&key).await?;
            if store.put_if_absent(&key, body.clone(), "application/json").await? == PutOutcome::Created {
                tracing::info!(job_id = %self.job, seat = key, "took over the seat of a photo whose batch never finished");
                metrics::counter!("darkroom_seats_reclaimed_total").increment(1);
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// The seats whose photo has no manifest and was taken longer ago than a commit can run.
    /// Costs two listings when every seat has its photo (the usual full job), and a read
    /// per seat only when some do not.
    async fn find_abandoned(&self, store: &dyn ObjectStore) -> Result<Vec<(String, bytes::Bytes)>, StoreError> {
        let seats = store.list(&keys::seats_prefix(&self.job)).await?;
        let photos: HashSet<PhotoId> = store
            .list(&keys::photos_prefix(&self.job))
            .await?
            .into_iter()
            .filter_map(|object| match keys::classify(&self.job, &object.key) {
                keys::PhotoKey::Manifest { photo } => Some(photo),
                _ => None,
            })
            .collect();
        if seats.len() <= photos.len() {
            return Ok(Vec::new());
        }
        let cutoff = now_millis().saturating_sub(self.abandoned_after.as_millis() as u64);
        let mut abandoned = Vec::new();
        for seat in seats {
            let bytes = match store.get(&seat.key).await {
                Ok(bytes) => bytes,
                Err(error) if error.is_not_found() => continue,
                Err(error) => return Err(error),
            };
            // A seat from before seats named their photo is never taken over.
            let Ok(doc) = serde_json::from_slice::<SeatDoc>(&bytes) else { continue };
            if doc.at <= cutoff && !photos.contains(&doc.photo) {
                abandoned.push((seat.key, bytes));
            }
        }
        Ok(abandoned)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use darkroom_store::LocalStore;

    async fn photo_manifest(store: &dyn ObjectStore, job: &JobId, photo: &PhotoId) {
        store
            .put(&keys::photo_manifest(job, photo), bytes::Bytes::from_static(b"{}"), "application/json")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_seat_whose_batch_died_is_taken_over_once_the_job_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let job = JobId::generate();
        let (kept, lost) = (PhotoId::generate(), PhotoId::generate());
        let mut first = Seats::for_new_job(&job, 2, Duration::ZERO);
        assert!(first.take(&store, &kept).await.unwrap().is_some());
        assert!(first.take(&store, &lost).await.unwrap().is_some());
        photo_manifest(&store, &job, &kept).await; // committed; `lost`'s batch died before its commit

        // Right after, the lost photo's batch may still be committing: its seat is kept.
        let mut soon = Seats::of_existing_job(&store, &job, 2, Duration::from_secs(3600)).await.unwrap();
        assert!(soon.full(&store).await.unwrap(), "a seat taken a moment ago is not abandoned");
        assert!(soon.take(&store, &PhotoId::generate()).await.unwrap().is_none());

        // Long after: the seat goes to the next photo, once.
        let mut later = Seats::of_existing_job(&store, &job, 2, Duration::ZERO).await.unwrap();
        assert!(!later.full(&store).await.unwrap());
        let newcomer = PhotoId::generate();
        let seat = later.take(&store, &newcomer).await.unwrap().expect("the abandoned seat");
        let doc: SeatDoc = serde_json::from_slice(&store.get(&seat).await.unwrap()).unwrap();
        assert_eq!(doc.photo, newcomer);
        photo_manifest(&store, &job, &newcomer).await;
        let mut after = Seats::of_existing_job(&store, &job, 2, Duration::ZERO).await.unwrap();
        assert!(after.full(&store).await.unwrap(), "two seats, two photos: full");
        assert!(after.take(&store, &PhotoId::generate()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn two_batches_cannot_both_take_over_one_abandoned_seat() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let job = JobId::generate();
        let mut first = Seats::for_new_job(&job, 1, Duration::ZERO);
        first.take(&store, &PhotoId::generate()).await.unwrap().unwrap();
        let mut a = Seats::of_existing_job(&store, &job, 1, Duration::ZERO).await.unwrap();
        let mut b = Seats::of_existing_job(&store, &job, 1, Duration::ZERO).await.unwrap();
        assert!(!a.full(&store).await.unwrap() && !b.full(&store).await.unwrap(), "both see the abandoned seat");
        assert!(a.take(&store, &PhotoId::generate()).await.unwrap().is_some());
        assert!(b.take(&store, &PhotoId::generate()).await.unwrap().is_none(), "taken over already");
    }
}
