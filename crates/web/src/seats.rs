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
//! takes them over, so a crash never shrinks a job's room for good. Taking one over is
//! decided by a put-if-absent marker named after the seat's content, so two batches cannot
//! both take the same one. A process that found none in a job looks again at most once a
//! minute, however many requests find the job full.

use darkroom_core::{keys, now_millis, JobId, PhotoId};
use darkroom_store::{ObjectStore, PutOutcome, StoreError};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a process may look for a job's abandoned seats.
const SCAN_EVERY: Duration = Duration::from_secs(60);

/// When this process last looked for each job's abandoned seats.
#[derive(Debug)]
pub struct SeatScans(quick_cache::sync::Cache<JobId, Instant>);

impl Default for SeatScans {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(10_000))
    }
}

impl SeatScans {
    /// Whether a look for the job's abandoned seats may run now: not if one found none
    /// within the last [`SCAN_EVERY`].
    fn may_look(&self, job: &JobId) -> bool {
        self.0.get(job).is_none_or(|at| at.elapsed() >= SCAN_EVERY)
    }

    /// Notes that a look found no abandoned seat. (One that found some is not rationed:
    /// the next batch looks again and takes what is left.)
    fn found_none(&self, job: &JobId) {
        self.0.insert(job.clone(), Instant::now());
    }
}

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
    /// Seats found abandoned (their keys and what they held), once the job was full.
    abandoned: Option<Vec<(String, SeatDoc)>>,
    /// Rations the looks for abandoned seats; `None` for a new job, which has none.
    scans: Option<Arc<SeatScans>>,
}

impl Seats {
    /// A new job's seats: none taken.
    pub fn for_new_job(job: &JobId, max: usize) -> Self {
        Self {
            job: job.clone(),
            max,
            taken: BTreeSet::new(),
            next: 0,
            abandoned_after: Duration::MAX,
            abandoned: None,
            scans: None,
        }
    }

    /// An existing job's seats, from one listing. A job created before seats existed has
    /// photos without seats: the first batch that finds none gives each of them its seat
    /// (once, for good), so the count holds from then on.
    pub async fn of_existing_job(
        store: &dyn ObjectStore,
        job: &JobId,
        max: usize,
        abandoned_after: Duration,
        scans: Arc<SeatScans>,
    ) -> Result<Self, StoreError> {
        let prefix = keys::seats_prefix(job);
        let listed = store.list(&prefix).await?;
        let mut taken: BTreeSet<usize> =
            listed.iter().filter_map(|object| object.key.strip_prefix(&prefix)?.parse().ok()).collect();
        if taken.is_empty() {
            for seat in 0..photos_with_manifest(store, job).await?.len() {
                store.put_if_absent(&keys::seat(job, seat), bytes::Bytes::new(), "application/octet-stream").await?;
                taken.insert(seat);
            }
        }
        Ok(Self { job: job.clone(), max, taken, next: 0, abandoned_after, abandoned: None, scans: Some(scans) })
    }

    /// Whether the job has no room left: every seat taken and none abandoned (looked for
    /// the first time every seat is found taken, if this process has not looked lately).
    pub async fn full(&mut self, store: &dyn ObjectStore) -> Result<bool, StoreError> {
        if self.taken.len() < self.max {
            return Ok(false);
        }
        if self.abandoned.is_none() {
            let scans = self.scans.as_ref().filter(|scans| scans.may_look(&self.job));
            let abandoned = match scans {
                Some(scans) => {
                    let found = self.find_abandoned(store).await?;
                    if found.is_empty() {
                        scans.found_none(&self.job);
                    }
                    found
                }
                None => Vec::new(),
            };
            self.abandoned = Some(abandoned);
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
        while let Some((key, abandoned)) = self.abandoned.as_mut().and_then(Vec::pop) {
            // One batch takes over this seat as it was: the one that creates the marker.
            let marker = format!("{key}.takeover-{}-{}", abandoned.at, abandoned.photo);
            if store.put_if_absent(&marker, bytes::Bytes::new(), "application/octet-stream").await?
                == PutOutcome::Created
            {
                if let Err(error) = store.put(&key, body.clone(), "application/json").await {
                    // Not taken after all: the marker goes, so a later batch can take it.
                    if let Err(undo) = store.delete(&marker).await {
                        tracing::warn!(job_id = %self.job, seat = key, error.message = %undo, "could not withdraw a seat takeover; that seat stays taken");
                    }
                    return Err(error);
                }
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
    async fn find_abandoned(&self, store: &dyn ObjectStore) -> Result<Vec<(String, SeatDoc)>, StoreError> {
        let prefix = keys::seats_prefix(&self.job);
        // Seats only (not takeover markers), and not the empty ones of jobs from before
        // seats named their photo: those are never taken over.
        let seats: Vec<_> = store
            .list(&prefix)
            .await?
            .into_iter()
            .filter(|object| object.key.strip_prefix(&prefix).is_some_and(|n| n.parse::<usize>().is_ok()))
            .collect();
        let photos = photos_with_manifest(store, &self.job).await?;
        if seats.len() <= photos.len() {
            return Ok(Vec::new());
        }
        let cutoff = now_millis().saturating_sub(self.abandoned_after.as_millis().min(u128::from(u64::MAX)) as u64);
        let mut abandoned = Vec::new();
        for seat in seats.into_iter().filter(|seat| seat.size > 0) {
            let bytes = match store.get(&seat.key).await {
                Ok(bytes) => bytes,
                Err(error) if error.is_not_found() => continue,
                Err(error) => return Err(error),
            };
            let Ok(doc) = serde_json::from_slice::<SeatDoc>(&bytes) else { continue };
            if doc.at <= cutoff && !photos.contains(&doc.photo) {
                abandoned.push((seat.key, doc));
            }
        }
        Ok(abandoned)
    }
}

/// The job's photos that have their manifest (committed photos), from one listing.
async fn photos_with_manifest(store: &dyn ObjectStore, job: &JobId) -> Result<HashSet<PhotoId>, StoreError> {
    Ok(store
        .list(&keys::photos_prefix(job))
        .await?
        .into_iter()
        .filter_map(|object| match keys::classify(job, &object.key) {
            keys::PhotoKey::Manifest { photo } => Some(photo),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use darkroom_store::LocalStore;

    /// An empty store, and a job id in it.
    fn empty_store() -> (tempfile::TempDir, LocalStore, JobId) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        (dir, store, JobId::generate())
    }

    async fn photo_manifest(store: &dyn ObjectStore, job: &JobId, photo: &PhotoId) {
        store
            .put(&keys::photo_manifest(job, photo), bytes::Bytes::from_static(b"{}"), "application/json")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_seat_whose_batch_died_is_taken_over_once_the_job_is_full() {
        let (_dir, store, job) = empty_store();
        let (kept, lost) = (PhotoId::generate(), PhotoId::generate());
        let mut first = Seats::for_new_job(&job, 2);
        assert!(first.take(&store, &kept).await.unwrap().is_some());
        assert!(first.take(&store, &lost).await.unwrap().is_some());
        photo_manifest(&store, &job, &kept).await; // committed; `lost`'s batch died before its commit

        // Right after, the lost photo's batch may still be committing: its seat is kept.
        let mut soon =
            Seats::of_existing_job(&store, &job, 2, Duration::from_secs(3600), Arc::default()).await.unwrap();
        assert!(soon.full(&store).await.unwrap(), "a seat taken a moment ago is not abandoned");
        assert!(soon.take(&store, &PhotoId::generate()).await.unwrap().is_none());

        // Long after: the seat goes to the next photo, once.
        let mut later = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, Arc::default()).await.unwrap();
        assert!(!later.full(&store).await.unwrap());
        let newcomer = PhotoId::generate();
        let seat = later.take(&store, &newcomer).await.unwrap().expect("the abandoned seat");
        let doc: SeatDoc = serde_json::from_slice(&store.get(&seat).await.unwrap()).unwrap();
        assert_eq!(doc.photo, newcomer);
        photo_manifest(&store, &job, &newcomer).await;
        let mut after = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, Arc::default()).await.unwrap();
        assert!(after.full(&store).await.unwrap(), "two seats, two photos: full");
        assert!(after.take(&store, &PhotoId::generate()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn two_batches_cannot_both_take_over_one_abandoned_seat() {
        let (_dir, store, job) = empty_store();
        let mut first = Seats::for_new_job(&job, 1);
        first.take(&store, &PhotoId::generate()).await.unwrap().unwrap();
        // Both find the seat abandoned before either takes it, then take it at once.
        let mut a = Seats::of_existing_job(&store, &job, 1, Duration::ZERO, Arc::default()).await.unwrap();
        let mut b = Seats::of_existing_job(&store, &job, 1, Duration::ZERO, Arc::default()).await.unwrap();
        assert!(!a.full(&store).await.unwrap() && !b.full(&store).await.unwrap(), "both see the abandoned seat");
        let (photo_a, photo_b) = (PhotoId::generate(), PhotoId::generate());
        let (took_a, took_b) = tokio::join!(a.take(&store, &photo_a), b.take(&store, &photo_b));
        let (took_a, took_b) = (took_a.unwrap(), took_b.unwrap());
        assert_eq!(usize::from(took_a.is_some()) + usize::from(took_b.is_some()), 1, "exactly one takes it");
        let holder: SeatDoc = serde_json::from_slice(&store.get(&keys::seat(&job, 0)).await.unwrap()).unwrap();
        assert_eq!(holder.photo, if took_a.is_some() { photo_a } else { photo_b }, "the seat names its taker");
    }

    #[tokio::test]
    async fn a_full_job_with_nothing_abandoned_is_looked_over_once_a_minute_and_a_new_one_never() {
        let (_dir, store, job) = empty_store();
        let mut new_job = Seats::for_new_job(&job, 2);
        let (kept, lost) = (PhotoId::generate(), PhotoId::generate());
        new_job.take(&store, &kept).await.unwrap().unwrap();
        new_job.take(&store, &lost).await.unwrap().unwrap();
        assert!(new_job.full(&store).await.unwrap(), "a new job has no abandoned seats to look for");
        photo_manifest(&store, &job, &kept).await;
        let scans = Arc::new(SeatScans::default());
        // Found: not rationed, the next batch looks again.
        let mut first = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, scans.clone()).await.unwrap();
        assert!(!first.full(&store).await.unwrap(), "the first look finds the abandoned seat");
        let mut second = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, scans.clone()).await.unwrap();
        let taken = PhotoId::generate();
        assert!(second.take(&store, &taken).await.unwrap().is_some(), "the next batch looks and takes it");
        photo_manifest(&store, &job, &taken).await;
        // Nothing left: that look is remembered for a minute.
        let mut third = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, scans.clone()).await.unwrap();
        assert!(third.full(&store).await.unwrap());
        store.delete(&keys::photo_manifest(&job, &taken)).await.unwrap(); // as if abandoned now
        let mut fourth = Seats::of_existing_job(&store, &job, 2, Duration::ZERO, scans).await.unwrap();
        assert!(fourth.full(&store).await.unwrap(), "within the minute after a look that found none, no look");
    }
}
