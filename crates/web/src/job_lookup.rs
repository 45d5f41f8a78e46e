//! Reading jobs for the handlers: the store side lives in the jobs crate (shared with the
//! status process); this maps it to the answers a handler gives (404 for an unknown id).

use crate::{ApiError, AppState};
use darkroom_core::{EventDoc, JobId, JobManifest, JobView, PhotoId, PhotoManifest};

pub async fn load_job_or_404(state: &AppState, job_text: &str) -> Result<JobManifest, ApiError> {
    let job = JobId::parse(job_text).map_err(|_| ApiError::not_found())?;
    state.jobs.load_job(&job).await?.ok_or_else(ApiError::not_found)
}

pub async fn load_view(state: &AppState, job: &JobManifest) -> Result<JobView, ApiError> {
    Ok(state.jobs.load_view(job).await?)
}

/// One photo's manifest and latest event; `None` if the job has no such photo.
pub async fn load_photo(
    state: &AppState,
    job: &JobId,
    photo: &PhotoId,
) -> Result<Option<(PhotoManifest, Option<EventDoc>)>, ApiError> {
    Ok(state.jobs.load_photo(job, photo).await?)
}
