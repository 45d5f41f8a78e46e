//! The same service as separate processes sharing one data directory: web, two workers,
//! one status — the seed's Figure 4 on one machine.

use crate::helpers::*;
use std::time::Duration;

crate::on_every_backend!(separate_web_worker_and_status_processes_share_one_store_and_queues);

fn separate_web_worker_and_status_processes_share_one_store_and_queues(backend: Backend) {
    let scratch = tempfile::tempdir().unwrap();
    // On the embedded backend the processes create the data directory and queues themselves,
    // as the README's example runs them; on AWS that is `darkroom setup`'s job.
    let data = scratch.path().join("data");
    if !backend.is_local() {
        backend.setup(&data);
    }
    let data = data.as_path();

    let mut args = vec!["web"];
    args.extend_from_slice(FAST);
    let web = Process::start(&backend, data, &args, true);
    let mut worker_args = vec!["worker", "--metrics-listen", "127.0.0.1:0"];
    worker_args.extend_from_slice(FAST);
    let worker_a = Process::start(&backend, data, &worker_args, true);
    let _worker_b = Process::start(&backend, data, &worker_args, true);
    let mut status_args = vec!["status"];
    status_args.extend_from_slice(FAST);
    let _status = Process::start(&backend, data, &status_args, false);

    let photos = ["astronaut.jpg", "chelsea.jpg", "rocket.jpg", "coffee.jpg"];
    let files: Vec<(&str, Vec<u8>)> = photos.iter().map(|n| (*n, fixture(n))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let created = create_job(web.url(), r#"{"ops":[{"op":"thumbnail","size":200}]}"#, &refs);
    assert_eq!(created.status, 201, "{}", created.text());
    let view = wait_for_job(web.url(), created.json()["id"].as_str().unwrap(), Duration::from_secs(120));
    assert_eq!(view["state"], "done", "{view:#}");
    for photo in view["photos"].as_array().unwrap() {
        let result = decode(&get(&format!("{}{}", web.url(), output_url(photo, "result"))).body);
        assert_eq!(result.width().max(result.height()), 200);
    }

    // The worker's own health endpoints answer on --metrics-listen.
    assert_eq!(get(&format!("{}/healthz", worker_a.url())).status, 200);
    let ready = get(&format!("{}/readyz", worker_a.url()));
    assert_eq!(ready.status, 200, "{}", ready.text());
    let quick = ready.json()["queues"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, _)| name.ends_with("-requests-quick"))
        .unwrap()
        .1
        .clone();
    assert_eq!(quick["visible"], 0);
    let metrics = get(&format!("{}/metrics", worker_a.url())).text();
    assert!(metrics.contains("darkroom_queue_backlog"), "{metrics}");
}

/// On AWS nothing is created behind the operator's back: a worker started before `darkroom
/// setup` stops and says what to run.
#[test]
fn a_worker_on_aws_refuses_to_start_before_setup_and_says_why() {
    let Some(backend) = Backend::localstack() else { return };
    let data = tempfile::tempdir().unwrap();
    let output = backend.run(data.path(), &["worker"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("darkroom setup"), "{stderr}");
}

#[test]
fn a_heartbeat_too_slow_for_the_visibility_timeout_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BIN)
        .args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--visibility-timeout",
            "30s",
            "--heartbeat-interval",
            "20s",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--heartbeat-interval"));
}
