//! What the store holds about a job: the job manifest, one manifest per photo, and the
//! photo's state events. Events are immutable documents, one per (attempt, state), so
//! several status processes can record updates concurrently without losing any, and the
//! current state is simply the greatest (attempt, rank) present — a late "processing"
//! can never overwrite "done".

use crate::error_code::PhotoError;
use crate::ids::{JobId, PhotoId};
use crate::recipe::Recipe;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version every document is written with: the message version of the build that wrote
/// it, since recipes grow in both at once (documents written before version 5 say 1). A
/// reader checks it only when a document does not parse: one written by a newer darkroom
/// (during a rollout) is `JobsError::NewerVersion`, anything else is corrupt.
pub const MANIFEST_VERSION: u32 = crate::messages::MESSAGE_VERSION;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobManifest {
    pub v: u32,
    pub id: JobId,
    pub created_at: u64,
    pub owner_token_sha256: String,
    pub recipe: Recipe,
    /// Where to POST the signed job view when the job finishes (a webhook), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Whose job it is, for sharing the workers fairly (docs/ARCHITECTURE.md, "Fair
    /// sharing"): a digest of the access key or client network that created it. A job
    /// made before tenants were recorded is a tenant of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What its owner called the job ("Sofia's wedding"), shown on the job page and in My
    /// jobs; at most [`MAX_JOB_NAME_CHARS`] characters of display text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The longest job name taken, in characters.
pub const MAX_JOB_NAME_CHARS: usize = 120;

/// A job name as given, made display text: control and format characters dropped, whitespace runs
/// made one space, trimmed, cut at [`MAX_JOB_NAME_CHARS`]; `None` when nothing is left.
pub fn clean_job_name(text: &str) -> Option<String> {
    // Format characters (bidi overrides, zero-width ones) could make a name read as another.
    let hidden =
        |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
    let text: String = text.chars().filter(|c| !hidden(*c)).collect();
    let words: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let joined: String = words.join(" ").chars().filter(|c| !c.is_control()).take(MAX_JOB_NAME_CHARS).collect();
    let trimmed = joined.trim_end();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

impl JobManifest {
    /// The tenant the job's photos queue as.
    pub fn tenant(&self) -> String {
        self.tenant.clone().unwrap_or_else(|| format!("job-{}", self.id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoManifest {
    pub v: u32,
    pub job_id: JobId,
    pub id: PhotoId,
    /// The uploaded file name, sanitised for display (never used in a store key).
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub added_at: u64,
    /// Order within its upload batch, so the job page lists photos as they were chosen.
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhotoState {
    Queued,
    Processing,
    Failed,
    Done,
    Cancelled,
}

impl PhotoState {
    /// Order of states within one attempt. `done` outranks `failed`: if both are recorded
    /// for one attempt (a dead-lettered duplicate of a message that did succeed), the
    /// outputs exist and the photo is done. `cancelled` shares `failed`'s rank with a higher
    /// step (see [`crate::keys::CANCELLED_STEP`]): it outranks a failure and yields to `done`,
    /// so a photo a worker finished just as it was cancelled shows done, with its outputs.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Processing => 1,
            Self::Failed => 2,
            Self::Done => 3,
            Self::Cancelled => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Failed => "failed",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Processing, Self::Failed, Self::Done, Self::Cancelled]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for PhotoState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a photo's state stands: compared by attempt first, then by state rank, then by
/// step within the state (the pipeline segment of a `processing` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Progress {
    pub attempt: u32,
    pub rank: u8,
    pub step: u32,
}

impl Progress {
    pub fn of(attempt: u32, state: PhotoState) -> Self {
        Self { attempt, rank: state.rank(), step: 0 }
    }

    pub fn with_step(self, step: u32) -> Self {
        Self { step, ..self }
    }
}

/// One recorded state of one attempt of a photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDoc {
    pub v: u32,
    pub attempt: u32,
    pub state: PhotoState,
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PhotoError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputInfo>,
    /// For a `queued` event of a reprocessing: the recipe this attempt runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// Why an attempt was started by darkroom itself (the reconciler), not by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many times in a row the reconciler has had to restart this photo.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recoveries: u32,
    /// A `processing` event that records a hand-over: the photo is waiting in `stage`'s
    /// queue, not yet taken by one of its workers (shown as `queued` at that stage).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
    /// For `done`: milliseconds spent working on the attempt (see `PhotoUpdate::Done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_ms: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl EventDoc {
    pub fn new(attempt: u32, state: PhotoState) -> Self {
        Self {
            v: MANIFEST_VERSION,
            attempt,
            state,
            at: crate::now_millis(),
            stage: None,
            error: None,
            outputs: Vec::new(),
            recipe: None,
            reason: None,
            recoveries: 0,
            waiting: false,
            work_ms: None,
        }
    }

    /// The state users see: a hand-over to the next stage is `queued` there.
    pub fn shown_state(&self) -> PhotoState {
        if self.waiting && self.state == PhotoState::Processing {
            PhotoState::Queued
        } else {
            self.state
        }
    }
}

/// A file of an upload that was not taken into the job, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedFile {
    pub name: String,
    pub error: PhotoError,
}

/// The files one upload request left out, kept with the job (see `keys::rejected_batch`)
/// so its page still lists them after a reload or on another device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedBatch {
    pub v: u32,
    /// The batch's own id: its first photo's id where it took one (a batch rolled forward
    /// after a lost reply rewrites the same record), else a generated one.
    pub id: String,
    pub at: u64,
    pub files: Vec<RejectedFile>,
}

/// Why a job is being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionCause {
    /// Its owner deleted it.
    Owner,
    /// It passed the retention period.
    Expired,
}

/// A deletion in progress (see `keys::tombstone`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub v: u32,
    pub job_id: JobId,
    pub created_at: u64,
    pub deleted_at: u64,
    pub cause: DeletionCause,
    /// So a retried DELETE by the owner is answered as a success, and anyone else's as 404.
    pub owner_token_sha256: String,
}

/// One stored output of a done photo: `result`, `thumb` or `preview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputInfo {
    pub name: String,
    pub key: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// Where the auto-oriented original's pixels land in this output (the result's), so a
    /// viewer can frame the "before" exactly like the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<crate::messages::CarriedFrame>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_never_goes_backwards_within_an_attempt() {
        let done = Progress::of(1, PhotoState::Done);
        assert!(Progress::of(1, PhotoState::Processing) < done);
        assert!(Progress::of(1, PhotoState::Failed) < done);
        assert!(Progress::of(1, PhotoState::Queued) < Progress::of(1, PhotoState::Processing));
    }

    #[test]
    fn a_retry_starts_a_new_attempt_that_outranks_the_old_one() {
        assert!(Progress::of(1, PhotoState::Done) < Progress::of(2, PhotoState::Queued));
        assert!(Progress::of(1, PhotoState::Failed) < Progress::of(2, PhotoState::Queued));
    }

    #[test]
    fn job_names_are_cleaned_to_one_line_of_display_text() {
        assert_eq!(clean_job_name("  Sofia's\n\twedding  "), Some("Sofia's wedding".to_owned()));
        assert_eq!(clean_job_name("a\u{0}b"), Some("a b".to_owned()));
        assert_eq!(clean_job_name(" \r\n "), None);
        assert_eq!(clean_job_name("gnp.\u{202E}exe"), Some("gnp.exe".to_owned()));
        assert_eq!(clean_job_name(&"é".repeat(500)).map(|n| n.chars().count()), Some(MAX_JOB_NAME_CHARS));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in
            [PhotoState::Queued, PhotoState::Processing, PhotoState::Failed, PhotoState::Done, PhotoState::Cancelled]
        {
            assert_eq!(PhotoState::parse(state.as_str()), Some(state));
        }
        assert_eq!(PhotoState::parse("finished"), None);
    }
}
