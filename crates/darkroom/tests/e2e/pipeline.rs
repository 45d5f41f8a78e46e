//! Pipeline stages: a recipe cut into segments runs across stage queues, carrying its
//! coordinate frame, and ends in the same result a single stage would give.

use crate::helpers::*;
use image::GenericImageView;
use std::time::Duration;

crate::on_every_backend!(
    a_recipe_spanning_stages_is_forwarded_between_stage_queues,
    red_eye_and_teeth_run_in_the_slow_stage_and_fix_the_photo,
    a_photo_handed_to_a_stage_with_no_worker_shows_as_waiting_there,
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

/// With only quick workers running, a retouching recipe's photo is shown waiting at the slow
/// stage (not "processing", not stuck at quick); a slow worker then finishes it.
fn a_photo_handed_to_a_stage_with_no_worker_shows_as_waiting_there(backend: Backend) {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path();
    if !backend.is_local() {
        backend.setup(data);
    }
    let web = Process::start(&backend, data, &[&["web"], FAST].concat(), true);
    let _status = Process::start(&backend, data, &[&["status"], FAST].concat(), false);
    let quick_args = [&["worker", "--stage", "quick", "--metrics-listen", "127.0.0.1:0"], FAST].concat();
    let _quick = Process::start(&backend, data, &quick_args, true);
    let recipe = r#"{"ops":[{"op":"crop","aspect":"1:1"},{"op":"redeye"},{"op":"thumbnail","size":128}]}"#;
    let created = create_job(web.url(), recipe, &[("portrait.png", &fixture("astronaut-redeye.png"))]);
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let view = wait_for_view(web.url(), &id, Duration::from_secs(60), |v| v["photos"][0]["stage"] == "slow");
    let photo = &view["photos"][0];
    assert_eq!(photo["state"], "queued", "{view:#}");
    assert_eq!(view["state"], "queued", "nothing is running: {view:#}");
    let page = get(&format!("{}/jobs/{id}", web.url())).text();
    assert!(page.contains("waiting for retouching"), "{page}");

    let slow_args = [&["worker", "--stage", "slow", "--metrics-listen", "127.0.0.1:0"], FAST].concat();
    let _slow = Process::start(&backend, data, &slow_args, true);
    let view = wait_for_job(web.url(), &id, Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(
        decode(&get(&format!("{}{}", web.url(), output_url(&view["photos"][0], "result"))).body).dimensions(),
        (128, 128)
    );
}
