//! Red-eye reduction, teeth whitening and the face-centred crop, measured on a real portrait
//! with painted red pupils at known positions (tests/fixtures/astronaut-redeye.json holds
//! the ground truth).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::recipe::Region;
use darkroom_core::Limits;
use darkroom_imaging::retouch::{redness, reduce_red_eye, whiten_teeth};
use darkroom_imaging::{decode, DecodeLimits, Photo};
use serde_json::Value;

use darkroom_testkit::fixture;

fn photo(name: &str) -> Photo {
    decode(&fixture(name), DecodeLimits::from(Limits::default())).unwrap()
}

fn truth() -> Value {
    serde_json::from_slice(&fixture("astronaut-redeye.json")).unwrap()
}

fn region(value: &Value) -> Region {
    serde_json::from_value(value.clone()).unwrap()
}

fn inside(region: &Region, x: u32, y: u32) -> bool {
    x >= region.x && x < region.x + region.width && y >= region.y && y < region.y + region.height
}

fn rgb(photo: &Photo, x: u32, y: u32) -> [u8; 3] {
    let rgb = photo.image.to_rgb8();
    rgb.get_pixel(x, y).0
}

fn mean_redness(photo: &Photo, region: &Region) -> f32 {
    let image = photo.image.to_rgb8();
    let mut sum = 0.0;
    for y in region.y..region.y + region.height {
        for x in region.x..region.x + region.width {
            sum += redness(image.get_pixel(x, y).0);
        }
    }
    sum / (region.width * region.height) as f32
}

/// Share of pixels outside every `allowed` box that differ between the two photos.
fn changed_outside(before: &Photo, after: &Photo, allowed: &[Region]) -> f64 {
    let (a, b) = (before.image.to_rgb8(), after.image.to_rgb8());
    let (mut changed, mut total) = (0u64, 0u64);
    for (x, y, pixel) in a.enumerate_pixels() {
        if allowed.iter().any(|r| inside(r, x, y)) {
            continue;
        }
        total += 1;
        if pixel.0 != b.get_pixel(x, y).0 {
            changed += 1;
        }
    }
    changed as f64 / total as f64
}

fn unchanged_inside(before: &Photo, after: &Photo, region: &Region) -> bool {
    (region.y..region.y + region.height)
        .all(|y| (region.x..region.x + region.width).all(|x| rgb(before, x, y) == rgb(after, x, y)))
}

fn check_red_eye_result(before: &Photo, after: &Photo) {
    let truth = truth();
    for pupil in truth["pupils"].as_array().unwrap().iter().map(region) {
        let (was, now) = (mean_redness(before, &pupil), mean_redness(after, &pupil));
        assert!(now <= was * 0.3, "redness in {pupil:?} went from {was:.1} to {now:.1}: less than a 70% drop");
    }
    let eyes: Vec<Region> = truth["eyes"].as_array().unwrap().iter().map(region).collect();
    let outside = changed_outside(before, after, &eyes);
    assert!(outside < 0.005, "{:.3}% of pixels outside the eyes changed", outside * 100.0);
    for (name, object) in truth["red_objects"].as_object().unwrap() {
        assert!(unchanged_inside(before, after, &region(object)), "red-eye reduction touched the {name}");
    }
}

#[test]
fn automatic_red_eye_reduction_neutralises_the_pupils_and_nothing_else() {
    let before = photo("astronaut-redeye.png");
    let mut after = before.clone();
    assert_eq!(reduce_red_eye(&mut after, &None), 2, "both pupils found");
    check_red_eye_result(&before, &after);
    // The catch-light stays bright.
    let catch_light = rgb(&after, 203, 99);
    assert!(catch_light.iter().all(|&c| c > 200), "{catch_light:?}");
}

#[test]
fn red_eye_reduction_in_user_regions() {
    let before = photo("astronaut-redeye.png");
    let mut after = before.clone();
    let eyes: Vec<Region> = truth()["eyes"].as_array().unwrap().iter().map(region).collect();
    assert_eq!(reduce_red_eye(&mut after, &Some(eyes)), 2);
    check_red_eye_result(&before, &after);
}

#[test]
fn photos_without_red_eyes_are_left_alone() {
    for name in ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"] {
        let before = photo(name);
        let mut after = before.clone();
        assert_eq!(reduce_red_eye(&mut after, &None), 0, "{name}");
        assert_eq!(before.image.as_bytes(), after.image.as_bytes(), "{name} was changed");
    }
}

/// CIE L*a*b* of an sRGB pixel (D65).
fn lab([r, g, b]: [u8; 3]) -> (f32, f32, f32) {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let (r, g, b) = (linear(r), linear(g), linear(b));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f32| if t > 0.008856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
    (116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z)))
}

fn mean_lab(photo: &Photo, region: &Region) -> (f32, f32) {
    let (mut l, mut b, mut n) = (0.0, 0.0, 0.0);
    for y in region.y..region.y + region.height {
        for x in region.x..region.x + region.width {
            let (pl, _, pb) = lab(rgb(photo, x, y));
            l += pl;
            b += pb;
            n += 1.0;
        }
    }
    (l / n, b / n)
}

#[test]
fn teeth_whitening_lifts_and_neutralises_the_teeth_only() {
    let truth = truth();
    let (teeth, mouth) = (region(&truth["teeth"]), region(&truth["mouth"]));
    for regions in [None, Some(vec![mouth])] {
        let before = photo("astronaut.jpg");
        let mut after = before.clone();
        assert_eq!(whiten_teeth(&mut after, &regions, 0.7), 1, "one mouth whitened");
        let ((l0, b0), (l1, b1)) = (mean_lab(&before, &teeth), mean_lab(&after, &teeth));
        eprintln!("teeth: L* {l0:.1} -> {l1:.1}, b* {b0:.1} -> {b1:.1}");
        assert!(l1 > l0 + 1.0, "L* {l0:.1} -> {l1:.1}: teeth not lighter");
        assert!(b1 < b0 - 2.0, "b* {b0:.1} -> {b1:.1}: teeth not less yellow");
        let outside = changed_outside(&before, &after, &[mouth]);
        assert!(outside < 0.005, "{:.3}% of pixels outside the mouth changed", outside * 100.0);
    }
}

#[test]
fn a_smart_crop_keeps_the_face_that_a_centred_crop_cuts_off() {
    use darkroom_imaging::{apply_ops, faces};
    // The portrait at the left of a wide, empty canvas: the middle square holds no face.
    let portrait = photo("astronaut.jpg").image.to_rgb8();
    let mut canvas = image::RgbImage::from_pixel(1536, 512, image::Rgb([40, 40, 40]));
    image::imageops::replace(&mut canvas, &portrait, 0, 0);
    let wide = Photo::new(image::DynamicImage::ImageRgb8(canvas), None);
    let face = faces::detect_faces(&wide.image)[0];
    let (x, y, w, h) = (face.x as u32, face.y as u32, face.width as u32, face.height as u32);
    let crop = |smart: bool| {
        let recipe =
            darkroom_core::Recipe::from_json(&format!(r#"{{"ops":[{{"op":"crop","aspect":"1:1","smart":{smart}}}]}}"#))
                .unwrap();
        apply_ops(wide.clone(), &recipe.ops).unwrap()
    };
    let smart = crop(true);
    assert_eq!((smart.width(), smart.height()), (512, 512));
    // The whole face box lands inside the smart crop, uncut.
    assert_eq!(smart.frame.map_region(x, y, w, h, 512, 512).map(|(_, _, mw, mh)| (mw, mh)), Some((w, h)));
    // The centred crop (x from 512) misses it entirely.
    assert_eq!(crop(false).frame.map_region(x, y, w, h, 512, 512), None);
}

/// The red-eye fixture scaled up: pupils of 8, 24 and 48 px, on faces 140 to 840 px wide.
fn scaled_red_eye_fixture(factor: u32) -> (Photo, Vec<Region>, Vec<Region>) {
    let base = photo("astronaut-redeye.png").image.to_rgb8();
    let (w, h) = base.dimensions();
    let image = image::imageops::resize(&base, w * factor, h * factor, image::imageops::FilterType::Lanczos3);
    let scale =
        |r: Region| Region { x: r.x * factor, y: r.y * factor, width: r.width * factor, height: r.height * factor };
    let truth = truth();
    let pupils = truth["pupils"].as_array().unwrap().iter().map(|v| scale(region(v))).collect();
    let eyes = truth["eyes"].as_array().unwrap().iter().map(|v| scale(region(v))).collect();
    (Photo::new(image::DynamicImage::ImageRgb8(image), None), pupils, eyes)
}

#[test]
fn red_pupils_of_every_size_are_neutralised_and_nothing_else() {
    for factor in [1, 3, 6] {
        let (before, pupils, eyes) = scaled_red_eye_fixture(factor);
        let mut after = before.clone();
        assert_eq!(reduce_red_eye(&mut after, &None), 2, "both pupils found at {factor}×");
        for pupil in &pupils {
            let (was, now) = (mean_redness(&before, pupil), mean_redness(&after, pupil));
            eprintln!("| pupil {} px | redness {was:.0} → {now:.0} |", pupil.width);
            assert!(now <= was * 0.3, "{factor}×: redness {was:.1} -> {now:.1}");
        }
        let outside = changed_outside(&before, &after, &eyes);
        assert!(outside < 0.005, "{factor}×: {:.3}% changed outside the eyes", outside * 100.0);
    }
}

#[test]
fn a_red_frame_of_glasses_next_to_the_eyes_is_left_alone() {
    let (mut before, _, eyes) = scaled_red_eye_fixture(3);
    // A red bar (the frame of glasses) just above each eye, inside the eye areas.
    let mut image = before.image.to_rgb8();
    for eye in &eyes {
        for y in eye.y.saturating_sub(12)..eye.y.saturating_sub(6) {
            for x in eye.x..eye.x + eye.width {
                image.put_pixel(x, y, image::Rgb([210, 25, 30]));
            }
        }
    }
    before.image = image::DynamicImage::ImageRgb8(image);
    let mut after = before.clone();
    assert_eq!(reduce_red_eye(&mut after, &None), 2, "the pupils are still found");
    for eye in &eyes {
        let frame = Region { x: eye.x, y: eye.y.saturating_sub(12), width: eye.width, height: 6 };
        assert!(unchanged_inside(&before, &after, &frame), "the red frame at {frame:?} was changed");
    }
}
