//! Files a job sends for its recipe: a watermark's PNG, sent as a file part named `assets`
//! and named in the recipe by its file name (`{"op": "watermark", "image": "logo.png"}`).
//! The upload stores each at `jobs/{job}/assets/{name}`; the worker that draws the
//! decorations reads it there (docs/ARCHITECTURE.md "Decorations").

use crate::body_reader::BodyReader;
use crate::ApiError;
use actix_multipart::Field;
use bytes::{Bytes, BytesMut};
use darkroom_core::recipe::{is_asset_name, MAX_ASSETS_PER_JOB, MAX_ASSET_BYTES};
use darkroom_core::{keys, ErrorCode, JobId, Recipe};
use darkroom_imaging::WatermarkImages;
use darkroom_store::ObjectStore;

/// Whether a multipart part carries a file for the recipe.
pub(crate) fn is_assets_part(name: &str) -> bool {
    name == "assets" || name == "assets[]"
}

/// A file sent for the recipe: its name and bytes.
#[derive(Debug, Clone)]
pub struct SentAsset {
    pub name: String,
    pub bytes: Bytes,
}

/// Reads an `assets` part whole. `None` for an empty one (a form's file input left empty);
/// a clear 400 for a name the recipe could not use, a file over [`MAX_ASSET_BYTES`], or more
/// than [`MAX_ASSETS_PER_JOB`] of them.
pub(crate) async fn read_asset(
    body: &mut BodyReader,
    field: &mut Field,
    already: usize,
) -> Result<Option<SentAsset>, ApiError> {
    let name = field.content_disposition().and_then(|cd| cd.get_filename()).unwrap_or("").to_owned();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next_chunk(field).await? {
        if (bytes.len() + chunk.len()) as u64 > MAX_ASSET_BYTES {
            body.drain(field).await?;
            return Err(ApiError::bad_request(
                ErrorCode::InvalidRequest,
                format!("assets: {name:?} is over {} MiB; a watermark PNG must be smaller", MAX_ASSET_BYTES >> 20),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    if name.is_empty() && bytes.is_empty() {
        return Ok(None);
    }
    // A browser sends the file's own name ("My logo (2).png"); it is stored under a name the
    // recipe can use, as the pages name it. A name that is already usable stays as it is.
    let name = safe_name(&name);
    if !is_asset_name(&name) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!("assets: {name:?} cannot be used; name the PNG with 1–100 letters, digits, '.', '_' or '-', ending in .png"),
        ));
    }
    if already >= MAX_ASSETS_PER_JOB {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            format!("assets: at most {MAX_ASSETS_PER_JOB} files per request"),
        ));
    }
    Ok(Some(SentAsset { name, bytes: bytes.freeze() }))
}

/// `name` with what a store key cannot take replaced by `_`, no leading dots, `.png` at the
/// end and at most 100 bytes (the same rule as static/builder.js `assetName`).
fn safe_name(name: &str) -> String {
    let replaced: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    let mut safe = replaced.trim_start_matches('.').to_owned();
    if !safe.to_ascii_lowercase().ends_with(".png") {
        safe.push_str(".png");
    }
    if safe.len() > 100 {
        safe = safe[safe.len() - 100..].to_owned();
    }
    safe
}

/// The PNGs `recipes` name, decoded from those `sent`: a 400 naming the first that is
/// not a readable PNG within the limits, or is missing (unless `stored_before`: a job's
/// later batch may use what its first one sent). Decodes: call it off the async threads.
pub(crate) fn decode_sent<'a>(
    recipes: impl IntoIterator<Item = &'a Recipe>,
    sent: &[SentAsset],
    stored_before: bool,
) -> Result<WatermarkImages, ApiError> {
    let mut images = WatermarkImages::default();
    let mut seen: Vec<&str> = Vec::new();
    for recipe in recipes {
        for name in recipe.asset_names() {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            match sent.iter().find(|asset| asset.name == name) {
                Some(asset) => images
                    .add(name, &asset.bytes)
                    .map_err(|error| ApiError::bad_request(ErrorCode::InvalidRecipe, error.to_string()))?,
                None if stored_before => {}
                None => return Err(missing(name)),
            }
        }
    }
    Ok(images)
}

/// [`decode_sent`] on a blocking thread, for the upload's checks.
pub(crate) async fn check_sent(recipes: Vec<Recipe>, sent: &[SentAsset], stored_before: bool) -> Result<(), ApiError> {
    if recipes.iter().all(|recipe| recipe.asset_names().is_empty()) {
        return Ok(());
    }
    let sent = sent.to_vec();
    tokio::task::spawn_blocking(move || decode_sent(&recipes, &sent, stored_before).map(drop)).await.map_err(
        |error| {
            ApiError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("decoding a watermark image: {error}"),
            )
        },
    )?
}

/// For recipes given to an existing job (reprocessing, photos added): every PNG they name
/// was sent with the job before, or now (`sent`); each name looked up once.
pub(crate) async fn require_stored(
    store: &dyn ObjectStore,
    job: &JobId,
    recipes: &[Recipe],
    sent: &[SentAsset],
) -> Result<(), ApiError> {
    let mut looked: Vec<&str> = Vec::new();
    for name in recipes.iter().flat_map(Recipe::asset_names) {
        if looked.contains(&name) || sent.iter().any(|asset| asset.name == name) {
            continue;
        }
        looked.push(name);
        match store.head(&keys::asset(job, name)).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(missing(name)),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

fn missing(name: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidRecipe,
        format!("watermark image {name:?} was not sent with the job; send the PNG as a file part named \"assets\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_names_a_recipe_can_use() {
        assert_eq!(safe_name("logo.png"), "logo.png");
        assert_eq!(safe_name("My logo (2).PNG"), "My_logo__2_.PNG");
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd.png");
        assert_eq!(safe_name("ünïcode.png"), "_n_code.png");
        let long = safe_name(&format!("{}.png", "a".repeat(300)));
        assert_eq!(long.len(), 100);
        for name in ["logo.png", "My logo (2).PNG", "../../etc/passwd", ".hidden", "x"] {
            assert!(is_asset_name(&safe_name(name)), "{name} → {}", safe_name(name));
        }
    }
}
