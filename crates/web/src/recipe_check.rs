//! `POST /api/v1/recipes/check`: a recipe tried on the sizes of the photos about to be
//! uploaded (the browser reads them from the files' headers), so the upload page names the
//! photos it would fail for — a crop box drawn on a large photo that misses a small one, a
//! photo over the size limits — before anything is sent. Arithmetic only (imaging's
//! `dry_run`): no pixel is decoded, so a batch of thousands is checked in a moment.

use crate::{ApiError, AppState};
use actix_web::{post, web, HttpResponse};
use darkroom_core::{ErrorCode, PhotoError, Recipe};
use serde::{Deserialize, Serialize};

/// The most photos one check takes (the largest job, with room to spare).
const MAX_CHECKED: usize = 5000;

/// One photo to check: its name (echoed back) and its upright size.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoSize {
    #[schema(max_length = 1024)]
    pub name: String,
    #[schema(minimum = 1)]
    pub width: u32,
    #[schema(minimum = 1)]
    pub height: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    #[schema(value_type = darkroom_core::Recipe)]
    recipe: serde_json::Value,
    #[schema(max_items = 5000)]
    photos: Vec<PhotoSize>,
}

/// What the recipe would do to one photo.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PhotoCheck {
    pub name: String,
    /// Whether the recipe would run on it.
    pub ok: bool,
    /// The result's size, when it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_height: Option<u32>,
    /// Why not, in the words its processing would fail with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PhotoError>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckReply {
    /// In the order sent.
    pub photos: Vec<PhotoCheck>,
    /// How many would fail.
    pub failing: usize,
}

/// Checks one photo's size against the deployment's limits, then the recipe against it.
fn check(state: &AppState, recipe: &Recipe, photo: PhotoSize) -> PhotoCheck {
    let outcome = state
        .settings
        .limits
        .check_dimensions(photo.width, photo.height)
        .map_err(|reason| PhotoError::new(ErrorCode::TooManyPixels, reason))
        .and_then(|()| {
            darkroom_imaging::dry_run(recipe, photo.width, photo.height)
                .map_err(|error| PhotoError::new(error.code(), error.to_string()))
        });
    match outcome {
        Ok((width, height)) => PhotoCheck {
            name: photo.name,
            ok: true,
            result_width: Some(width),
            result_height: Some(height),
            error: None,
        },
        Err(error) => {
            PhotoCheck { name: photo.name, ok: false, result_width: None, result_height: None, error: Some(error) }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/recipes/check", tag = "jobs", summary = "Try a recipe on photos' sizes before uploading them",
    description = "Names the photos the recipe would fail for (a crop box outside a smaller photo, a photo or border over the size limits), from their upright sizes alone; nothing is decoded or stored. Whether each file is a readable photo is the upload's (and the preview's) to say.",
    request_body(content = CheckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Each photo, in the order sent", body = CheckReply),
        (status = 400, description = "An invalid recipe or body, or more than 5000 photos", body = crate::openapi::ErrorBody),
        (status = 413, description = "The body is over 256 KiB", body = crate::openapi::ErrorBody),
    ))]
#[post("/recipes/check")]
pub async fn check_recipe(state: web::Data<AppState>, body: web::Json<CheckBody>) -> Result<HttpResponse, ApiError> {
    let CheckBody { recipe, photos } = body.into_inner();
    let recipe = Recipe::from_json(&recipe.to_string())
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidRecipe, e.to_string()))?;
    if photos.len() > MAX_CHECKED {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!("photos: at most {MAX_CHECKED} in one check; send them in parts"),
        ));
    }
    if let Some(bad) =
        photos.iter().find(|photo| photo.width == 0 || photo.height == 0 || photo.name.chars().count() > 1024)
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!(
                "photos: each needs a width and a height of at least 1 and a name of at most 1024 characters ({:?} has {}×{})",
                bad.name.chars().take(64).collect::<String>(),
                bad.width,
                bad.height
            ),
        ));
    }
    let photos: Vec<PhotoCheck> = photos.into_iter().map(|photo| check(&state, &recipe, photo)).collect();
    let failing = photos.iter().filter(|photo| !photo.ok).count();
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(CheckReply { photos, failing }))
}
