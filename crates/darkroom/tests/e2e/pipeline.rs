//! Pipeline stages: a recipe cut into segments runs across stage queues, carrying its
//! coordinate frame, and ends in the same result a single stage would give.

use crate::helpers::*;
use image::GenericImageView;
use std::time::Duration;

crate::on_every_backend!(
    a_recipe_spanning_stages_is_forwarded_between_stage_queues,
    red_eye_and_teeth_run_in_the_slow_stage_and_fix_the_photo
);

fn red_eye_and_teeth_run_in_the_slow_stage_and_fix_the_photo(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let recipe = r#"{"ops":[{"op":"redeye"},{"op":"whiten_teeth"},{"op":"crop","x":150,"y":50,"width":160,"height":120}],"format":"png"}"#;
    let created = create_job(app.server.url(), recipe, &[("portrait.png", &fixture("astronaut-redeye.png"))]);
    assert_eq!(created.status, 201, "{}", created.text());
    let view = wait_for_job(app.server.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    let result = decode(&get(&app.url(output_url(&view["photos"][0], "result"))).body).to_rgb8();
    assert_eq!(result.dimensions(), (160, 120));
    // The painted pupils (at 201..209 × 96..104 and 241..249 × 99..107 in the original) are
    // no longer red in the crop that starts at (150, 50).
    for (x0, y0) in [(201 - 150, 96 - 50), (241 - 150, 99 - 50)] {
        let red = (0..8).flat_map(|dy| (0..8).map(move |dx| (x0 + dx, y0 + dy))).filter(|&(x, y)| {
            let [r, g, b] = result.get_pixel(x, y).0;
            i32::from(r) - i32::from(g.max(b)) > 60
        });
        assert_eq!(red.count(), 0, "red pupil left at ({x0}, {y0})");
    }
}

fn a_recipe_spanning_stages_is_forwarded_between_stage_queues(backend: Backend) {
    // recolor runs in its own stage here, so thumbnail → recolor → box crop is quick → slow → quick.
    let app = TestApp::serve(&backend, &["--stage-map", "recolor=slow"]);
    let recipe = r#"{"ops":[{"op":"thumbnail","size":320},{"op":"recolor","mode":"grayscale"},{"op":"crop","x":0,"y":0,"width":320,"height":213}]}"#;
    let created = create_job(app.server.url(), recipe, &[("rocket.jpg", &fixture("rocket.jpg"))]);
    assert_eq!(created.status, 201, "{}", created.text());
    let view = wait_for_job(app.server.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    let photo = &view["photos"][0];
    // The box is in original pixels (640×427): its top-left 320×213 is the top-left
    // quarter, which after the thumbnail to 320 px is 160×107 — the frame crossed stages.
    let result = decode(&get(&app.url(output_url(photo, "result"))).body);
    assert_eq!(result.dimensions(), (160, 107));
    let names: Vec<&str> = photo["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"preview") && names.contains(&"thumb"), "outputs of every segment are reported: {names:?}");
    let rgb = result.to_rgb8();
    assert!(
        rgb.pixels().all(|p| p[0].abs_diff(p[1]) <= 8 && p[1].abs_diff(p[2]) <= 8),
        "the slow stage's grayscale is in the result"
    );
}
