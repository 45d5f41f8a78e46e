//! The upload and job pages in a real browser: headless Chromium (Debian's), driven by
//! playwright-core from tests/browser. `./test.sh` installs both; elsewhere the test is
//! skipped unless DARKROOM_REQUIRE_BROWSER=1.

use crate::helpers::*;
use std::path::Path;

fn browser_tools() -> Option<(String, std::path::PathBuf)> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let ready = Path::new(&chromium).exists()
        && scripts.join("node_modules/playwright-core").exists()
        && scripts.join("node_modules/axe-core").exists();
    if ready {
        return Some((chromium, scripts));
    }
    assert!(
        std::env::var("DARKROOM_REQUIRE_BROWSER").map_or(true, |v| v != "1"),
        "DARKROOM_REQUIRE_BROWSER=1 but Chromium ({chromium}) or tests/browser/node_modules is missing"
    );
    eprintln!("skipping the browser test: no Chromium at {chromium} or no playwright-core (./test.sh installs both)");
    None
}

/// Runs `tests/browser/<script>` against a fresh `serve`; its one line of JSON on stdout,
/// and where its screenshots are (target/tmp/browser). `None` when the tools are missing.
fn run_browser_script(script: &str) -> Option<(serde_json::Value, std::path::PathBuf)> {
    let (chromium, scripts) = browser_tools()?;
    let app = TestApp::serve(&Backend::Local, &[]);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&screenshots).unwrap();
    let output = std::process::Command::new("node")
        .arg(scripts.join(script))
        .arg(app.server.url())
        .arg(fixture_path(""))
        .arg(&screenshots)
        .env("CHROMIUM", chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary = serde_json::from_str(stdout.trim()).unwrap();
    Some((summary, screenshots))
}

#[test]
fn a_person_uploads_ten_photos_watches_them_finish_and_downloads_them() {
    let Some((summary, screenshots)) = run_browser_script("upload.mjs") else { return };
    assert_eq!(summary["done"], 10);
    assert_eq!(summary["archive_entries"], 10);
    eprintln!("browser run: {summary} (screenshots in {})", screenshots.display());
}

/// Issue 15's walk through the pages: recipe builder, live preview, a failed batch retried,
/// reprocessing, "Your recent jobs", axe-core, and screenshots at desktop and phone width
/// (in target/tmp/browser).
#[test]
fn a_person_builds_a_recipe_previews_it_uploads_twenty_photos_and_finds_the_job_again() {
    let Some((summary, screenshots)) = run_browser_script("studio.mjs") else { return };
    assert_eq!(summary["done"], 19);
    assert_eq!(summary["entries"], 19);
    assert_eq!(summary["rejected"], 1);
    assert!(summary["failed_then_retried"].as_u64().unwrap() >= 1);
    for name in ["upload-desktop", "upload-phone", "job-desktop", "job-phone", "compare-desktop"] {
        assert!(screenshots.join(format!("{name}.png")).exists(), "{name} screenshot");
    }
    eprintln!("studio: {summary}");
}
