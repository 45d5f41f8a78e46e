//! What the job page tells about a job beyond its states (issue 25): its name, the files its
//! uploads left out (kept with the job, not in the tab), each photo's work time, a copy of
//! each original to show before there is a result, reprocessing many photos with another
//! recipe, and the recipe tried on photos' sizes before they are sent.

use crate::helpers::*;
use image::GenericImageView;
use serde_json::{json, Value};
use std::time::Duration;

crate::on_every_backend!(a_job_keeps_its_name_rejected_files_work_times_and_copies_of_its_originals,);

const THUMB_200: &str = r#"{"ops":[{"op":"thumbnail","size":200}]}"#;

fn a_job_keeps_its_name_rejected_files_work_times_and_copies_of_its_originals(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url();
    let notes = b"shopping list: milk, eggs".as_slice();
    let (astronaut, chelsea) = (fixture("astronaut.jpg"), fixture("chelsea.jpg"));
    let (content_type, body) = multipart(&[
        Part::Text("recipe", THUMB_200),
        Part::Text("name", "  Sofia's\nwedding  "),
        Part::Text("rejected", r#"[{"name":"raw/huge.tif","code":"file_too_large","message":"larger than 50 MiB"}]"#),
        Part::File("photos", "astronaut.jpg", &astronaut),
        Part::File("photos", "notes.jpg", notes),
        Part::File("photos", "chelsea.jpg", &chelsea),
        // Regions drawn on one photo are its own: chelsea (file part 2) runs its own recipe.
        Part::Text(
            "photo_recipes",
            r#"{"2":{"ops":[{"op":"redeye","regions":[{"x":100,"y":50,"width":80,"height":40}]},{"op":"thumbnail","size":120}]}}"#,
        ),
    ]);
    let created = post(&format!("{base}/api/v1/jobs"), &[], &content_type, &body);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let (job_id, token) = (job["id"].as_str().unwrap().to_owned(), job["owner_token"].as_str().unwrap().to_owned());
    let owner = [("X-Owner-Token", token.as_str())];

    // A later batch with nothing acceptable is refused, and still listed on the job.
    let (content_type, body) = multipart(&[Part::File("photos", "empty.png", b"")]);
    let refused = post(&format!("{base}/api/v1/jobs/{job_id}/photos"), &owner, &content_type, &body);
    assert_eq!(refused.status, 400, "{}", refused.text());

    // Copies of the originals exist from the start: upright, small, without metadata.
    let view = get(&format!("{base}/api/v1/jobs/{job_id}")).json();
    for photo in view["photos"].as_array().unwrap() {
        let copy = get(&app.url(photo["original_thumb_url"].as_str().unwrap()));
        assert_eq!(copy.status, 200, "{}", copy.text());
        assert_eq!(copy.header("content-type"), Some("image/jpeg"));
        assert!(copy.header("cache-control").unwrap().contains("immutable"));
        let image = decode(&copy.body);
        assert_eq!(image.width().max(image.height()), 320.min(original_long_side(photo["name"].as_str().unwrap())));
        assert!(!copy.body.windows(4).any(|w| w == b"Exif"), "the copy carries no EXIF");
    }

    let view = wait_for_view(base, &job_id, Duration::from_secs(120), |view| {
        view["state"] == "done" && view["rejected"].as_array().is_some_and(|r| r.len() == 3)
    });
    assert_eq!(view["name"], "Sofia's wedding", "{view:#}");
    let rejected: Vec<&str> =
        view["rejected"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        rejected,
        ["notes.jpg", "huge.tif", "empty.png"],
        "refused by the server, by the browser, later: {view:#}"
    );
    assert_eq!(view["rejected"][0]["error"]["code"], "unsupported_format", "{view:#}");
    assert_eq!(view["rejected"][1]["error"]["code"], "file_too_large", "{view:#}");
    for photo in view["photos"].as_array().unwrap() {
        let result = decode(&get(&app.url(output_url(photo, "result"))).body);
        let long_side = result.width().max(result.height());
        assert_eq!(long_side, if photo["name"] == "chelsea.jpg" { 120 } else { 200 }, "{photo:#}");
        assert!(photo["work_ms"].is_u64(), "a done photo says how long it took: {photo:#}");
        assert!(photo["added_at"].as_u64().unwrap() <= photo["updated_at"].as_u64().unwrap());
    }
    let page = get(&app.url(&format!("/jobs/{job_id}"))).text();
    assert!(page.contains("Sofia&#x27;s wedding") || page.contains("Sofia&#39;s wedding"), "the page is named");
    assert!(
        page.contains("notes.jpg") && page.contains("processed in"),
        "the page lists what was left out and the times"
    );

    // A recipe of its own that is not a recipe refuses the batch, naming it.
    let (content_type, body) = multipart(&[
        Part::File("photos", "astronaut.jpg", &astronaut),
        Part::Text("photo_recipes", r#"{"0":{"ops":[{"op":"thumbnail"}]}}"#),
    ]);
    let refused = post(&format!("{base}/api/v1/jobs/{job_id}/photos"), &owner, &content_type, &body);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("photo_recipes[0]"), "{}", refused.text());

    // Nothing failed: retrying the failed ones with another recipe starts nothing.
    let again = |photos: &str, recipe: Value| {
        let body = json!({ "recipe": recipe, "photos": photos }).to_string();
        post(&format!("{base}/api/v1/jobs/{job_id}/reprocess"), &owner, "application/json", body.as_bytes())
    };
    let none = again("failed", json!({"ops":[{"op":"thumbnail","size":100}]}));
    assert_eq!(none.status, 202, "{}", none.text());
    assert_eq!(none.json()["retried"].as_array().unwrap().len(), 0);
    let refused = post(
        &format!("{base}/api/v1/jobs/{job_id}/reprocess"),
        &[],
        "application/json",
        json!({"recipe": {"ops":[{"op":"thumbnail","size":100}]}}).to_string().as_bytes(),
    );
    assert_eq!(refused.status, 404, "only the owner reprocesses");
    let bad = again("all", json!({"ops":[{"op":"thumbnail"}]}));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let all = again("all", json!({"ops":[{"op":"thumbnail","size":100}],"format":"png"}));
    assert_eq!(all.status, 202, "{}", all.text());
    assert_eq!(all.json()["retried"].as_array().unwrap().len(), 2);
    let view = wait_for_view(base, &job_id, Duration::from_secs(120), |view| {
        view["state"] == "done" && view["photos"].as_array().unwrap().iter().all(|p| p["attempt"] == 2)
    });
    for photo in view["photos"].as_array().unwrap() {
        let result = get(&app.url(output_url(photo, "result")));
        assert_eq!(result.header("content-type"), Some("image/png"));
        assert_eq!(decode(&result.body).dimensions().0.max(decode(&result.body).dimensions().1), 100);
    }

    // Once the job is deleted, its copies are gone too.
    let first_copy = view["photos"][0]["original_thumb_url"].as_str().unwrap().to_owned();
    assert_eq!(delete(&format!("{base}/api/v1/jobs/{job_id}"), &owner).status, 204);
    assert_eq!(get(&app.url(&first_copy)).status, 404);

    // The recipe tried on sizes alone: a box drawn on a large photo misses a small one.
    let check = |body: Value| {
        post(&format!("{base}/api/v1/recipes/check"), &[], "application/json", body.to_string().as_bytes())
    };
    let checked = check(json!({
        "recipe": {"ops":[{"op":"crop","x":300,"y":300,"width":200,"height":200},{"op":"customize","border":{"width":10,"color":"#ffffff"}}]},
        "photos": [{"name":"big.jpg","width":512,"height":512},{"name":"small.jpg","width":451,"height":300},{"name":"huge.jpg","width":50000,"height":50000}],
    }));
    assert_eq!(checked.status, 200, "{}", checked.text());
    let checked = checked.json();
    assert_eq!(checked["failing"], 2, "{checked:#}");
    assert_eq!(checked["photos"][0]["ok"], true);
    assert_eq!(
        (checked["photos"][0]["result_width"].as_u64(), checked["photos"][0]["result_height"].as_u64()),
        (Some(220), Some(220))
    );
    assert_eq!(checked["photos"][1]["ok"], false);
    assert!(
        checked["photos"][1]["error"]["message"].as_str().unwrap().contains("does not lie inside the 451×300 photo"),
        "{checked:#}"
    );
    assert_eq!(checked["photos"][2]["error"]["code"], "too_many_pixels", "{checked:#}");
    assert_eq!(check(json!({"recipe": {"ops": []}, "photos": []})).status, 400, "an empty recipe is refused");
    let many: Vec<Value> = (0..5001).map(|i| json!({"name": format!("{i}.jpg"), "width": 10, "height": 10})).collect();
    assert_eq!(check(json!({"recipe": {"ops":[{"op":"thumbnail","size":10}]}, "photos": many})).status, 400);
}

/// The long side of a fixture, upright.
fn original_long_side(name: &str) -> u32 {
    let image = decode(&fixture(name));
    image.width().max(image.height())
}
