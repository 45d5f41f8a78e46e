//! An image watermark: a PNG sent with the job (an `assets` part), named by the recipe,
//! drawn on every result by the worker, on the preview by the web tier; a missing or
//! unreadable one refused at once, with the part to send.

use crate::helpers::*;
use std::time::Duration;

crate::on_every_backend!(an_image_watermark_sent_with_the_job_marks_every_result,);

/// A 40×20 logo: opaque red on the left half, transparent on the right.
fn logo_png() -> Vec<u8> {
    let logo = image::RgbaImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgba([255, 0, 0, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(logo)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

const RECIPE: &str = r#"{"ops":[{"op":"thumbnail","size":400},{"op":"watermark","image":"logo.png","opacity":1,"size":0.1,"position":"top-left"}],"format":"png"}"#;

fn is_red(pixel: image::Rgba<u8>) -> bool {
    pixel[0] > 230 && pixel[1] < 30 && pixel[2] < 30
}

fn an_image_watermark_sent_with_the_job_marks_every_result(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url();
    let (astronaut, logo) = (fixture("astronaut.jpg"), logo_png());
    let send = |recipe: &str, assets: &[(&str, &[u8])]| {
        let mut parts = vec![Part::Text("recipe", recipe), Part::File("photos", "astronaut.jpg", &astronaut)];
        parts.extend(assets.iter().map(|(name, bytes)| Part::File("assets", name, bytes)));
        let (content_type, body) = multipart(&parts);
        post(&format!("{base}/api/v1/jobs"), &[], &content_type, &body)
    };

    // Not sent, or not a PNG: refused before anything is stored, saying what to send.
    let missing = send(RECIPE, &[]);
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert_eq!(missing.json()["error"]["code"], "invalid_recipe", "{}", missing.text());
    assert!(missing.text().contains("\\\"assets\\\""), "names the part to send: {}", missing.text());
    let not_png = send(RECIPE, &[("logo.png", b"just some text")]);
    assert_eq!(not_png.status, 400, "{}", not_png.text());
    assert!(not_png.text().contains("not a readable PNG"), "{}", not_png.text());
    // The same name twice: which one would be drawn? Refused.
    let twice = send(RECIPE, &[("logo.png", b"garbage first"), ("logo.png", &logo)]);
    assert_eq!(twice.status, 400, "{}", twice.text());
    assert!(twice.text().contains("sent twice"), "{}", twice.text());

    // Sent: the 400 px result carries the logo 40 px tall (10% of the short side) with a
    // 20 px margin, top left; its transparent half leaves the photo as it was.
    let created = send(RECIPE, &[("logo.png", &logo)]);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let (id, token) = (job["id"].as_str().unwrap().to_owned(), job["owner_token"].as_str().unwrap().to_owned());
    let view = wait_for_job(base, &id, Duration::from_secs(60));
    assert_eq!(view["state"], "done", "{view:#}");
    let result = decode(&get(&app.url(output_url(&view["photos"][0], "result"))).body).to_rgba8();
    assert_eq!(result.dimensions(), (400, 400));
    for (x, y) in [(22, 22), (40, 40), (58, 58)] {
        assert!(is_red(*result.get_pixel(x, y)), "logo at ({x},{y}): {:?}", result.get_pixel(x, y));
    }
    for (x, y) in [(70, 40), (40, 70), (10, 10)] {
        assert!(!is_red(*result.get_pixel(x, y)), "photo at ({x},{y}): {:?}", result.get_pixel(x, y));
    }

    // Reprocessing may use the job's PNG, not one it never got.
    let photo_id = view["photos"][0]["id"].as_str().unwrap();
    let reprocess = |recipe: &str| {
        post(
            &format!("{base}/api/v1/jobs/{id}/photos/{photo_id}/reprocess"),
            &[("X-Owner-Token", &token)],
            "application/json",
            format!(r#"{{"recipe":{recipe}}}"#).as_bytes(),
        )
    };
    let unknown = reprocess(&RECIPE.replace("logo.png", "other.png"));
    assert_eq!(unknown.status, 400, "{}", unknown.text());
    let again = reprocess(&RECIPE.replace("top-left", "bottom-right"));
    assert_eq!(again.status, 202, "{}", again.text());

    // The preview draws it too, from the PNG sent beside the photo.
    let preview_parts = [
        Part::Text("recipe", RECIPE),
        Part::File("photo", "astronaut.jpg", &astronaut),
        Part::File("assets", "logo.png", &logo),
    ];
    let (content_type, body) = multipart(&preview_parts);
    let preview = post(&format!("{base}/api/v1/preview"), &[], &content_type, &body);
    assert_eq!(preview.status, 200, "{}", preview.text());
    let preview = decode(&preview.body).to_rgba8();
    assert!(is_red(*preview.get_pixel(40, 40)), "preview: {:?}", preview.get_pixel(40, 40));

    // The plain form: the watermark's text left empty, a logo chosen (the browser sends its
    // own file name, made safe), and an empty file input as browsers send it.
    let (content_type, body) = multipart(&[
        Part::Text("op_thumbnail", "on"),
        Part::Text("thumbnail_size", "400"),
        Part::Text("op_watermark", "on"),
        Part::Text("watermark_text", ""),
        Part::Text("watermark_position", "top-left"),
        Part::Text("watermark_size", "0.1"),
        Part::Text("watermark_opacity", "1"),
        Part::Text("format", "png"),
        Part::File("assets", "My logo (2).png", &logo),
        Part::File("assets", "", b""),
        Part::File("photos", "astronaut.jpg", &astronaut),
    ]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let response = agent.post(&app.url("/jobs")).header("Content-Type", &content_type).send(&body[..]).unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let view = wait_for_job(base, location.strip_prefix("/jobs/").unwrap(), Duration::from_secs(60));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(view["recipe"]["ops"][1]["image"], "My_logo__2_.png", "{view:#}");
    let result = decode(&get(&app.url(output_url(&view["photos"][0], "result"))).body).to_rgba8();
    assert!(is_red(*result.get_pixel(40, 40)), "form result: {:?}", result.get_pixel(40, 40));
}
