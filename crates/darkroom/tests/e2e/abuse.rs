//! Clients that misbehave, and what everyone else still gets: a flood of requests, uploads
//! that trickle a byte a second, posts from other sites, link holders asking for originals.

use crate::helpers::*;
use std::time::Duration;

#[test]
fn a_flooding_client_gets_429_with_retry_after_and_health_checks_still_answer() {
    let app = TestApp::serve(&Backend::Local, &["--rate-limit", "1", "--rate-limit-burst", "5"]);
    let unknown = app.url("/api/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa");
    let statuses: Vec<u16> = (0..5).map(|_| get(&unknown).status).collect();
    // The burst is served (404: no such job), then the client has to wait: one more token a
    // second comes back, so of the next twenty requests nearly all are refused.
    assert_eq!(statuses, [404; 5]);
    let limited = (0..20).map(|_| get(&unknown)).find(|reply| reply.status == 429).expect("a 429 within 20 requests");
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    let retry_after: u64 = limited.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    // Load balancers and Prometheus are never limited.
    for _ in 0..10 {
        assert_eq!(get(&app.url("/healthz")).status, 200);
    }
    let metrics = get(&app.url("/metrics")).text();
    assert!(metrics.contains("darkroom_rate_limited_total"));
    // Each metric explains itself to whoever reads /metrics (docs/METRICS.md has the list).
    assert!(
        metrics.contains("# HELP darkroom_rate_limited_total Requests refused with 429 by the per-client rate limit."),
        "no help text for the rate limit's counter:\n{metrics}"
    );
}

/// Slow clients must not lock others out: 48 uploads that trickle a byte a second hold no
/// slot a normal upload needs — one client gets at most its share, and a slow upload gives
/// its slot up to a newcomer once it has shown its pace.
#[test]
fn trickling_uploads_do_not_stop_a_normal_upload() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let app = TestApp::serve(&Backend::Local, &[]);
    let address = app.server.url().trim_start_matches("http://").to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let trickles: Vec<_> = (0..48)
        .map(|_| {
            let (address, stop) = (address.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(&address).unwrap();
                stream.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
                let head = format!(
                    "POST /api/v1/jobs HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
                     Content-Length: 10000000\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"slow.jpg\"\r\n\
                     Content-Type: image/jpeg\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&[0xff]);
                let mut answer = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let mut buffer = [0u8; 1024];
                    match stream.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => {
                            answer.extend_from_slice(&buffer[..n]);
                            break;
                        }
                        Err(_) => {}
                    }
                    std::thread::sleep(Duration::from_millis(990));
                    if stream.write_all(&[0xd8]).is_err() {
                        break;
                    }
                }
                String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_owned()
            })
        })
        .collect();
    darkroom_testkit::eventually_blocking(Duration::from_secs(10), "the trickling uploads hold their slots", || {
        app_gauge(&app, "darkroom_upload_slots_in_use") >= 8
    });
    // The eviction policy judges an upload's pace after its first second: that is the input.
    std::thread::sleep(Duration::from_millis(1500));
    let started = std::time::Instant::now();
    let normal = create_job(
        app.server.url(),
        r#"{"ops":[{"op":"thumbnail","size":64}]}"#,
        &[("a.jpg", &fixture("chelsea.jpg"))],
    );
    let waited = started.elapsed();
    assert_eq!(normal.status, 201, "{}", normal.text());
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<String> = trickles.into_iter().map(|t| t.join().unwrap()).collect();
    let refused = answers.iter().filter(|a| a.contains(" 429 ")).count();
    let evicted = app_gauge(&app, "darkroom_uploads_evicted_total");
    assert!(refused >= 40, "one client got more than its share of slots: {answers:?}");
    assert!(evicted >= 1, "no slow upload gave way");
    eprintln!("48 trickling uploads: {refused} refused at once (429), {evicted} evicted (408); the normal upload got 201 after {waited:?}");
}

fn app_gauge(app: &TestApp, name: &str) -> u64 {
    let text = get(&app.url("/metrics")).text();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Attacks from other sites and link holders: a cross-site form post is refused before its
/// body is read; every response carries the security headers; someone with the job's link
/// but not its owner token gets the "before" view, never the original with its EXIF.
#[test]
fn cross_site_posts_are_refused_and_originals_are_the_owner_s_alone() {
    let app = TestApp::serve(&Backend::Local, &[]);
    let photo = fixture("coffee-exif-rotate90.jpg");
    assert!(photo.windows(4).any(|w| w == b"Exif"), "the fixture carries EXIF");
    let (content_type, body) = multipart(&[
        Part::Text("op_thumbnail", "on"),
        Part::Text("thumbnail_size", "200"),
        Part::File("photos", "a.jpg", &photo),
    ]);
    let forged = post(
        &app.url("/jobs"),
        &[("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")],
        &content_type,
        &body,
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert_eq!(forged.json()["error"]["code"], "forbidden");
    let forged_api = post(&app.url("/api/v1/jobs"), &[("Origin", "https://evil.example")], &content_type, &body);
    assert_eq!(forged_api.status, 403);
    assert_eq!(app.stored_jobs(), Some(0), "a refused request created something");

    let created = create_job(app.server.url(), r#"{"ops":[{"op":"thumbnail","size":200}]}"#, &[("a.jpg", &photo)]);
    let same_origin_headers = [("Sec-Fetch-Site", "same-origin")];
    let own_page = post(&app.url("/jobs"), &same_origin_headers, &content_type, &body);
    assert!(
        own_page.status == 200 && own_page.text().contains("Your photos"),
        "our own form still works: {}",
        own_page.status
    );
    let json = created.json();
    let (id, token) = (json["id"].as_str().unwrap(), json["owner_token"].as_str().unwrap());
    let view = wait_for_job(app.server.url(), id, Duration::from_secs(30));
    let original_url = app.url(view["photos"][0]["original_url"].as_str().unwrap());

    let as_stranger = get(&original_url);
    assert_eq!(as_stranger.status, 200);
    assert!(!as_stranger.body.windows(4).any(|w| w == b"Exif"), "a stranger got the EXIF");
    assert_eq!(as_stranger.body, get(&app.url(output_url(&view["photos"][0], "preview"))).body);
    let as_owner =
        agent().get(&original_url).header("X-Owner-Token", token).call().unwrap().into_body().read_to_vec().unwrap();
    assert_eq!(as_owner, photo, "the owner gets the upload as sent");

    for url in [
        app.url("/"),
        app.url(&format!("/jobs/{id}")),
        app.url("/api/v1/jobs/nope"),
        app.url("/static/app.css"),
        original_url,
    ] {
        let reply = get(&url);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{url}");
        let policy = reply.header("content-security-policy").unwrap_or_default().to_owned();
        assert!(
            policy.contains("frame-ancestors 'none'")
                && policy.contains("script-src 'self'")
                && !policy.contains("unsafe-inline"),
            "{url}: {policy}"
        );
        assert_eq!(reply.header("referrer-policy"), Some("same-origin"), "{url}");
    }
}
