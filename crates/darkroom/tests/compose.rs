//! The compose tier: `docker-compose.yml` and `deploy/Dockerfile` run for real, as users run
//! them — LocalStack, setup, web, workers and status in containers with addresses of their
//! own — driven through the web container's published port, while containers are killed,
//! cut off the network, stopped and replaced.
//!
//! Runs only when `DARKROOM_TEST_COMPOSE=1` (set by `./test.sh` once Docker runs and the
//! stand-in images are built: tests/compose/standins.sh), one test at a time
//! (`--test-threads 1`): they share the compose project and its published ports, which are
//! moved off the defaults (web 18080, LocalStack 14566) so that a LocalStack or a service
//! already on this host's 4566 or 8080 does not stop the stack from starting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PROJECT: &str = "darkroomtest";
const WEB_PORT: &str = "18080";
const LOCALSTACK_PORT: &str = "14566";
const BASE: &str = "http://127.0.0.1:18080";
/// Photos that stay in work long enough for a kill or a cut to land in the middle.
const SLOW_RECIPE: &str = r#"{"ops":[{"op":"customize","sharpen":1},{"op":"thumbnail","size":512}]}"#;
const RECIPE: &str = r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":512}]}"#;

fn enabled() -> bool {
    std::env::var("DARKROOM_TEST_COMPOSE").is_ok_and(|value| value == "1")
}

fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program).args(args).current_dir(repository()).output().unwrap();
    if !output.status.success() {
        eprintln!(
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// One compose project, taken down (with its volumes) when dropped.
struct Stack;

impl Stack {
    /// `docker-compose up -d` with `workers` workers; waits until the web tier is ready.
    fn up(workers: usize) -> Self {
        // What a killed earlier run left behind goes first.
        Self::remove_strays();
        Self::compose(&["down", "--volumes", "--remove-orphans"]);
        let scale = format!("worker={workers}");
        let output = Self::compose(&["up", "-d", "--build", "--scale", &scale]);
        // From here on a failure takes the stack down and shows its logs.
        let stack = Stack;
        assert!(output.status.success(), "docker-compose up failed");
        wait_until(Duration::from_secs(180), "the web tier is ready", || {
            agent().get(&format!("{BASE}/readyz")).call().is_ok_and(|reply| reply.status() == 200)
        });
        stack
    }

    fn compose(args: &[&str]) -> Output {
        let mut all = vec!["-p", PROJECT, "-f", "docker-compose.yml"];
        all.extend_from_slice(args);
        let output = Command::new("docker-compose")
            .args(&all)
            .env("DARKROOM_COMPOSE_WEB_PORT", WEB_PORT)
            .env("DARKROOM_COMPOSE_LOCALSTACK_PORT", LOCALSTACK_PORT)
            .current_dir(repository())
            .output()
            .unwrap();
        if !output.status.success() {
            eprintln!(
                "docker-compose {all:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        output
    }

    /// The containers of a service, by id.
    fn containers(service: &str) -> Vec<String> {
        text(&Self::compose(&["ps", "-q", service])).lines().map(str::to_owned).collect()
    }

    fn network() -> String {
        format!("{PROJECT}_default")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = Self::compose(&["logs", "--no-color", "--tail", "60"]);
            eprintln!("{}", String::from_utf8_lossy(&logs.stdout));
        }
        Self::remove_strays();
        Self::compose(&["down", "--volumes", "--remove-orphans"]);
    }
}

impl Stack {
    /// Workers started beside compose (the rolling upgrade) are not the project's: they go
    /// before `down`, or they would hold its network and take the next stack's work.
    fn remove_strays() {
        let strays = text(&run("docker", &["ps", "-aq", "--filter", "label=darkroomtest=upgraded"]));
        for container in strays.lines() {
            run("docker", &["rm", "-f", container]);
        }
    }
}

fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Creates a job of `photos` photos (batches of 25, as a browser would send them).
fn upload(photos: usize, recipe: &str) -> String {
    let photo = fixture("coffee.jpg");
    let names: Vec<String> = (0..photos).map(|i| format!("photo-{i:03}.jpg")).collect();
    let mut job: Option<(String, String)> = None;
    for chunk in names.chunks(25) {
        let mut parts = Vec::new();
        if job.is_none() {
            parts.push(Part::Text("recipe", recipe));
        }
        parts.extend(chunk.iter().map(|name| Part::File("photos", name, &photo)));
        let (content_type, body) = multipart(&parts);
        let reply = match &job {
            None => post(&format!("{BASE}/api/v1/jobs"), &[], &content_type, &body),
            Some((id, token)) => {
                post(&format!("{BASE}/api/v1/jobs/{id}/photos"), &[("X-Owner-Token", token)], &content_type, &body)
            }
        };
        assert_eq!(reply.status, 201, "{}", reply.text());
        if job.is_none() {
            let created = reply.json();
            job =
                Some((created["id"].as_str().unwrap().to_owned(), created["owner_token"].as_str().unwrap().to_owned()));
        }
    }
    job.unwrap().0
}

fn view(job: &str) -> Value {
    get(&format!("{BASE}/api/v1/jobs/{job}")).json()
}

fn counts(job: &str) -> (u64, u64) {
    let view = view(job);
    (view["counts"]["done"].as_u64().unwrap(), view["counts"]["failed"].as_u64().unwrap())
}

/// Photos a container's worker has finished (done, or done with its stage and forwarded),
/// from its metrics (inside the container); deferrals, lost leases and hand-backs are not work.
fn processed_by(container: &str) -> u64 {
    let output = run("docker", &["exec", container, "curl", "-fsS", "http://localhost:9090/metrics"]);
    text(&output)
        .lines()
        .filter(|line| line.starts_with("darkroom_photos_processed_total{"))
        .filter(|line| line.contains(r#"outcome="completed""#) || line.contains(r#"outcome="forwarded""#))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn finished(job: &str, within: Duration) -> Value {
    wait_for_job(BASE, job, within)
}

/// Waits for the job to finish and asserts that all `photos` are done, none failed.
fn all_done(job: &str, photos: u64, within: Duration) {
    let view = finished(job, within);
    assert_eq!(view["counts"]["done"], photos, "{view:#}");
    assert_eq!(view["counts"]["failed"], 0, "{view:#}");
}

#[test]
fn fifty_photos_go_through_three_workers_to_a_zip() {
    if !enabled() {
        return;
    }
    let _stack = Stack::up(3);
    let workers = Stack::containers("worker");
    assert_eq!(workers.len(), 3);
    let job = upload(50, RECIPE);
    // The job page, as a browser watching it gets it.
    let page = get(&format!("{BASE}/jobs/{job}"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("photo-000.jpg"));
    let view = finished(&job, Duration::from_secs(600));
    assert_eq!(view["counts"]["done"], 50, "{view:#}");
    let zip = get(&format!("{BASE}/api/v1/jobs/{job}/archive.zip"));
    assert_eq!(zip.status, 200);
    // Entries in the zip's central directory.
    let entries = zip.body.windows(4).filter(|window| window == b"PK\x01\x02").count();
    assert_eq!(entries, 50);
    for worker in &workers {
        assert!(processed_by(worker) > 0, "worker {worker} took no work");
    }
}

#[test]
fn a_killed_worker_s_photos_finish_on_the_others() {
    if !enabled() {
        return;
    }
    let _stack = Stack::up(3);
    let workers = Stack::containers("worker");
    let job = upload(60, SLOW_RECIPE);
    wait_until(Duration::from_secs(300), "the victim has work in hand", || processed_by(&workers[0]) >= 2);
    assert!(run("docker", &["kill", &workers[0]]).status.success());
    all_done(&job, 60, Duration::from_secs(600));
}

#[test]
fn a_worker_cut_off_the_network_fails_nothing_and_comes_back() {
    if !enabled() {
        return;
    }
    let _stack = Stack::up(2);
    let workers = Stack::containers("worker");
    let cut = &workers[0];
    let job = upload(80, SLOW_RECIPE);
    wait_until(Duration::from_secs(300), "the worker has work in hand", || processed_by(cut) >= 2);
    assert!(run("docker", &["network", "disconnect", &Stack::network(), cut]).status.success());
    let cut_at = Instant::now();
    // Meanwhile its readiness says why it takes nothing (asked inside the container: it has
    // no other network left).
    let mut said_why = String::new();
    wait_until(Duration::from_secs(60), "the cut worker reports itself not ready", || {
        let output = run("docker", &["exec", cut, "curl", "-sS", "http://localhost:9090/readyz"]);
        said_why = text(&output);
        said_why.contains("unavailable") || said_why.contains("cannot reach") || said_why.contains("not ready")
    });
    std::thread::sleep(Duration::from_secs(90).saturating_sub(cut_at.elapsed()));
    let before = processed_by(cut);
    assert!(run("docker", &["network", "connect", &Stack::network(), cut]).status.success());
    // Its breaker probes with a backoff: once it says it is ready again, it takes work.
    wait_until(Duration::from_secs(180), "the reconnected worker is ready again", || {
        run("docker", &["exec", cut, "curl", "-fsS", "http://localhost:9090/readyz"]).status.success()
    });
    let second = upload(60, SLOW_RECIPE);
    wait_until(Duration::from_secs(300), "the reconnected worker takes work again", || processed_by(cut) > before);
    for (job, photos) in [(&job, 80), (&second, 60)] {
        all_done(job, photos, Duration::from_secs(900));
    }
    eprintln!("readiness while cut off: {said_why}");
}

#[test]
fn results_that_finish_while_status_is_stopped_all_appear() {
    if !enabled() {
        return;
    }
    let _stack = Stack::up(2);
    let status = Stack::containers("status");
    assert!(run("docker", &["stop", &status[0]]).status.success());
    let stopped_at = Instant::now();
    let job = upload(30, RECIPE);
    // Workers finish every photo meanwhile; their reports wait in the responses queue.
    let workers = Stack::containers("worker");
    wait_until(Duration::from_secs(600), "the workers finish the photos", || {
        workers.iter().map(|worker| processed_by(worker)).sum::<u64>() >= 30
    });
    // Status stays down for a minute in all (the outage being tested), not as a wait for anything.
    std::thread::sleep(Duration::from_secs(60).saturating_sub(stopped_at.elapsed()));
    let (done_while_stopped, _) = counts(&job);
    assert!(done_while_stopped < 30, "with status stopped no result can be recorded");
    assert!(run("docker", &["start", &status[0]]).status.success());
    all_done(&job, 30, Duration::from_secs(600));
}

#[test]
fn a_rolling_upgrade_of_the_workers_loses_nothing() {
    if !enabled() {
        return;
    }
    let _stack = Stack::up(2);
    // The next release, as a new tag (the same build, labelled as another version).
    let tagged = Command::new("docker")
        .args(["build", "-q", "-t", "darkroom:next", "--label", "darkroom.release=next", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"FROM darkroom:local\n")?;
            child.wait()
        })
        .unwrap();
    assert!(tagged.success());
    let job = upload(200, RECIPE);
    let environment: Vec<String> = [
        "DARKROOM_BACKEND=aws",
        "DARKROOM_BUCKET=darkroom",
        "DARKROOM_QUEUE_PREFIX=darkroom",
        "DARKROOM_METRICS_LISTEN=0.0.0.0:9090",
        "AWS_ENDPOINT_URL=http://localstack:4566",
        "AWS_REGION=us-east-1",
        "AWS_ACCESS_KEY_ID=test",
        "AWS_SECRET_ACCESS_KEY=test",
    ]
    .iter()
    .flat_map(|pair| ["-e".to_owned(), (*pair).to_owned()])
    .collect();
    for old in Stack::containers("worker") {
        wait_until(Duration::from_secs(300), "the old worker is busy", || processed_by(&old) >= 1);
        let mut args: Vec<String> = ["run", "-d", "--network", &Stack::network(), "--label", "darkroomtest=upgraded"]
            .map(str::to_owned)
            .to_vec();
        args.extend(environment.iter().cloned());
        args.extend(["darkroom:next".to_owned(), "worker".to_owned()]);
        let started = run("docker", &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(started.status.success());
        // SIGTERM: the old worker drains (finishes or hands back its photos) and exits.
        assert!(run("docker", &["stop", "-t", "40", &old]).status.success());
    }
    all_done(&job, 200, Duration::from_secs(900));
    // (The upgraded workers go with the stack, also when the job did not finish.)
}

#[test]
fn compose_down_leaves_nothing_running() {
    if !enabled() {
        return;
    }
    let stack = Stack::up(1);
    let job = upload(3, RECIPE);
    finished(&job, Duration::from_secs(300));
    drop(stack);
    let left = text(&run("docker", &["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={PROJECT}")]));
    assert!(left.is_empty(), "containers left after down: {left}");
    let networks = text(&run("docker", &["network", "ls", "-q", "--filter", &format!("name={PROJECT}_")]));
    assert!(networks.is_empty(), "networks left after down: {networks}");
}
