//! Decorations on real photographs of mixed sizes: borders and captions are drawn on the
//! result at its own size, so a batch looks the same whatever each original's size or how
//! small it was decoded (docs/ARCHITECTURE.md "Decorations").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::{Limits, Recipe};
use darkroom_imaging::{apply_ops, decode_for_ops, decorate_within, dry_run, encode, DecodeLimits, Photo};
use image::{DynamicImage, Rgb, RgbImage};

use darkroom_testkit::fixture;

/// The astronaut at `long_side` px, as a JPEG: one photo at the sizes a batch brings.
fn astronaut_jpeg(long_side: u32, wide: bool) -> Vec<u8> {
    let source = image::load_from_memory(&fixture("astronaut.jpg")).unwrap();
    let (width, height) = if wide { (long_side, long_side * 2 / 3) } else { (long_side * 2 / 3, long_side) };
    let resized = source.resize_exact(width, height, image::imageops::FilterType::Triangle);
    encode(&Photo::new(DynamicImage::ImageRgb8(resized.to_rgb8()), None), darkroom_core::OutputFormat::Jpeg, 90)
        .unwrap()
}

/// The photo as the worker makes it: decoded as small as the recipe allows, then processed.
fn process(jpeg: &[u8], recipe: &Recipe) -> RgbImage {
    let limits = DecodeLimits::from(Limits::default());
    let photo = decode_for_ops(jpeg, limits, &recipe.ops, 256).unwrap();
    apply_ops(photo, &recipe.ops).unwrap().image.to_rgb8()
}

/// How many pixels from the left edge, on the middle row, are exactly `color`.
fn run_of(image: &RgbImage, color: [u8; 3]) -> u32 {
    let y = image.height() / 2;
    (0..image.width()).take_while(|&x| image.get_pixel(x, y).0 == color).count() as u32
}

#[test]
fn a_border_in_pixels_is_pixels_of_the_result_whatever_the_original() {
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":24,"color":"#ff0000"}},{"op":"thumbnail","size":1024}]}"##,
    )
    .unwrap();
    for (long_side, wide) in [(700, true), (2560, true), (2560, false), (4200, false)] {
        let result = process(&astronaut_jpeg(long_side, wide), &recipe);
        assert_eq!(run_of(&result, [255, 0, 0]), 24, "{long_side} px original");
        assert!(result.width().max(result.height()) <= 1024, "{long_side}: {:?}", result.dimensions());
        if long_side > 1024 {
            assert_eq!(result.width().max(result.height()), 1024, "the bordered result fills the thumbnail");
        }
        let planned = dry_run(
            &recipe,
            if wide { long_side } else { long_side * 2 / 3 },
            if wide { long_side * 2 / 3 } else { long_side },
        )
        .unwrap();
        // Within the pixel a reduced-scale decode may round differently (libjpeg-turbo
        // rounds its scaled sizes otherwise than jpeg-decoder).
        let (width_off, height_off) = (planned.0.abs_diff(result.width()), planned.1.abs_diff(result.height()));
        assert!(
            width_off <= 1 && height_off <= 1,
            "the dry run knows the size: {planned:?} against {:?}",
            result.dimensions()
        );
    }
}

#[test]
fn a_border_in_percent_is_the_same_share_of_every_result() {
    let recipe =
        Recipe::from_json(r##"{"ops":[{"op":"customize","border":{"width":"3%","color":"#00ff00"}}]}"##).unwrap();
    for long_side in [600, 1800, 3000] {
        let result = process(&astronaut_jpeg(long_side, true), &recipe);
        let photo_short = result.height() - 2 * run_of(&result, [0, 255, 0]);
        let share = f64::from(run_of(&result, [0, 255, 0])) / f64::from(photo_short);
        assert!((share - 0.03).abs() < 0.002, "{long_side} px: {share}");
    }
}

#[test]
fn a_caption_is_the_same_share_of_every_result_and_never_covers_the_border() {
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","caption":{"text":"Summer 2026","size":"6%"},"border":{"width":"2%","color":"#0000ff"}},{"op":"thumbnail","size":900}]}"##,
    )
    .unwrap();
    let mut band_shares = Vec::new();
    for long_side in [640, 2400, 3600] {
        // A light grey photo: the caption's darkened band shows clearly on it.
        let grey = RgbImage::from_pixel(long_side, long_side * 2 / 3, Rgb([200, 200, 200]));
        let jpeg =
            encode(&Photo::new(DynamicImage::ImageRgb8(grey), None), darkroom_core::OutputFormat::Jpeg, 95).unwrap();
        let result = process(&jpeg, &recipe);
        let border = run_of(&result, [0, 0, 255]);
        assert!(border >= 1);
        // The bottom rows are the border's, not the caption band's.
        let x = result.width() / 2;
        for y in result.height() - border..result.height() {
            assert_eq!(result.get_pixel(x, y).0, [0, 0, 255], "{long_side}: row {y} is border");
        }
        // The caption band: darkened rows above the bottom border, at the left edge inside it.
        let inside = |y: u32| result.get_pixel(border + 1, y).0;
        let band = (0..result.height() - border)
            .rev()
            .map(inside)
            .take_while(|pixel| pixel != &[0, 0, 255] && pixel.iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 110)
            .count();
        let photo_short = result.height() - 2 * border;
        band_shares.push(band as f64 / f64::from(photo_short));
    }
    let (low, high) = band_shares.iter().fold((f64::MAX, 0f64), |(low, high), &s| (low.min(s), high.max(s)));
    // 6% text in a band 1.5 times as high: 9% of the photo's short side.
    assert!(low > 0.08 && high < 0.10 && high - low < 0.01, "the caption band's share of the photo: {band_shares:?}");
}

#[test]
fn decorations_are_drawn_once_at_the_end_even_between_other_steps() {
    // A border before a crop is not cut by it: it frames the result.
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":10,"color":"#ff00ff"}},{"op":"crop","aspect":"1:1"}]}"##,
    )
    .unwrap();
    let source = RgbImage::from_pixel(300, 200, Rgb([40, 40, 40]));
    let result = apply_ops(Photo::new(DynamicImage::ImageRgb8(source), None), &recipe.ops).unwrap().image.to_rgb8();
    assert_eq!(result.dimensions(), (220, 220));
    assert_eq!(run_of(&result, [255, 0, 255]), 10);
    assert_eq!(result.get_pixel(219, 219).0, [255, 0, 255]);
}

#[test]
fn a_preview_of_wide_borders_on_a_small_photo_stays_small() {
    // Four borders of up to 2000 px round a 100 px photo would make a 14,100 px image.
    let border = r##"{"op":"customize","border":{"width":2000,"color":"#00ff00"}}"##;
    let recipe = Recipe::from_json(&format!(r#"{{"ops":[{border},{border},{border},{border}]}}"#)).unwrap();
    let small = Photo::new(DynamicImage::ImageRgb8(RgbImage::from_pixel(100, 80, Rgb([9, 9, 9]))), None);
    let preview = decorate_within(small, &recipe.ops, 1.0, 1024, &Default::default()).unwrap();
    assert!(preview.width().max(preview.height()) <= 1024, "{preview:?}");
    assert!(preview.width() >= 1000, "the preview is not shrunk further than it must be: {preview:?}");
    // The photo is still in the middle, in proportion: 100 of 8100 px across.
    let dark = preview.image.to_rgb8().pixels().filter(|p| p.0 == [9, 9, 9]).count();
    assert!(dark > 0, "the photo is still there");
}
