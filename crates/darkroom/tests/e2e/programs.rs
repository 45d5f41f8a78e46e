//! darkroom for programs: webhooks, cancelling a job.

use crate::helpers::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

crate::on_every_backend!(
    a_webhook_is_signed_retried_across_a_restart_and_logged,
    webhooks_refuse_internal_targets_unless_allowed,
    cancel_stops_queued_photos_and_keeps_finished_ones,
);

const SECRET: &str = "test-webhook-secret-0123456789";

/// One request the receiver got.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }
}

/// A webhook receiver on 127.0.0.1 answering the statuses of `answers` in turn (then 200),
/// reporting each request it read on the channel.
fn receiver(answers: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/darkroom?source=test", listener.local_addr().unwrap());
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() || !request_line.starts_with("POST ") {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
            }
            let length = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let status = answers.next().unwrap_or(200);
            let _ = write!(stream, "HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.flush();
            if sender.send(Received { headers, body }).is_err() {
                return;
            }
        }
    });
    (url, received)
}

fn create_job_with_callback(base: &str, callback: &str, photos: usize) -> Reply {
    let photo = fixture("coffee.png");
    let recipe = r#"{"ops":[{"op":"thumbnail","size":64}]}"#;
    let mut parts = vec![Part::Text("recipe", recipe), Part::Text("callback_url", callback)];
    let names: Vec<String> = (0..photos).map(|n| format!("photo-{n}.png")).collect();
    parts.extend(names.iter().map(|name| Part::File("photos", name, &photo)));
    let (content_type, body) = multipart(&parts);
    post(&format!("{base}/api/v1/jobs"), &[], &content_type, &body)
}

fn webhook_log(base: &str, job: &Value) -> Value {
    let token = job["owner_token"].as_str().unwrap();
    let reply = reply(
        agent()
            .get(&format!("{base}/api/v1/jobs/{}/webhook", job["id"].as_str().unwrap()))
            .header("X-Owner-Token", token)
            .call(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn a_webhook_is_signed_retried_across_a_restart_and_logged(backend: Backend) {
    // A redirect is a failed try (not followed: the signed body goes only where the job said).
    let (callback, received) = receiver(vec![302, 503]);
    let data = tempfile::tempdir().unwrap();
    let webhook_flags = ["--webhook-secret", SECRET, "--webhook-allow-internal", "--webhook-retry-delay", "1s"];
    let start = |data: &std::path::Path| {
        let mut args = vec!["serve", "--auto-setup"];
        args.extend_from_slice(FAST);
        args.extend_from_slice(&webhook_flags);
        Process::start(&backend, data, &args, true)
    };
    let mut server = start(data.path());
    let created = create_job_with_callback(server.url(), &callback, 2);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let job_id = job["id"].as_str().unwrap().to_owned();

    // The first delivery fails (500); the process is stopped before its retry is due and a
    // new one started: the retry lives in the queue, not in the process.
    let first = received.recv_timeout(Duration::from_secs(120)).expect("a first delivery");
    assert!(server.terminate().success());
    let server = start(data.path());
    let second = received.recv_timeout(Duration::from_secs(60)).expect("a retry after the restart");
    let third = received.recv_timeout(Duration::from_secs(60)).expect("a second retry");

    for delivery in [&first, &second, &third] {
        let timestamp: u64 = delivery.header("X-Darkroom-Timestamp").parse().expect("a numeric timestamp");
        let signature = delivery.header("X-Darkroom-Signature");
        assert!(
            darkroom_webhooks::sign::verify(SECRET.as_bytes(), timestamp, &delivery.body, signature),
            "the signature verifies over timestamp.body"
        );
        assert!(!darkroom_webhooks::sign::verify(b"another secret", timestamp, &delivery.body, signature));
        assert_eq!(delivery.header("X-Darkroom-Event"), "job.finished");
        assert_eq!(delivery.header("X-Darkroom-Delivery"), first.header("X-Darkroom-Delivery"), "one finish, one id");
        assert_eq!(delivery.header("Content-Type"), "application/json");
        let view: Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_eq!(view["id"], job_id.as_str());
        assert_eq!(view["state"], "done", "{view:#}");
        assert_eq!(view["counts"]["done"], 2);
    }

    // The log on the job tells the story: the failures with their statuses, then delivered.
    // (A stop may interrupt a try after its POST and before its record and retry are
    // stored: that try is made again, as the same attempt — at least once, never lost.)
    // The delivery's record is stored after the receiver answered it: wait for it.
    let mut log = webhook_log(server.url(), &job);
    darkroom_testkit::eventually_blocking(Duration::from_secs(30), "the delivery is logged", || {
        log = webhook_log(server.url(), &job);
        log["deliveries"].as_array().and_then(|d| d.last()).is_some_and(|last| last["delivered"] == true)
    });
    assert_eq!(log["callback_url"], callback.as_str());
    let deliveries = log["deliveries"].as_array().unwrap();
    let (last, failed) = deliveries.split_last().unwrap();
    assert_eq!((last["status"].as_u64(), last["delivered"].as_bool()), (Some(200), Some(true)), "{log:#}");
    assert!(last["attempt"].as_u64().unwrap() >= 2, "delivered by a retry: {log:#}");
    assert!(last["retry_in_seconds"].is_null());
    assert!(!failed.is_empty(), "{log:#}");
    assert!(
        failed.iter().any(|try_| try_["error"].as_str().unwrap().contains("a redirect to nowhere")),
        "the redirect is logged as one: {log:#}"
    );
    for try_ in failed {
        assert_eq!(try_["delivered"], false);
        assert!([302, 503].contains(&try_["status"].as_u64().unwrap()), "{log:#}");
        assert!(try_["error"].as_str().unwrap().contains("answered"), "{log:#}");
        assert!(try_["retry_in_seconds"].as_u64().unwrap() >= 1, "{log:#}");
    }

    // Someone else (no owner token) does not see where the job reports to.
    let stranger = get(&format!("{}/api/v1/jobs/{job_id}/webhook", server.url()));
    assert_eq!(stranger.status, 404);
}

fn webhooks_refuse_internal_targets_unless_allowed(backend: Backend) {
    let (callback, received) = receiver(vec![]);
    let port = callback.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();

    // Without a secret there are no webhooks, and the refusal says how to get them.
    let plain = TestApp::serve(&backend, &[]);
    let refused = create_job_with_callback(plain.server.url(), "https://example.com/hook", 1);
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("--webhook-secret"), "{}", refused.text());
    drop(plain);

    let app = TestApp::serve(&backend, &["--webhook-secret", SECRET]);
    for (target, why) in [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/", "loopback v6"),
        ("http://10.0.0.7/hook", "private"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com/", "scheme"),
    ] {
        let reply = create_job_with_callback(app.server.url(), target, 1);
        assert_eq!(reply.status, 400, "{why}: {target} → {}", reply.text());
        assert_eq!(reply.json()["error"]["code"], "invalid_request");
    }
    // A name is judged by what it resolves to, when the delivery is made: `localhost` is
    // accepted at creation and refused at delivery, with the reason in the log.
    let created = create_job_with_callback(app.server.url(), &format!("http://localhost:{port}/hook"), 1);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    assert_eq!(wait_for_job(app.server.url(), job["id"].as_str().unwrap(), Duration::from_secs(120))["state"], "done");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = webhook_log(app.server.url(), &job);
        if !log["deliveries"].as_array().unwrap().is_empty() {
            break log;
        }
        assert!(std::time::Instant::now() < deadline, "no delivery was tried");
        std::thread::sleep(Duration::from_millis(200));
    };
    let first = &log["deliveries"][0];
    assert_eq!(first["delivered"], false);
    assert!(first["status"].is_null(), "no connection was made: {log:#}");
    assert!(first["error"].as_str().unwrap().contains("internal address"), "{log:#}");
    assert!(received.try_recv().is_err(), "the receiver on loopback was never reached");
}

fn cancel_stops_queued_photos_and_keeps_finished_ones(backend: Backend) {
    // One photo at a time, each taking a second and a half: most are still queued when the
    // owner cancels.
    let app = TestApp::serve(&backend, &["--concurrency", "1"]);
    let recipe =
        r#"{"ops":[{"op":"customize","caption":{"text":"darkroom-fault:sleep=1500"}},{"op":"thumbnail","size":64}]}"#;
    let photo = fixture("coffee.png");
    let names: Vec<String> = (0..6).map(|n| format!("slow-{n}.png")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|name| (name.as_str(), photo.as_slice())).collect();
    let created = create_job(app.server.url(), recipe, &files);
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json();
    let job_id = job["id"].as_str().unwrap();
    let base = app.server.url();
    wait_for_view(base, job_id, Duration::from_secs(120), |view| view["counts"]["done"].as_u64() >= Some(1));

    let cancel_url = format!("{base}/api/v1/jobs/{job_id}/cancel");
    assert_eq!(post(&cancel_url, &[], "application/json", b"").status, 404, "only the owner cancels");
    let token = job["owner_token"].as_str().unwrap();
    let cancelled = post(&cancel_url, &[("X-Owner-Token", token)], "application/json", b"");
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let count = cancelled.json()["cancelled"].as_array().unwrap().len();
    assert!((1..=5).contains(&count), "some photos were still queued: {}", cancelled.text());

    let view = wait_for_job(base, job_id, Duration::from_secs(120));
    assert_eq!(view["state"], "cancelled", "{view:#}");
    // A photo a worker took just before the cancel reached it finishes and shows done.
    let shown_cancelled = view["counts"]["cancelled"].as_u64().unwrap();
    assert!(shown_cancelled >= 1 && shown_cancelled <= count as u64, "{view:#}");
    assert_eq!(view["counts"]["done"].as_u64().unwrap() + shown_cancelled, 6, "{view:#}");
    for photo in view["photos"].as_array().unwrap() {
        match photo["state"].as_str().unwrap() {
            "done" => assert_eq!(get(&app.url(output_url(photo, "result"))).status, 200),
            "cancelled" => assert!(photo["outputs"].as_array().unwrap().is_empty(), "{photo:#}"),
            other => panic!("unexpected state {other}"),
        }
    }
    // A second cancel changes nothing.
    let again = post(&cancel_url, &[("X-Owner-Token", token)], "application/json", b"");
    assert_eq!(again.json()["cancelled"].as_array().unwrap().len(), 0);
    // The workers drop the cancelled requests unprocessed: the request queues empty out.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = get(&app.url("/readyz")).json();
        let waiting: u64 = ready["queues"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.contains("-requests-"))
            .map(|(_, q)| q["visible"].as_u64().unwrap() + q["in_flight"].as_u64().unwrap())
            .sum();
        if waiting == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "requests left in the queues: {ready:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let after = wait_for_job(base, job_id, Duration::from_secs(5));
    assert_eq!(after["counts"], view["counts"], "no cancelled photo was processed after all");

    // Resumed by the owner, the cancelled photos go to work again and the job ends done.
    let resume_url = format!("{base}/api/v1/jobs/{job_id}/resume");
    assert_eq!(post(&resume_url, &[], "application/json", b"").status, 404, "only the owner resumes");
    let resumed = post(&resume_url, &[("X-Owner-Token", token)], "application/json", b"");
    assert_eq!(resumed.status, 202, "{}", resumed.text());
    assert_eq!(resumed.json()["retried"].as_array().unwrap().len() as u64, shown_cancelled);
    let view = wait_for_job(base, job_id, Duration::from_secs(120));
    assert_eq!((view["state"].as_str(), view["counts"]["done"].as_u64()), (Some("done"), Some(6)), "{view:#}");
}
