//! `POST /api/v1/preview`: the recipe's result at preview size, nothing stored.

use crate::helpers::*;
use image::GenericImageView;

fn preview(base: &str, photo: &[u8], recipe: &str, original: Option<(u32, u32)>) -> Reply {
    let (width, height) = original.map(|(w, h)| (w.to_string(), h.to_string())).unzip();
    let mut parts = vec![Part::Text("recipe", recipe), Part::File("photo", "photo.jpg", photo)];
    if let (Some(width), Some(height)) = (&width, &height) {
        parts.push(Part::Text("original_width", width));
        parts.push(Part::Text("original_height", height));
    }
    let (content_type, body) = multipart(&parts);
    post(&format!("{base}/api/v1/preview"), &[], &content_type, &body)
}

#[test]
fn a_preview_runs_the_recipe_on_a_reduced_copy_and_stores_nothing() {
    let app = TestApp::serve(&Backend::Local, &[]);
    let base = app.server.url();
    let astronaut = fixture("astronaut.jpg"); // 512×512
    let recipe = r#"{"ops":[{"op":"crop","x":0,"y":0,"width":256,"height":128},{"op":"recolor","mode":"grayscale"}]}"#;

    // The photo as it is: the box is cut in its pixels.
    let full = preview(base, &astronaut, recipe, None);
    assert_eq!(full.status, 200, "{}", full.text());
    assert_eq!(full.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode(&full.body).dimensions(), (256, 128));

    // A copy the browser shrank to half, naming the original's size: the same box of the
    // original, at the copy's scale.
    let half = decode(&astronaut).resize_exact(256, 256, image::imageops::FilterType::Triangle);
    let mut copy = Vec::new();
    half.write_to(&mut std::io::Cursor::new(&mut copy), image::ImageFormat::Jpeg).unwrap();
    let reduced = preview(base, &copy, recipe, Some((512, 512)));
    assert_eq!(reduced.status, 200, "{}", reduced.text());
    let image = decode(&reduced.body);
    assert_eq!(image.dimensions(), (128, 64));
    let rgb = image.to_rgb8();
    assert!(rgb.pixels().all(|p| p[0].abs_diff(p[1]) <= 8 && p[1].abs_diff(p[2]) <= 8), "grayscale applied");
    // Both show the same corner of the photo.
    let from_full = decode(&full.body).resize_exact(128, 64, image::imageops::FilterType::Triangle).to_luma8();
    let mean_difference =
        from_full.pixels().zip(image.to_luma8().pixels()).map(|(a, b)| f64::from(a[0].abs_diff(b[0]))).sum::<f64>()
            / (128.0 * 64.0);
    assert!(mean_difference < 12.0, "the reduced copy's preview shows the same region ({mean_difference:.1})");

    // An "original" the copy cannot be a reduction of is refused: a forged 1×1 would blow
    // every box and region up past the copy.
    for forged in [(1, 1), (128, 128), (1024, 512)] {
        let reply = preview(base, &copy, recipe, Some(forged));
        assert_eq!(reply.status, 400, "{forged:?}: {}", reply.text());
        assert!(reply.text().contains("cannot be the original"), "{}", reply.text());
    }

    // Bad input gets clear errors.
    let bad_recipe = preview(base, &astronaut, r#"{"ops":[{"op":"thumbnail","size":0}]}"#, None);
    assert_eq!((bad_recipe.status, bad_recipe.json()["error"]["code"].as_str()), (400, Some("invalid_recipe")));
    let not_photo = preview(base, b"just some text, not a photo", recipe, None);
    assert_eq!((not_photo.status, not_photo.json()["error"]["code"].as_str()), (400, Some("unsupported_format")));
    let outside =
        preview(base, &astronaut, r#"{"ops":[{"op":"crop","x":500,"y":500,"width":100,"height":100}]}"#, None);
    assert_eq!(outside.status, 400, "{}", outside.text());
    // A big photo is brought down to preview size.
    let big = preview(base, &fixture("rocket.jpg"), r#"{"ops":[{"op":"recolor","mode":"sepia"}]}"#, None);
    assert_eq!(big.status, 200);
    let (width, height) = decode(&big.body).dimensions();
    assert!(width.max(height) <= 1024);

    assert_eq!(app.stored_jobs(), Some(0), "a preview stores nothing");
}
