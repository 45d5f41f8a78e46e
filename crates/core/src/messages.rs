//! Queue messages. Versioned JSON envelopes that carry ids and keys, never image bytes
//! (an SQS message is at most 256 KiB).
//!
//! Versions make rolling upgrades safe (docs/ARCHITECTURE.md "Mixed versions run side by side"): a
//! build reads every version up to its own and writes its own; a message of a *newer*
//! version is [`MessageError::NewerVersion`], which consumers hand back for a newer process
//! instead of deleting, and one that does not parse at all is [`MessageError::Malformed`],
//! which they leave to the dead-letter queue after the normal receive budget.

use crate::error_code::PhotoError;
use crate::ids::{JobId, PhotoId};
use crate::job::{EventDoc, OutputInfo, PhotoState};
use crate::plan::Segment;
use crate::recipe::Recipe;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use std::sync::atomic::{AtomicU32, Ordering};

/// The message version this release writes, and the newest it reads. 2: a request's recipe
/// may hold `straighten`, `auto_enhance`, `watermark` and `metadata`, which version 1 cannot
/// parse; a version-1 process hands such a message back instead of dead-lettering it.
/// 3: decorations (captions, watermarks, borders) are drawn by the last segment for the
/// whole recipe, and lengths may be `"N%"`: a version-2 worker would draw a border into an
/// intermediate and the last segment would draw it again. 4: a watermark may name an image
/// (a PNG sent with the job), which a version-3 worker would fail the photo over. 5: a
/// recipe may hold `vignette`, which version 4 cannot parse.
///
/// Documents in the store are written with it too (`job::MANIFEST_VERSION`): raise it whenever
/// a message or a stored document (job and photo manifests, events, change-log entries) may
/// hold what the previous release cannot parse, so that release tells "newer" from "corrupt".
pub const MESSAGE_VERSION: u32 = 5;

/// The first version whose requests have their decorations drawn at the end of the recipe.
pub const DECORATIONS_AT_THE_END: u32 = 3;

/// The version this process speaks: [`MESSAGE_VERSION`], unless a test build pretends to
/// be the next release (see [`speak_next_version_for_tests`]).
static SPOKEN_VERSION: AtomicU32 = AtomicU32::new(MESSAGE_VERSION);

pub fn spoken_version() -> u32 {
    SPOKEN_VERSION.load(Ordering::Relaxed)
}

/// Test hook (feature `fault-injection`): this process writes version N+1 and reads up to
/// it, like the next release would, so the mixed-fleet test can run N and N+1 side by side.
#[cfg(feature = "fault-injection")]
pub fn speak_next_version_for_tests() {
    SPOKEN_VERSION.store(MESSAGE_VERSION + 1, Ordering::Relaxed);
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("message is not valid JSON of the expected shape: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("message version {found} is newer than this build reads (up to version {reads}): a newer darkroom must handle it")]
    NewerVersion { found: u64, reads: u32 },
}

impl MessageError {
    /// Whether a newer process may be able to read it (as opposed to it never parsing).
    pub fn is_newer_version(&self) -> bool {
        matches!(self, Self::NewerVersion { .. })
    }
}

/// Process `plan[segment]` of this photo's recipe. Segment 0 reads the original; later
/// segments read the intermediate image the previous segment wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRequest {
    pub v: u32,
    pub job_id: JobId,
    pub photo_id: PhotoId,
    pub attempt: u32,
    pub recipe: Recipe,
    pub plan: Vec<Segment>,
    pub segment: usize,
    /// Where the original's coordinates lie in the intermediate image handed over by the
    /// previous segment, so regions named in original pixels still land right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<CarriedFrame>,
    /// Outputs earlier segments already stored (the preview), reported when the last
    /// segment is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputInfo>,
    /// The job's tenant (see [`crate::JobManifest::tenant`]), so every stage queues the
    /// photo in its tenant's turn. A request without one queues as its job's own tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Milliseconds earlier segments spent on this attempt (reading and rendering), so the
    /// last one reports the photo's whole work time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub work_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An affine map from original coordinates to the current image (see imaging's `Frame`):
/// x' = m₀·x + m₁·y + m₂, y' = m₃·x + m₄·y + m₅, for an original of the given size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CarriedFrame {
    pub matrix: [f64; 6],
    pub original_width: u32,
    pub original_height: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoResponse {
    pub v: u32,
    pub job_id: JobId,
    pub photo_id: PhotoId,
    pub attempt: u32,
    #[serde(flatten)]
    pub update: PhotoUpdate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PhotoUpdate {
    Processing {
        stage: String,
        /// Which segment of the plan is running (orders "processing" events).
        #[serde(default)]
        segment: u32,
        /// Sent by the stage that forwards the photo: it is waiting in `stage`'s queue for
        /// `segment`, not yet running. (A status process that predates the field reads
        /// it as "processing" there, which is only less precise.)
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        waiting: bool,
    },
    Done {
        outputs: Vec<OutputInfo>,
        /// Milliseconds spent working on the attempt, summed over its segments (not the
        /// time it waited in queues).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_ms: Option<u64>,
    },
    Failed {
        error: PhotoError,
    },
}

/// Deliver the webhook of one finish of a job. `finish` names the photo states the job
/// finished with (see the jobs crate's `finish`), so deliveries of one finish are told
/// apart from a later one (after a retry). `tries` counts failed deliveries so far: a
/// failed delivery is sent again as a new message with `tries + 1` and a growing delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    pub v: u32,
    pub job_id: JobId,
    pub finish: String,
    #[serde(default)]
    pub tries: u32,
}

impl WebhookRequest {
    pub fn new(job_id: JobId, finish: String) -> Self {
        Self { v: spoken_version(), job_id, finish, tries: 0 }
    }

    pub fn decode(body: &str) -> Result<Self, MessageError> {
        check_version(body)?;
        Ok(serde_json::from_str(body)?)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn check_version(body: &str) -> Result<(), MessageError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u64,
    }
    let Versioned { v } = serde_json::from_str(body)?;
    let reads = spoken_version();
    if v > u64::from(reads) {
        Err(MessageError::NewerVersion { found: v, reads })
    } else {
        Ok(())
    }
}

impl PhotoRequest {
    pub fn new(job_id: JobId, photo_id: PhotoId, attempt: u32, recipe: Recipe, plan: Vec<Segment>) -> Self {
        Self {
            v: spoken_version(),
            job_id,
            photo_id,
            attempt,
            recipe,
            plan,
            segment: 0,
            frame: None,
            outputs: Vec::new(),
            tenant: None,
            work_ms: 0,
        }
    }

    pub fn for_tenant(self, tenant: String) -> Self {
        Self { tenant: Some(tenant), ..self }
    }

    /// Whose turn this photo waits for, as (tenant, flow): a job's first attempts are one
    /// flow, and its later attempts (retries, reprocessing, restarts) another, so a retry
    /// never waits behind the rest of its own job's first run; and each later segment of a
    /// plan is a flow of its own, so photos that came back to a stage for their last step
    /// take turns with the job's new photos there, and results appear from the start.
    pub fn fair_share(&self) -> (String, String) {
        let tenant = self.tenant.clone().unwrap_or_else(|| format!("job-{}", self.job_id));
        let mut flow = self.job_id.to_string();
        if self.attempt > 1 {
            flow.push_str(".again");
        }
        if self.segment > 0 {
            flow.push_str(&format!(".{}", self.segment));
        }
        (tenant, flow)
    }

    pub fn decode(body: &str) -> Result<Self, MessageError> {
        check_version(body)?;
        Ok(serde_json::from_str(body)?)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn current_segment(&self) -> Option<&Segment> {
        self.plan.get(self.segment)
    }

    /// Whether this request was made by a release that drew each caption, watermark and
    /// border where it stands in the recipe: its photo keeps those rules through every
    /// segment, whichever release's worker runs it (a request keeps its version when
    /// forwarded), so a photo never gets a border twice or loses one in a mixed fleet.
    pub fn draws_decorations_in_place(&self) -> bool {
        self.v < DECORATIONS_AT_THE_END
    }

    pub fn is_last_segment(&self) -> bool {
        self.segment + 1 >= self.plan.len()
    }

    /// The same photo, handed to the next segment of its plan, with the work time so far.
    pub fn forwarded(&self, frame: Option<CarriedFrame>, outputs: Vec<OutputInfo>, work_ms: u64) -> Option<Self> {
        (!self.is_last_segment()).then(|| Self { segment: self.segment + 1, frame, outputs, work_ms, ..self.clone() })
    }

    /// The operations of the current segment.
    pub fn current_ops(&self) -> &[crate::recipe::Operation] {
        self.current_segment().and_then(|s| self.recipe.ops.get(s.first_op..s.end_op)).unwrap_or(&[])
    }

    /// The operations of the current segment and every later one: what decides how large
    /// the photo ends, so how small it may be decoded now.
    pub fn remaining_ops(&self) -> &[crate::recipe::Operation] {
        self.current_segment().and_then(|s| self.recipe.ops.get(s.first_op..)).unwrap_or(&[])
    }

    /// Message attributes, so one photo can be followed across processes in logs.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        trace_attributes(&self.job_id, &self.photo_id, self.attempt)
    }
}

impl PhotoResponse {
    pub fn new(job_id: JobId, photo_id: PhotoId, attempt: u32, update: PhotoUpdate) -> Self {
        Self { v: spoken_version(), job_id, photo_id, attempt, update }
    }

    /// The state event this response records, and its step (see [`crate::keys::event`]).
    pub fn event(&self) -> (u32, EventDoc) {
        match &self.update {
            PhotoUpdate::Processing { stage, segment, waiting } => {
                let mut event = EventDoc::new(self.attempt, PhotoState::Processing);
                event.stage = Some(stage.clone());
                event.waiting = *waiting;
                (crate::keys::processing_step(*segment, *waiting), event)
            }
            PhotoUpdate::Done { outputs, work_ms } => {
                let mut event = EventDoc::new(self.attempt, PhotoState::Done);
                event.outputs = outputs.clone();
                event.work_ms = *work_ms;
                (crate::keys::TERMINAL_STEP, event)
            }
            PhotoUpdate::Failed { error } => {
                let mut event = EventDoc::new(self.attempt, PhotoState::Failed);
                event.error = Some(error.clone());
                (crate::keys::TERMINAL_STEP, event)
            }
        }
    }

    pub fn decode(body: &str) -> Result<Self, MessageError> {
        check_version(body)?;
        Ok(serde_json::from_str(body)?)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn attributes(&self) -> BTreeMap<String, String> {
        trace_attributes(&self.job_id, &self.photo_id, self.attempt)
    }
}

fn trace_attributes(job_id: &JobId, photo_id: &PhotoId, attempt: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("job_id".to_owned(), job_id.to_string()),
        ("photo_id".to_owned(), photo_id.to_string()),
        ("attempt".to_owned(), attempt.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StageMap;

    #[test]
    fn request_round_trips_and_forwards_through_its_plan() {
        let recipe = Recipe::from_json(r#"{"ops":[{"op":"redeye"},{"op":"thumbnail","size":64}]}"#).expect("valid");
        let plan = StageMap::default().plan(&recipe);
        let request = PhotoRequest::new(JobId::generate(), PhotoId::generate(), 1, recipe, plan);
        let decoded = PhotoRequest::decode(&request.encode()).expect("decodes");
        assert_eq!(decoded, request);
        assert_eq!(decoded.current_segment().map(|s| s.stage.as_str()), Some("slow"));
        let next = decoded.forwarded(None, Vec::new(), 40).expect("has a second segment");
        assert_eq!(PhotoRequest::decode(&next.encode()).expect("decodes").work_ms, 40);
        assert_eq!(next.current_ops().len(), 1);
        assert_eq!(next.current_segment().map(|s| s.stage.as_str()), Some("quick"));
        assert!(next.forwarded(None, Vec::new(), 0).is_none());
    }

    #[test]
    fn rejects_garbage_and_unknown_versions() {
        assert!(matches!(PhotoRequest::decode("{{nope"), Err(MessageError::Malformed(_))));
        let newer = PhotoResponse::decode(r#"{"v":7,"anything":1}"#).unwrap_err();
        assert!(matches!(newer, MessageError::NewerVersion { found: 7, reads: MESSAGE_VERSION }));
        assert!(newer.is_newer_version());
        assert!(!PhotoRequest::decode("{{nope").unwrap_err().is_newer_version());
        assert!(matches!(PhotoResponse::decode(r#"{"v":1,"job_id":"x"}"#), Err(MessageError::Malformed(_))));
    }

    #[test]
    fn response_states_are_tagged() {
        let response = PhotoResponse::new(
            JobId::generate(),
            PhotoId::generate(),
            2,
            PhotoUpdate::Processing { stage: "quick".into(), segment: 0, waiting: false },
        );
        let json: serde_json::Value = serde_json::from_str(&response.encode()).expect("json");
        assert_eq!(json["state"], "processing");
        assert_eq!(json["attempt"], 2);
        assert!(json.get("waiting").is_none(), "older status processes need not know the field");
    }

    #[test]
    fn a_hand_over_sorts_between_the_two_stages_it_joins() {
        let (job, photo) = (JobId::generate(), PhotoId::generate());
        let progress = |segment, waiting| {
            let response = PhotoResponse::new(
                job.clone(),
                photo.clone(),
                1,
                PhotoUpdate::Processing { stage: "any".into(), segment, waiting },
            );
            let (step, event) = response.event();
            assert_eq!(event.shown_state(), if waiting { PhotoState::Queued } else { PhotoState::Processing });
            crate::job::Progress::of(1, event.state).with_step(step)
        };
        assert!(progress(0, false) < progress(1, true));
        assert!(progress(1, true) < progress(1, false));
        assert!(progress(1, false) < progress(2, true));
    }
}
