//! A recipe tried on a photo's size alone: the geometry of each operation followed without a
//! pixel, so the upload page can say which of the chosen photos a recipe would fail for (a
//! crop box outside a smaller photo, a border that would grow a large one past the limit)
//! before anything is sent. Only failures that depend on the photo's size are found here;
//! whether the file decodes at all is the upload's and the preview's to say.

use crate::decorate::{check_bordered_size, Decorations};
use crate::pipeline::crop_box_inside;
use crate::resize::{fit_dimensions, largest_centred};
use crate::Frame;
use crate::ImagingError;
use darkroom_core::recipe::Flip;
use darkroom_core::recipe::{crop_spec, CropSpec};
use darkroom_core::{Operation, OutputFormat, Recipe};

/// The size `ops` would make of an upright `width`×`height` photo, or the error the first
/// operation that cannot run on it would report, with the same words as the real run. The
/// original's coordinates are followed through a [`Frame`] as in the real run.
pub fn dry_run(recipe: &Recipe, width: u32, height: u32) -> Result<(u32, u32), ImagingError> {
    let decorations = Decorations::of(&recipe.ops)?;
    let ((width, height), _) = follow_ops(&recipe.ops, &decorations, width, height)?;
    let (bordered_width, bordered_height) = decorations.bordered_size(width, height);
    check_bordered_size(bordered_width, bordered_height)?;
    let (Ok(width), Ok(height)) = (u32::try_from(bordered_width), u32::try_from(bordered_height)) else {
        return Err(ImagingError::op("customize", "border makes the image too large"));
    };
    // The encoder's own limit: WebP holds sides of up to 16,383 px (the upload's limits let
    // larger photos in).
    match recipe.format {
        OutputFormat::Webp => crate::webp::check_size(width, height)?,
        OutputFormat::Avif => crate::avif::check_size(width, height, recipe.speed)?,
        OutputFormat::Jpeg | OutputFormat::Png => {}
    }
    Ok((width, height))
}

/// The size of the result before its decorations (what pixel lengths of the result are
/// relative to, and what a preview's copy is compared with).
pub fn undecorated_size(recipe: &Recipe, width: u32, height: u32) -> Result<(u32, u32), ImagingError> {
    follow_ops(&recipe.ops, &Decorations::of(&recipe.ops)?, width, height).map(|(size, _)| size)
}

/// The scale of the result against an upright `width`×`height` original (0.5: one result
/// pixel for each 2×2 of the original's), as the real run would make it; `None` if the
/// recipe would fail on it.
pub fn result_scale(ops: &[Operation], width: u32, height: u32) -> Option<f64> {
    let (_, frame) = follow_ops(ops, &Decorations::of(ops).ok()?, width, height).ok()?;
    Some(frame.linear_scale())
}

fn follow_ops(
    ops: &[Operation],
    decorations: &Decorations<'_>,
    width: u32,
    height: u32,
) -> Result<((u32, u32), Frame), ImagingError> {
    let (original_width, original_height) = (width, height);
    let mut frame = Frame::identity(width, height);
    let (mut width, mut height) = (width, height);
    let last_thumbnail = ops.iter().rposition(|op| matches!(op, Operation::Thumbnail { .. }));
    for (index, op) in ops.iter().enumerate() {
        match op {
            Operation::Thumbnail { size } => {
                let (new_width, new_height) = if Some(index) == last_thumbnail {
                    decorations.thumbnail_size(width, height, *size)?
                } else {
                    fit_dimensions(width, height, *size)
                };
                frame =
                    frame.scaled(f64::from(new_width) / f64::from(width), f64::from(new_height) / f64::from(height));
                (width, height) = (new_width, new_height);
            }
            Operation::Crop { .. } => {
                let spec = crop_spec(op, "crop").map_err(|e| ImagingError::op("crop", e.to_string()))?;
                let region = match spec {
                    CropSpec::Box(region) => region,
                    CropSpec::Relative(relative) => relative.in_pixels(original_width, original_height),
                    CropSpec::Aspect { width: aspect_w, height: aspect_h, .. } => {
                        // Smart or centred, the box is the same size; where a smart one
                        // lands depends on the faces, so a later box is mapped as if centred.
                        let (new_width, new_height) = largest_centred(width, height, aspect_w, aspect_h);
                        frame = frame
                            .translated(-f64::from((width - new_width) / 2), -f64::from((height - new_height) / 2));
                        (width, height) = (new_width, new_height);
                        continue;
                    }
                };
                crop_box_inside(&region, original_width, original_height)?;
                let (x, y, new_width, new_height) = frame
                    .map_region(region.x, region.y, region.width, region.height, width, height)
                    .ok_or_else(|| ImagingError::op("crop", "an earlier operation already removed the whole box"))?;
                frame = frame.translated(-f64::from(x), -f64::from(y));
                (width, height) = (new_width, new_height);
            }
            Operation::Customize(settings) => {
                if let Some(degrees) = settings.rotate {
                    frame = frame.rotated_clockwise(degrees, width, height);
                    if matches!(degrees, 90 | 270) {
                        (width, height) = (height, width);
                    }
                }
                match settings.flip {
                    Some(Flip::Horizontal) => frame = frame.flipped_horizontally(width),
                    Some(Flip::Vertical) => frame = frame.flipped_vertically(height),
                    None => {}
                }
            }
            Operation::Straighten { angle } => {
                if angle.abs() >= 0.01 {
                    let radians = f64::from(*angle).to_radians();
                    let (new_width, new_height) = crate::straighten::largest_upright(width, height, radians);
                    frame = frame.turned_about_centre(radians, width, height, new_width, new_height);
                    (width, height) = (new_width, new_height);
                }
            }
            Operation::Recolor { .. }
            | Operation::Redeye { .. }
            | Operation::WhitenTeeth { .. }
            | Operation::AutoEnhance { .. }
            | Operation::Vignette { .. }
            | Operation::Watermark { .. } => {}
        }
    }
    Ok(((width, height), frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_ops, Photo};
    use darkroom_core::Recipe;

    fn recipe(json: &str) -> Recipe {
        Recipe::from_json(&format!(r#"{{"ops":[{json}]}}"#)).expect("valid recipe")
    }

    fn real_run(recipe: &Recipe, width: u32, height: u32) -> Result<(u32, u32), ImagingError> {
        let image = image::DynamicImage::ImageRgb8(image::RgbImage::new(width, height));
        apply_ops(Photo::new(image, None), &recipe.ops).map(|photo| (photo.width(), photo.height()))
    }

    #[test]
    fn the_result_scale_is_the_real_runs() {
        for (json, (width, height)) in [
            (r#"{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":1024}"#, (2560, 1600)),
            (r#"{"op":"thumbnail","size":256}"#, (1200, 4000)),
            (r#"{"op":"customize","rotate":90},{"op":"thumbnail","size":500}"#, (3000, 2000)),
            (r#"{"op":"recolor","mode":"sepia"}"#, (640, 480)),
        ] {
            let recipe = recipe(json);
            let image = image::DynamicImage::ImageRgb8(image::RgbImage::new(width, height));
            let real = apply_ops(Photo::new(image, None), &recipe.ops).expect("runs").frame.linear_scale();
            let predicted = result_scale(&recipe.ops, width, height).expect("runs");
            assert!((predicted - real).abs() < 1e-9, "{json}: {predicted} against {real}");
        }
        assert!(
            (result_scale(&recipe(r#"{"op":"thumbnail","size":1024}"#).ops, 4096, 2048).expect("runs") - 0.25).abs()
                < 1e-9
        );
        let outside = recipe(r#"{"op":"crop","x":1200,"y":800,"width":600,"height":400}"#);
        assert_eq!(result_scale(&outside.ops, 512, 384), None);
    }

    #[test]
    fn a_box_drawn_on_a_large_photo_fails_on_a_small_one_with_the_real_runs_words() {
        let recipe = recipe(r#"{"op":"crop","x":1200,"y":800,"width":600,"height":400}"#);
        assert_eq!(dry_run(&recipe, 2560, 1920).expect("fits"), (600, 400));
        let dry = dry_run(&recipe, 512, 384).expect_err("outside");
        let real = real_run(&recipe, 512, 384).expect_err("outside");
        assert_eq!(dry.to_string(), real.to_string());
    }

    #[test]
    fn sizes_follow_the_real_run_for_crops_turns_resizes_and_borders() {
        let recipes = [
            r#"{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":300}"#,
            r##"{"op":"customize","rotate":90},{"op":"thumbnail","size":200},{"op":"customize","border":{"width":7,"color":"#ffffff"}}"##,
            r#"{"op":"crop","relative":{"x":0.1,"y":0.2,"width":0.5,"height":0.5}},{"op":"recolor","mode":"grayscale"}"#,
            r#"{"op":"thumbnail","size":100},{"op":"crop","x":10,"y":10,"width":300,"height":200}"#,
            r#"{"op":"customize","rotate":270,"flip":"horizontal"},{"op":"crop","x":33,"y":20,"width":100,"height":70},{"op":"thumbnail","size":50}"#,
        ];
        for json in recipes {
            for (width, height) in [(640, 480), (480, 640), (333, 333)] {
                let recipe = recipe(json);
                assert_eq!(
                    dry_run(&recipe, width, height).ok(),
                    real_run(&recipe, width, height).ok(),
                    "{json} on {width}×{height}"
                );
            }
        }
    }

    #[test]
    fn a_panorama_too_wide_for_webp_fails_only_as_webp() {
        let jpeg = Recipe::from_json(r#"{"ops":[{"op":"recolor","mode":"grayscale"}]}"#).expect("valid");
        let webp =
            Recipe::from_json(r#"{"ops":[{"op":"recolor","mode":"grayscale"}],"format":"webp"}"#).expect("valid");
        assert!(dry_run(&jpeg, 20_000, 5_000).is_ok());
        let error = dry_run(&webp, 20_000, 5_000).expect_err("too wide for WebP");
        assert!(error.to_string().contains("larger than WebP allows"), "{error}");
        assert!(dry_run(&webp, 16_000, 5_000).is_ok());
    }

    #[test]
    fn a_border_that_would_grow_a_large_photo_past_the_limit_fails() {
        let recipe = recipe(r##"{"op":"customize","border":{"width":2000,"color":"#000000"}}"##);
        assert!(dry_run(&recipe, 1000, 1000).is_ok());
        let error = dry_run(&recipe, 12_000, 12_000).expect_err("too large");
        assert!(error.to_string().contains("over the limit"), "{error}");
    }
}
