//! A recipe that starts by shrinking the photo (a crop then a thumbnail, or a thumbnail)
//! makes its first, smaller copy straight from the decoded photo, which it leaves as it is:
//! another thread may read it meanwhile (the worker resamples the "before" preview from it
//! at the same time, docs/ARCHITECTURE.md "One photo's path"), and the crop's rows are never
//! moved. The pixels are the same as the operations' own, one after the other.

use crate::photo::Photo;
use crate::pipeline::crop_window;
use crate::resize::{crop_and_resize, fit_dimensions, largest_centred, resize_exact};
use crate::ImagingError;
use darkroom_core::recipe::{crop_spec, CropSpec, Operation};

/// The photo after the first operations of `range` that shrink it, made from `photo` without
/// changing it, and how many operations that took; `None` when `range` does not start by
/// shrinking (the operations then need the photo itself). Decorations are not drawn.
pub fn shrink_first(
    photo: &Photo,
    ops: &[Operation],
    range: std::ops::Range<usize>,
) -> Result<Option<(Photo, usize)>, ImagingError> {
    let last_thumbnail = ops.iter().rposition(|op| matches!(op, Operation::Thumbnail { .. }));
    let in_range = |index: usize| ops.get(index).filter(|_| range.contains(&index));
    let (crop, thumbnail_at) = match (in_range(range.start), in_range(range.start + 1)) {
        (Some(crop @ Operation::Crop { .. }), Some(Operation::Thumbnail { .. })) => (Some(crop), range.start + 1),
        (Some(Operation::Thumbnail { .. }), _) => (None, range.start),
        _ => return Ok(None),
    };
    let Some(Operation::Thumbnail { size }) = ops.get(thumbnail_at) else {
        return Ok(None);
    };
    let thumbnail_of =
        |(width, height)| thumbnail_size(ops, Some(thumbnail_at) == last_thumbnail, 1.0, (width, height), *size);
    // An aspect crop's size is known before its place: a smart crop's face search is made
    // only if the thumbnail shrinks (otherwise the operations make it, once).
    if let Some(Ok(CropSpec::Aspect { width, height, .. })) = crop.map(|crop| crop_spec(crop, "crop")) {
        let kept = largest_centred(photo.width(), photo.height(), width, height);
        if thumbnail_of(kept)? == kept {
            return Ok(None);
        }
    }
    let window = match crop {
        Some(crop) => crop_window(photo, crop)?,
        None => (0, 0, photo.width(), photo.height()),
    };
    let (x, y, width, height) = window;
    let (out_width, out_height) = thumbnail_of((width, height))?;
    if (out_width, out_height) == (width, height) {
        return Ok(None); // nothing shrinks: the crop alone is cheaper on the photo itself
    }
    let image = if window == (0, 0, photo.width(), photo.height()) {
        resize_exact(&photo.image, out_width, out_height)?
    } else {
        crop_and_resize(&photo.image, window, out_width, out_height)?
    };
    let mut shrunk = Photo::new(image, photo.icc_profile.clone());
    shrunk.exif = photo.exif.clone();
    shrunk.frame = photo
        .frame
        .translated(-f64::from(x), -f64::from(y))
        .scaled(f64::from(out_width) / f64::from(width), f64::from(out_height) / f64::from(height));
    Ok(Some((shrunk, thumbnail_at + 1 - range.start)))
}

/// The size a thumbnail of `size` gives a `width`×`height` photo: the recipe's last one
/// leaves room for its borders (lengths times `pixel_scale`, see [`crate::apply_steps`]).
pub(crate) fn thumbnail_size(
    ops: &[Operation],
    is_last_thumbnail: bool,
    pixel_scale: f64,
    (width, height): (u32, u32),
    size: u32,
) -> Result<(u32, u32), ImagingError> {
    if is_last_thumbnail {
        let decorations = crate::decorate::Decorations::of(ops)?.with_pixel_scale(pixel_scale);
        decorations.thumbnail_size(width, height, size)
    } else {
        Ok(fit_dimensions(width, height, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::apply_steps;
    use darkroom_core::Recipe;
    use image::DynamicImage;

    fn photo(width: u32, height: u32) -> Photo {
        let noise = |x: u32, y: u32, k: u32| ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ k) % 251) as u8;
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([noise(x, y, 1), noise(x, y, 2), 9]));
        Photo::new(DynamicImage::ImageRgb8(image), None)
    }

    fn ops(json: &str) -> Vec<Operation> {
        Recipe::from_json(&format!(r#"{{"ops":[{json}]}}"#)).expect("valid recipe").ops
    }

    #[test]
    fn shrinks_as_the_operations_do_and_leaves_the_rest() {
        for (json, taken) in [
            (r#"{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":50}"#, 2),
            (
                r#"{"op":"crop","x":10,"y":5,"width":90,"height":60},{"op":"thumbnail","size":40},{"op":"recolor","mode":"sepia"}"#,
                2,
            ),
            (
                r##"{"op":"crop","aspect":"1:1"},{"op":"thumbnail","size":30},{"op":"customize","border":{"width":4,"color":"#ff0000"}}"##,
                2,
            ),
            (r#"{"op":"crop","aspect":"1:1","smart":true},{"op":"thumbnail","size":50}"#, 2),
            (r#"{"op":"crop","relative":{"x":0.25,"y":0.1,"width":0.5,"height":0.8}},{"op":"thumbnail","size":40}"#, 2),
            (r#"{"op":"thumbnail","size":64},{"op":"crop","aspect":"1:1"}"#, 1),
            (r#"{"op":"thumbnail","size":60},{"op":"thumbnail","size":20}"#, 1),
        ] {
            let ops = ops(json);
            let source = photo(160, 107);
            let (shrunk, consumed) =
                shrink_first(&source, &ops, 0..ops.len()).expect("shrunk").expect("starts by shrinking");
            assert_eq!(consumed, taken, "{json}");
            let expected = apply_steps(source.clone(), &ops, 0..consumed, 1.0).expect("applied");
            assert_eq!(shrunk.image, expected.image, "{json}");
            assert_eq!(shrunk.frame, expected.frame, "{json}");
            let rest = apply_steps(shrunk, &ops, consumed..ops.len(), 1.0).expect("the rest");
            let whole = apply_steps(source, &ops, 0..ops.len(), 1.0).expect("the whole");
            assert_eq!(rest.image, whole.image, "{json}");
        }
    }

    #[test]
    fn leaves_to_the_operations_what_does_not_start_by_shrinking() {
        for json in [
            r#"{"op":"recolor","mode":"sepia"},{"op":"thumbnail","size":50}"#,
            r#"{"op":"crop","aspect":"4:3"},{"op":"recolor","mode":"sepia"}"#,
            r#"{"op":"thumbnail","size":500}"#,
            r#"{"op":"crop","aspect":"3:2"},{"op":"thumbnail","size":400}"#,
            r#"{"op":"crop","aspect":"1:1","smart":true},{"op":"thumbnail","size":400}"#,
        ] {
            let ops = ops(json);
            assert!(shrink_first(&photo(160, 107), &ops, 0..ops.len()).expect("planned").is_none(), "{json}");
        }
        // Only the range's operations: the thumbnail after it belongs to the next segment.
        let ops = ops(r#"{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":50}"#);
        assert!(shrink_first(&photo(160, 107), &ops, 0..1).expect("planned").is_none());
    }
}
