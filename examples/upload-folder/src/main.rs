//! Uploads every photo in a folder to darkroom as one job, follows it until it is finished,
//! and downloads the results as a zip.
//!
//!     cargo run -p upload-folder -- http://127.0.0.1:8080 ~/Pictures/trip out.zip \
//!         '{"ops":[{"op":"thumbnail","size":1600}]}'
//!
//! The recipe is optional (a 1600 px web gallery by default). `DARKROOM_API_KEY` is sent as
//! a bearer token, for a private deployment. Photos go up 20 per request: the first request
//! creates the job, the rest add to it with the owner token and an Idempotency-Key, so a
//! batch retried after a dropped connection is added once.

use anyhow::{bail, Context, Result};
use reqwest::blocking::{multipart, Client, RequestBuilder};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PHOTOS_PER_REQUEST: usize = 20;
const DEFAULT_RECIPE: &str = r#"{"ops":[{"op":"thumbnail","size":1600}],"format":"jpeg","quality":85}"#;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, folder, out, rest @ ..] = args.as_slice() else {
        bail!("usage: upload-folder BASE_URL FOLDER OUT.zip [RECIPE_JSON]");
    };
    let recipe = rest.first().map_or(DEFAULT_RECIPE, String::as_str);
    let base = base.trim_end_matches('/');
    let client = Client::builder().timeout(Duration::from_secs(600)).build()?;
    let api_key = std::env::var("DARKROOM_API_KEY").ok();
    let authorised = |request: RequestBuilder| match &api_key {
        Some(key) => request.bearer_auth(key),
        None => request,
    };

    let photos = photos_in(Path::new(folder))?;
    if photos.is_empty() {
        bail!("no photos (jpg, png, webp, gif, tif, heic) in {folder}");
    }
    println!("uploading {} photos from {folder}", photos.len());

    // The first batch creates the job; its answer carries the owner token.
    let mut batches = photos.chunks(PHOTOS_PER_REQUEST);
    let first = batches.next().unwrap_or_default();
    let form = with_photos(multipart::Form::new().text("recipe", recipe.to_owned()), first)?;
    let created = answer(authorised(client.post(format!("{base}/api/v1/jobs"))).multipart(form).send()?)?;
    let job = created["id"].as_str().context("no job id in the answer")?.to_owned();
    let token = created["owner_token"].as_str().context("no owner token in the answer")?.to_owned();
    report_rejected(&created);
    for (n, batch) in batches.enumerate() {
        let form = with_photos(multipart::Form::new(), batch)?;
        let added = answer(
            authorised(client.post(format!("{base}/api/v1/jobs/{job}/photos")))
                .header("X-Owner-Token", &token)
                .header("Idempotency-Key", format!("{job}-batch-{n}"))
                .multipart(form)
                .send()?,
        )?;
        report_rejected(&added);
    }
    println!("job {job}: {base}/jobs/{job}");

    // Follow the job until it is finished.
    let view = loop {
        let view = answer(authorised(client.get(format!("{base}/api/v1/jobs/{job}"))).send()?)?;
        let counts = &view["counts"];
        println!(
            "{}: {} done, {} failed, {} queued, {} processing",
            view["state"].as_str().unwrap_or("?"),
            counts["done"],
            counts["failed"],
            counts["queued"],
            counts["processing"]
        );
        if !matches!(view["state"].as_str(), Some("queued" | "processing")) {
            break view;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    for photo in view["photos"].as_array().into_iter().flatten().filter(|p| p["state"] == "failed") {
        println!(
            "failed: {} — {}",
            photo["name"].as_str().unwrap_or("?"),
            photo["error"]["message"].as_str().unwrap_or("?")
        );
    }

    // Download every result as one zip.
    if view["counts"]["done"].as_u64().unwrap_or(0) == 0 {
        bail!("no photo was processed; nothing to download");
    }
    let mut archive = authorised(client.get(format!("{base}/api/v1/jobs/{job}/archive.zip"))).send()?;
    if !archive.status().is_success() {
        bail!("downloading the archive: HTTP {}", archive.status());
    }
    let mut file = std::fs::File::create(out).with_context(|| format!("creating {out}"))?;
    let bytes = archive.copy_to(&mut file)?;
    println!("saved {out} ({bytes} bytes)");
    Ok(())
}

/// The photos in `folder`, by name.
fn photos_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            ["jpg", "jpeg", "png", "webp", "gif", "tif", "tiff", "heic", "heif"].contains(&extension.as_str())
        })
        .collect();
    photos.sort();
    Ok(photos)
}

fn with_photos(mut form: multipart::Form, photos: &[PathBuf]) -> Result<multipart::Form> {
    for photo in photos {
        form = form.file("photos", photo).with_context(|| format!("reading {}", photo.display()))?;
    }
    Ok(form)
}

/// The JSON of a successful answer, or darkroom's error message.
fn answer(response: reqwest::blocking::Response) -> Result<Value> {
    let status = response.status();
    let body: Value = response.json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {}", body["error"]["message"].as_str().unwrap_or("(no message)"));
    }
    Ok(body)
}

fn report_rejected(answer: &Value) {
    for rejected in answer["rejected"].as_array().into_iter().flatten() {
        println!(
            "not accepted: {} — {}",
            rejected["name"].as_str().unwrap_or("?"),
            rejected["error"]["message"].as_str().unwrap_or("?")
        );
    }
}
