//! The API at scale: the photo limit under batches racing for it, the job view streamed
//! live to several watchers, and outputs served as immutable files.

use crate::api::{PHOTOS, RECIPE};
use crate::helpers::*;
use std::time::Duration;

crate::on_every_backend!(
    the_photo_limit_holds_when_batches_race_for_the_last_seats,
    the_job_view_streams_live_until_the_job_is_finished,
    outputs_are_immutable_files_the_browser_keeps,
);

/// Eight batches of two photos sent at once to a job with room for eight more: the limit
/// holds (each photo takes a seat with a conditional create), no batch gets more than it
/// should, and every photo that was refused is told why.
fn the_photo_limit_holds_when_batches_race_for_the_last_seats(backend: Backend) {
    let app = TestApp::serve(&backend, &["--max-photos", "10"]);
    let base = app.server.url().to_owned();
    let photo = fixture("chelsea.jpg");
    let created =
        create_job(&base, r#"{"ops":[{"op":"thumbnail","size":64}]}"#, &[("a.jpg", &photo), ("b.jpg", &photo)]);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let (id, token) = (job["id"].as_str().unwrap().to_owned(), job["owner_token"].as_str().unwrap().to_owned());
    let start = std::sync::Arc::new(std::sync::Barrier::new(8));
    let batches: Vec<_> = (0..8)
        .map(|batch| {
            let (base, id, token, photo, start) =
                (base.clone(), id.clone(), token.clone(), photo.clone(), start.clone());
            std::thread::spawn(move || {
                let (first, second) = (format!("{batch}-1.jpg"), format!("{batch}-2.jpg"));
                let (content_type, body) =
                    multipart(&[Part::File("photos", &first, &photo), Part::File("photos", &second, &photo)]);
                start.wait();
                post(&format!("{base}/api/v1/jobs/{id}/photos"), &[("X-Owner-Token", &token)], &content_type, &body)
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for batch in batches {
        let reply = batch.join().unwrap();
        let body = reply.json();
        assert!(reply.status == 201 || reply.status == 400, "{}: {}", reply.status, reply.text());
        accepted += body["photos"].as_array().map_or(0, Vec::len);
        for rejected in body["rejected"].as_array().into_iter().flatten() {
            assert_eq!(rejected["error"]["code"], "too_many_photos", "{body:#}");
            refused += 1;
        }
    }
    assert_eq!((accepted, refused), (8, 8), "8 seats were left for 16 photos");
    let view = wait_for_job(&base, &id, Duration::from_secs(120));
    assert_eq!(view["photos"].as_array().unwrap().len(), 10, "{view:#}");
    assert_eq!(view["state"], "done", "{view:#}");
}

/// `GET /api/v1/jobs/{id}/events`: server-sent events carrying the view each time it changes,
/// ending with the finished view; several watchers of one job each get the whole story.
fn the_job_view_streams_live_until_the_job_is_finished(backend: Backend) {
    use std::io::BufRead;
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url().to_owned();
    let files: Vec<(&str, Vec<u8>)> = PHOTOS.iter().map(|name| (*name, fixture(name))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let created = create_job(&base, RECIPE, &refs);
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let watchers: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("{base}/api/v1/jobs/{id}/events");
            std::thread::spawn(move || {
                let response = agent().get(&url).call().unwrap();
                assert_eq!(response.headers().get("content-type").unwrap(), "text/event-stream");
                let reader = std::io::BufReader::new(response.into_body().into_reader());
                // Every `data:` line of a `view` event, in order, until the server ends the stream.
                let mut views = Vec::new();
                let mut event = String::new();
                for line in reader.lines() {
                    let line = line.unwrap();
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = name.to_owned();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        if event == "view" {
                            views.push(serde_json::from_str::<serde_json::Value>(data).unwrap());
                        }
                    }
                }
                views
            })
        })
        .collect();
    for watcher in watchers {
        let views = watcher.join().unwrap();
        let last = views.last().expect("at least the finished view");
        assert_eq!(last["state"], "done", "the stream ends with the finished job: {last:#}");
        assert_eq!(last["counts"]["done"], PHOTOS.len());
        assert!(views.windows(2).all(|pair| pair[0] != pair[1]), "a view is sent only when it changed");
    }
    // A job that does not exist: 404, not an empty stream.
    assert_eq!(get(&format!("{base}/api/v1/jobs/0123456789abcdefghjkmnpqrs/events")).status, 404);
}

/// The view's output URLs name one attempt's files: served with a year's `immutable` caching
/// and an ETag, a repeat answered 304 from the ETag alone; a download is named after the photo.
fn outputs_are_immutable_files_the_browser_keeps(backend: Backend) {
    let app = TestApp::serve(&backend, &[]);
    let base = app.server.url().to_owned();
    let created = create_job(&base, RECIPE, &[("holiday.png", &fixture("coffee.png"))]);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let view = wait_for_job(&base, &id, Duration::from_secs(120));
    let photo = &view["photos"][0];
    for output in photo["outputs"].as_array().unwrap() {
        let url = output["url"].as_str().unwrap();
        let name = output["name"].as_str().unwrap();
        assert!(url.starts_with(&format!("/jobs/{id}/photos/{}/a1/{name}.", photo["id"].as_str().unwrap())), "{url}");
        let first = get(&app.url(url));
        assert_eq!(first.status, 200, "{url}");
        assert!(first.header("cache-control").unwrap().contains("immutable"), "{url}");
        let etag = first.header("etag").unwrap().to_owned();
        let again = reply(agent().get(&app.url(url)).header("If-None-Match", &etag).call());
        assert_eq!(again.status, 304, "{url}");
        assert!(again.body.is_empty());
    }
    let result = photo["outputs"].as_array().unwrap().iter().find(|o| o["name"] == "result").unwrap();
    let download = get(&app.url(&format!("{}?download=1", result["url"].as_str().unwrap())));
    assert_eq!(download.header("content-disposition"), Some("attachment; filename=\"holiday.jpg\""));
    // Addresses that are not an attempt's output are not found, whatever they try.
    let photo_id = photo["id"].as_str().unwrap();
    for bad in ["a1/original.jpg", "a1/result.exe", "ax/result.jpg", "a1/..%2F..%2Fjob.json", "a99/result.jpg"] {
        assert_eq!(get(&app.url(&format!("/jobs/{id}/photos/{photo_id}/{bad}"))).status, 404, "{bad}");
    }
}
