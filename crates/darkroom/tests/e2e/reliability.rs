//! The reliability soak (opt-in, minutes long): `DARKROOM_RELIABILITY_SOAK=1 ./test.sh -p
//! darkroom --test e2e reliability`.
//!
//! Separate web, status and two worker processes take random SIGKILLs (1,000 by default, at
//! 0.1–0.6 s intervals, each restarted at once) while clients upload 2,000 photos in jobs of
//! 50 (batches of 10, each added batch with an Idempotency-Key and retried until answered)
//! and delete every eighth job as soon as its last batch is in. On LocalStack, S3 is cut
//! twice for 60 s meanwhile (a proxy that refuses connections). At the end:
//! - every photo the server accepted is in its job's view exactly once, and done;
//! - each done attempt has one result, thumb and preview, and nothing else;
//! - every job's zip holds one entry per photo;
//! - nothing of a deleted job remains in the store.
//!
//! `DARKROOM_RELIABILITY_PHOTOS`, `DARKROOM_RELIABILITY_KILLS` and
//! `DARKROOM_RELIABILITY_OUTAGE_SECS` change the scale. The receive budget is raised to 50:
//! at this kill rate a photo at the tail of the queue is often in the one worker killed next,
//! which a real fleet's dead-letter budget (5) would rightly count as a poison photo.

use crate::helpers::*;
use crate::proxy::{address_of, bucket_keys, Proxy};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const PHOTOS_PER_JOB: usize = 50;
const BATCH: usize = 10;
/// Every this many jobs, one is deleted once its photos are all added.
const DELETE_EVERY: usize = 8;
const UPLOADERS: usize = 2;
const RECIPE: &str = r#"{"ops":[{"op":"recolor","mode":"sepia"},{"op":"redeye"},{"op":"thumbnail","size":96}]}"#;

/// Settings of every process: quick redelivery and housekeeping, no rate limit for the one
/// client address the soak uses.
const SETTINGS: &[&str] = &[
    "--housekeeping-interval",
    "3s",
    "--stuck-after",
    "20s",
    "--upload-deadline",
    "30s",
    "--rate-limit",
    "100000",
    "--rate-limit-burst",
    "100000",
];

struct Scale {
    photos: usize,
    kills: usize,
    outage: Duration,
}

fn scale() -> Option<Scale> {
    if std::env::var("DARKROOM_RELIABILITY_SOAK").ok().as_deref() != Some("1") {
        eprintln!("skipping the reliability soak: set DARKROOM_RELIABILITY_SOAK=1");
        return None;
    }
    let number = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Some(Scale {
        photos: number("DARKROOM_RELIABILITY_PHOTOS", 2000),
        kills: number("DARKROOM_RELIABILITY_KILLS", 1000),
        outage: Duration::from_secs(number("DARKROOM_RELIABILITY_OUTAGE_SECS", 60) as u64),
    })
}

#[test]
fn reliability_soak_local() {
    let Some(scale) = scale() else { return };
    soak(&Backend::Local, None, &scale);
}

#[test]
fn reliability_soak_localstack() {
    let Some(scale) = scale() else { return };
    let Some(Backend::LocalStack { endpoint, bucket, prefix, .. }) = Backend::localstack() else { return };
    let s3 = Proxy::start(address_of(&endpoint));
    let backend = Backend::LocalStack { endpoint, s3_endpoint: Some(s3.url()), bucket, prefix };
    soak(&backend, Some(&s3), &scale);
}

/// One job as the clients know it: what the server accepted, and whether they deleted it.
#[derive(Debug, Default, Clone)]
struct KnownJob {
    token: String,
    photos: BTreeSet<String>,
    deleted: bool,
}

type Known = Arc<Mutex<BTreeMap<String, KnownJob>>>;

/// Every process of the soak, restarted in place when killed.
struct Fleet<'a> {
    backend: &'a Backend,
    data: &'a Path,
    web: Process,
    status: Process,
    workers: Vec<Process>,
    /// The web process's address, which changes with every restart.
    url: Arc<RwLock<String>>,
}

impl<'a> Fleet<'a> {
    fn start(backend: &'a Backend, data: &'a Path) -> Self {
        let web = Self::web(backend, data);
        let url = Arc::new(RwLock::new(web.url().to_owned()));
        let status = Self::process(backend, data, "status");
        let workers = (0..2).map(|_| Self::process(backend, data, "worker")).collect();
        Self { backend, data, web, status, workers, url }
    }

    fn args(role: &str) -> Vec<&str> {
        let mut args = vec![role];
        args.extend_from_slice(FAST);
        args.extend_from_slice(SETTINGS);
        if role == "worker" {
            args.extend_from_slice(&["--concurrency", "1"]);
        }
        args
    }

    fn web(backend: &Backend, data: &Path) -> Process {
        Process::start(backend, data, &Self::args("web"), true)
    }

    fn process(backend: &Backend, data: &Path, role: &str) -> Process {
        Process::start(backend, data, &Self::args(role), false)
    }

    /// SIGKILLs one process and starts its replacement; returns which role it was.
    fn kill_one(&mut self, pick: u64) -> &'static str {
        let (victim, role) = match pick % 10 {
            0..=4 => (&mut self.workers[(pick / 10 % 2) as usize], "worker"),
            5..=7 => (&mut self.status, "status"),
            _ => (&mut self.web, "web"),
        };
        victim.child.kill().unwrap();
        victim.child.wait().unwrap();
        *victim = if role == "web" {
            Self::web(self.backend, self.data)
        } else {
            Self::process(self.backend, self.data, role)
        };
        if role == "web" {
            *self.url.write().unwrap() = self.web.url().to_owned();
        }
        role
    }
}

fn soak(backend: &Backend, s3: Option<&Proxy>, scale: &Scale) {
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();
    backend.setup_with(data.path(), &["--max-receive-count", "50"]);
    let mut fleet = Fleet::start(backend, data.path());
    let known: Known = Arc::default();
    let photo = Arc::new(fixture("chelsea.jpg"));

    // Uploads spread over the expected kill period (about 0.45 s per kill), so the kills
    // land while photos are being processed.
    let jobs = scale.photos.div_ceil(PHOTOS_PER_JOB);
    let batches_per_uploader = (jobs * PHOTOS_PER_JOB / BATCH).div_ceil(UPLOADERS).max(1);
    let pace = Duration::from_millis(450 * scale.kills as u64 / batches_per_uploader as u64);
    let next_job = Arc::new(AtomicUsize::new(0));
    let uploaders: Vec<_> = (0..UPLOADERS)
        .map(|_| {
            let (url, known, photo, next_job) = (fleet.url.clone(), known.clone(), photo.clone(), next_job.clone());
            std::thread::spawn(move || loop {
                let n = next_job.fetch_add(1, Ordering::SeqCst);
                if n >= jobs {
                    return;
                }
                upload_job(&url, &known, &photo, n % DELETE_EVERY == DELETE_EVERY - 1, pace);
            })
        })
        .collect();

    // S3 is cut a third and two thirds of the way through the kills (LocalStack).
    let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    let mut random = move |bound: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % bound
    };
    let mut killed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outage_time = Duration::ZERO;
    let mut cuts = 0;
    let mut cut_since: Option<Instant> = None;
    for kill in 0..scale.kills {
        std::thread::sleep(Duration::from_millis(100 + random(500)));
        *killed.entry(fleet.kill_one(random(1000))).or_default() += 1;
        if let Some(s3) = s3 {
            match cut_since {
                Some(since) if since.elapsed() >= scale.outage => {
                    s3.restore();
                    outage_time += since.elapsed();
                    cut_since = None;
                }
                None if cuts < 2 && kill + 1 >= scale.kills * (cuts + 1) / 3 => {
                    s3.cut();
                    cuts += 1;
                    cut_since = Some(Instant::now());
                }
                _ => {}
            }
        }
    }
    if let (Some(s3), Some(since)) = (s3, cut_since) {
        // The kills ended inside an outage: it still lasts its full length.
        std::thread::sleep(scale.outage.saturating_sub(since.elapsed()));
        s3.restore();
        outage_time += since.elapsed();
    }
    let kills_over = started.elapsed();
    for uploader in uploaders {
        uploader.join().unwrap();
    }

    // Every job finished, then checked.
    let url = fleet.url.read().unwrap().clone();
    let known = known.lock().unwrap().clone();
    let accepted: usize = known.values().map(|job| job.photos.len()).sum();
    let mut restarted_photos = 0;
    for (job, record) in known.iter().filter(|(_, record)| !record.deleted) {
        let view = wait_for_job(&url, job, Duration::from_secs(900));
        assert_eq!(view["state"], "done", "job {job}: {}", view["counts"]);
        let shown: Vec<String> =
            view["photos"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(shown.len(), record.photos.len(), "job {job}: a photo shown twice, lost or never accepted");
        assert_eq!(shown.iter().cloned().collect::<BTreeSet<_>>(), record.photos, "job {job}");
        for photo in view["photos"].as_array().unwrap() {
            assert_eq!(photo["state"], "done", "job {job}: {photo}");
            let id = photo["id"].as_str().unwrap();
            let attempt = photo["attempt"].as_u64().unwrap();
            restarted_photos += usize::from(attempt > 1);
            let keys = stored_keys(backend, data.path(), &format!("jobs/{job}/photos/{id}/"));
            let done: BTreeSet<u64> = keys
                .iter()
                .filter(|key| key.contains("/events/") && key.ends_with("-done.json"))
                .map(|key| key.rsplit('/').next().unwrap()[..6].parse().unwrap())
                .collect();
            assert!(done.contains(&attempt), "job {job} photo {id}: attempt {attempt} has no done event: {keys:?}");
            for done_attempt in done {
                let mut outputs: Vec<&str> = keys
                    .iter()
                    .filter_map(|key| key.strip_prefix(&format!("jobs/{job}/photos/{id}/a{done_attempt}/")))
                    .filter(|name| !name.starts_with("segment-"))
                    .collect();
                outputs.sort_unstable();
                assert_eq!(outputs, ["preview.jpg", "result.jpg", "thumb.jpg"], "job {job} photo {id}: {keys:?}");
            }
        }
        let archive = reply(
            agent().get(&format!("{url}/api/v1/jobs/{job}/archive.zip")).header("X-Owner-Token", &record.token).call(),
        );
        assert_eq!(archive.status, 200, "job {job}: {}", archive.text());
        assert_eq!(zip_entries(&archive.body), record.photos.len(), "job {job}: the zip misses entries");
    }
    let deleted: Vec<&String> = known.iter().filter(|(_, record)| record.deleted).map(|(job, _)| job).collect();
    for job in &deleted {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = stored_keys(backend, data.path(), &format!("jobs/{job}/"));
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "deleted job {job} left {} objects: {:?}",
                left.len(),
                &left[..left.len().min(5)]
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    eprintln!(
        "reliability soak ({}): {accepted} photos accepted in {} jobs ({} deleted), {} SIGKILLs ({killed:?}) over {:.0} s, \
         S3 cut {cuts}× for {:.0} s in all, {restarted_photos} photos restarted by the reconciler, all done after {:.0} s",
        if backend.is_local() { "embedded" } else { "LocalStack" },
        known.len(),
        deleted.len(),
        scale.kills,
        kills_over.as_secs_f64(),
        outage_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(accepted >= scale.photos * 9 / 10, "only {accepted} photos were accepted");
}

/// Uploads one job in batches, each retried until answered; deletes it after if asked.
fn upload_job(url: &RwLock<String>, known: &Known, photo: &[u8], delete_after: bool, pace: Duration) {
    let names: Vec<String> = (0..PHOTOS_PER_JOB).map(|i| format!("p{i:02}.jpg")).collect();
    let first: Vec<Part<'_>> = std::iter::once(Part::Text("recipe", RECIPE))
        .chain(names[..BATCH].iter().map(|name| Part::File("photos", name, photo)))
        .collect();
    // Creating has no Idempotency-Key: a creation whose answer is lost is an unknown job
    // (retention removes it); only the answered one is followed.
    let (content_type, body) = multipart(&first);
    let created = retried(url, |agent, base| {
        agent.post(&format!("{base}/api/v1/jobs")).header("Content-Type", &content_type).send(&body[..])
    });
    let created = created.json();
    let job = created["id"].as_str().unwrap().to_owned();
    let token = created["owner_token"].as_str().unwrap().to_owned();
    let record = |reply: &Value, known: &Known| {
        let mut known = known.lock().unwrap();
        let entry =
            known.entry(job.clone()).or_insert_with(|| KnownJob { token: token.clone(), ..KnownJob::default() });
        entry.photos.extend(reply["photos"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()));
    };
    record(&created, known);
    for (n, batch) in names[BATCH..].chunks(BATCH).enumerate() {
        std::thread::sleep(pace);
        let key = format!("{job}-batch-{n}");
        let parts: Vec<Part<'_>> = batch.iter().map(|name| Part::File("photos", name, photo)).collect();
        let (content_type, body) = multipart(&parts);
        let added = retried(url, |agent, base| {
            agent
                .post(&format!("{base}/api/v1/jobs/{job}/photos"))
                .header("Content-Type", &content_type)
                .header("X-Owner-Token", &token)
                .header("Idempotency-Key", &key)
                .send(&body[..])
        });
        record(&added.json(), known);
    }
    if delete_after {
        retried(url, |agent, base| {
            agent.delete(&format!("{base}/api/v1/jobs/{job}")).header("X-Owner-Token", &token).call()
        });
        known.lock().unwrap().get_mut(&job).unwrap().deleted = true;
    }
}

/// Sends `request` to the web process of the moment until it is answered with a success;
/// a refused or cut connection (the process was killed), a 409 (the batch's first try still
/// holds its key), a 429 or a 5xx is tried again.
fn retried(
    url: &RwLock<String>,
    request: impl Fn(&ureq::Agent, &str) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut delay = Duration::from_millis(100);
    let agent = agent();
    loop {
        let base = url.read().unwrap().clone();
        if let Some(reply) = request(&agent, &base).ok().and_then(try_reply) {
            if (200..300).contains(&reply.status) {
                return reply;
            }
            assert!(
                matches!(reply.status, 409 | 429) || reply.status >= 500,
                "a request the soak does not expect to fail failed: {} {}",
                reply.status,
                reply.text()
            );
        }
        assert!(Instant::now() < deadline, "a request went unanswered for 10 minutes");
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Every key under `prefix`, wherever the backend keeps them.
fn stored_keys(backend: &Backend, data: &Path, prefix: &str) -> Vec<String> {
    match backend {
        Backend::Local => {
            let root = data.join("store/objects");
            let mut keys = Vec::new();
            let mut dirs = vec![root.join(prefix)];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries.flatten() {
                    if entry.file_type().unwrap().is_dir() {
                        dirs.push(entry.path());
                    } else {
                        keys.push(entry.path().strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                    }
                }
            }
            keys
        }
        Backend::LocalStack { endpoint, bucket, .. } => bucket_keys(endpoint, bucket, prefix),
    }
}

/// The number of entries a zip says it holds (its end-of-central-directory record).
fn zip_entries(zip: &[u8]) -> usize {
    let end = zip.windows(4).rposition(|w| w == [0x50, 0x4b, 0x05, 0x06]).expect("a zip's end record");
    usize::from(u16::from_le_bytes([zip[end + 10], zip[end + 11]]))
}
