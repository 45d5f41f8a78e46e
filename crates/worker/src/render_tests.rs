//! The render's tests: segments rendered from bytes, no store or queue.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use darkroom_core::{Limits, Recipe};

fn segment(bytes: Vec<u8>, ops: &[Operation], range: std::ops::Range<usize>, limits: Limits) -> Rendered {
    render(input_for(bytes, ops, range, limits), &CancelFlag::default()).expect("the segment renders")
}

fn input_for(bytes: Vec<u8>, ops: &[Operation], range: std::ops::Range<usize>, limits: Limits) -> RenderInput {
    RenderInput {
        watermark_pngs: Vec::new(),
        bytes: bytes.into(),
        recipe_ops: ops.to_vec(),
        is_first_segment: range.start == 0,
        decorations_in_place: false,
        segment: range,
        format: OutputFormat::Jpeg,
        quality: 80,
        speed: None,
        metadata: MetadataPolicy::default(),
        frame: None,
        limits: limits.into(),
    }
}

/// A request of the release before (version 2) keeps its rules: the border drawn where
/// it stands, then shrunk by the thumbnail after it, as the worker that made its
/// earlier segments did.
#[test]
fn a_version_two_request_draws_its_border_in_place() {
    let source = image::RgbImage::from_pixel(400, 200, image::Rgb([90, 120, 150]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(source)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":20,"color":"#ff0000"}},{"op":"thumbnail","size":110}]}"##,
    )
    .unwrap();
    let render_with = |recipe: &Recipe, in_place: bool| {
        let input = RenderInput {
            watermark_pngs: Vec::new(),
            bytes: png.clone().into(),
            recipe_ops: recipe.ops.clone(),
            is_first_segment: true,
            decorations_in_place: in_place,
            segment: 0..recipe.ops.len(),
            format: OutputFormat::Png,
            quality: 80,
            speed: None,
            metadata: MetadataPolicy::default(),
            frame: None,
            limits: Limits::default().into(),
        };
        let rendered = render(input, &CancelFlag::default()).unwrap();
        let result = rendered.files.iter().find(|f| f.name == "result").unwrap();
        (result.width, result.height)
    };
    // 440×240 bordered, then fitted into 110: the border shrinks with the photo.
    assert_eq!(render_with(&recipe, true), (110, 60));
    // Version 3: the photo fitted into 110 − 2×20, then framed by 20 px.
    assert_eq!(render_with(&recipe, false), (110, 75));
    // A recipe that starts by shrinking: version 2 fits the photo into all of 110, then
    // frames it; version 3 (shrunk straight from the decoded photo) leaves the border room.
    let shrinking = Recipe::from_json(
        r##"{"ops":[{"op":"thumbnail","size":110},{"op":"customize","border":{"width":20,"color":"#ff0000"}}]}"##,
    )
    .unwrap();
    assert_eq!(render_with(&shrinking, true), (150, 95));
    assert_eq!(render_with(&shrinking, false), (110, 75));
}

/// The "before" picture is the whole original at the result's scale, for the compare
/// view: a shrinking recipe's is small; one that keeps the size gets the 1600 px cap.
#[test]
fn the_preview_is_the_original_at_the_results_scale() {
    let upload = image::RgbImage::from_fn(2400, 1600, |x, y| image::Rgb([(x / 10) as u8, (y / 10) as u8, 90]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(upload)
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let size_of = |rendered: &Rendered, name: &str| {
        let file = rendered.files.iter().find(|f| f.name == name).unwrap();
        let decoded = image::load_from_memory(&file.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (file.width, file.height), "{name} as reported");
        (file.width, file.height)
    };
    for (json, result, preview) in [
        // 4:3 of 2400×1600 is 2133×1600, fitted into 600: a scale of 0.28125.
        (r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":600}]}"#, (600, 450), (675, 450)),
        (r#"{"ops":[{"op":"thumbnail","size":100}]}"#, (100, 67), (256, 171)),
        (r#"{"ops":[{"op":"recolor","mode":"sepia"}]}"#, (2400, 1600), (1600, 1067)),
    ] {
        let recipe = Recipe::from_json(json).unwrap();
        let rendered = segment(jpeg.clone(), &recipe.ops, 0..recipe.ops.len(), Limits::default());
        assert_eq!(size_of(&rendered, "result"), result, "{json}");
        assert_eq!(size_of(&rendered, "preview"), preview, "{json}");
        assert!(size_of(&rendered, "thumb").0 <= THUMB_LONG_SIDE);
    }
}

/// A recipe that starts by shrinking is shrunk straight from the decoded photo while the
/// preview is made from it too: the result is the operations' own, pixel for pixel,
/// decorations included.
#[test]
fn a_recipe_that_starts_by_shrinking_renders_as_its_operations_do() {
    let upload = image::RgbImage::from_fn(640, 427, |x, y| image::Rgb([(x * 7 % 251) as u8, (y * 13 % 251) as u8, 90]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(upload.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    for json in [
        r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":300}]}"#,
        r##"{"ops":[{"op":"crop","aspect":"1:1"},{"op":"thumbnail","size":200},{"op":"customize","border":{"width":6,"color":"#ff0000"}}]}"##,
        r#"{"ops":[{"op":"thumbnail","size":320},{"op":"recolor","mode":"sepia"}]}"#,
    ] {
        let recipe = Recipe::from_json(json).unwrap();
        let expected = darkroom_imaging::apply_ops(Photo::new(upload.clone().into(), None), &recipe.ops).unwrap();
        let input = RenderInput {
            format: OutputFormat::Png, // lossless, to compare pixels
            ..input_for(png.clone(), &recipe.ops, 0..recipe.ops.len(), Limits::default())
        };
        let rendered = render(input, &CancelFlag::default()).unwrap();
        let result = rendered.files.iter().find(|f| f.name == "result").unwrap();
        assert_eq!(image::load_from_memory(&result.bytes).unwrap().to_rgb8(), expected.image.to_rgb8(), "{json}");
        let names: Vec<&str> = rendered.files.iter().map(|f| f.name).collect();
        assert_eq!(names, ["preview", "result", "thumb"], "{json}");
    }
    // A later segment whose shrinking is the recipe's end still draws the border an
    // earlier segment's operation asked for.
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":6,"color":"#ff0000"}},{"op":"crop","aspect":"1:1"},{"op":"thumbnail","size":200}]}"##,
    )
    .unwrap();
    let first = segment(png.clone(), &recipe.ops, 0..1, Limits::default());
    let Handover::NextSegment { intermediate } = first.handover else { panic!("a next segment") };
    let input = RenderInput {
        format: OutputFormat::Png,
        frame: Some(first.frame),
        ..input_for(intermediate, &recipe.ops, 1..3, Limits::default())
    };
    let rendered = render(input, &CancelFlag::default()).unwrap();
    let result = rendered.files.iter().find(|f| f.name == "result").unwrap();
    let expected = darkroom_imaging::apply_ops(Photo::new(upload.into(), None), &recipe.ops).unwrap();
    assert_eq!((result.width, result.height), (200, 200));
    assert_eq!(image::load_from_memory(&result.bytes).unwrap().to_rgb8(), expected.image.to_rgb8());
}

/// An upload just inside the limits, bordered by the first segment, is still taken by
/// the second: splitting a recipe over stages must not change whether it succeeds.
#[test]
fn a_later_segment_takes_what_an_earlier_one_grew_past_the_upload_limits() {
    let limits = Limits { max_pixels: 1_000_000, max_side: 1000, ..Limits::default() };
    let upload = image::RgbImage::from_pixel(1000, 900, image::Rgb([90, 120, 150]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(upload)
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    let recipe =
        Recipe::from_json(r##"{"ops":[{"op":"customize","border":{"width":100,"color":"#ffffff"}},{"op":"redeye"}]}"##)
            .unwrap();
    let first = segment(jpeg, &recipe.ops, 0..1, limits);
    let Handover::NextSegment { intermediate } = first.handover else { panic!("the first segment hands over") };
    let last = segment(intermediate, &recipe.ops, 1..2, limits);
    let result = last.files.iter().find(|f| f.name == "result").expect("a result");
    assert_eq!((result.width, result.height), (1200, 1100), "the border's growth is kept");
}
