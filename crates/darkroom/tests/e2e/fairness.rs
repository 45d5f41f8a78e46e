//! Fair sharing (docs/ARCHITECTURE.md, "Fair sharing"): with one worker slot, a job of one
//! photo waits behind about one photo of a 200-photo job, not behind all of it, in both
//! pipeline stages; two tenants with big jobs progress alike; and a crash of the process
//! that holds the queues loses no photo. Asserted on the order in which photos finish,
//! never on wall-clock time.

use crate::helpers::*;
use crate::on_every_backend;
use serde_json::Value;
use std::time::Duration;

/// Every photo stops in both stages (the sleep makes the quick stage's work measurable;
/// red-eye runs in the slow stage).
const RECIPE: &str = r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=30"}},{"op":"redeye"},{"op":"thumbnail","size":256}]}"#;

/// One stage only: each photo finished is one turn taken. Each takes long enough that the
/// first job is still running while the second one uploads, even on a loaded machine (at
/// 30 ms a photo the first job once finished during the second's upload).
const QUICK_RECIPE: &str =
    r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=120"}},{"op":"thumbnail","size":256}]}"#;

fn create_as(base: &str, client: &str, photos: usize) -> String {
    create_with(base, client, photos, RECIPE)
}

fn create_with(base: &str, client: &str, photos: usize, recipe: &str) -> String {
    let photo = fixture("coffee.jpg");
    let names: Vec<String> = (0..photos).map(|i| format!("p{i:03}.jpg")).collect();
    let mut parts = vec![Part::Text("recipe", recipe)];
    parts.extend(names.iter().map(|name| Part::File("photos", name, &photo)));
    let (content_type, body) = multipart(&parts);
    let reply = post(&format!("{base}/api/v1/jobs"), &[("X-Forwarded-For", client)], &content_type, &body);
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// When each photo of a finished job was done (ms, the status process's clock), sorted.
fn done_times(view: &Value) -> Vec<u64> {
    let mut times: Vec<u64> = view["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|photo| photo["state"] == "done")
        .map(|photo| photo["updated_at"].as_u64().unwrap())
        .collect();
    times.sort_unstable();
    times
}

fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Photos done within (from, to].
fn done_between(times: &[u64], from: u64, to: u64) -> usize {
    times.iter().filter(|at| **at > from && **at <= to).count()
}

fn a_one_photo_job_waits_behind_about_one_photo_of_a_big_job(backend: Backend) {
    // One slot, so every photo waits its turn; both clients behind one address are one
    // tenant, whose two jobs take turns.
    let app = TestApp::serve(&backend, &["--concurrency", "1", "--trust-forwarded-for"]);
    let base = app.server.url().to_owned();
    let big = create_as(&base, "192.0.2.1", 200);
    wait_for_view(&base, &big, Duration::from_secs(300), |view| view["counts"]["done"].as_u64() >= Some(2));
    let sent = now_millis();
    let small = create_as(&base, "192.0.2.1", 1);
    let small_view = wait_for_job(&base, &small, Duration::from_secs(600));
    assert_eq!(small_view["state"], "done", "{small_view:#}");
    let small_done = done_times(&small_view)[0];
    let big_view = wait_for_job(&base, &big, Duration::from_secs(900));
    let big_done = done_times(&big_view);
    assert_eq!(big_done.len(), 200, "every photo of the big job is done too");
    // Judged afterwards on the recorded times, so a slow machine does not blur it. First in,
    // first out would finish nearly all 200 first; taking turns, the small photo went
    // through its three segments while the big job finished a few.
    let overtaken = done_between(&big_done, sent, small_done);
    assert!(overtaken <= 12, "the big job finished {overtaken} photos while the one-photo job waited");
    assert!(big_done.iter().filter(|at| **at > small_done).count() >= 150, "the small job was done early");
}

fn two_tenants_with_big_jobs_progress_alike(backend: Backend) {
    let app = TestApp::serve(&backend, &["--concurrency", "1", "--trust-forwarded-for"]);
    let base = app.server.url().to_owned();
    let first = create_with(&base, "192.0.2.10", 60, QUICK_RECIPE);
    wait_for_view(&base, &first, Duration::from_secs(300), |view| view["counts"]["done"].as_u64() >= Some(2));
    let second = create_with(&base, "198.51.100.20", 60, QUICK_RECIPE);
    let first_done = done_times(&wait_for_job(&base, &first, Duration::from_secs(900)));
    let second_done = done_times(&wait_for_job(&base, &second, Duration::from_secs(900)));
    assert_eq!((first_done.len(), second_done.len()), (60, 60));
    // Between the second tenant's first photo and its 21st, the first did about 20 too
    // (first in, first out would have finished all of the first's photos before any of the
    // second's).
    let first_meanwhile = done_between(&first_done, second_done[0], second_done[20]);
    let first_left = first_done.iter().filter(|at| **at > second_done[20]).count();
    assert!(first_left > 0, "the first job ended before the second's 21st photo: nothing to compare");
    assert!(
        (14..=26).contains(&first_meanwhile),
        "the first tenant did {first_meanwhile} photos while the second did 20"
    );
}

fn a_crash_while_jobs_take_turns_loses_no_photo(backend: Backend) {
    let mut app = TestApp::serve(&backend, &["--concurrency", "1", "--trust-forwarded-for"]);
    let base = app.server.url().to_owned();
    let big = create_as(&base, "192.0.2.1", 40);
    let small = create_as(&base, "198.51.100.2", 3);
    wait_for_view(&base, &big, Duration::from_secs(300), |view| view["counts"]["done"].as_u64() >= Some(3));
    // kill -9 with both jobs waiting in the queues and a photo in work.
    app.server.child.kill().unwrap();
    app.server.child.wait().unwrap();
    let mut args = vec!["serve", "--auto-setup", "--concurrency", "1", "--trust-forwarded-for"];
    args.extend_from_slice(FAST);
    app.server = Process::start(&backend, app.data.path(), &args, true);
    let base = app.server.url().to_owned();
    for (job, photos) in [(&small, 3), (&big, 40)] {
        let view = wait_for_job(&base, job, Duration::from_secs(600));
        assert_eq!(view["counts"]["done"], photos, "{view:#}");
        for photo in view["photos"].as_array().unwrap() {
            assert_eq!(photo["attempt"], 1, "no photo was restarted: {photo:#}");
        }
    }
}

on_every_backend!(
    a_one_photo_job_waits_behind_about_one_photo_of_a_big_job,
    two_tenants_with_big_jobs_progress_alike,
    a_crash_while_jobs_take_turns_loses_no_photo
);
