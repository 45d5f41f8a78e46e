//! Where things live in the object store. Every key is built here from generated ids and
//! fixed names, and asset names held to letters, digits, `.`, `_` and `-`
//! ([`crate::recipe::is_asset_name`]), so no upload can name its way out of its job.
//!
//! ```text
//! jobs/<job>/job.json                                  job manifest
//! jobs/<job>/assets/<name>.png                         PNGs the recipes' image watermarks name
//! jobs/<job>/batches/<sha256 of Idempotency-Key>.json  replies to add-photo batches
//! jobs/<job>/rejected/<batch>.json                     files an upload left out, and why
//! jobs/<job>/changes/<ms>-<random id>.json             the change log the job view is kept up to date from
//! jobs/<job>/seats/<n, 5 digits>                       the job's photo seats, one per photo it holds
//! jobs/<job>/webhooks/scheduled/<finish>.json          a finish handed to the webhook queue (sent once)
//! jobs/<job>/webhooks/deliveries/<ms>-<finish>.json    the log of each webhook delivery attempt
//! jobs/<job>/webhooks/delivered/<finish>.json          a finish whose webhook was delivered
//! jobs/<job>/photos/<photo>/photo.json                 photo manifest
//! jobs/<job>/photos/<photo>/original                   the upload, as received
//! jobs/<job>/photos/<photo>/a<attempt>/<name>.<ext>    outputs and intermediates of an attempt
//! jobs/<job>/photos/<photo>/events/<attempt>-<rank>-<step>-<state>.json   state events
//! index/active/<job>                                   jobs with work outstanding (reconciler)
//! index/created/<created ms, 13 digits>-<job>          every job by age (retention)
//! index/sweep/<job>                                    deletions still to sweep (sweeper)
//! tombstones/<job>.json                                deleted jobs, until they would have expired
//! ```

use crate::ids::{JobId, PhotoId};
use crate::job::{PhotoState, Progress};

pub const ACTIVE_PREFIX: &str = "index/active/";
pub const CREATED_PREFIX: &str = "index/created/";
pub const SWEEP_PREFIX: &str = "index/sweep/";
pub const TOMBSTONES_PREFIX: &str = "tombstones/";

/// A deletion whose objects are not all swept yet: written with the tombstone, removed when
/// the job's prefix is empty, so the sweeper resumes whatever a crash or outage interrupted.
pub fn sweep_marker(job: &JobId) -> String {
    format!("{SWEEP_PREFIX}{job}")
}

pub fn job_of_sweep_marker(key: &str) -> Option<JobId> {
    JobId::parse(key.strip_prefix(SWEEP_PREFIX)?).ok()
}

/// Marks a job with photos queued or in work, for the reconciler to check on.
pub fn active_marker(job: &JobId) -> String {
    format!("{ACTIVE_PREFIX}{job}")
}

pub fn job_of_active_marker(key: &str) -> Option<JobId> {
    JobId::parse(key.strip_prefix(ACTIVE_PREFIX)?).ok()
}

/// Lists jobs oldest first, for retention: the creation time leads the key.
pub fn created_marker(job: &JobId, created_at_millis: u64) -> String {
    format!("{CREATED_PREFIX}{created_at_millis:013}-{job}")
}

pub fn parse_created_marker(key: &str) -> Option<(u64, JobId)> {
    let (millis, job) = key.strip_prefix(CREATED_PREFIX)?.split_once('-')?;
    Some((millis.parse().ok()?, JobId::parse(job).ok()?))
}

/// A deleted job's record: written before anything of the job is deleted (with its sweep
/// marker), and kept until the job would have expired, so the owner's retried DELETE is
/// still answered as a success.
pub fn tombstone(job: &JobId) -> String {
    format!("{TOMBSTONES_PREFIX}{job}.json")
}

pub fn job_of_tombstone(key: &str) -> Option<JobId> {
    JobId::parse(key.strip_prefix(TOMBSTONES_PREFIX)?.strip_suffix(".json")?).ok()
}

pub fn job_prefix(job: &JobId) -> String {
    format!("jobs/{job}/")
}

pub fn job_manifest(job: &JobId) -> String {
    format!("jobs/{job}/job.json")
}

pub fn batch_reply(job: &JobId, idempotency_key_sha256: &str) -> String {
    format!("jobs/{job}/batches/{idempotency_key_sha256}.json")
}

/// Where the records of files a job's uploads left out are.
pub fn rejected_prefix(job: &JobId) -> String {
    format!("jobs/{job}/rejected/")
}

/// The record of the files one upload left out (`batch`: a digest or a generated id).
pub fn rejected_batch(job: &JobId, batch: &str) -> String {
    format!("{}{batch}.json", rejected_prefix(job))
}

/// Where a job's change log is (see the jobs crate's `changes`).
pub fn changes_prefix(job: &JobId) -> String {
    format!("jobs/{job}/changes/")
}

/// Where a job's photo seats are (see the web tier's `seats`): one object per photo it holds.
pub fn seats_prefix(job: &JobId) -> String {
    format!("jobs/{job}/seats/")
}

/// Seat `n` of a job.
pub fn seat(job: &JobId, n: usize) -> String {
    format!("jobs/{job}/seats/{n:05}")
}

pub fn photos_prefix(job: &JobId) -> String {
    format!("jobs/{job}/photos/")
}

pub fn photo_prefix(job: &JobId, photo: &PhotoId) -> String {
    format!("jobs/{job}/photos/{photo}/")
}

pub fn photo_manifest(job: &JobId, photo: &PhotoId) -> String {
    format!("jobs/{job}/photos/{photo}/photo.json")
}

/// A file sent with the job for its recipe to use (a watermark's PNG), by the name the
/// recipe gives it ([`crate::recipe::is_asset_name`]).
pub fn asset(job: &JobId, name: &str) -> String {
    format!("jobs/{job}/assets/{name}")
}

pub fn original(job: &JobId, photo: &PhotoId) -> String {
    format!("jobs/{job}/photos/{photo}/original")
}

/// An output (`result`, `thumb`, `preview`) of one attempt. Redelivered messages of the
/// same attempt write the same keys, so at-least-once delivery produces no duplicates.
pub fn output(job: &JobId, photo: &PhotoId, attempt: u32, name: &str, extension: &str) -> String {
    format!("jobs/{job}/photos/{photo}/a{attempt}/{name}.{extension}")
}

/// The lossless image a pipeline segment hands to the next one.
pub fn intermediate(job: &JobId, photo: &PhotoId, attempt: u32, after_segment: usize) -> String {
    format!("jobs/{job}/photos/{photo}/a{attempt}/segment-{after_segment}.png")
}

/// The step of every event but `processing` (see [`processing_step`]).
pub const TERMINAL_STEP: u32 = 0;

/// The step of a `processing` event: 1000 + 2 × its pipeline segment while it runs there, one
/// less while it waits in that segment's queue, so that "processing in quick" < "waiting for
/// slow" < "processing in slow". Status processes from before hand-overs were recorded wrote
/// the segment itself (0, 1, 2…): the offset keeps the two numberings from ever naming the
/// same key in a mixed fleet (an older process's event only sorts below the newer ones).
pub fn processing_step(segment: u32, waiting: bool) -> u32 {
    const NEWER_STEPS: u32 = 1000;
    let running = NEWER_STEPS.saturating_add(segment.saturating_mul(2));
    if waiting {
        running.saturating_sub(1)
    } else {
        running
    }
}

/// A state event. `step` orders events of one state within an attempt: see
/// [`processing_step`] for `processing`, [`TERMINAL_STEP`] otherwise.
pub fn event(job: &JobId, photo: &PhotoId, attempt: u32, state: PhotoState, step: u32) -> String {
    format!("jobs/{job}/photos/{photo}/events/{attempt:06}-{}-{step:03}-{state}.json", state.rank())
}

/// The keys under which an attempt's end (`done` or `failed`) is recorded: if one exists,
/// a redelivered request of that attempt is a duplicate.
pub fn terminal_events(job: &JobId, photo: &PhotoId, attempt: u32) -> [String; 2] {
    [PhotoState::Done, PhotoState::Failed].map(|state| event(job, photo, attempt, state, TERMINAL_STEP))
}

/// The step of a `cancelled` event: above a failure of its rank (see `PhotoState::rank`).
pub const CANCELLED_STEP: u32 = 1;

/// The `cancelled` event of an attempt: its owner cancelled it while it was queued; a
/// worker that receives its request drops it.
pub fn cancelled_event(job: &JobId, photo: &PhotoId, attempt: u32) -> String {
    event(job, photo, attempt, PhotoState::Cancelled, CANCELLED_STEP)
}

/// Where the deliveries of a job's webhook are logged: one document per delivery attempt.
pub fn webhook_deliveries_prefix(job: &JobId) -> String {
    format!("jobs/{job}/webhooks/deliveries/")
}

/// One delivery attempt of the webhook for one finish of the job (`finish` names the
/// photo states it reports; a retried job finishes again under another name).
pub fn webhook_delivery(job: &JobId, finish: &str, millis: u64) -> String {
    format!("{}{millis:013}-{finish}.json", webhook_deliveries_prefix(job))
}

/// Written once a finish of the job has been delivered (a 2xx answer), so a duplicate
/// of its message is not sent again.
pub fn webhook_delivered(job: &JobId, finish: &str) -> String {
    format!("jobs/{job}/webhooks/delivered/{finish}.json")
}

/// Where the "scheduled" markers of a job's finishes are (see [`webhook_scheduled`]).
pub fn webhook_scheduled_prefix(job: &JobId) -> String {
    format!("jobs/{job}/webhooks/scheduled/")
}

/// Written once a finish of the job has been handed to the webhook queue, so that
/// the other processes that see the same finish do not send it again.
pub fn webhook_scheduled(job: &JobId, finish: &str) -> String {
    format!("{}{finish}.json", webhook_scheduled_prefix(job))
}

/// The `queued` event that starts an attempt after the first (a retry, a reprocessing).
pub fn queued_event(job: &JobId, photo: &PhotoId, attempt: u32) -> String {
    event(job, photo, attempt, PhotoState::Queued, TERMINAL_STEP)
}

/// What a key under [`photos_prefix`] is, as far as the job view cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoKey {
    Manifest { photo: PhotoId },
    Event { photo: PhotoId, attempt: u32, state: PhotoState, step: u32 },
    Other,
}

impl PhotoKey {
    pub fn progress(&self) -> Option<Progress> {
        match self {
            Self::Event { attempt, state, step, .. } => Some(Progress::of(*attempt, *state).with_step(*step)),
            _ => None,
        }
    }
}

pub fn classify(job: &JobId, key: &str) -> PhotoKey {
    let prefix = photos_prefix(job);
    let Some(rest) = key.strip_prefix(&prefix) else {
        return PhotoKey::Other;
    };
    let mut parts = rest.split('/');
    let Some(photo) = parts.next().and_then(|p| PhotoId::parse(p).ok()) else {
        return PhotoKey::Other;
    };
    match (parts.next(), parts.next(), parts.next()) {
        (Some("photo.json"), None, None) => PhotoKey::Manifest { photo },
        (Some("events"), Some(file), None) => parse_event_file(file)
            .map(|(attempt, state, step)| PhotoKey::Event { photo, attempt, state, step })
            .unwrap_or(PhotoKey::Other),
        _ => PhotoKey::Other,
    }
}

fn parse_event_file(file: &str) -> Option<(u32, PhotoState, u32)> {
    let stem = file.strip_suffix(".json")?;
    let mut fields = stem.splitn(4, '-');
    let attempt = fields.next()?.parse().ok()?;
    let _rank = fields.next()?;
    let step = fields.next()?.parse().ok()?;
    let state = PhotoState::parse(fields.next()?)?;
    Some((attempt, state, step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_parse_back() {
        let (job, photo) = (JobId::generate(), PhotoId::generate());
        let key = event(&job, &photo, 12, PhotoState::Processing, 2);
        assert_eq!(
            classify(&job, &key),
            PhotoKey::Event { photo: photo.clone(), attempt: 12, state: PhotoState::Processing, step: 2 }
        );
        assert_eq!(classify(&job, &photo_manifest(&job, &photo)), PhotoKey::Manifest { photo: photo.clone() });
        assert_eq!(classify(&job, &original(&job, &photo)), PhotoKey::Other);
        assert_eq!(classify(&JobId::generate(), &key), PhotoKey::Other);
    }

    #[test]
    fn index_and_tombstone_keys_parse_back_and_sort_by_age() {
        let job = JobId::generate();
        assert_eq!(job_of_active_marker(&active_marker(&job)), Some(job.clone()));
        assert_eq!(job_of_tombstone(&tombstone(&job)), Some(job.clone()));
        assert_eq!(job_of_sweep_marker(&sweep_marker(&job)), Some(job.clone()));
        assert_eq!(
            parse_created_marker(&created_marker(&job, 1_700_000_000_123)),
            Some((1_700_000_000_123, job.clone()))
        );
        assert!(created_marker(&job, 999) < created_marker(&JobId::generate(), 1_000));
        assert_eq!(job_of_tombstone("tombstones/not-an-id.json"), None);
    }

    #[test]
    fn event_keys_sort_like_their_progress() {
        let (job, photo) = (JobId::generate(), PhotoId::generate());
        let mut keys = [
            event(&job, &photo, 2, PhotoState::Queued, 0),
            event(&job, &photo, 1, PhotoState::Done, 0),
            event(&job, &photo, 1, PhotoState::Processing, 1),
            event(&job, &photo, 1, PhotoState::Processing, 0),
        ];
        keys.sort();
        let progress: Vec<_> = keys.iter().filter_map(|k| classify(&job, k).progress()).collect();
        let mut sorted = progress.clone();
        sorted.sort();
        assert_eq!(progress, sorted);
    }
}
