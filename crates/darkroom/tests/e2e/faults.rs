//! At-least-once, proven with real processes: workers killed mid-photo, photos slower
//! than the visibility timeout, poison photos, malformed messages, SIGTERM with photos in
//! flight, kill -9 of everything. Faults are injected with the `fault-injection` feature
//! (a caption "darkroom-fault:sleep=<ms>" stalls a worker, "darkroom-fault:panic" panics it).

use crate::helpers::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

crate::on_every_backend!(
    a_killed_worker_s_photo_is_finished_by_another_with_identical_output,
    a_photo_slower_than_the_visibility_timeout_is_processed_once,
    a_poison_photo_is_dead_lettered_and_shown_failed_while_others_finish,
    sigterm_finishes_or_hands_back_photos_in_flight,
);

fn sleepy_recipe(millis: u64) -> String {
    format!(
        r#"{{"ops":[{{"op":"thumbnail","size":96}},{{"op":"customize","caption":{{"text":"darkroom-fault:sleep={millis}"}}}}]}}"#
    )
}

/// web + status + workers sharing one store and set of queues.
struct Cluster {
    backend: Backend,
    data: tempfile::TempDir,
    web: Process,
    _status: Process,
    workers: Vec<Process>,
    extra: Vec<String>,
}

impl Cluster {
    fn start(backend: &Backend, workers: usize, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        backend.setup_with(data.path(), extra);
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let web = Process::start(backend, data.path(), &args("web", &[], &extra), true);
        let status = Process::start(backend, data.path(), &args("status", &[], &extra), false);
        let mut cluster = Self { backend: backend.clone(), data, web, _status: status, workers: Vec::new(), extra };
        for _ in 0..workers {
            cluster.add_worker();
        }
        cluster
    }

    fn add_worker(&mut self) -> usize {
        let worker = Process::start(
            &self.backend,
            self.data.path(),
            &args("worker", &["--concurrency", "1", "--metrics-listen", "127.0.0.1:0"], &self.extra),
            true,
        );
        self.workers.push(worker);
        self.workers.len() - 1
    }

    fn url(&self) -> &str {
        self.web.url()
    }
}

fn args<'a>(command: &'a str, own: &[&'a str], extra: &'a [String]) -> Vec<&'a str> {
    let mut all = vec![command];
    all.extend_from_slice(FAST);
    all.extend_from_slice(own);
    all.extend(extra.iter().map(String::as_str));
    all
}

/// `darkroom_photos_processed_total` of one worker, by outcome.
fn outcomes(worker: &Process) -> HashMap<String, u64> {
    let text = get(&format!("{}/metrics", worker.url())).text();
    let mut counts = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("darkroom_photos_processed_total{")) {
        let outcome = line.split("outcome=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_owned();
        let value: u64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0);
        *counts.entry(outcome).or_insert(0) += value;
    }
    counts
}

fn photo_state(view: &serde_json::Value, index: usize) -> &str {
    view["photos"][index]["state"].as_str().unwrap_or("")
}

fn a_killed_worker_s_photo_is_finished_by_another_with_identical_output(backend: Backend) {
    let mut cluster = Cluster::start(&backend, 1, &[]);
    let recipe = sleepy_recipe(3000);
    let photo = fixture("chelsea.jpg");
    let created = create_job(cluster.url(), &recipe, &[("cat.jpg", &photo)]);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json()["id"].as_str().unwrap().to_owned();
    wait_for_view(cluster.url(), &job, Duration::from_secs(60), |v| photo_state(v, 0) == "processing");

    // SIGKILL between receive and delete: no chance to clean up.
    cluster.workers[0].child.kill().unwrap();
    cluster.workers[0].child.wait().unwrap();
    let replacement = cluster.add_worker();
    let view = wait_for_job(cluster.url(), &job, Duration::from_secs(90));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(view["photos"][0]["attempt"], 1, "redelivery is the same attempt, not a retry");
    assert_eq!(outcomes(&cluster.workers[replacement]).get("completed"), Some(&1));

    // The redone photo is byte for byte what an uninterrupted run produces.
    let result = get(&format!("{}{}", cluster.url(), output_url(&view["photos"][0], "result"))).body;
    let again = create_job(cluster.url(), &recipe, &[("cat.jpg", &photo)]).json();
    let reference = wait_for_job(cluster.url(), again["id"].as_str().unwrap(), Duration::from_secs(60));
    let reference = get(&format!("{}{}", cluster.url(), output_url(&reference["photos"][0], "result"))).body;
    assert_eq!(result, reference, "outputs differ after redelivery");
}

fn a_photo_slower_than_the_visibility_timeout_is_processed_once(backend: Backend) {
    // 9 s of work against a 6 s visibility timeout: only the heartbeat (every 2 s) keeps
    // the second worker from receiving the same photo.
    let cluster = Cluster::start(&backend, 2, &[]);
    let created = create_job(cluster.url(), &sleepy_recipe(9000), &[("slow.jpg", &fixture("rocket.jpg"))]);
    let job = created.json()["id"].as_str().unwrap().to_owned();
    let view = wait_for_job(cluster.url(), &job, Duration::from_secs(90));
    assert_eq!(view["state"], "done", "{view:#}");
    let totals: Vec<HashMap<String, u64>> = cluster.workers.iter().map(outcomes).collect();
    let handled: u64 = totals.iter().flat_map(|t| t.values()).sum();
    let completed: u64 = totals.iter().filter_map(|t| t.get("completed")).sum();
    assert_eq!((handled, completed), (1, 1), "the photo was received more than once: {totals:?}");
}

fn a_poison_photo_is_dead_lettered_and_shown_failed_while_others_finish(backend: Backend) {
    let cluster = Cluster::start(&backend, 1, &["--max-receive-count", "2"]);
    let created = create_job(
        cluster.url(),
        r#"{"ops":[{"op":"thumbnail","size":64}]}"#,
        &[("fine.jpg", &fixture("chelsea.jpg")), ("poison.jpg", &fixture("rocket.jpg"))],
    );
    let body = created.json();
    let (job, token) = (body["id"].as_str().unwrap().to_owned(), body["owner_token"].as_str().unwrap().to_owned());
    wait_for_job(cluster.url(), &job, Duration::from_secs(60));
    // Reprocess one photo with a recipe that panics the worker every time.
    let poison = body["photos"][1]["id"].as_str().unwrap();
    let reprocess = post(
        &format!("{}/api/v1/jobs/{job}/photos/{poison}/reprocess", cluster.url()),
        &[("X-Owner-Token", &token)],
        "application/json",
        br#"{"recipe":{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:panic"}}]}}"#,
    );
    assert_eq!(reprocess.status, 202, "{}", reprocess.text());
    let view = wait_for_view(cluster.url(), &job, Duration::from_secs(90), |v| photo_state(v, 1) == "failed");
    let failed = &view["photos"][1];
    assert_eq!(failed["attempt"], 2);
    assert_eq!(failed["error"]["code"], "gave_up");
    assert!(failed["error"]["message"].as_str().unwrap().contains("gave up after 2 attempts"), "{failed:#}");
    assert_eq!(photo_state(&view, 0), "done");
    assert_eq!(view["state"], "partial");
    // The worker survived both panics and still serves.
    assert_eq!(get(&format!("{}/healthz", cluster.workers[0].url())).status, 200);
    assert_eq!(outcomes(&cluster.workers[0]).get("panicked"), Some(&2));
}

fn sigterm_finishes_or_hands_back_photos_in_flight(backend: Backend) {
    let mut cluster = Cluster::start(&backend, 1, &[]);
    // A photo that finishes within the drain deadline (5 s) is finished before exit.
    let quick = create_job(cluster.url(), &sleepy_recipe(2000), &[("a.jpg", &fixture("chelsea.jpg"))]).json();
    let quick_job = quick["id"].as_str().unwrap().to_owned();
    wait_for_view(cluster.url(), &quick_job, Duration::from_secs(60), |v| photo_state(v, 0) == "processing");
    let stopping = Instant::now();
    let status = cluster.workers[0].terminate();
    assert!(status.success(), "worker exited with {status}");
    assert!(stopping.elapsed() < Duration::from_secs(5), "drain took {:?}", stopping.elapsed());
    let view = wait_for_job(cluster.url(), &quick_job, Duration::from_secs(30));
    assert_eq!(view["state"], "done", "the photo in flight at SIGTERM was finished: {view:#}");

    // A photo that outlasts the deadline is handed back at once and finished by another worker.
    let second = cluster.add_worker();
    let slow = create_job(cluster.url(), &sleepy_recipe(9000), &[("b.jpg", &fixture("rocket.jpg"))]).json();
    let slow_job = slow["id"].as_str().unwrap().to_owned();
    wait_for_view(cluster.url(), &slow_job, Duration::from_secs(60), |v| photo_state(v, 0) == "processing");
    let stopping = Instant::now();
    assert!(cluster.workers[second].terminate().success());
    let drain = stopping.elapsed();
    assert!(drain >= Duration::from_secs(4) && drain < Duration::from_secs(9), "drain deadline not kept: {drain:?}");
    assert_eq!(get(&format!("{}/api/v1/jobs/{slow_job}", cluster.url())).json()["photos"][0]["state"], "processing");
    let third = cluster.add_worker();
    let view = wait_for_job(cluster.url(), &slow_job, Duration::from_secs(60));
    assert_eq!(view["state"], "done");
    assert_eq!(outcomes(&cluster.workers[third]).get("completed"), Some(&1));
}

#[test]
fn unreadable_messages_are_never_deleted_and_never_hold_up_other_photos() {
    let cluster = Cluster::start(&Backend::Local, 1, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use darkroom_queue::{OutgoingMessage, QueueBackend};
        let queues = darkroom_queue::SqliteQueues::open(cluster.data.path().join("queues.sqlite3")).unwrap();
        let requests = queues.open("darkroom-requests-quick").await.unwrap();
        requests.send(OutgoingMessage::new("this is not JSON", Default::default())).await.unwrap();
        requests.send(OutgoingMessage::new(r#"{"v":99,"from":"the future"}"#, Default::default())).await.unwrap();
    });
    // Both are looked at, and neither is deleted: the garbage is left to the dead-letter
    // queue after its receive budget, the newer message handed back for a newer worker.
    darkroom_testkit::eventually_blocking(Duration::from_secs(30), "both messages looked at", || {
        counter(&cluster.workers[0], "darkroom_messages_malformed_total") == 1
            && counter(&cluster.workers[0], "darkroom_messages_unreadable_total") == 1
    });
    let still_queued = runtime.block_on(async {
        use darkroom_queue::QueueBackend;
        let queues = darkroom_queue::SqliteQueues::open(cluster.data.path().join("queues.sqlite3")).unwrap();
        let counts = queues.open("darkroom-requests-quick").await.unwrap().counts().await.unwrap();
        counts.visible + counts.in_flight
    });
    assert_eq!(still_queued, 2, "an unreadable message was deleted");
    // Meanwhile photos flow.
    let created =
        create_job(cluster.url(), r#"{"ops":[{"op":"thumbnail","size":32}]}"#, &[("a.jpg", &fixture("chelsea.jpg"))]);
    assert_eq!(created.status, 201);
    let view = wait_for_job(cluster.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(view["state"], "done");
}

#[test]
fn a_hung_render_fails_after_its_time_budget_and_sigterm_still_exits_in_time() {
    let mut cluster = Cluster::start(&Backend::Local, 1, &["--max-receive-count", "2", "--time-budget", "quick=2s"]);
    let hang = r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:hang"}}]}"#;
    let created = create_job(cluster.url(), hang, &[("stuck.jpg", &fixture("chelsea.jpg"))]);
    let job = created.json()["id"].as_str().unwrap().to_owned();
    // Each attempt is abandoned after 2 s; the second (and last) reports the photo failed.
    let view = wait_for_job(cluster.url(), &job, Duration::from_secs(60));
    assert_eq!(view["state"], "failed", "{view:#}");
    let error = &view["photos"][0]["error"];
    assert_eq!(error["code"], "timed_out", "{view:#}");
    assert!(error["message"].as_str().unwrap().contains("2-second limit"), "{error}");
    assert_eq!(outcomes(&cluster.workers[0]).get("timed_out"), Some(&1));
    // The worker is still serving, with its stuck renders counted.
    assert_eq!(counter(&cluster.workers[0], "darkroom_renders_stuck"), 2);
    let fine =
        create_job(cluster.url(), r#"{"ops":[{"op":"thumbnail","size":32}]}"#, &[("a.jpg", &fixture("chelsea.jpg"))]);
    let view = wait_for_job(cluster.url(), fine.json()["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(view["state"], "done");

    // SIGTERM with a render hung inside the drain: the process still exits by the deadline.
    let again = create_job(cluster.url(), hang, &[("stuck.jpg", &fixture("chelsea.jpg"))]);
    let job = again.json()["id"].as_str().unwrap().to_owned();
    wait_for_view(cluster.url(), &job, Duration::from_secs(30), |v| photo_state(v, 0) == "processing");
    let stopping = Instant::now();
    let status = cluster.workers[0].terminate();
    let exit = stopping.elapsed();
    assert!(status.success(), "worker exited with {status}");
    assert!(exit < Duration::from_secs(5) + Duration::from_secs(2), "exit took {exit:?} with a 5 s drain deadline");
    eprintln!("SIGTERM with a hung render: exited after {exit:?} (drain deadline 5 s)");
}

/// A rolling upgrade: the web tier already speaks the next message version while the old
/// workers and status still run. Old processes hand the new messages back instead of
/// deleting them; once new workers and status are up, every photo is done.
#[test]
fn a_mixed_fleet_of_old_and_new_versions_loses_no_photo() {
    let backend = Backend::Local;
    let data = tempfile::tempdir().unwrap();
    backend.setup(data.path());
    let next = [("DARKROOM_TEST_SPEAK_NEXT_MESSAGE_VERSION", "1")];
    let worker_args = [&["worker", "--metrics-listen", "127.0.0.1:0"][..], FAST].concat();
    let status_args = [&["status", "--metrics-listen", "127.0.0.1:0"][..], FAST].concat();
    let web = Process::start_with_env(&backend, data.path(), &[&["web"][..], FAST].concat(), true, &next);
    let mut old_status = Process::start(&backend, data.path(), &status_args, true);
    let mut old_worker = Process::start(&backend, data.path(), &worker_args, true);

    let photo = fixture("chelsea.jpg");
    let files: Vec<(&str, &[u8])> =
        ["a.jpg", "b.jpg", "c.jpg", "d.jpg"].iter().map(|n| (*n, photo.as_slice())).collect();
    let created = create_job(web.url(), r#"{"ops":[{"op":"thumbnail","size":48}]}"#, &files);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json()["id"].as_str().unwrap().to_owned();
    darkroom_testkit::eventually_blocking(Duration::from_secs(30), "the old worker sees every new message", || {
        counter(&old_worker, "darkroom_messages_unreadable_total") >= 4
    });
    let view = get(&format!("{}/api/v1/jobs/{job}", web.url())).json();
    assert_eq!(view["counts"]["queued"], 4, "an old worker lost or failed a new message: {view:#}");

    // The upgrade proceeds: new workers and status come up, the old ones go.
    let _new_worker = Process::start_with_env(&backend, data.path(), &worker_args, true, &next);
    let _new_status = Process::start_with_env(&backend, data.path(), &status_args, true, &next);
    assert!(old_worker.terminate().success());
    assert!(old_status.terminate().success());
    let view = wait_for_job(web.url(), &job, Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(view["counts"]["done"], 4);
}

#[test]
fn acknowledged_uploads_survive_kill_9_of_every_process() {
    let data = tempfile::tempdir().unwrap();
    let start = |data: &Path| {
        let mut args = vec!["serve", "--concurrency", "1"];
        args.extend_from_slice(FAST);
        Process::start(&Backend::Local, data, &args, true)
    };
    let mut first = start(data.path());
    let photos = ["astronaut.jpg", "chelsea.jpg", "rocket.jpg", "coffee.jpg"];
    let files: Vec<(&str, Vec<u8>)> = photos.iter().map(|n| (*n, fixture(n))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let created = create_job(first.url(), &sleepy_recipe(1500), &refs);
    assert_eq!(created.status, 201);
    let job = created.json()["id"].as_str().unwrap().to_owned();
    wait_for_view(first.url(), &job, Duration::from_secs(60), |v| v["counts"]["processing"] == 1);
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = start(data.path());
    let view = wait_for_job(second.url(), &job, Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    assert_eq!(view["counts"]["done"], photos.len());
    assert!(view["photos"].as_array().unwrap().iter().all(|p| p["attempt"] == 1));
}

/// Every event document of a job in the local store, by photo: the user-visible history.
fn event_files(data: &Path, job: &str) -> HashMap<String, Vec<String>> {
    let mut events: HashMap<String, Vec<String>> = HashMap::new();
    let photos = data.join("store/objects/jobs").join(job).join("photos");
    for photo in std::fs::read_dir(photos).unwrap().flatten() {
        let mut names: Vec<String> = std::fs::read_dir(photo.path().join("events"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        events.insert(photo.file_name().to_string_lossy().into_owned(), names);
    }
    events
}

#[test]
fn duplicate_deliveries_write_the_same_keys_and_one_done_transition() {
    use darkroom_core::{JobId, PhotoId, PhotoRequest, Recipe, StageMap};
    use darkroom_queue::{OutgoingMessage, QueueBackend};
    let cluster = Cluster::start(&Backend::Local, 2, &[]);
    let recipe_text = r#"{"ops":[{"op":"thumbnail","size":80}]}"#;
    let created = create_job(cluster.url(), recipe_text, &[("cat.jpg", &fixture("chelsea.jpg"))]).json();
    let (job, photo) =
        (created["id"].as_str().unwrap().to_owned(), created["photos"][0]["id"].as_str().unwrap().to_owned());
    let recipe = Recipe::from_json(recipe_text).unwrap();
    let request = PhotoRequest::new(
        JobId::parse(&job).unwrap(),
        PhotoId::parse(&photo).unwrap(),
        1,
        recipe.clone(),
        StageMap::default().plan(&recipe),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let send_copy = || {
        runtime.block_on(async {
            let queues = darkroom_queue::SqliteQueues::open(cluster.data.path().join("queues.sqlite3")).unwrap();
            let requests = queues.open("darkroom-requests-quick").await.unwrap();
            requests.send(OutgoingMessage::new(request.encode(), request.attributes())).await.unwrap();
        })
    };
    // A copy while the original may still be in work (two workers can take one each)...
    send_copy();
    let view = wait_for_job(cluster.url(), &job, Duration::from_secs(60));
    assert_eq!(view["state"], "done");
    let result_before = get(&format!("{}{}", cluster.url(), output_url(&view["photos"][0], "result"))).body;
    // ... and a copy long after the photo is done and its message deleted.
    send_copy();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.workers.iter().map(|w| outcomes(w).values().sum::<u64>()).sum::<u64>() < 3 {
        assert!(Instant::now() < deadline, "the late copy was never handled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = event_files(cluster.data.path(), &job);
    let done: Vec<&String> = events[&photo].iter().filter(|e| e.ends_with("-done.json")).collect();
    assert_eq!(done.len(), 1, "one done transition: {events:?}");
    let outputs = std::fs::read_dir(
        cluster.data.path().join("store/objects/jobs").join(&job).join("photos").join(&photo).join("a1"),
    )
    .unwrap()
    .count();
    assert_eq!(outputs, 3, "the same three output keys, whatever the number of deliveries");
    let view = get(&format!("{}/api/v1/jobs/{job}", cluster.url())).json();
    assert_eq!(view["photos"][0]["state"], "done");
    assert_eq!(get(&format!("{}{}", cluster.url(), output_url(&view["photos"][0], "result"))).body, result_before);
    let duplicates: u64 = cluster.workers.iter().filter_map(|w| outcomes(w).get("duplicate").copied()).sum();
    assert!(duplicates >= 1, "the late copy was recognised as a duplicate");
}

/// 200 photos while a driver kills and restarts workers at random moments: every photo
/// ends done exactly once, with no orphan objects. Prints the figures.
#[test]
fn soak_200_photos_through_random_worker_kills() {
    const PHOTOS: usize = 200;
    const KILLS: usize = 6;
    let started = Instant::now();
    let mut cluster = Cluster::start(&Backend::Local, 3, &[]);
    let photo = fixture("chelsea.jpg");
    let recipe = r#"{"ops":[{"op":"thumbnail","size":64},{"op":"recolor","mode":"sepia"}]}"#;
    let names: Vec<String> = (0..PHOTOS).map(|i| format!("p{i:03}.jpg")).collect();
    let first: Vec<(&str, &[u8])> = names[..50].iter().map(|n| (n.as_str(), photo.as_slice())).collect();
    let created = create_job(cluster.url(), recipe, &first).json();
    let (job, token) =
        (created["id"].as_str().unwrap().to_owned(), created["owner_token"].as_str().unwrap().to_owned());
    for batch in names[50..].chunks(50) {
        let parts: Vec<Part<'_>> = batch.iter().map(|n| Part::File("photos", n, &photo)).collect();
        let (content_type, body) = multipart(&parts);
        let added = post(
            &format!("{}/api/v1/jobs/{job}/photos", cluster.url()),
            &[("X-Owner-Token", &token)],
            &content_type,
            &body,
        );
        assert_eq!(added.status, 201, "{}", added.text());
    }

    let mut kills = 0;
    let mut seed = u64::from(std::process::id());
    let mut random = move |bound: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(300 + random(700)));
        let view = get(&format!("{}/api/v1/jobs/{job}", cluster.url())).json();
        if view["state"] == "done" {
            break;
        }
        let victim = random(cluster.workers.len() as u64) as usize;
        cluster.workers[victim].child.kill().unwrap();
        cluster.workers[victim].child.wait().unwrap();
        let replacement = cluster.add_worker();
        cluster.workers.swap(victim, replacement);
        cluster.workers.pop();
        kills += 1;
    }
    let view = wait_for_job(cluster.url(), &job, Duration::from_secs(240));
    let wall = started.elapsed();
    assert_eq!(view["state"], "done", "{}", view["counts"]);
    assert_eq!(view["counts"]["done"], PHOTOS);
    let photos = view["photos"].as_array().unwrap();
    assert_eq!(photos.len(), PHOTOS, "no photo shown twice or lost");
    assert!(photos.iter().all(|p| p["attempt"] == 1));

    let events = event_files(cluster.data.path(), &job);
    assert_eq!(events.len(), PHOTOS);
    for (photo, names) in &events {
        assert_eq!(names.iter().filter(|n| n.ends_with("-done.json")).count(), 1, "{photo}: {names:?}");
        assert!(!names.iter().any(|n| n.ends_with("-failed.json")), "{photo}: {names:?}");
        let dir = cluster.data.path().join("store/objects/jobs").join(&job).join("photos").join(photo);
        let mut objects: Vec<String> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        objects.sort();
        assert_eq!(objects, ["a1", "events", "original", "photo.json"], "{photo}");
        assert_eq!(
            std::fs::read_dir(dir.join("a1")).unwrap().count(),
            3,
            "{photo}: result, thumb, preview and nothing else"
        );
    }
    let redeliveries: u64 = cluster.workers.iter().map(|w| counter(w, "darkroom_redeliveries_total")).sum();
    eprintln!(
        "soak: {PHOTOS} photos, {kills} worker kills, {redeliveries} redeliveries seen by the surviving workers, wall time {:.1} s",
        wall.as_secs_f64()
    );
}

/// A job deleted while a worker is in the middle of its photo: the worker's late outputs are
/// swept when its report arrives, so nothing of the job stays in the store.
#[test]
fn a_job_deleted_mid_photo_leaves_nothing_behind() {
    let app = TestApp::serve(&Backend::Local, &[]);
    let created = create_job(app.server.url(), &sleepy_recipe(2000), &[("cat.jpg", &fixture("chelsea.jpg"))]);
    assert_eq!(created.status, 201, "{}", created.text());
    let (job, token) =
        (created.json()["id"].as_str().unwrap().to_owned(), created.json()["owner_token"].as_str().unwrap().to_owned());
    wait_for_view(app.server.url(), &job, Duration::from_secs(60), |v| photo_state(v, 0) == "processing");
    let deleted = delete(&app.url(&format!("/api/v1/jobs/{job}")), &[("X-Owner-Token", &token)]);
    assert_eq!(deleted.status, 204);
    // The worker finishes the photo it already had, writes its outputs and reports.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(&app.server, "darkroom_photos_processed_total") == 0 {
        assert!(Instant::now() < deadline, "the worker never finished the photo");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Then the leftovers go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.stored_jobs() != Some(0) {
        assert!(Instant::now() < deadline, "objects of the deleted job remain: {:?}", app.stored_jobs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&app.url(&format!("/api/v1/jobs/{job}"))).status, 404);
}
