//! Decoding, limits and metadata on real photographs (tests/fixtures, licences beside them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::{Limits, OutputFormat, Recipe};
use darkroom_imaging::{apply_ops, decode, encode, probe, DecodeLimits, ImagingError, SourceFormat};

use darkroom_testkit::fixture;

fn limits() -> DecodeLimits {
    DecodeLimits::from(Limits::default())
}

#[test]
fn decodes_real_photos_of_each_format() {
    let astronaut = decode(&fixture("astronaut.jpg"), limits()).unwrap();
    assert_eq!((astronaut.width(), astronaut.height()), (512, 512));
    let coffee = decode(&fixture("coffee.png"), limits()).unwrap();
    assert_eq!((coffee.width(), coffee.height()), (600, 400));
    for format in [OutputFormat::Png, OutputFormat::Webp, OutputFormat::Jpeg] {
        let bytes = encode(&coffee, format, 80).unwrap();
        let back = decode(&bytes, limits()).unwrap();
        assert_eq!((back.width(), back.height()), (600, 400), "{format:?}");
    }
}

#[test]
fn every_output_format_keeps_the_colour_profile() {
    let mut photo = decode(&fixture("coffee.jpg"), limits()).unwrap();
    // An odd length, to catch a WebP chunk left unpadded.
    let profile: Vec<u8> = (0..3001u32).map(|i| (i % 251) as u8).collect();
    photo.icc_profile = Some(profile.clone());
    for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
        let bytes = encode(&photo, format, 85).unwrap();
        let back = decode(&bytes, limits()).unwrap();
        assert_eq!(back.icc_profile.as_deref(), Some(profile.as_slice()), "{format:?}");
        assert_eq!((back.width(), back.height()), (600, 400), "{format:?}");
    }
}

#[test]
fn webp_is_lossy_at_the_recipe_quality() {
    let photo = decode(&fixture("coffee.jpg"), limits()).unwrap();
    let low = encode(&photo, OutputFormat::Webp, 40).unwrap();
    let high = encode(&photo, OutputFormat::Webp, 95).unwrap();
    let png = encode(&photo, OutputFormat::Png, 85).unwrap();
    assert!(low.len() < high.len(), "quality 40: {} bytes, quality 95: {} bytes", low.len(), high.len());
    assert!(high.len() < png.len() / 2, "lossy WebP {} bytes vs PNG {} bytes", high.len(), png.len());
    // Close to the original: lossy, not wrong.
    let back = decode(&high, limits()).unwrap().image.to_rgb8();
    let original = photo.image.to_rgb8();
    let mean_diff: f64 =
        original.as_raw().iter().zip(back.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
            / original.as_raw().len() as f64;
    assert!(mean_diff < 3.0, "mean difference {mean_diff}");
}

#[test]
fn exif_rotated_photo_comes_out_upright() {
    let rotated = decode(&fixture("coffee-exif-rotate90.jpg"), limits()).unwrap();
    assert_eq!((rotated.width(), rotated.height()), (600, 400));
    // Upright means it matches the unrotated photo, pixel for pixel (within JPEG noise).
    let upright = decode(&fixture("coffee.jpg"), limits()).unwrap().image.to_rgb8();
    let rotated = rotated.image.to_rgb8();
    let mean_diff: f64 =
        upright.as_raw().iter().zip(rotated.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
            / upright.as_raw().len() as f64;
    assert!(mean_diff < 4.0, "mean difference {mean_diff}");
}

#[test]
fn copies_for_display_carry_no_exif() {
    let photo = decode(&fixture("coffee-exif-rotate90.jpg"), limits()).unwrap();
    let jpeg = encode(&photo, OutputFormat::Jpeg, 85).unwrap();
    assert!(!jpeg.windows(6).any(|w| w == b"Exif\0\0"), "output still has an EXIF segment");
    // And re-decoding it applies no second rotation.
    let again = decode(&jpeg, limits()).unwrap();
    assert_eq!((again.width(), again.height()), (600, 400));
}

#[test]
fn refuses_a_decompression_bomb_before_allocating() {
    let bomb = fixture("bomb-50000x50000.png");
    let probed = probe(&bomb).unwrap();
    assert_eq!(probed.format, SourceFormat::Png);
    assert_eq!(probed.dimensions, Some((50_000, 50_000)));
    let error = decode(&bomb, limits()).unwrap_err();
    assert!(matches!(error, ImagingError::TooManyPixels(_)), "{error:?}");
}

#[test]
fn text_named_jpg_is_unsupported() {
    let error = decode(b"hello, I am not a photo\n", limits()).unwrap_err();
    assert!(matches!(error, ImagingError::UnsupportedFormat { .. }), "{error:?}");
    assert!(error.to_string().contains("text"), "{error}");
}

#[test]
fn truncated_jpeg_is_a_clear_error() {
    let whole = fixture("astronaut.jpg");
    let error = decode(&whole[..whole.len() / 2], limits()).unwrap_err();
    assert!(matches!(error, ImagingError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn a_full_recipe_runs_on_a_real_photo() {
    let recipe = Recipe::from_json(
        r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"recolor","mode":"sepia"},{"op":"thumbnail","size":256}]}"#,
    )
    .unwrap();
    let result = apply_ops(decode(&fixture("rocket.jpg"), limits()).unwrap(), &recipe.ops).unwrap();
    assert_eq!((result.width(), result.height()), (256, 192));
}

#[test]
fn jpeg_shrink_on_load_keeps_enough_pixels_and_the_same_picture() {
    use darkroom_imaging::decode_at_least;
    let bytes = fixture("astronaut.jpg");
    let scaled = decode_at_least(&bytes, limits(), 100).unwrap();
    assert!(scaled.width() >= 100 && scaled.width() < 200, "decoded at {}×{}", scaled.width(), scaled.height());
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":100}]}"#).unwrap();
    let fast = apply_ops(scaled, &recipe.ops).unwrap().image.to_rgb8();
    let full = apply_ops(decode(&bytes, limits()).unwrap(), &recipe.ops).unwrap().image.to_rgb8();
    assert_eq!(fast.dimensions(), full.dimensions());
    let mean_diff: f64 = fast.as_raw().iter().zip(full.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
        / fast.as_raw().len() as f64;
    assert!(mean_diff < 3.0, "shrink-on-load result differs by {mean_diff:.2} on average");
}

#[test]
fn shrink_on_load_keeps_orientation_and_original_coordinates() {
    use darkroom_imaging::decode_at_least;
    let scaled = decode_at_least(&fixture("coffee-exif-rotate90.jpg"), limits(), 150).unwrap();
    assert!(scaled.width() > scaled.height(), "upright: {}×{}", scaled.width(), scaled.height());
    assert_eq!((scaled.frame.original_width, scaled.frame.original_height), (600, 400));
    // A box in original pixels lands on the same part of the smaller image.
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"crop","x":300,"y":200,"width":300,"height":200}]}"#).unwrap();
    let cropped = apply_ops(scaled.clone(), &recipe.ops).unwrap();
    assert_eq!((cropped.width() * 2, cropped.height() * 2), (scaled.width(), scaled.height()));
    // Photos too small to gain from it (no scale below 1 reaches the size) decode in full.
    assert_eq!(decode_at_least(&fixture("chelsea.jpg"), limits(), 440).unwrap().width(), 451);
}

#[test]
fn a_crop_then_resize_recipe_decodes_small_and_gives_the_same_picture() {
    use darkroom_imaging::decode_for_ops;
    let bytes = fixture("astronaut.jpg"); // 512×512
    let recipe = Recipe::from_json(
        r#"{"ops":[{"op":"crop","x":64,"y":64,"width":384,"height":384},{"op":"thumbnail","size":96}]}"#,
    )
    .unwrap();
    let scaled = decode_for_ops(&bytes, limits(), &recipe.ops, 0).unwrap();
    // 96 px of a 384 px crop need a quarter of the resolution, twice that for the resampler.
    assert_eq!((scaled.width(), scaled.height()), (256, 256));
    let fast = apply_ops(scaled, &recipe.ops).unwrap().image.to_rgb8();
    let full = apply_ops(decode(&bytes, limits()).unwrap(), &recipe.ops).unwrap().image.to_rgb8();
    assert_eq!(fast.dimensions(), (96, 96));
    assert_eq!(fast.dimensions(), full.dimensions());
    let mean_diff: f64 = fast.as_raw().iter().zip(full.as_raw()).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>()
        / fast.as_raw().len() as f64;
    assert!(mean_diff < 3.0, "shrink-on-load result differs by {mean_diff:.2} on average");
    // Retouching before the thumbnail works at the size the recipe ends at too (twice the
    // thumbnail: 1/2 scale with jpeg-decoder, 3/8 with libjpeg-turbo)...
    let redeye = Recipe::from_json(r#"{"ops":[{"op":"redeye"},{"op":"thumbnail","size":96}]}"#).unwrap();
    let retouched_at = decode_for_ops(&bytes, limits(), &redeye.ops, 0).unwrap().width();
    assert!((192..512).contains(&retouched_at), "decoded {retouched_at} px wide");
    // ... but a recipe that needs every pixel first decodes in full.
    let sharpen =
        Recipe::from_json(r#"{"ops":[{"op":"customize","sharpen":1},{"op":"thumbnail","size":96}]}"#).unwrap();
    assert_eq!(decode_for_ops(&bytes, limits(), &sharpen.ops, 0).unwrap().width(), 512);
}

/// HEIC without the `heic` feature: recognised, and refused with what to do about it.
#[cfg(not(feature = "heic"))]
#[test]
fn heic_is_refused_with_what_to_do_when_the_build_lacks_it() {
    let error = probe(&fixture("coffee-rotate90.heic")).unwrap_err();
    assert!(matches!(error, ImagingError::UnsupportedFormat { .. }), "{error:?}");
    assert!(error.to_string().contains("`heic` feature"), "{error}");
    assert!(error.to_string().contains("export them as JPEG"), "{error}");
}

#[cfg(feature = "heic")]
mod heic {
    use super::*;

    fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.as_raw().len() as f64
    }

    #[test]
    fn an_iphone_style_heic_decodes_upright_with_its_colour_profile() {
        let bytes = fixture("coffee-rotate90.heic");
        let probed = probe(&bytes).unwrap();
        assert_eq!(probed.format, SourceFormat::Heic);
        assert_eq!(probed.format.content_type(), "image/heic");
        let photo = decode(&bytes, limits()).unwrap();
        // Stored sideways (400×600) with an irot box: upright is 600×400 and matches the PNG
        // it was made from, within HEVC's loss; applying the EXIF orientation as well would
        // have turned it back on its side.
        assert_eq!((photo.width(), photo.height()), (600, 400));
        let original = decode(&fixture("coffee.png"), limits()).unwrap().image.to_rgb8();
        let difference = mean_difference(&original, &photo.image.to_rgb8());
        assert!(difference < 4.0, "mean difference {difference} from coffee.png");
        let icc = photo.icc_profile.clone().expect("the sRGB profile the file carries");
        assert_eq!(&icc[36..40], b"acsp", "not an ICC profile");
        // And it goes through a recipe and out as JPEG with that profile.
        let recipe =
            Recipe::from_json(r#"{"ops":[{"op":"crop","aspect":"1:1"},{"op":"thumbnail","size":128}]}"#).unwrap();
        let result = apply_ops(photo, &recipe.ops).unwrap();
        assert_eq!((result.width(), result.height()), (128, 128));
        let jpeg = encode(&result, OutputFormat::Jpeg, 85).unwrap();
        assert_eq!(decode(&jpeg, limits()).unwrap().icc_profile, Some(icc));
    }

    #[test]
    fn a_reduced_decode_of_a_heic_gives_the_same_picture() {
        let bytes = fixture("coffee-rotate90.heic");
        let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":150}]}"#).unwrap();
        let photo = darkroom_imaging::decode_for_ops(&bytes, limits(), &recipe.ops, 0).unwrap();
        let thumb = apply_ops(photo, &recipe.ops).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (150, 100));
    }

    #[test]
    fn a_truncated_heic_is_a_clear_error() {
        let whole = fixture("coffee-rotate90.heic");
        for cut in [whole.len() / 2, 64, 20] {
            let error = decode(&whole[..cut], limits()).unwrap_err();
            assert!(matches!(error, ImagingError::Corrupt(_)), "cut at {cut}: {error:?}");
            assert!(error.to_string().contains("HEIC"), "{error}");
        }
    }

    #[test]
    fn a_heic_over_the_pixel_limit_is_refused_before_decoding() {
        let limits = DecodeLimits::from(Limits { max_pixels: 100_000, ..Limits::default() });
        let error = decode(&fixture("coffee-rotate90.heic"), limits).unwrap_err();
        assert!(matches!(error, ImagingError::TooManyPixels(_)), "{error:?}");
    }

    #[test]
    fn an_avif_is_not_taken_for_a_heic() {
        let mut avif = fixture("coffee-rotate90.heic");
        // The same box structure with AVIF's brands instead of HEIC's.
        avif[8..12].copy_from_slice(b"avif");
        avif[20..24].copy_from_slice(b"avif");
        avif[24..28].copy_from_slice(b"miaf");
        let error = probe(&avif).unwrap_err();
        assert!(matches!(error, ImagingError::UnsupportedFormat { .. }), "{error:?}");
    }
}

#[test]
fn a_heic_declares_its_size_in_its_first_bytes() {
    // What intake reads before a file has all arrived: the stored size (sideways here), for
    // the limits; a build without HEIC refuses it instead.
    let bytes = fixture("coffee-rotate90.heic");
    let probed = probe(&bytes[..4096]);
    if darkroom_imaging::HEIC_SUPPORTED {
        assert_eq!(probed.unwrap().dimensions, Some((400, 600)));
    } else {
        assert!(matches!(probed, Err(ImagingError::UnsupportedFormat { .. })), "{probed:?}");
    }
}

/// jpeg-decoder's picture at `eighths`/8 scale (1, 2 or 4), which keeps every coefficient.
fn scaled_by_jpeg_decoder(bytes: &[u8], eighths: u16) -> image::RgbImage {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().unwrap();
    let info = decoder.info().unwrap();
    let (w, h) = decoder.scale((info.width * eighths).div_ceil(8), (info.height * eighths).div_ceil(8)).unwrap();
    let pixels = decoder.decode().unwrap();
    let (w, h) = (u32::from(w), u32::from(h));
    match decoder.info().unwrap().pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).unwrap()).to_rgb8()
        }
        _ => image::RgbImage::from_raw(w, h, pixels).unwrap(),
    }
}

fn differences(a: &image::RgbImage, b: &image::RgbImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    let pairs = a.as_raw().iter().zip(b.as_raw());
    let mean = pairs.clone().map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.as_raw().len() as f64;
    (mean, pairs.map(|(x, y)| x.abs_diff(*y)).max().unwrap())
}

/// JPEGs bound for 1/8, 1/4 or 1/2 scale are read by the decoder that keeps only the
/// coefficients the scale needs (progressive ones at 1/8 from their DC scans only; baseline
/// ones too in the default build); the picture is the one jpeg-decoder gives at that scale,
/// keeping all of them: greyscale and colour, libjpeg's progressive scan script (DC and AC
/// refined in later scans) with restart markers, and jpeg-encoder's baseline and
/// progressive files with each chroma subsampling and restart interval.
#[test]
fn jpegs_at_reduced_scales_match_a_full_entropy_decode() {
    use darkroom_imaging::decode_at_least;
    let fixtures = ["coffee-progressive.jpg", "astronaut-progressive-gray.jpg", "astronaut.jpg", "chelsea.jpg"];
    let mut cases: Vec<(String, Vec<u8>)> = fixtures.map(|name| (name.to_owned(), fixture(name))).into();
    let source = decode(&fixture("rocket.jpg"), limits()).unwrap().image.to_rgb8();
    let grey = image::DynamicImage::ImageRgb8(source.clone()).to_luma8();
    for sampling in
        [jpeg_encoder::SamplingFactor::F_1_1, jpeg_encoder::SamplingFactor::F_2_1, jpeg_encoder::SamplingFactor::F_2_2]
    {
        for restart in [0u16, 5] {
            for progressive in [true, false] {
                let mut bytes = Vec::new();
                let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 85);
                encoder.set_progressive(progressive);
                encoder.set_sampling_factor(sampling);
                encoder.set_restart_interval(restart);
                encoder.encode(source.as_raw(), 640, 427, jpeg_encoder::ColorType::Rgb).unwrap();
                cases.push((format!("rocket {sampling:?} restart {restart} progressive {progressive}"), bytes));
            }
        }
    }
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
    encoder.set_restart_interval(3);
    encoder.encode(grey.as_raw(), 640, 427, jpeg_encoder::ColorType::Luma).unwrap();
    cases.push(("rocket grey baseline restart 3".to_owned(), bytes));
    for (name, bytes) in cases {
        // With libjpeg-turbo, baseline files are its to decode (its own scaled IDCTs and
        // upsampling, not held to jpeg-decoder's picture).
        let baseline = !name.contains("progressive true")
            && !name.ends_with("progressive.jpg")
            && !name.contains("progressive-gray");
        if baseline && cfg!(feature = "turbojpeg") {
            continue;
        }
        for eighths in [1, 2, 4] {
            let expected = scaled_by_jpeg_decoder(&bytes, eighths);
            let photo = decode_at_least(&bytes, limits(), expected.width().max(expected.height())).unwrap();
            let got = photo.image.to_rgb8();
            assert_eq!(got.dimensions(), expected.dimensions(), "{name} at {eighths}/8");
            let (mean, max) = differences(&got, &expected);
            // Rounding apart (a floating-point IDCT and colour conversion), the same picture.
            // At 1/8 jpeg-decoder truncates each block's average where libjpeg (and this
            // decoder) rounds it: half a level lower, about one level after colour conversion.
            let mean_allowed = if eighths == 1 { 1.2 } else { 0.5 };
            assert!(mean < mean_allowed, "{name} at {eighths}/8: mean difference {mean:.2} from jpeg-decoder");
            assert!(max <= 4, "{name} at {eighths}/8: largest difference {max}");
        }
    }
}

/// The same on every JPEG of a folder of real photos (opt-in: set
/// DARKROOM_TEST_CORPUS, e.g. to the benchmark corpus of ../shared/bench/fetch-corpus.sh).
#[test]
fn jpegs_of_a_corpus_at_reduced_scales_match_a_full_decode() {
    let Ok(folder) = std::env::var("DARKROOM_TEST_CORPUS") else { return };
    let mut checked = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
        if decoder.read_info().is_err() {
            continue;
        }
        let progressive =
            decoder.info().is_some_and(|i| i.coding_process == jpeg_decoder::CodingProcess::DctProgressive);
        if !progressive && cfg!(feature = "turbojpeg") {
            continue; // libjpeg-turbo's to decode (see above)
        }
        for eighths in [1, 2, 4] {
            let expected = scaled_by_jpeg_decoder(&bytes, eighths);
            let got =
                darkroom_imaging::decode_at_least(&bytes, limits(), expected.width().max(expected.height())).unwrap();
            let (mean, max) = differences(&got.image.to_rgb8(), &expected);
            assert!(mean < 1.2 && max <= 8, "{} at {eighths}/8: mean {mean:.2}, max {max}", path.display());
        }
        checked += 1;
    }
    assert!(checked > 0, "no JPEG in the folder");
}

#[test]
fn a_damaged_progressive_photo_still_fails_clearly_or_decodes() {
    use darkroom_imaging::decode_at_least;
    let whole = fixture("coffee-progressive.jpg");
    // Cut inside the AC scans, the DC ones intact: the general decoder's verdict stands
    // (the file is incomplete), not a thumbnail made from half a file.
    let cut = &whole[..whole.len() * 2 / 3];
    let error = decode_at_least(cut, limits(), 50).unwrap_err();
    assert!(matches!(error, ImagingError::Corrupt(_)), "{error:?}");
    // Garbage in the DC data: no panic; if some decoder still makes a picture of it (the DC
    // reader refuses it, a lenient full decoder may not), it is the whole photo, at a size
    // that keeps its shape.
    let mut damaged = whole.clone();
    let sos = damaged.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    for byte in &mut damaged[sos + 20..sos + 60] {
        *byte ^= 0x5A;
    }
    if let Ok(photo) = decode_at_least(&damaged, limits(), 50) {
        assert_eq!((photo.frame.original_width, photo.frame.original_height), (800, 533));
        assert!([(100, 67), (800, 533)].contains(&(photo.width(), photo.height())), "{photo:?}");
    }
}

#[test]
fn a_relative_crop_takes_the_same_part_of_photos_of_any_size() {
    let recipe =
        Recipe::from_json(r#"{"ops":[{"op":"crop","relative":{"x":0.5,"y":0,"width":0.5,"height":0.5}}]}"#).unwrap();
    for name in ["astronaut.jpg", "coffee.jpg", "rocket.jpg"] {
        let photo = decode(&fixture(name), limits()).unwrap();
        let (width, height) = (photo.width(), photo.height());
        let cropped = apply_ops(photo, &recipe.ops).unwrap();
        assert_eq!(cropped.width(), width - (width as f64 * 0.5).round() as u32, "{name}");
        assert_eq!(cropped.height(), (height as f64 * 0.5).round() as u32, "{name}");
    }
}

#[test]
#[cfg(feature = "avif")]
fn avif_results_are_avif_files_smaller_than_jpeg_with_their_exif() {
    let photo = decode(&fixture("coffee-camera-exif.jpg"), limits()).unwrap();
    assert!(photo.exif.is_some(), "the fixture has EXIF");
    let avif = darkroom_imaging::encode_result(
        &photo,
        OutputFormat::Avif,
        70,
        Some(8),
        darkroom_core::MetadataPolicy::NoLocation,
    )
    .unwrap();
    // An ISO-BMFF file whose brand is AVIF.
    assert_eq!(&avif[4..12], b"ftypavif", "{:?}", &avif[..16]);
    let jpeg = encode(&photo, OutputFormat::Jpeg, 85).unwrap();
    assert!(avif.len() < jpeg.len(), "AVIF {} bytes, JPEG {} bytes", avif.len(), jpeg.len());
    // The EXIF item is there, with the camera's make kept and no GPS (the policy applied).
    let has = |needle: &[u8]| avif.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"Exif"), "an Exif item");
    // Without EXIF (strip), none.
    let stripped =
        darkroom_imaging::encode_result(&photo, OutputFormat::Avif, 70, Some(8), darkroom_core::MetadataPolicy::Strip)
            .unwrap();
    assert!(!stripped.windows(4).any(|w| w == b"Exif"));
}

#[test]
fn an_avif_result_too_large_to_encode_is_a_clear_error() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"recolor","mode":"sepia"}],"format":"avif"}"#).unwrap();
    let error = darkroom_imaging::dry_run(&recipe, 9000, 6000).map(|_| ()).unwrap_err();
    assert!(error.to_string().contains("AVIF") && error.to_string().contains("thumbnail"), "{error}");
    assert_eq!(darkroom_imaging::dry_run(&recipe, 6000, 4000).unwrap(), (6000, 4000));
}
