//! The HTTP API and pages of `darkroom serve`, against real photos.

use crate::helpers::*;
use image::GenericImageView;
use std::time::Duration;

crate::on_every_backend!(
    serve_processes_a_job_of_real_photos_end_to_end,
    a_corrupt_photo_fails_with_a_reason_while_the_others_finish,
    bad_requests_get_clear_json_errors,
    only_the_owner_changes_a_job_and_batches_are_idempotent,
    the_plain_html_form_creates_a_job_without_javascript,
    an_iphone_heic_photo_is_taken_or_refused_by_what_the_build_decodes,
    a_cameras_details_stay_without_the_location_and_the_zip_is_dated_when_it_was_taken,
);

pub const RECIPE: &str = r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"recolor","mode":"grayscale"},{"op":"thumbnail","size":300}],"format":"jpeg","quality":90}"#;

pub const PHOTOS: [&str; 5] = ["astronaut.jpg", "chelsea.jpg", "coffee.png", "rocket.jpg", "coffee-exif-rotate90.jpg"];

fn serve_processes_a_job_of_real_photos_end_to_end(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let files: Vec<(&str, Vec<u8>)> = PHOTOS.iter().map(|name| (*name, fixture(name))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let created = create_job(app.server.url(), RECIPE, &refs);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    assert_eq!(job["photos"].as_array().unwrap().len(), PHOTOS.len());
    assert!(job["owner_token"].as_str().unwrap().len() >= 26);
    assert!(created.header("set-cookie").unwrap().contains("HttpOnly"));

    let view = wait_for_job(app.server.url(), job["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(view["counts"]["done"], PHOTOS.len());
    let names: Vec<&str> = view["photos"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, PHOTOS, "photos keep their upload order");
    for photo in view["photos"].as_array().unwrap() {
        // Every fixture is wider than 4:3 or square, and upright after EXIF orientation:
        // the 4:3 crop fitted into 300 px is 300×225 for all of them.
        let result = get(&app.url(output_url(photo, "result")));
        assert_eq!(result.status, 200);
        assert_eq!(result.header("content-type"), Some("image/jpeg"));
        let image = decode(&result.body);
        assert_eq!(image.dimensions(), (300, 225), "{}", photo["name"]);
        let rgb = image.to_rgb8();
        let max_channel_spread =
            rgb.pixels().map(|p| p[0].max(p[1]).max(p[2]) - p[0].min(p[1]).min(p[2])).max().unwrap();
        assert!(max_channel_spread <= 8, "grayscale result has colour ({max_channel_spread}) in {}", photo["name"]);

        let thumb = decode(&get(&app.url(output_url(photo, "thumb"))).body);
        assert!(thumb.width().max(thumb.height()) <= 256);
        let preview = decode(&get(&app.url(output_url(photo, "preview"))).body);
        // The uncropped original at the result's scale: as wide as the crop or wider, and
        // no larger than the compare view needs (each fixture is under 700 px).
        assert!((300..=400).contains(&preview.width()), "the preview is the uncropped original at the result's scale");
        let original = get(&app.url(photo["original_url"].as_str().unwrap()));
        assert_eq!(original.status, 200);
    }

    let archive = get(&app.url(&format!("/api/v1/jobs/{}/archive.zip", job["id"].as_str().unwrap())));
    assert_eq!(archive.status, 200);
    assert_eq!(archive.header("content-type"), Some("application/zip"));
    let entries = zip_entry_names(&archive.body);
    // Results are JPEG, so coffee.png is coffee.jpg inside the archive.
    assert_eq!(entries, ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "coffee-exif-rotate90.jpg"]);

    let page = get(&app.url(job["url"].as_str().unwrap()));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("astronaut.jpg"));
}

/// Entry names from a zip's central directory.
fn zip_entry_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(4).position(|w| w == b"PK\x01\x02") {
        let header = at + offset;
        let name_len = u16::from_le_bytes([bytes[header + 28], bytes[header + 29]]) as usize;
        names.push(String::from_utf8_lossy(&bytes[header + 46..header + 46 + name_len]).into_owned());
        at = header + 46 + name_len;
    }
    names
}

fn a_corrupt_photo_fails_with_a_reason_while_the_others_finish(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let whole = fixture("astronaut.jpg");
    let truncated = &whole[..whole.len() * 6 / 10];
    let created = create_job(
        app.server.url(),
        r#"{"ops":[{"op":"thumbnail","size":128}]}"#,
        &[
            ("good.jpg", &fixture("chelsea.jpg")),
            ("cut-short.jpg", truncated),
            ("also-good.png", &fixture("coffee.png")),
        ],
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let view = wait_for_job(app.server.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "partial", "{view:#}");
    let photos = view["photos"].as_array().unwrap();
    let broken = photos.iter().find(|p| p["name"] == "cut-short.jpg").unwrap();
    assert_eq!(broken["state"], "failed");
    assert_eq!(broken["error"]["code"], "processing_failed");
    assert!(broken["error"]["message"].as_str().unwrap().contains("truncated"), "{broken:#}");
    assert!(broken["outputs"].as_array().unwrap().is_empty());
    for good in photos.iter().filter(|p| p["name"] != "cut-short.jpg") {
        assert_eq!(good["state"], "done", "{good:#}");
    }

    // Retrying starts a new attempt; the same bytes fail the same way, again with a reason.
    let job_id = view["id"].as_str().unwrap();
    let token = created.json()["owner_token"].as_str().unwrap().to_owned();
    let retry =
        post(&app.url(&format!("/api/v1/jobs/{job_id}/retry")), &[("X-Owner-Token", &token)], "application/json", b"");
    assert_eq!(retry.status, 202, "{}", retry.text());
    assert_eq!(retry.json()["retried"][0]["attempt"], 2);
    let view = wait_for_view(app.server.url(), job_id, Duration::from_secs(60), |v| {
        v["photos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "cut-short.jpg" && p["attempt"] == 2 && p["state"] == "failed")
    });
    assert_eq!(view["state"], "partial");
}

fn bad_requests_get_clear_json_errors(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url();

    let unknown = get(&format!("{base}/api/v1/jobs/0123456789abcdefghjkmnpqrs"));
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "not_found");
    assert_eq!(get(&format!("{base}/api/v1/jobs/not-an-id")).json()["error"]["code"], "not_found");

    let malformed =
        create_job(base, r#"{"ops":[{"op":"thumbnail","size":0}]}"#, &[("a.jpg", &fixture("astronaut.jpg"))]);
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["code"], "invalid_recipe");
    assert!(malformed.json()["error"]["message"].as_str().unwrap().contains("ops[0].size"), "{}", malformed.text());

    let not_json = create_job(base, "{not json", &[("a.jpg", &fixture("astronaut.jpg"))]);
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["error"]["code"], "invalid_recipe");

    // Each file is judged on its own bytes; the acceptable one goes on.
    let bomb = fixture("bomb-50000x50000.png");
    let mixed = create_job(
        base,
        r#"{"ops":[{"op":"thumbnail","size":64}]}"#,
        &[
            ("empty.jpg", b""),
            ("notes.jpg", b"just some text, not a photo"),
            ("bomb.png", &bomb),
            ("ok.jpg", &fixture("chelsea.jpg")),
        ],
    );
    assert_eq!(mixed.status, 201, "{}", mixed.text());
    let body = mixed.json();
    assert_eq!(body["photos"].as_array().unwrap().len(), 1);
    let codes: Vec<&str> =
        body["rejected"].as_array().unwrap().iter().map(|r| r["error"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["empty_file", "unsupported_format", "too_many_pixels"]);

    let nothing = create_job(base, r#"{"ops":[{"op":"thumbnail","size":64}]}"#, &[("notes.jpg", b"text")]);
    assert_eq!(nothing.status, 400);
    assert_eq!(nothing.json()["rejected"].as_array().unwrap().len(), 1);

    let missing_page = get(&format!("{base}/jobs/0123456789abcdefghjkmnpqrs"));
    assert_eq!(missing_page.status, 404);
    assert!(missing_page.header("content-type").unwrap().starts_with("text/html"));

    // Nothing of the refused uploads was kept.
    if let Some(jobs) = app.stored_jobs() {
        assert_eq!(jobs, 1, "only the job with an acceptable photo exists");
    }
}

fn only_the_owner_changes_a_job_and_batches_are_idempotent(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url();
    let created = create_job(base, r#"{"ops":[{"op":"thumbnail","size":64}]}"#, &[("a.jpg", &fixture("chelsea.jpg"))]);
    let job = created.json();
    let (id, token) = (job["id"].as_str().unwrap(), job["owner_token"].as_str().unwrap());

    let (content_type, body) = multipart(&[Part::File("photos", "b.jpg", &fixture("rocket.jpg"))]);
    let add_url = format!("{base}/api/v1/jobs/{id}/photos");
    assert_eq!(post(&add_url, &[("X-Owner-Token", "wrong")], &content_type, &body).status, 404);
    let first = post(&add_url, &[("X-Owner-Token", token), ("Idempotency-Key", "batch-1")], &content_type, &body);
    assert_eq!(first.status, 201, "{}", first.text());
    let again = post(&add_url, &[("X-Owner-Token", token), ("Idempotency-Key", "batch-1")], &content_type, &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["photos"], first.json()["photos"]);
    let view = wait_for_job(base, id, Duration::from_secs(60));
    assert_eq!(view["photos"].as_array().unwrap().len(), 2, "the retried batch was added once");

    // Reprocess one photo with another recipe: a new attempt, new output size.
    let photo_id = view["photos"][0]["id"].as_str().unwrap();
    let reprocess_url = format!("{base}/api/v1/jobs/{id}/photos/{photo_id}/reprocess");
    let bad =
        post(&reprocess_url, &[("X-Owner-Token", token)], "application/json", br#"{"recipe":{"ops":[{"op":"spin"}]}}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_recipe");
    let reprocessed = post(
        &reprocess_url,
        &[("X-Owner-Token", token)],
        "application/json",
        br#"{"recipe":{"ops":[{"op":"thumbnail","size":32}],"format":"png"}}"#,
    );
    assert_eq!(reprocessed.status, 202, "{}", reprocessed.text());
    let view = wait_for_view(base, id, Duration::from_secs(60), |v| {
        v["photos"][0]["attempt"] == 2 && v["photos"][0]["state"] == "done"
    });
    let result = get(&format!("{base}{}", output_url(&view["photos"][0], "result")));
    assert_eq!(result.header("content-type"), Some("image/png"));
    assert_eq!(decode(&result.body).width().max(decode(&result.body).height()), 32);

    assert_eq!(delete(&format!("{base}/api/v1/jobs/{id}"), &[]).status, 404, "no token, no delete");
    assert_eq!(delete(&format!("{base}/api/v1/jobs/{id}"), &[("X-Owner-Token", token)]).status, 204);
    assert_eq!(get(&format!("{base}/api/v1/jobs/{id}")).status, 404);
    // A retried delete (its answer lost on the way) succeeds again, for the owner only.
    assert_eq!(delete(&format!("{base}/api/v1/jobs/{id}"), &[("X-Owner-Token", token)]).status, 204);
    assert_eq!(delete(&format!("{base}/api/v1/jobs/{id}"), &[("X-Owner-Token", "not-the-token")]).status, 404);
    if let Some(left) = app.stored_jobs() {
        assert_eq!(left, 0, "every object of the job was deleted");
    }
}

/// Jobs past the retention period are deleted by the status process, with every object.
#[test]
fn jobs_past_the_retention_period_are_deleted_with_everything_in_them() {
    let app = TestApp::serve(&Backend::Local, &["--retention", "3s", "--housekeeping-interval", "1s"]);
    let created = create_job(
        app.server.url(),
        r#"{"ops":[{"op":"thumbnail","size":32}]}"#,
        &[("a.jpg", &fixture("chelsea.jpg"))],
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_for_job(app.server.url(), &id, Duration::from_secs(30))["state"], "done");
    darkroom_testkit::eventually_blocking(Duration::from_secs(30), "the job expires", || {
        get(&app.url(&format!("/api/v1/jobs/{id}"))).status == 404
    });
    darkroom_testkit::eventually_blocking(Duration::from_secs(30), "its objects are swept", || {
        app.stored_jobs() == Some(0)
    });
}

fn the_plain_html_form_creates_a_job_without_javascript(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let page = get(&app.url("/"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("enctype=\"multipart/form-data\""));
    let (content_type, body) = multipart(&[
        Part::Text("op_thumbnail", "on"),
        Part::Text("thumbnail_size", "100"),
        Part::Text("op_recolor", "on"),
        Part::Text("recolor_mode", "sepia"),
        Part::Text("format", "jpeg"),
        Part::File("photos", "cat.jpg", &fixture("chelsea.jpg")),
    ]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let response = agent.post(&app.url("/jobs")).header("Content-Type", &content_type).send(&body[..]).unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let job_id = location.strip_prefix("/jobs/").unwrap();
    let view = wait_for_job(app.server.url(), job_id, Duration::from_secs(60));
    assert_eq!(view["state"], "done");
    assert_eq!(view["recipe"]["ops"][0]["mode"], "sepia");
}

/// A HEIC from a phone: processed upright like a JPEG by a build with the `heic` feature (the
/// test command's), refused at upload with what to do by one without.
fn an_iphone_heic_photo_is_taken_or_refused_by_what_the_build_decodes(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let heic = fixture("coffee-rotate90.heic");
    let created =
        create_job(app.server.url(), RECIPE, &[("IMG_0042.HEIC", &heic), ("coffee.jpg", &fixture("coffee.jpg"))]);
    if !cfg!(feature = "heic") {
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        let rejected = &body["rejected"][0];
        assert_eq!(rejected["name"], "IMG_0042.HEIC", "{body:#}");
        assert_eq!(rejected["error"]["code"], "unsupported_format");
        assert!(rejected["error"]["message"].as_str().unwrap().contains("export them as JPEG"), "{body:#}");
        return;
    }
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    assert_eq!(job["photos"].as_array().unwrap().len(), 2, "{job:#}");
    let view = wait_for_job(app.server.url(), job["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    let photo = &view["photos"][0];
    assert_eq!(photo["name"], "IMG_0042.HEIC");
    // Stored sideways with an irot box: upright, the 4:3 crop fitted into 300 px is 300×225.
    let result = get(&app.url(output_url(photo, "result")));
    assert_eq!(result.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode(&result.body).dimensions(), (300, 225));
    let token = job["owner_token"].as_str().unwrap();
    let original =
        reply(agent().get(&app.url(photo["original_url"].as_str().unwrap())).header("X-Owner-Token", token).call());
    assert_eq!(original.header("content-type"), Some("image/heic"));
    assert_eq!(original.body, heic, "the original is kept as uploaded");
    let archive = get(&app.url(&format!("/api/v1/jobs/{}/archive.zip", job["id"].as_str().unwrap())));
    assert_eq!(zip_entry_names(&archive.body), ["IMG_0042.jpg", "coffee.jpg"]);
}

/// A camera's photo (stored sideways, EXIF orientation 6, with time, camera, lens, artist,
/// copyright, GPS and a serial number) through straighten, auto-enhance and a watermark:
/// the result is upright with orientation 1, keeps what photographers keep and loses the
/// location and the serial number; its zip entry is dated when the photo was taken.
fn a_cameras_details_stay_without_the_location_and_the_zip_is_dated_when_it_was_taken(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let recipe = r#"{"ops":[{"op":"straighten","angle":5},{"op":"auto_enhance"},{"op":"thumbnail","size":300},{"op":"watermark","text":"© Sofia"}]}"#;
    let photo = fixture("coffee-camera-exif.jpg");
    let created = create_job(app.server.url(), recipe, &[("coffee.jpg", &photo)]);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let view = wait_for_job(app.server.url(), job["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(view["state"], "done", "{view:#}");
    let result = get(&app.url(output_url(&view["photos"][0], "result"))).body;
    let image = decode(&result);
    assert!(image.width() == 300 && image.height() < 200, "upright, straightened: {:?}", image.dimensions());
    let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&result)).expect("EXIF kept");
    let field = |tag| exif.get_field(tag, exif::In::PRIMARY).map(|f| f.display_value().to_string());
    assert_eq!(field(exif::Tag::Make).as_deref(), Some("\"Canon\""));
    assert_eq!(field(exif::Tag::DateTimeOriginal).as_deref(), Some("2024-06-01 17:30:05"));
    assert!(field(exif::Tag::Copyright).is_some() && field(exif::Tag::LensModel).is_some());
    assert_eq!(field(exif::Tag::GPSLatitude), None, "no location");
    assert_eq!(field(exif::Tag::BodySerialNumber), None, "no serial number");
    assert_eq!(exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY).and_then(|f| f.value.get_uint(0)), Some(1));
    for output in ["preview", "thumb"] {
        let copy = get(&app.url(output_url(&view["photos"][0], output))).body;
        assert!(!copy.windows(6).any(|w| w == b"Exif\0\0"), "the {output} carries no EXIF");
    }

    let archive = get(&app.url(&format!("/api/v1/jobs/{}/archive.zip", job["id"].as_str().unwrap())));
    assert_eq!(archive.status, 200);
    // The local header's DOS time and date: 17:30:04 (two-second steps) on 2024-06-01.
    let header = archive.body.windows(4).position(|w| w == b"PK\x03\x04").expect("a local file header");
    let time = u16::from_le_bytes([archive.body[header + 10], archive.body[header + 11]]);
    let date = u16::from_le_bytes([archive.body[header + 12], archive.body[header + 13]]);
    assert_eq!(date, ((2024 - 1980) << 9) | (6 << 5) | 1, "dated the day it was taken");
    assert_eq!(time, (17 << 11) | (30 << 5) | 2, "at the time it was taken");
}
