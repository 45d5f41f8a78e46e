//! The job view: what the job page and `GET /api/v1/jobs/<id>` show. Assembled from the
//! job manifest, the photo manifests and each photo's latest state event; pure, so the
//! rules (job state from photo states, photo order, output URLs) are tested here.

use crate::error_code::PhotoError;
use crate::ids::{JobId, PhotoId};
use crate::job::{EventDoc, JobManifest, PhotoManifest, PhotoState};
use crate::recipe::Recipe;
use serde::Serialize;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Processing,
    Done,
    Partial,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Queued | Self::Processing)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub queued: usize,
    pub processing: usize,
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutputView {
    pub name: String,
    /// Where the output is stored; not shown to clients, who use `url`.
    #[serde(skip)]
    pub key: String,
    pub url: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// For `result`: where the auto-oriented original's pixels land in it (crop, turns,
    /// resizing, borders), so the "before" can be shown framed like the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<crate::messages::CarriedFrame>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    pub id: PhotoId,
    pub name: String,
    pub state: PhotoState,
    pub stage: Option<String>,
    pub attempt: u32,
    pub error: Option<PhotoError>,
    pub outputs: Vec<OutputView>,
    pub original_url: String,
    /// A small JPEG of the original, upright and without its metadata, rendered on demand:
    /// what the job page shows while the photo has no result yet. Absent for a photo that
    /// failed by crashing or outlasting workers (the web process does not decode it again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_thumb_url: Option<String>,
    /// When the photo's state last changed (ms since the epoch): its latest event, or its upload.
    pub updated_at: u64,
    /// When the photo was uploaded (ms since the epoch).
    pub added_at: u64,
    /// For a done photo: milliseconds its attempt spent in work (reading and rendering,
    /// summed over its stages; not the time it waited). Absent for results of older workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_ms: Option<u64>,
    #[serde(skip)]
    pub sort_key: (u64, u32),
}

impl PhotoView {
    pub fn output(&self, name: &str) -> Option<&OutputView> {
        self.outputs.iter().find(|output| output.name == name)
    }

    /// Where the photo is, in words for the job page ("waiting for retouching"); static/job.js
    /// says the same from the JSON view.
    pub fn label(&self) -> String {
        let stage = self.stage.as_deref().map(stage_words);
        match (self.state, stage) {
            (PhotoState::Queued, Some(stage)) => format!("waiting for {stage}"),
            (PhotoState::Processing, Some(stage)) => stage.to_owned(),
            (state, _) => state.as_str().to_owned(),
        }
    }
}

/// The default stages by what their workers do; another stage by its name.
fn stage_words(stage: &str) -> &str {
    match stage {
        "quick" => "processing",
        "slow" => "retouching",
        other => other,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: JobId,
    /// What its owner called the job, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: JobState,
    pub created_at: String,
    pub counts: Counts,
    pub recipe: Recipe,
    pub photos: Vec<PhotoView>,
    /// Files its uploads left out, and why, oldest upload first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<crate::job::RejectedFile>,
}

/// The name under a photo's address of the small copy of its original (`original_thumb_url`).
pub const ORIGINAL_THUMB: &str = "original-thumb";

/// Whether the photo failed in a way that suggests decoding it is dangerous: it crashed or
/// outlasted the workers' time budgets in every attempt.
fn made_workers_give_up(state: PhotoState, error: Option<&PhotoError>) -> bool {
    state == PhotoState::Failed
        && error.is_some_and(|error| matches!(error.code, crate::ErrorCode::GaveUp | crate::ErrorCode::TimedOut))
}

pub fn photo_url(job: &JobId, photo: &PhotoId, name: &str) -> String {
    format!("/jobs/{job}/photos/{photo}/{name}")
}

pub fn job_state(counts: &Counts, photo_count: usize) -> JobState {
    let finished = counts.done + counts.failed + counts.cancelled;
    if photo_count == 0 || counts.queued == photo_count {
        JobState::Queued
    } else if finished < photo_count {
        JobState::Processing
    } else if counts.cancelled > 0 {
        // Its owner stopped it: whatever was done by then is listed in the counts.
        JobState::Cancelled
    } else if counts.done == photo_count {
        JobState::Done
    } else if counts.done == 0 {
        JobState::Failed
    } else {
        JobState::Partial
    }
}

/// Builds the view. `photos` pairs each photo manifest with its latest event, if any
/// (a photo with no event yet is queued in attempt 1).
pub fn assemble(job: &JobManifest, photos: Vec<(PhotoManifest, Option<EventDoc>)>) -> JobView {
    let mut counts = Counts::default();
    let mut views: Vec<PhotoView> = photos
        .into_iter()
        .map(|(manifest, event)| {
            let (state, attempt) = event.as_ref().map_or((PhotoState::Queued, 1), |e| (e.shown_state(), e.attempt));
            match state {
                PhotoState::Queued => counts.queued += 1,
                PhotoState::Processing => counts.processing += 1,
                PhotoState::Done => counts.done += 1,
                PhotoState::Failed => counts.failed += 1,
                PhotoState::Cancelled => counts.cancelled += 1,
            }
            let updated_at = event.as_ref().map_or(manifest.added_at, |e| e.at);
            let event = event.unwrap_or_else(|| crate::job::EventDoc::new(1, PhotoState::Queued));
            let outputs = if state == PhotoState::Done {
                event
                    .outputs
                    .iter()
                    .map(|output| OutputView {
                        name: output.name.clone(),
                        key: output.key.clone(),
                        // The attempt's own file (immutable, cached for good), where the key
                        // has the expected shape; else the photo's latest output.
                        url: match output.key.strip_prefix(&crate::keys::photo_prefix(&job.id, &manifest.id)) {
                            Some(rest) if rest.starts_with('a') && rest.matches('/').count() == 1 => {
                                format!("/{}", output.key)
                            }
                            _ => photo_url(&job.id, &manifest.id, &output.name),
                        },
                        content_type: output.content_type.clone(),
                        width: output.width,
                        height: output.height,
                        frame: output.frame,
                        size: output.size,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            PhotoView {
                original_url: photo_url(&job.id, &manifest.id, "original"),
                original_thumb_url: (!made_workers_give_up(state, event.error.as_ref()))
                    .then(|| photo_url(&job.id, &manifest.id, ORIGINAL_THUMB)),
                id: manifest.id,
                name: manifest.name,
                state,
                stage: event.stage,
                attempt,
                error: if state == PhotoState::Failed { event.error } else { None },
                outputs,
                updated_at,
                added_at: manifest.added_at,
                work_ms: if state == PhotoState::Done { event.work_ms } else { None },
                sort_key: (manifest.added_at, manifest.position),
            }
        })
        .collect();
    views.sort_by(|a, b| a.sort_key.cmp(&b.sort_key).then_with(|| a.id.cmp(&b.id)));
    JobView {
        id: job.id.clone(),
        name: job.name.clone(),
        state: job_state(&counts, views.len()),
        created_at: humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(job.created_at)).to_string(),
        counts,
        recipe: job.recipe.clone(),
        photos: views,
        rejected: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(queued: usize, processing: usize, done: usize, failed: usize) -> Counts {
        Counts { queued, processing, done, failed, cancelled: 0 }
    }

    #[test]
    fn job_state_follows_its_photos() {
        assert_eq!(job_state(&counts(3, 0, 0, 0), 3), JobState::Queued);
        assert_eq!(job_state(&counts(2, 1, 0, 0), 3), JobState::Processing);
        assert_eq!(job_state(&counts(1, 0, 2, 0), 3), JobState::Processing);
        assert_eq!(job_state(&counts(0, 0, 3, 0), 3), JobState::Done);
        assert_eq!(job_state(&counts(0, 0, 2, 1), 3), JobState::Partial);
        assert_eq!(job_state(&counts(0, 0, 0, 3), 3), JobState::Failed);
    }

    #[test]
    fn photos_keep_upload_order_and_only_done_photos_have_outputs() {
        let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":8}]}"#).expect("valid");
        let job = JobManifest {
            v: 1,
            id: JobId::generate(),
            created_at: 0,
            owner_token_sha256: String::new(),
            recipe,
            callback_url: None,
            tenant: None,
            name: None,
        };
        let photo = |position: u32| PhotoManifest {
            v: 1,
            job_id: job.id.clone(),
            id: PhotoId::generate(),
            name: format!("p{position}.jpg"),
            content_type: "image/jpeg".into(),
            size: 1,
            width: None,
            height: None,
            added_at: 5,
            position,
        };
        let mut done = EventDoc::new(1, PhotoState::Done);
        done.outputs.push(crate::job::OutputInfo {
            name: "result".into(),
            key: "k".into(),
            content_type: "image/jpeg".into(),
            width: 8,
            height: 6,
            size: 10,
            frame: None,
        });
        let view = assemble(&job, vec![(photo(1), Some(done)), (photo(0), None)]);
        assert_eq!(view.photos[0].name, "p0.jpg");
        assert_eq!(view.photos[0].state, PhotoState::Queued);
        assert!(view.photos[0].outputs.is_empty());
        assert_eq!(view.photos[1].outputs[0].url, photo_url(&job.id, &view.photos[1].id, "result"));
        assert_eq!(view.state, JobState::Processing);
        assert_eq!(view.created_at, "1970-01-01T00:00:00Z");
    }
}
