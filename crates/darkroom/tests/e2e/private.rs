//! A private deployment (`--access-keys`): keys for programs, a sign-in page for browsers,
//! rotation without a restart.

use crate::helpers::*;
use std::time::{Duration, Instant};

fn keys_line(name: &str, key: &str) -> String {
    format!("{name} {}\n", hex_sha256(key))
}

fn hex_sha256(text: &str) -> String {
    darkroom_web::key_hash(text).iter().map(|b| format!("{b:02x}")).collect()
}

/// An agent that shows redirects instead of following them.
fn no_redirects() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn sign_in(base: &str, form: &str) -> Reply {
    reply(
        no_redirects()
            .post(&format!("{base}/login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(form.as_bytes()),
    )
}

fn with_key(request: ureq::RequestBuilder<ureq::typestate::WithoutBody>, key: &str) -> Reply {
    reply(request.header("Authorization", format!("Bearer {key}")).call())
}

#[test]
fn a_private_deployment_lets_in_keys_and_signed_in_browsers_only() {
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), format!("# darkroom access keys\n{}", keys_line("shop", "drk_first-key"))).unwrap();
    let app = TestApp::serve(&Backend::Local, &["--access-keys", keys.path().to_str().unwrap()]);
    let base = app.server.url().to_owned();

    // Nobody gets in without a key: programs get 401, browsers are sent to sign in.
    let refused = get(&format!("{base}/api/v1/openapi.json"));
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"]["code"], "unauthorized");
    assert!(refused.header("www-authenticate").unwrap().starts_with("Bearer"));
    let page = reply(no_redirects().get(&format!("{base}/jobs/abc?x=1")).header("Accept", "text/html").call());
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/login?next=/jobs/abc%3Fx%3D1"));
    let photo = fixture("coffee.png");
    let anonymous = create_job(&base, r#"{"ops":[{"op":"thumbnail","size":64}]}"#, &[("coffee.png", &photo)]);
    assert_eq!(anonymous.status, 401, "nothing is taken without a key");
    assert_eq!(get(&format!("{base}/healthz")).status, 200, "health stays open");
    assert_eq!(get(&format!("{base}/login")).status, 200);
    assert_eq!(get(&format!("{base}/static/app.css")).status, 200);

    // A program with the key works as before; the job id and owner token still rule inside.
    let (content_type, body) = multipart(&[
        Part::Text("recipe", r#"{"ops":[{"op":"thumbnail","size":64}]}"#),
        Part::File("photos", "coffee.png", &photo),
    ]);
    let created = reply(
        agent()
            .post(&format!("{base}/api/v1/jobs"))
            .header("Authorization", "Bearer drk_first-key")
            .header("Content-Type", &content_type)
            .send(&body[..]),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let job = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(with_key(agent().get(&format!("{base}/api/v1/jobs/{job}")), "drk_first-key").status, 200);
    assert_eq!(with_key(agent().get(&format!("{base}/api/v1/jobs/{job}")), "drk_wrong").status, 401);
    let not_owner = reply(
        agent().delete(&format!("{base}/api/v1/jobs/{job}")).header("Authorization", "Bearer drk_first-key").call(),
    );
    assert_eq!(not_owner.status, 404, "a key lets one in; it does not make one the owner");

    // A browser signs in once and keeps a session cookie.
    let form = |key: &str| format!("key={key}&next=%2Fjobs%2F{job}");
    let wrong = sign_in(&base, &form("nope"));
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("not valid"));
    let signed_in = sign_in(&base, &form("drk_first-key"));
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), Some(format!("/jobs/{job}").as_str()));
    let cookie = signed_in.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    assert!(signed_in.header("set-cookie").unwrap().contains("HttpOnly"));
    let job_page = reply(agent().get(&format!("{base}/jobs/{job}")).header("Cookie", &cookie).call());
    assert_eq!(job_page.status, 200);
    assert!(job_page.text().contains("coffee.png"));
    let outside = sign_in(&base, "key=drk_first-key&next=//evil.example/");
    assert_eq!(outside.header("location"), Some("/"), "never sent off-site after signing in");

    // Rotation without a restart: the new key works, the old one and its sessions end.
    std::fs::write(keys.path(), keys_line("shop-2027", "drk_second-key")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while with_key(agent().get(&format!("{base}/api/v1/jobs/{job}")), "drk_second-key").status != 200 {
        assert!(Instant::now() < deadline, "the new key was never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(with_key(agent().get(&format!("{base}/api/v1/jobs/{job}")), "drk_first-key").status, 401);
    let stale = reply(agent().get(&format!("{base}/api/v1/jobs/{job}")).header("Cookie", &cookie).call());
    assert_eq!(stale.status, 401, "a revoked key's sessions end with it");

    // The example program takes the key from DARKROOM_API_KEY.
    let folder = tempfile::tempdir().unwrap();
    std::fs::copy(fixture_path("coffee.png"), folder.path().join("coffee.png")).unwrap();
    let out = folder.path().join("out.zip");
    let run = |key: &str| {
        std::process::Command::new(crate::reference::example_binary())
            .args([base.as_str(), folder.path().to_str().unwrap(), out.to_str().unwrap()])
            .env("DARKROOM_API_KEY", key)
            .output()
            .unwrap()
    };
    let refused = run("drk_first-key");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("private"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let allowed = run("drk_second-key");
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert!(std::fs::read(&out).unwrap().starts_with(b"PK"));
}
