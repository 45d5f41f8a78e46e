//! The recipe's operations applied to a photo in work (`photo.rs`), in order.

use crate::photo::Photo;
use crate::resize::{fit_dimensions, largest_centred, resize_exact};
use crate::watermark::WatermarkImages;
use crate::{adjust, color, ImagingError};
use darkroom_core::recipe::{crop_spec, CropSpec, Operation, Region};
use image::DynamicImage;

/// A copy that fits inside `long_side`×`long_side` (never upscaled): thumbs and previews.
pub fn fit_within(photo: &Photo, long_side: u32) -> Result<Photo, ImagingError> {
    fit_with(photo, long_side, resize_exact)
}

/// [`fit_within`] with a filter a third as costly (bilinear), for copies only looked at on a
/// screen: the job page's "before" picture.
pub fn fit_within_for_display(photo: &Photo, long_side: u32) -> Result<Photo, ImagingError> {
    fit_with(photo, long_side, crate::resize::resize_bilinear)
}

fn fit_with(
    photo: &Photo,
    long_side: u32,
    resize: fn(&DynamicImage, u32, u32) -> Result<DynamicImage, ImagingError>,
) -> Result<Photo, ImagingError> {
    let (width, height) = fit_dimensions(photo.width(), photo.height(), long_side);
    // Resampled straight from the source: no copy of the full-size image first.
    let mut fitted = Photo::new(resize(&photo.image, width, height)?, photo.icc_profile.clone());
    fitted.frame =
        photo.frame.scaled(f64::from(width) / f64::from(photo.width()), f64::from(height) / f64::from(photo.height()));
    Ok(fitted)
}

/// The whole recipe `ops` on `photo`, decorations included (a recipe with an image
/// watermark needs [`apply_ops_with`]).
pub fn apply_ops(photo: Photo, ops: &[Operation]) -> Result<Photo, ImagingError> {
    apply_range(photo, ops, 0..ops.len(), &WatermarkImages::default())
}

/// [`apply_ops`] with the PNGs the recipe's image watermarks name.
pub fn apply_ops_with(photo: Photo, ops: &[Operation], images: &WatermarkImages) -> Result<Photo, ImagingError> {
    apply_range(photo, ops, 0..ops.len(), images)
}

/// Operations `range` of the recipe `ops`: one pipeline segment, or one step of it. The
/// whole recipe is needed because its decorations (captions, watermarks, borders) are drawn
/// once, at the end of the last operation, on the result (docs/ARCHITECTURE.md
/// "Decorations"), and its last thumbnail leaves room for its borders.
pub fn apply_range(
    photo: Photo,
    ops: &[Operation],
    range: std::ops::Range<usize>,
    images: &WatermarkImages,
) -> Result<Photo, ImagingError> {
    let ends_the_recipe = range.end >= ops.len();
    let photo = apply_steps(photo, ops, range, 1.0)?;
    if ends_the_recipe {
        decorate(photo, ops, 1.0, images)
    } else {
        Ok(photo)
    }
}

/// Operations `range` of the recipe `ops`, without its decorations. `pixel_scale` is the
/// photo's size over the result's (1 but for a preview's smaller copy): the borders the last
/// thumbnail leaves room for are that much narrower.
pub fn apply_steps(
    mut photo: Photo,
    ops: &[Operation],
    range: std::ops::Range<usize>,
    pixel_scale: f64,
) -> Result<Photo, ImagingError> {
    let last_thumbnail = ops.iter().rposition(|op| matches!(op, Operation::Thumbnail { .. }));
    for index in range {
        let Some(op) = ops.get(index) else { break };
        let _span = tracing::debug_span!("op", op = op.name()).entered();
        match op {
            Operation::Thumbnail { size } if Some(index) == last_thumbnail => {
                let (width, height) = crate::shrink_first::thumbnail_size(
                    ops,
                    true,
                    pixel_scale,
                    (photo.width(), photo.height()),
                    *size,
                )?;
                photo.resize_to(width, height)?;
            }
            _ => apply_op(&mut photo, op)?,
        }
    }
    Ok(photo)
}

/// Draws the recipe's decorations on its finished photo; lengths in pixels of the result
/// times `pixel_scale` (see [`apply_steps`]); image watermarks from `images`.
pub fn decorate(
    mut photo: Photo,
    ops: &[Operation],
    pixel_scale: f64,
    images: &WatermarkImages,
) -> Result<Photo, ImagingError> {
    let decorations = crate::decorate::Decorations::of(ops)?.with_pixel_scale(pixel_scale);
    if !decorations.is_empty() {
        let _span = tracing::debug_span!("decorations").entered();
        decorations.draw(&mut photo, images)?;
    }
    Ok(photo)
}

/// [`decorate`] for a preview: the decorated photo made no larger than `long_side` by
/// shrinking the photo (and its pixel lengths with it) first, so a recipe of wide borders on
/// a small photo never makes the preview draw a giant image.
pub fn decorate_within(
    photo: Photo,
    ops: &[Operation],
    pixel_scale: f64,
    long_side: u32,
    images: &WatermarkImages,
) -> Result<Photo, ImagingError> {
    let decorations = crate::decorate::Decorations::of(ops)?.with_pixel_scale(pixel_scale);
    let (width, height) = decorations.bordered_size(photo.width(), photo.height());
    let bordered_long = width.max(height);
    if bordered_long <= u64::from(long_side) {
        return decorate(photo, ops, pixel_scale, images);
    }
    let shrink = f64::from(long_side) / bordered_long as f64;
    let photo_long = (f64::from(photo.width().max(photo.height())) * shrink).floor().max(1.0) as u32;
    let smaller = fit_within(&photo, photo_long)?;
    decorate(smaller, ops, pixel_scale * shrink, images)
}

fn apply_op(photo: &mut Photo, op: &Operation) -> Result<(), ImagingError> {
    match op {
        Operation::Thumbnail { size } => {
            let (width, height) = fit_dimensions(photo.width(), photo.height(), *size);
            photo.resize_to(width, height)
        }
        Operation::Crop { .. } => {
            let (x, y, width, height) = crop_window(photo, op)?;
            photo.crop_to(x, y, width, height)
        }
        Operation::Recolor { mode, color, strength, degrees } => {
            color::recolor(&mut photo.image, *mode, *color, *strength, *degrees);
            Ok(())
        }
        Operation::Customize(settings) => adjust::customize(photo, settings),
        Operation::Redeye { regions } => {
            crate::retouch::reduce_red_eye(photo, regions);
            Ok(())
        }
        Operation::WhitenTeeth { regions, strength } => {
            crate::retouch::whiten_teeth(photo, regions, strength.unwrap_or(0.5));
            Ok(())
        }
        Operation::Straighten { angle } => crate::straighten::straighten(photo, *angle),
        // Drawn with the other decorations, on the result.
        Operation::Watermark { .. } => Ok(()),
        Operation::Vignette { strength, radius } => {
            crate::vignette::vignette(
                &mut photo.image,
                strength.unwrap_or(darkroom_core::recipe::DEFAULT_VIGNETTE_STRENGTH),
                radius.unwrap_or(darkroom_core::recipe::DEFAULT_VIGNETTE_RADIUS),
            );
            Ok(())
        }
        Operation::AutoEnhance { strength } => {
            crate::enhance::auto_enhance(
                &mut photo.image,
                strength.unwrap_or(darkroom_core::recipe::DEFAULT_ENHANCE_STRENGTH),
            );
            Ok(())
        }
    }
}

/// The window (x, y, width, height) of `photo` a crop keeps.
pub(crate) fn crop_window(photo: &Photo, op: &Operation) -> Result<(u32, u32, u32, u32), ImagingError> {
    let spec = crop_spec(op, "crop").map_err(|e| ImagingError::op("crop", e.to_string()))?;
    let (original_width, original_height) = (photo.frame.original_width, photo.frame.original_height);
    let in_box = |region: Region| {
        crop_box_inside(&region, original_width, original_height)?;
        let mapped =
            photo.frame.map_region(region.x, region.y, region.width, region.height, photo.width(), photo.height());
        mapped.ok_or_else(|| ImagingError::op("crop", "an earlier operation already removed the whole box"))
    };
    match spec {
        CropSpec::Box(region) => in_box(region),
        // A relative box is the same part of any photo: in this one's original pixels, a box.
        CropSpec::Relative(relative) => in_box(relative.in_pixels(original_width, original_height)),
        CropSpec::Aspect { width: aspect_w, height: aspect_h, smart } => {
            let (width, height) = largest_centred(photo.width(), photo.height(), aspect_w, aspect_h);
            let (x, y) = if smart {
                crate::faces::framing(&photo.image, width, height)
            } else {
                ((photo.width() - width) / 2, (photo.height() - height) / 2)
            };
            Ok((x, y, width, height))
        }
    }
}

/// A crop box must lie inside the (upright) original it is named in.
pub(crate) fn crop_box_inside(region: &Region, original_width: u32, original_height: u32) -> Result<(), ImagingError> {
    let inside = u64::from(region.x) + u64::from(region.width) <= u64::from(original_width)
        && u64::from(region.y) + u64::from(region.height) <= u64::from(original_height);
    if inside {
        return Ok(());
    }
    Err(ImagingError::op(
        "crop",
        format!(
            "the box x={} y={} {}×{} does not lie inside the {original_width}×{original_height} photo",
            region.x, region.y, region.width, region.height
        ),
    ))
}

/// How small the decoded original may be (its long side, in pixels) without changing what
/// `ops` produce: a recipe that shrinks the photo early lets a JPEG decode at 1/2–1/8 scale,
/// which saves most of the decode time and memory. `None` when the full resolution is needed.
///
/// Only crops, pixel-wise colour changes, rotations and flips may come before the first
/// thumbnail: face detection and sharpening work in pixels and would come out differently
/// at another scale (decorations are drawn on the result, at its size, whatever the decode). The EXIF orientation is not known here, so an
/// aspect crop is planned for both and the larger need is taken.
pub fn reduced_decode_long_side(ops: &[Operation], width: u32, height: u32) -> Option<u32> {
    let upright = needed_long_side(ops, width, height)?;
    let turned = needed_long_side(ops, height, width)?;
    Some(upright.max(turned))
}

/// [`reduced_decode_long_side`] for a photo whose orientation is known: `turned` when its
/// EXIF turns it by 90° or 270°, so the recipe sees it `height`×`width`.
pub fn reduced_decode_long_side_oriented(ops: &[Operation], width: u32, height: u32, turned: bool) -> Option<u32> {
    if turned {
        needed_long_side(ops, height, width)
    } else {
        needed_long_side(ops, width, height)
    }
}

/// How much of the shrinking is left to the Lanczos3 resampler after a reduced-scale decode.
pub(crate) const RESAMPLE_MARGIN: u32 = 2;

fn needed_long_side(ops: &[Operation], width: u32, height: u32) -> Option<u32> {
    // The part of the original still in the picture, in original pixels.
    let (mut kept_width, mut kept_height) = (width, height);
    for op in ops {
        match op {
            Operation::Thumbnail { size } => {
                let kept_long = kept_width.max(kept_height);
                if kept_long <= *size {
                    return None; // not shrunk at all: every pixel counts
                }
                // The same fraction of the whole photo, rounded up (the scaled decoder rounds
                // sizes up and crops map outwards, so the thumbnail still gets `size` pixels),
                // times a margin: the DCT scaling is a box filter, so as in libvips and
                // Pillow's reducing_gap, Lanczos3 does at least the last 2× of the shrinking.
                let exact = (u64::from(width.max(height)) * u64::from(*size)).div_ceil(u64::from(kept_long));
                let needed = exact * u64::from(RESAMPLE_MARGIN);
                return u32::try_from(needed).ok();
            }
            Operation::Crop { .. } => match crop_spec(op, "crop").ok()? {
                // A box is in auto-oriented pixels whichever way the photo was turned (one
                // that does not fit fails at the crop, whatever the decode scale).
                CropSpec::Box(region) => (kept_width, kept_height) = (region.width, region.height),
                CropSpec::Relative(relative) => {
                    let region = relative.in_pixels(width, height);
                    (kept_width, kept_height) = (region.width, region.height);
                }
                // Where a smart crop goes depends on faces found at full resolution.
                CropSpec::Aspect { smart: true, .. } => return None,
                CropSpec::Aspect { width: aspect_w, height: aspect_h, smart: false } => {
                    (kept_width, kept_height) = largest_centred(kept_width, kept_height, aspect_w, aspect_h);
                }
            },
            Operation::Recolor { .. } => {}
            // Statistics of the whole photo: a reduced copy has the same ones.
            Operation::AutoEnhance { .. } => {}
            // In shares of the photo's sides: the same at any scale.
            Operation::Vignette { .. } => {}
            // Drawn on the result, at its own size.
            Operation::Watermark { .. } => {}
            // The kept part is the same fraction of the photo at any scale.
            Operation::Straighten { angle } => {
                (kept_width, kept_height) =
                    crate::straighten::largest_upright(kept_width, kept_height, f64::from(*angle).to_radians());
            }
            Operation::Customize(settings) => {
                // Captions and borders are decorations, drawn on the result at its size.
                if settings.sharpen.is_some_and(|s| s != 0.0) {
                    return None;
                }
                if matches!(settings.rotate, Some(90 | 270)) {
                    (kept_width, kept_height) = (kept_height, kept_width);
                }
            }
            // Retouching works in areas found at any scale (faces) or mapped through the
            // frame (regions): at the size the recipe ends at, it looks the same.
            Operation::Redeye { .. } | Operation::WhitenTeeth { .. } => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkroom_core::Recipe;

    fn photo(width: u32, height: u32) -> Photo {
        Photo::new(
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]))),
            None,
        )
    }

    fn ops(json: &str) -> Vec<Operation> {
        Recipe::from_json(&format!(r#"{{"ops":[{json}]}}"#)).expect("valid recipe").ops
    }

    #[test]
    fn aspect_crop_is_exact_and_centred() {
        let result = apply_ops(photo(400, 300), &ops(r#"{"op":"crop","aspect":"1:1"}"#)).expect("crops");
        assert_eq!((result.width(), result.height()), (300, 300));
        assert_eq!(result.image.to_rgb8().get_pixel(0, 0)[0], 50);
        let wide = apply_ops(photo(400, 300), &ops(r#"{"op":"crop","aspect":"16:9"}"#)).expect("crops");
        assert_eq!((wide.width(), wide.height()), (400, 225));
    }

    #[test]
    fn box_crop_uses_original_coordinates_even_after_a_resize() {
        let result = apply_ops(
            photo(400, 200),
            &ops(r#"{"op":"thumbnail","size":200},{"op":"crop","x":200,"y":0,"width":200,"height":200}"#),
        )
        .expect("crops");
        assert_eq!((result.width(), result.height()), (100, 100));
    }

    #[test]
    fn box_outside_the_photo_is_a_clear_error() {
        let error =
            apply_ops(photo(100, 100), &ops(r#"{"op":"crop","x":50,"y":50,"width":60,"height":10}"#)).unwrap_err();
        assert!(error.to_string().contains("does not lie inside the 100×100 photo"), "{error}");
    }

    #[test]
    fn thumbnail_fits_the_long_side_exactly() {
        let result = apply_ops(photo(300, 200), &ops(r#"{"op":"thumbnail","size":64}"#)).expect("resizes");
        assert_eq!((result.width(), result.height()), (64, 43));
    }

    #[test]
    fn a_recipe_that_shrinks_early_may_decode_small() {
        // Thumbnail first: the long side need only reach twice the thumbnail.
        assert_eq!(reduced_decode_long_side(&ops(r#"{"op":"thumbnail","size":256}"#), 6000, 4000), Some(512));
        // A centre crop to half the width first: twice that again.
        let box_then_thumb =
            ops(r#"{"op":"crop","x":1500,"y":0,"width":3000,"height":4000},{"op":"thumbnail","size":1000}"#);
        assert_eq!(reduced_decode_long_side(&box_then_thumb, 6000, 4000), Some(3000));
        // A box crop needs the same whichever way EXIF turns the photo.
        let wide_box =
            ops(r#"{"op":"crop","x":600,"y":400,"width":4800,"height":3200},{"op":"thumbnail","size":1024}"#);
        assert_eq!(reduced_decode_long_side(&wide_box, 6000, 4000), Some(2560));
        // Aspect crops are planned for either orientation: 1:1 of 6000×4000 keeps 4000 px.
        let square =
            ops(r#"{"op":"crop","aspect":"1:1"},{"op":"recolor","mode":"sepia"},{"op":"thumbnail","size":400}"#);
        assert_eq!(reduced_decode_long_side(&square, 6000, 4000), Some(1200));
    }

    #[test]
    fn retouching_before_a_thumbnail_decodes_small() {
        let retouch =
            r#"{"op":"redeye"},{"op":"whiten_teeth"},{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":1024}"#;
        // Upright, the 4:3 crop keeps 5333 px of 6000; turned, 4000 of 6000: 2 × 1536.
        assert_eq!(reduced_decode_long_side(&ops(retouch), 6000, 4000), Some(3072));
        // Known to be upright: 2 × ⌈6000 · 1024 / 5333⌉.
        assert_eq!(reduced_decode_long_side_oriented(&ops(retouch), 6000, 4000, false), Some(2306));
    }

    #[test]
    fn a_recipe_that_needs_every_pixel_decodes_in_full() {
        for recipe in [
            r#"{"op":"crop","aspect":"1:1","smart":true},{"op":"thumbnail","size":256}"#,
            r#"{"op":"customize","sharpen":1.0},{"op":"thumbnail","size":256}"#,
            r#"{"op":"crop","aspect":"4:3"}"#,
        ] {
            assert_eq!(reduced_decode_long_side(&ops(recipe), 6000, 4000), None, "{recipe}");
        }
        assert_eq!(reduced_decode_long_side(&ops(r#"{"op":"thumbnail","size":4096}"#), 4000, 3000), None);
    }

    #[test]
    fn straighten_keeps_an_upright_rectangle_and_a_later_box_still_lands_on_the_original() {
        // A 3° turn of 400×300 keeps the largest upright rectangle inside it.
        let straight = apply_ops(photo(400, 300), &ops(r#"{"op":"straighten","angle":3}"#)).expect("straightens");
        assert!(straight.width() < 400 && straight.height() < 300 && straight.width() > 360, "{straight:?}");
        // A box around the original's centre maps to about the centre of the result.
        let boxed = apply_ops(
            photo(400, 300),
            &ops(r#"{"op":"straighten","angle":3},{"op":"crop","x":180,"y":130,"width":40,"height":40}"#),
        )
        .expect("crops");
        assert!((40..=46).contains(&boxed.width()) && (40..=46).contains(&boxed.height()), "{boxed:?}");
        // The kept part is the same fraction at any scale: a reduced decode still serves.
        let planned = reduced_decode_long_side(
            &ops(r#"{"op":"straighten","angle":10},{"op":"thumbnail","size":500}"#),
            6000,
            4000,
        );
        assert!(planned.is_some_and(|side| side > 1000 && side < 6000), "{planned:?}");
    }

    #[test]
    fn customize_rotates_borders_and_captions() {
        let result = apply_ops(
            photo(60, 40),
            &ops(r##"{"op":"customize","rotate":90,"border":{"width":5,"color":"#ff0000"},"caption":{"text":"Hello"},"brightness":0.1,"contrast":0.2,"saturation":-0.5,"sharpen":1.0,"flip":"vertical"}"##),
        )
        .expect("customizes");
        assert_eq!((result.width(), result.height()), (50, 70));
        assert_eq!(result.image.to_rgb8().get_pixel(0, 0).0, [255, 0, 0]);
        // The caption's band is inside the border: the bottom rows are still the border's.
        let bottom = result.image.to_rgb8();
        for x in [0, 25, 49] {
            assert_eq!(bottom.get_pixel(x, 69).0, [255, 0, 0], "bottom border at x={x}");
        }
    }
}
