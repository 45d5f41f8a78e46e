//! Reading jobs back from the store: the job manifest, and the job view.
//!
//! A view is folded once from one listing of the job's photo keys plus the documents it
//! names (photo manifests and state events never change once written, so they are cached by
//! key), then kept up to date from the job's change log (see [`crate::changes`]): one LIST
//! of what is new and nothing else, whatever the number of photos. Readers of one job in
//! one process share the fold, and within [`Jobs::with_view_refresh`]'s window share one
//! read: many tabs watching a job cost what one does. Every
//! [`crate::changes::FULL_READ_EVERY`] the job is folded again in full, so nothing the log
//! missed stays missed.

use crate::changes::{change_millis, listing_start, progress_of, Change, LogEntry, LOOKBACK};
use crate::{Jobs, JobsError};
use darkroom_core::job::Progress;
use darkroom_core::keys::{self, PhotoKey};
use darkroom_core::{EventDoc, JobId, JobManifest, JobView, PhotoId, PhotoManifest, RejectedBatch, RejectedFile};
use darkroom_store::json::get_json;
use darkroom_store::ObjectMeta;
use futures::{StreamExt, TryFutureExt, TryStreamExt};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

const PARALLEL_READS: usize = 32;

/// The most refused files a view lists (the oldest first): every live-stream message and
/// webhook carries the view, so a job that was sent thousands of bad files stays small.
const MAX_REJECTED_SHOWN: usize = 200;

/// How long a job seen to exist is taken to exist by [`Jobs::job_exists`]: a deletion in
/// another process stops its outputs being served within this.
const EXISTS_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Pages of changes one incremental read takes before it reads the job in full instead.
const MAX_CHANGE_PAGES: usize = 4;
const CHANGE_PAGE: usize = 1000;

/// Whether a full read also reads the records of refused files (the job page shows them;
/// the reconciler has no use for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notes {
    Read,
    Skip,
}

/// Each photo of a fold: its manifest and its latest event with the progress it stands for.
type FoldedPhotos = BTreeMap<PhotoId, (PhotoManifest, Option<(Progress, EventDoc)>)>;

/// The last version any fold of this process took. Versions come from this one counter, so
/// a job's fold that was evicted from the cache and folded again never reuses a number an
/// open live stream has already seen (it would then send nothing, or another fold's view).
static LAST_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A version no fold of this process has had before.
fn next_version() -> u64 {
    LAST_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// A job's view as this process last folded it.
#[derive(Debug)]
pub(crate) struct Folded {
    photos: FoldedPhotos,
    /// Files the job's uploads left out, by (time, batch id).
    rejected: BTreeMap<(u64, String), Vec<RejectedFile>>,
    /// Events whose photo is not known yet (its "photos added" entry comes later in the log).
    orphans: BTreeMap<PhotoId, (Progress, EventDoc)>,
    /// Change keys already folded in, back to twice the lookback before the newest.
    applied: BTreeSet<String>,
    /// The newest change time folded in (ms), never ahead of this process's clock.
    newest: u64,
    /// Bumped whenever what the view shows changes (live streams compare it).
    version: u64,
    /// The view assembled at `version`, shared by the live streams of the job.
    assembled: Option<(u64, Arc<JobView>)>,
    full_read_at: Option<Instant>,
    refreshed_at: Option<Instant>,
    /// When the last refresh failed on an outage, and why: readers queued behind it within
    /// the refresh window get the same answer instead of each trying the store again.
    failed: Option<(Instant, String)>,
}

impl Default for Folded {
    fn default() -> Self {
        Self {
            photos: FoldedPhotos::new(),
            rejected: BTreeMap::new(),
            orphans: BTreeMap::new(),
            applied: BTreeSet::new(),
            newest: 0,
            version: next_version(),
            assembled: None,
            full_read_at: None,
            refreshed_at: None,
            failed: None,
        }
    }
}

impl Folded {
    /// The view at the current version, assembled once per version.
    fn shared_view(&mut self, job: &JobManifest) -> Arc<JobView> {
        match &self.assembled {
            Some((version, view)) if *version == self.version => view.clone(),
            _ => {
                let view = Arc::new(self.view(job));
                self.assembled = Some((self.version, view.clone()));
                view
            }
        }
    }

    fn view(&self, job: &JobManifest) -> JobView {
        let pairs = self.photos.values().map(|(manifest, latest)| (manifest.clone(), latest.clone().map(|(_, e)| e)));
        let mut view = darkroom_core::view::assemble(job, pairs.collect());
        view.rejected = self.rejected.values().flatten().take(MAX_REJECTED_SHOWN).cloned().collect();
        view
    }

    fn rejected_batch(&mut self, batch: RejectedBatch) {
        let key = (batch.at, batch.id);
        if self.rejected.get(&key) != Some(&batch.files) {
            self.rejected.insert(key, batch.files);
            self.version = next_version();
        }
    }

    fn event(&mut self, photo: &PhotoId, progress: Progress, event: EventDoc) {
        let slot = match self.photos.get_mut(photo) {
            Some((_, latest)) => latest,
            None => {
                let orphan = self.orphans.entry(photo.clone()).or_insert((progress, event.clone()));
                if progress > orphan.0 {
                    *orphan = (progress, event);
                }
                return;
            }
        };
        if slot.as_ref().is_none_or(|(best, _)| progress > *best) {
            *slot = Some((progress, event));
            self.version = next_version();
        }
    }

    fn photo(&mut self, manifest: PhotoManifest) {
        let id = manifest.id.clone();
        if !self.photos.contains_key(&id) {
            self.photos.insert(id.clone(), (manifest, None));
            self.version = next_version();
        }
        if let Some((progress, event)) = self.orphans.remove(&id) {
            self.event(&id, progress, event);
        }
    }
}

/// One job's fold, and whether this process changed the job since it was last read (its own
/// changes show at once, not after the refresh window).
#[derive(Debug, Default)]
pub(crate) struct FoldedEntry {
    changed_here: std::sync::atomic::AtomicBool,
    folded: tokio::sync::Mutex<Folded>,
}

pub(crate) type FoldedViews = quick_cache::sync::Cache<JobId, Arc<FoldedEntry>>;

/// Each photo of the job: whether its manifest exists, and its latest event key, if any.
#[derive(Debug, Default)]
struct PhotoKeys {
    has_manifest: bool,
    latest_event: Option<(Progress, String)>,
}

fn index_photo_keys(job: &JobId, listed: Vec<ObjectMeta>) -> BTreeMap<PhotoId, PhotoKeys> {
    let mut photos: BTreeMap<PhotoId, PhotoKeys> = BTreeMap::new();
    for object in listed {
        let classified = keys::classify(job, &object.key);
        let progress = classified.progress();
        match classified {
            PhotoKey::Manifest { photo } => photos.entry(photo).or_default().has_manifest = true,
            PhotoKey::Event { photo, .. } => {
                let entry = photos.entry(photo).or_default();
                let progress = progress.unwrap_or(Progress { attempt: 0, rank: 0, step: 0 });
                if entry.latest_event.as_ref().is_none_or(|(best, _)| progress > *best) {
                    entry.latest_event = Some((progress, object.key));
                }
            }
            PhotoKey::Other => {}
        }
    }
    photos
}

impl Jobs {
    /// The job's manifest, or `None` if there is no such job (or it is being deleted).
    pub async fn load_job(&self, job: &JobId) -> Result<Option<JobManifest>, JobsError> {
        match get_json(self.store.as_ref(), &keys::job_manifest(job)).await {
            Ok(manifest) => Ok(Some(manifest)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the job exists (is not deleted), for serving its immutable outputs: a job
    /// seen to exist is taken to within [`EXISTS_FOR`], so a page of thumbnails costs one
    /// look, not one per thumbnail. Deleted in this process, it is forgotten at once.
    pub async fn job_exists(&self, job: &JobId) -> Result<bool, JobsError> {
        if self.seen_existing.get(job).is_some_and(|at| at.elapsed() < EXISTS_FOR) {
            return Ok(true);
        }
        let exists = self.store.head(&keys::job_manifest(job)).await?.is_some();
        if exists {
            self.seen_existing.insert(job.clone(), Instant::now());
        }
        Ok(exists)
    }

    /// Forgets that the job was seen to exist (it is being deleted).
    pub(crate) fn forget_existing(&self, job: &JobId) {
        self.seen_existing.remove(job);
    }

    /// An immutable document, from the cache or the store.
    async fn immutable_doc<T: DeserializeOwned>(&self, key: &str) -> Result<T, JobsError> {
        let bytes = match self.documents.get(key) {
            Some(bytes) => bytes,
            None => {
                let bytes = self.store.get(key).await?;
                self.documents.insert(key.to_owned(), bytes.clone());
                bytes
            }
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| JobsError::unreadable(key.to_owned(), darkroom_store::json::written_by(&bytes), &e))
    }

    /// The job's view: folded in full the first time and every [`crate::changes::FULL_READ_EVERY`], brought
    /// up to date from the change log in between, shared by every reader in this process.
    pub async fn load_view(&self, job: &JobManifest) -> Result<JobView, JobsError> {
        let entry = self.fold_of(&job.id);
        let mut folded = entry.folded.lock().await;
        self.refresh(&job.id, &entry, &mut folded).await?;
        Ok(folded.view(job))
    }

    /// The job's view if its fold changed since `seen` (a version from an earlier call), with
    /// the fold's version now: `None` when nothing changed, without copying the view.
    pub async fn load_view_if_changed(
        &self,
        job: &JobManifest,
        seen: Option<u64>,
    ) -> Result<(u64, Option<Arc<JobView>>), JobsError> {
        let entry = self.fold_of(&job.id);
        let mut folded = entry.folded.lock().await;
        self.refresh(&job.id, &entry, &mut folded).await?;
        if seen == Some(folded.version) {
            return Ok((folded.version, None));
        }
        Ok((folded.version, Some(folded.shared_view(job))))
    }

    /// The job's view read afresh from its per-photo documents, neither from nor into the
    /// shared fold: for decisions that must see the store as it is now (the reconciler).
    pub async fn load_view_in_full(&self, job: &JobManifest) -> Result<JobView, JobsError> {
        let mut folded = Folded::default();
        self.read_in_full(&job.id, &mut folded, Notes::Skip).await?;
        Ok(folded.view(job))
    }

    /// Notes that this process changed the job (and logged it): its next view read looks for
    /// changes whatever the refresh window says.
    pub fn changed(&self, job: &JobId) {
        if let Some(entry) = self.views.get(job) {
            entry.changed_here.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn fold_of(&self, job: &JobId) -> Arc<FoldedEntry> {
        self.views
            .get_or_insert_with(job, || Ok::<_, std::convert::Infallible>(Arc::default()))
            .unwrap_or_else(|never| match never {})
    }

    /// Brings the fold up to date unless it was within the refresh window (and this process
    /// has not changed the job since).
    async fn refresh(&self, job: &JobId, entry: &FoldedEntry, folded: &mut Folded) -> Result<(), JobsError> {
        let changed_here = entry.changed_here.swap(false, std::sync::atomic::Ordering::SeqCst);
        let fresh = !changed_here && folded.refreshed_at.is_some_and(|at| at.elapsed() < self.view_refresh);
        if fresh {
            return Ok(());
        }
        if let Some((_, message)) = folded.failed.as_ref().filter(|(at, _)| at.elapsed() < self.view_refresh) {
            if changed_here {
                // Still to be seen by the first read after the window.
                entry.changed_here.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            return Err(JobsError::Shared(message.clone()));
        }
        match self.bring_up_to_date(job, folded).await {
            Ok(()) => {
                folded.refreshed_at = Some(Instant::now());
                folded.failed = None;
                Ok(())
            }
            Err(error) => {
                if error.is_retryable() {
                    folded.failed = Some((Instant::now(), error.to_string()));
                }
                if changed_here {
                    // Still to be seen by the next read that gets through.
                    entry.changed_here.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Err(error)
            }
        }
    }

    async fn bring_up_to_date(&self, job: &JobId, folded: &mut Folded) -> Result<(), JobsError> {
        let full_read_due = folded.full_read_at.is_none_or(|at| at.elapsed() >= self.full_read_every);
        if full_read_due || !self.read_changes(job, folded).await? {
            if let Err(error) = self.read_in_full(job, folded, Notes::Read).await {
                // The next read tries in full again: the log's entries it marked read (one
                // it could not parse among them) must not stand for what this read missed.
                folded.full_read_at = None;
                return Err(error);
            }
            // What the log reported from shortly before the listing on may be newer than
            // what the listing saw: fold it in again, so the view never steps back.
            self.read_changes(job, folded).await?;
        }
        Ok(())
    }

    /// Folds the job from its per-photo documents: one listing, and the documents not read
    /// before.
    async fn read_in_full(&self, job: &JobId, folded: &mut Folded, notes: Notes) -> Result<(), JobsError> {
        let started = darkroom_core::now_millis();
        let photos_prefix = keys::photos_prefix(job);
        let (listed, rejected) = futures::try_join!(self.store.list(&photos_prefix).err_into::<JobsError>(), async {
            match notes {
                Notes::Read => self.rejected_files(job).await.map(Some),
                Notes::Skip => Ok(None),
            }
        })?;
        let photos = index_photo_keys(job, listed);
        let pairs: Vec<(PhotoManifest, Option<(Progress, EventDoc)>)> =
            futures::stream::iter(photos.into_iter().filter(|(_, keys)| keys.has_manifest))
                .map(|(photo, photo_keys)| async move {
                    let manifest: PhotoManifest = self.immutable_doc(&keys::photo_manifest(job, &photo)).await?;
                    let event = match photo_keys.latest_event {
                        Some((progress, key)) => Some((progress, self.immutable_doc::<EventDoc>(&key).await?)),
                        None => None,
                    };
                    Ok::<_, JobsError>((manifest, event))
                })
                .buffer_unordered(PARALLEL_READS)
                .try_collect()
                .await?;
        let photos: FoldedPhotos =
            pairs.into_iter().map(|(manifest, latest)| (manifest.id.clone(), (manifest, latest))).collect();
        if let Some(rejected) = rejected.filter(|rejected| *rejected != folded.rejected) {
            folded.version = next_version();
            folded.rejected = rejected;
        }
        let progress = |photos: &FoldedPhotos| {
            photos.iter().map(|(id, (_, latest))| (id.clone(), latest.as_ref().map(|(p, _)| *p))).collect::<Vec<_>>()
        };
        if folded.full_read_at.is_none() || progress(&photos) != progress(&folded.photos) {
            folded.version = next_version();
        }
        folded.photos = photos;
        folded.orphans.clear();
        // Entries written from now on are read from the log (each listing looks back a
        // little before `newest`). Those applied before the lookback stay known, so a busy
        // job's entries are not all fetched again; the recent ones are, since the listing
        // above may not have seen the events they report.
        let recent = listing_start(job, started.saturating_sub(LOOKBACK.as_millis() as u64));
        drop(folded.applied.split_off(&recent));
        folded.newest = folded.newest.max(started);
        folded.full_read_at = Some(Instant::now());
        Ok(())
    }

    /// The records of files the job's uploads left out. One that cannot be read (gone since
    /// the listing, or written by a newer version) is skipped: a note must not cost the job
    /// its view. An outage is an error like any other read's.
    async fn rejected_files(&self, job: &JobId) -> Result<BTreeMap<(u64, String), Vec<RejectedFile>>, JobsError> {
        let listed = self.store.list(&keys::rejected_prefix(job)).await?;
        let read: Vec<Option<RejectedBatch>> = futures::stream::iter(listed)
            .map(|object| async move {
                match self.immutable_doc::<RejectedBatch>(&object.key).await {
                    Ok(batch) => Ok(Some(batch)),
                    Err(JobsError::Store(error)) if error.is_retryable() => Err(JobsError::Store(error)),
                    Err(error) => {
                        tracing::warn!(job_id = %job, key = object.key, error.message = %error, "a record of refused files could not be read; skipped");
                        Ok(None)
                    }
                }
            })
            .buffer_unordered(PARALLEL_READS)
            .try_collect()
            .await?;
        Ok(read.into_iter().flatten().map(|batch| ((batch.at, batch.id), batch.files)).collect())
    }

    /// Folds in what the change log holds since the last read; `false` when there is too
    /// much of it (reading the job in full is cheaper then).
    async fn read_changes(&self, job: &JobId, folded: &mut Folded) -> Result<bool, JobsError> {
        let prefix = keys::changes_prefix(job);
        let lookback = LOOKBACK.as_millis() as u64;
        let mut after = listing_start(job, folded.newest.saturating_sub(lookback));
        let mut new_keys = Vec::new();
        for page in 0.. {
            if page == MAX_CHANGE_PAGES {
                return Ok(false);
            }
            let listed = self.store.list_page(&prefix, Some(&after), CHANGE_PAGE).await?;
            new_keys.extend(listed.iter().filter(|o| !folded.applied.contains(&o.key)).map(|o| o.key.clone()));
            match listed.last() {
                Some(last) if listed.len() == CHANGE_PAGE => after = last.key.clone(),
                _ => break,
            }
        }
        let changes: Vec<(String, LogEntry)> = futures::stream::iter(new_keys)
            .map(|key| async move {
                match get_json::<Change>(self.store.as_ref(), &key).await {
                    Ok(change) => Ok((key, LogEntry::Change(Box::new(change)))),
                    Err(error) if error.is_not_found() => Ok((key, LogEntry::Gone)),
                    Err(darkroom_store::json::JsonDocError::Store(error)) => Err(JobsError::from(error)),
                    Err(error) => {
                        tracing::warn!(job_id = %job, key, error.message = %error, "unreadable change log entry (corrupt, or written by a newer darkroom): reading the job in full instead");
                        Ok((key, LogEntry::Unreadable))
                    }
                }
            })
            .buffer_unordered(PARALLEL_READS)
            .try_collect()
            .await?;
        // What an entry this process cannot read stood for is in the job's own documents: a
        // full read folds it in (or says the job was written by a newer darkroom), where
        // skipping it would leave the view without it until the next full read.
        let mut unreadable = false;
        for (key, entry) in changes {
            let change = match entry {
                LogEntry::Change(change) => Some(*change),
                LogEntry::Gone => None,
                LogEntry::Unreadable => {
                    unreadable = true;
                    None
                }
            };
            match change {
                Some(Change::Photos { photos, rejected }) => {
                    photos.into_iter().for_each(|manifest| folded.photo(manifest));
                    if let Some(batch) = rejected {
                        folded.rejected_batch(batch);
                    }
                }
                Some(Change::Event { photo, key: event_key, event }) => {
                    if let Some(progress) = progress_of(job, &event_key) {
                        folded.event(&photo, progress, event);
                    }
                }
                None => {}
            }
            // A writer whose clock runs ahead must not push the listing start past entries
            // from writers whose clocks are right.
            let written = change_millis(job, &key).unwrap_or(0).min(darkroom_core::now_millis());
            folded.newest = folded.newest.max(written);
            folded.applied.insert(key);
        }
        // Forget keys that no later listing can return again.
        let keep_from = listing_start(job, folded.newest.saturating_sub(2 * lookback));
        folded.applied = folded.applied.split_off(&keep_from);
        Ok(!unreadable)
    }

    /// One photo's manifest and latest event; `None` if the job has no such photo.
    pub async fn load_photo(
        &self,
        job: &JobId,
        photo: &PhotoId,
    ) -> Result<Option<(PhotoManifest, Option<EventDoc>)>, JobsError> {
        let listed = self.store.list(&keys::photo_prefix(job, photo)).await?;
        let Some(photo_keys) = index_photo_keys(job, listed).remove(photo) else {
            return Ok(None);
        };
        if !photo_keys.has_manifest {
            return Ok(None);
        }
        let manifest = self.immutable_doc(&keys::photo_manifest(job, photo)).await?;
        let event = match photo_keys.latest_event {
            Some((_, key)) => Some(self.immutable_doc(&key).await?),
            None => None,
        };
        Ok(Some((manifest, event)))
    }
}
