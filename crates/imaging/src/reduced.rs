//! A recipe run on a reduced copy of a photo, for looking at before the real run: the web
//! tier's `POST /api/v1/preview`. The same operations as the worker's render (`apply_steps`,
//! `decorate_within`), with lengths in pixels of the result (borders, caption sizes) scaled
//! with the copy so that the preview looks like the result, and the working image kept small.

use crate::{apply_steps, decorate_within, fit_within, undecorated_size, ImagingError, Photo, WatermarkImages};
use darkroom_core::{Operation, Recipe};

/// An operation that leaves more pixels than this (borders) is followed by a shrink.
const MAX_WORKING_PIXELS: u64 = 4_000_000;

/// Runs `recipe` on `copy`, a reduced copy of a photo whose frame names the original's size,
/// and fits the result into `long_side`.
pub fn render_reduced(
    copy: Photo,
    recipe: &Recipe,
    images: &WatermarkImages,
    long_side: u32,
) -> Result<Photo, ImagingError> {
    // By the copy's share of the original while the steps run, then by the preview's share
    // of the result's size for the decorations.
    let (original_width, original_height) = (copy.frame.original_width, copy.frame.original_height);
    let copy_scale = f64::from(copy.width()) / f64::from(original_width.max(1));
    let mut result = copy;
    for (index, op) in recipe.ops.iter().enumerate() {
        // A thumbnail the copy is large enough for brings it to the result's scale: its
        // room for borders is then the result's.
        let step_scale = match op {
            Operation::Thumbnail { size } if result.width().max(result.height()) >= *size => 1.0,
            _ => copy_scale.min(1.0),
        };
        result = apply_steps(result, &recipe.ops, index..index + 1, step_scale)?;
        if u64::from(result.width()) * u64::from(result.height()) > MAX_WORKING_PIXELS {
            result = fit_within(&result, long_side)?;
        }
    }
    let decoration_scale = match undecorated_size(recipe, original_width, original_height) {
        Ok((width, height)) => f64::from(result.width().min(result.height())) / f64::from(width.min(height).max(1)),
        Err(_) => copy_scale,
    };
    result = decorate_within(result, &recipe.ops, decoration_scale.min(1.0), long_side, images)?;
    if result.width().max(result.height()) > long_side {
        result = fit_within(&result, long_side)?;
    }
    Ok(result)
}
