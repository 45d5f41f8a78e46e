//! What an upload request says besides its photos and recipe, and what becomes of it: the
//! job's `name`, the files refused (by the server, and by the browser in `rejected`) kept
//! with the job, and `photo_recipes`, photos that run a recipe of their own (regions drawn on
//! one photo). Called by `job_actions.rs` while it creates a job or commits a batch.

use crate::upload::{Intake, RejectedFile};
use crate::{ApiError, AppState};
use darkroom_core::job::MANIFEST_VERSION;
use darkroom_core::{keys, now_millis, ErrorCode, JobId, PhotoId, Recipe};
use darkroom_store::json::put_json;

/// The job's name, from the optional `name` part: one line of display text, refused when
/// longer than its limit (the page's field stops there; an API client learns it here).
pub(crate) fn name_from(intake: &Intake) -> Result<Option<String>, ApiError> {
    let Some(text) = intake.fields.get("name") else { return Ok(None) };
    if text.chars().count() > darkroom_core::job::MAX_JOB_NAME_CHARS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!("name: at most {} characters", darkroom_core::job::MAX_JOB_NAME_CHARS),
        ));
    }
    Ok(darkroom_core::job::clean_job_name(text))
}

/// Keeps the record of the files an upload left out with the job, so its page lists them
/// after a reload too. Best effort: the photos taken matter more than the note of those not
/// taken, so a failed write is logged and the upload goes on. Named after the batch's first
/// photo where it has one (a batch rolled forward after a lost reply writes the same record).
pub(crate) async fn keep_rejected(
    state: &AppState,
    job: &JobId,
    intake: &Intake,
    creating: bool,
) -> Option<darkroom_core::RejectedBatch> {
    let mut files = intake.rejected.clone();
    // The browser tells what it refused once, with the batch that creates the job: a later
    // batch cannot add notes without files (a job's records stay bounded by its uploads).
    if creating {
        files.extend(refused_by_the_browser(intake));
    }
    if files.is_empty() {
        return None;
    }
    let id = intake.accepted.first().map_or_else(|| PhotoId::generate().to_string(), |photo| photo.id.to_string());
    let batch = darkroom_core::RejectedBatch { v: MANIFEST_VERSION, id, at: now_millis(), files };
    match put_json(state.store.as_ref(), &keys::rejected_batch(job, &batch.id), &batch).await {
        Ok(()) => Some(batch),
        Err(error) => {
            tracing::warn!(job_id = %job, files = batch.files.len(), error.message = %error, "could not keep the list of files an upload left out; the job page will not show them after a reload");
            None
        }
    }
}

/// The most files the browser may say it refused, per request.
const MAX_REFUSED_BY_THE_BROWSER: usize = 1000;

/// Files the browser refused before sending (not a photo, too large), told in the optional
/// `rejected` part (`[{"name", "code", "message"}]`) so the job lists them with the ones the
/// server refused. Display text only: names are cleaned as uploads' are, messages cut short;
/// a part that cannot be read is ignored (the photos matter, not the note).
fn refused_by_the_browser(intake: &Intake) -> Vec<RejectedFile> {
    #[derive(serde::Deserialize)]
    struct Told {
        name: String,
        #[serde(default)]
        code: Option<ErrorCode>,
        message: String,
    }
    let Some(text) = intake.fields.get("rejected") else { return Vec::new() };
    let entries: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::info!(error.message = %error, "an unreadable \"rejected\" part was left out");
            return Vec::new();
        }
    };
    // Each entry on its own: one the server cannot read (a code it does not know) is left
    // out, not the whole list.
    entries
        .into_iter()
        .take(MAX_REFUSED_BY_THE_BROWSER)
        .filter_map(|entry| serde_json::from_value::<Told>(entry).ok())
        .map(|told| {
            let message: String = told.message.chars().filter(|c| !c.is_control()).take(300).collect();
            RejectedFile {
                name: crate::names::display_name(Some(&told.name)),
                error: darkroom_core::PhotoError::new(told.code.unwrap_or(ErrorCode::InvalidRequest), message),
            }
        })
        .collect()
}

/// Photos of a request that run a recipe of their own instead of the job's, by photo.
pub(crate) type OwnRecipes = std::collections::HashMap<PhotoId, Recipe>;

/// The optional `photo_recipes` part: `{"<file part index>": recipe}`, counting the request's
/// file parts from 0 (refused ones too). The upload page sends one for a photo with red-eye or
/// teeth regions drawn on it: regions drawn on one photo are that photo's, not the batch's.
pub(crate) fn own_recipes(intake: &Intake) -> Result<OwnRecipes, ApiError> {
    let Some(text) = intake.fields.get("photo_recipes") else { return Ok(OwnRecipes::new()) };
    let invalid = |message: String| ApiError::bad_request(ErrorCode::InvalidRecipe, message);
    let by_part: std::collections::HashMap<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| invalid(format!("photo_recipes: expected an object of recipes by file part index ({e})")))?;
    let parts = intake.accepted.len() + intake.rejected.len();
    let mut own = OwnRecipes::new();
    for (index, recipe) in by_part {
        // Plain indices of file parts sent ("0", not "00" or "+0"), so none names a part twice.
        let part =
            index.parse::<u32>().ok().filter(|part| part.to_string() == index && (*part as usize) < parts).ok_or_else(
                || {
                    invalid(format!(
                        "photo_recipes: {index:?} is not the index of a file part of this request (there are {parts})"
                    ))
                },
            )?;
        let recipe =
            Recipe::from_json(&recipe.to_string()).map_err(|e| invalid(format!("photo_recipes[{index}]: {e}")))?;
        // A refused file (or no file) at that index: nothing to run it on.
        if let Some(photo) = intake.accepted.iter().find(|photo| photo.part == part) {
            own.insert(photo.id.clone(), recipe);
        }
    }
    Ok(own)
}
