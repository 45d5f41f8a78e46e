//! `GET /api/v1/jobs`: the jobs this browser created (its owner cookie remembers the 30 most
//! recent), newest first, each with its state and counts — the upload page's "Your recent
//! jobs". A job deleted elsewhere is left out; a cookie entry whose token does not match is
//! ignored.

use crate::owner::remembered_jobs;
use crate::{ApiError, AppState};
use actix_web::{get, web, HttpRequest, HttpResponse};
use darkroom_core::view::Counts;
use darkroom_core::{JobId, JobState};
use futures::StreamExt;
use serde::Serialize;

/// One job of this browser's.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MyJob {
    pub id: JobId,
    pub url: String,
    /// What its owner called it, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: JobState,
    /// RFC 3339.
    pub created_at: String,
    pub counts: Counts,
    pub photos: usize,
    /// The thumbnail of the job's first done photo, if any, to recognise the job by.
    pub thumbnail_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MyJobs {
    pub jobs: Vec<MyJob>,
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", summary = "This browser's recent jobs (from its owner cookie)",
    responses((status = 200, description = "Newest first; empty without the cookie", body = MyJobs)))]
#[get("/jobs")]
pub async fn my_jobs(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut remembered = remembered_jobs(&request);
    let mut seen = std::collections::HashSet::new();
    remembered.retain(|(job, _)| seen.insert(job.clone()));
    let state = &state;
    // A job that cannot be read now is left out (and logged), not the whole list failed.
    let found: Vec<Option<MyJob>> = futures::stream::iter(remembered)
        .map(|(job, token)| async move {
            let manifest = match state.jobs.load_job(&job).await {
                Ok(Some(manifest)) if token.matches(&manifest.owner_token_sha256) => manifest,
                Ok(_) => return None,
                Err(error) => {
                    tracing::warn!(job_id = %job, error.message = %error, "could not read a job for the recent-jobs list; left out");
                    return None;
                }
            };
            let view = match crate::job_lookup::load_view(state, &manifest).await {
                Ok(view) => view,
                Err(error) => {
                    tracing::warn!(job_id = %job, error.message = %error, "could not read a job's view for the recent-jobs list; left out");
                    return None;
                }
            };
            Some(MyJob {
                url: format!("/jobs/{}", view.id),
                id: view.id,
                name: view.name,
                state: view.state,
                created_at: view.created_at,
                counts: view.counts,
                photos: view.photos.len(),
                // Before any photo is done, the first photo's original stands for the job.
                thumbnail_url: view
                    .photos
                    .iter()
                    .find_map(|photo| photo.output("thumb"))
                    .map(|thumb| thumb.url.clone())
                    .or_else(|| view.photos.first().and_then(|photo| photo.original_thumb_url.clone())),
            })
        })
        .buffered(4)
        .collect()
        .await;
    let jobs: Vec<MyJob> = found.into_iter().flatten().collect();
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(MyJobs { jobs }))
}
