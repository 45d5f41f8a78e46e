//! The operation registry as served (`GET /api/v1/operations`), and the operation added
//! through it alone (a vignette: its code, its registry entry, its tests): listed with its
//! schema and this deployment's stage, run by a job, drawn by the preview, and offered by
//! the plain form.

use crate::helpers::*;
use std::time::Duration;

crate::on_every_backend!(a_vignette_added_through_the_registry_alone_runs_in_a_job,);

fn vignette_of(operations: &serde_json::Value) -> &serde_json::Value {
    operations["operations"].as_array().unwrap().iter().find(|op| op["name"] == "vignette").expect("vignette listed")
}

#[test]
fn the_registry_lists_every_operation_with_its_schema_and_the_stage_it_runs_in_here() {
    let app = TestApp::serve(&Backend::Local, &["--stage-map", "redeye=slow,whiten_teeth=slow,vignette=slow"]);
    let reply = get(&app.url("/api/v1/operations"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let operations = reply.json();
    let names: Vec<&str> =
        operations["operations"].as_array().unwrap().iter().map(|op| op["name"].as_str().unwrap()).collect();
    for name in [
        "redeye",
        "whiten_teeth",
        "straighten",
        "crop",
        "auto_enhance",
        "recolor",
        "vignette",
        "thumbnail",
        "customize",
        "watermark",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let vignette = vignette_of(&operations);
    assert_eq!(vignette["stage"], "slow", "this deployment's stage map");
    assert_eq!(vignette["editor"], "generic");
    assert_eq!(vignette["added_as"]["op"], "vignette");
    assert_eq!(vignette["params"][0]["name"], "strength");
    assert_eq!(vignette["params"][0]["max"], 1.0);
    assert!(vignette["schema"].to_string().contains("radius"), "its schema: {}", vignette["schema"]);
    for operation in operations["operations"].as_array().unwrap() {
        assert!(operation["schema"].is_object(), "{} has its schema", operation["name"]);
    }
    // The upload page's plain form offers it, from the registry.
    let page = get(&app.url("/")).text();
    assert!(page.contains(r#"name="op_vignette""#) && page.contains(r#"name="vignette_strength""#));
    assert!(page.contains(r#"id="darkroom-operations""#), "the builder's registry is embedded");
}

/// A job with a vignette: its result's corners darker than its middle, by about the
/// strength asked; the preview draws the same.
fn a_vignette_added_through_the_registry_alone_runs_in_a_job(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let recipe =
        r#"{"ops":[{"op":"thumbnail","size":256},{"op":"vignette","strength":0.8,"radius":0.2}],"format":"png"}"#;
    // A photo of one flat grey: any darkening is the vignette's.
    let grey = image::RgbImage::from_pixel(512, 384, image::Rgb([180, 180, 180]));
    let mut photo = Vec::new();
    image::DynamicImage::ImageRgb8(grey)
        .write_to(&mut std::io::Cursor::new(&mut photo), image::ImageFormat::Png)
        .unwrap();
    let created = create_job(app.server.url(), recipe, &[("grey.png", &photo)]);
    assert_eq!(created.status, 201, "{}", created.text());
    let view = wait_for_job(app.server.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(view["state"], "done", "{view:#}");
    let result = decode(&get(&app.url(output_url(&view["photos"][0], "result"))).body).to_rgb8();
    assert_eq!(result.dimensions(), (256, 192));
    let (middle, corner) = (result.get_pixel(128, 96)[0], result.get_pixel(0, 0)[0]);
    assert!(middle >= 178, "the middle kept: {middle}");
    assert!((28..=60).contains(&corner), "a corner darkened by about 0.8: {corner}");

    let (content_type, body) = multipart(&[Part::Text("recipe", recipe), Part::File("photo", "grey.png", &photo)]);
    let preview = post(&app.url("/api/v1/preview"), &[], &content_type, &body);
    assert_eq!(preview.status, 200, "{}", preview.text());
    let preview = decode(&preview.body).to_rgb8();
    assert!(preview.get_pixel(0, 0)[0] < 70 && preview.get_pixel(128, 96)[0] > 170, "the preview draws it too");
}
