//! The API as programs meet it: the OpenAPI document held to the live server by schemathesis,
//! the reference page, and the examples in `examples/` run against a live server.

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs schemathesis (tests/api/schemathesis.sh installs it from PyPI once) against
/// `darkroom serve`: every documented operation with generated inputs, checking that none
/// gets a 5xx and that every response is what the document says. DARKROOM_SKIP_SCHEMATHESIS=1
/// skips it (it needs python3 with venv, and PyPI the first time).
#[test]
fn the_openapi_document_holds_under_schemathesis() {
    if std::env::var("DARKROOM_SKIP_SCHEMATHESIS").is_ok_and(|v| v == "1") {
        eprintln!("DARKROOM_SKIP_SCHEMATHESIS=1: skipping the schemathesis run");
        return;
    }
    // The rate limit is off so that the generated flood is judged, not throttled (429 is
    // documented on every operation all the same).
    let app =
        TestApp::serve(&Backend::Local, &["--rate-limit", "0", "--webhook-secret", "schemathesis-secret-0123456789"]);
    let output = Command::new(repository().join("tests/api/schemathesis.sh"))
        .arg(app.server.url())
        // A fixed seed: the suite explores the same inputs every run (the script alone, or
        // with --seed of its own, explores others: run it for longer searches).
        .args(["--seed", "20261126"])
        .env("SCHEMATHESIS_MAX_EXAMPLES", "30")
        .output()
        .expect("tests/api/schemathesis.sh runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The summary names every operation it loaded as tested (24 or more: the operation
    // registry's endpoint came last), and cases were generated.
    let total: usize = report
        .lines()
        .find_map(|line| line.split(" selected / ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(total >= 24, "only {total} operations loaded:\n{report}");
    assert!(report.contains(&format!("Tested: {total}")), "{total} operations, but:\n{report}");
    let generated = report.lines().find(|line| line.contains(" generated, ")).unwrap_or_default().to_owned();
    let count: u64 = generated.trim().split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(count >= 500, "only {count} cases generated: {generated}");
    eprintln!("schemathesis: {}", generated.trim());
}

#[test]
fn the_reference_page_and_the_document_are_served_and_wrong_methods_get_405() {
    let app = TestApp::serve(&Backend::Local, &[]);
    let document = get(&app.url("/api/v1/openapi.json"));
    assert_eq!(document.status, 200);
    let document = document.json();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/api/v1/jobs/{job}/cancel"]["post"].is_object());
    let page = get(&app.url("/api"));
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("/api/v1/jobs/{job}/events") && html.contains("ErrorCode") && html.contains("invalid_recipe")
    );
    assert!(!html.contains("https://cdn") && !html.contains("<script"), "own assets only");

    let wrong = reply(agent().put(&app.url("/api/v1/jobs")).send(&b""[..]));
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, POST"));
    assert_eq!(wrong.json()["error"]["code"], "invalid_request");
    let wrong = reply(agent().delete(&app.url("/healthz")).call());
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("GET")));
    assert_eq!(get(&app.url("/api/v1/nothing-here")).status, 404);
}

/// The example program's binary, built if this test run did not build it.
pub fn example_binary() -> PathBuf {
    let binary = Path::new(BIN).with_file_name("upload-folder");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status =
            Command::new(cargo).args(["build", "-p", "upload-folder"]).current_dir(repository()).status().unwrap();
        assert!(status.success(), "building examples/upload-folder");
    }
    binary
}

#[test]
fn the_examples_run_against_a_live_server() {
    let app = TestApp::serve(&Backend::Local, &[]);
    let work = tempfile::tempdir().unwrap();

    // The curl walkthrough: create, watch, download, delete.
    let output = Command::new("bash")
        .arg(repository().join("examples/curl.sh"))
        .arg(app.server.url())
        .current_dir(work.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "examples/curl.sh failed:\n{said}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("state: done (2 done, 0 failed)"), "{said}");
    assert!(said.contains("it now answers 404"), "{said}");
    let zip = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".zip"));
    let zip = std::fs::read(zip.expect("the archive was saved").path()).unwrap();
    assert!(zip.starts_with(b"PK\x03\x04") && zip.len() > 10_000);

    // The Rust program: a folder of 23 photos (two requests) and one that is not a photo.
    let folder = work.path().join("photos");
    std::fs::create_dir(&folder).unwrap();
    for n in 0..23 {
        let source = ["astronaut.jpg", "coffee.png", "chelsea.jpg"][n % 3];
        let extension = source.rsplit('.').next().unwrap();
        std::fs::copy(fixture_path(source), folder.join(format!("photo-{n:02}.{extension}"))).unwrap();
    }
    std::fs::write(folder.join("notes.jpg"), "not a photo").unwrap();
    let out = work.path().join("results.zip");
    let output = Command::new(example_binary())
        .args([app.server.url(), folder.to_str().unwrap(), out.to_str().unwrap()])
        .arg(r#"{"ops":[{"op":"thumbnail","size":200}]}"#)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "upload-folder failed:\n{said}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("uploading 24 photos"), "{said}");
    assert!(said.contains("not accepted: notes.jpg"), "{said}");
    assert!(said.contains("done: 23 done, 0 failed"), "{said}");
    let zip = std::fs::read(&out).unwrap();
    let entries = zip.windows(4).filter(|window| window == b"PK\x01\x02").count();
    assert_eq!(entries, 23, "one archive entry per photo");
}
