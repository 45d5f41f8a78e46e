//! A `TestApp` that runs the real binary, and small HTTP and multipart helpers.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_darkroom");

// Not every test target that includes these helpers uses both.
#[allow(unused_imports)]
pub use darkroom_testkit::{fixture, fixture_path};

/// Where a test's darkroom keeps photos and queues.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded backend in a temporary data directory.
    Local,
    /// S3 and SQS on LocalStack, with a bucket and queue prefix of the test's own.
    /// `s3_endpoint`, when set, sends S3 traffic elsewhere (`AWS_ENDPOINT_URL_S3`): the outage
    /// test routes each service through a proxy it can cut.
    LocalStack { endpoint: String, s3_endpoint: Option<String>, bucket: String, prefix: String },
}

impl Backend {
    /// LocalStack, if the suite runs against it (`./test.sh` starts it and requires it).
    pub fn localstack() -> Option<Self> {
        let endpoint = darkroom_testkit::localstack_endpoint()?;
        let id = format!("{:08x}", rand_u64() as u32);
        Some(Self::LocalStack { endpoint, s3_endpoint: None, bucket: format!("e2e-{id}"), prefix: format!("e2e{id}") })
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local)
    }

    fn configure(&self, command: &mut Command) {
        command.env_remove("DARKROOM_BACKEND").env_remove("AWS_ENDPOINT_URL").env_remove("AWS_ENDPOINT_URL_S3");
        if let Self::LocalStack { endpoint, s3_endpoint, bucket, prefix } = self {
            if let Some(s3_endpoint) = s3_endpoint {
                command.env("AWS_ENDPOINT_URL_S3", s3_endpoint);
            }
            command
                .args(["--backend", "aws", "--bucket", bucket, "--queue-prefix", prefix])
                .env("AWS_ENDPOINT_URL", endpoint)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test");
        }
    }

    /// Runs `darkroom setup` for this backend.
    pub fn setup(&self, data_dir: &Path) {
        self.setup_with(data_dir, &[]);
    }

    /// Runs `darkroom setup` with extra settings (e.g. `--max-receive-count`).
    pub fn setup_with(&self, data_dir: &Path, extra: &[&str]) {
        self.setup_plain(data_dir, &[FAST, extra].concat());
    }

    /// Runs `darkroom setup` with the default settings plus `args`.
    pub fn setup_plain(&self, data_dir: &Path, args: &[&str]) {
        let output = self.run(data_dir, &[&["setup"], args].concat());
        assert!(output.status.success(), "setup failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Runs `darkroom ARGS` on this backend to its end.
    pub fn run(&self, data_dir: &Path, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(BIN);
        command.args(args).args(["--data-dir", data_dir.to_str().unwrap()]);
        self.configure(&mut command);
        command.output().unwrap()
    }
}

/// Generates `<test>::local` and `<test>::localstack` from `fn <test>(backend: Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn local() {
                    super::$name($crate::helpers::Backend::Local);
                }

                #[test]
                fn localstack() {
                    if let Some(backend) = $crate::helpers::Backend::localstack() {
                        super::$name(backend);
                    }
                }
            }
        )*
    };
}

/// Settings that keep tests quick: short timeouts so redelivery takes seconds.
pub const FAST: &[&str] =
    &["--visibility-timeout", "6s", "--heartbeat-interval", "2s", "--wait-time", "2s", "--drain-deadline", "5s"];

/// A running darkroom process; killed when dropped.
pub struct Process {
    pub child: Child,
    /// The address it printed on stdout, if it serves HTTP.
    pub url: Option<String>,
}

impl Process {
    /// Starts `darkroom <args>` and, if `expect_url`, waits for its "listening on" line.
    pub fn start(backend: &Backend, data_dir: &Path, args: &[&str], expect_url: bool) -> Self {
        Self::start_with_env(backend, data_dir, args, expect_url, &[])
    }

    /// [`Process::start`] with extra environment variables.
    pub fn start_with_env(
        backend: &Backend,
        data_dir: &Path,
        args: &[&str],
        expect_url: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(BIN);
        backend.configure(&mut command);
        command.envs(env.iter().copied());
        command
            .args(args)
            .args(["--data-dir", data_dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("DARKROOM_LOG", std::env::var("DARKROOM_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("darkroom binary starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) =
                    line.strip_prefix("darkroom listening on ").or_else(|| line.strip_prefix("darkroom metrics on "))
                {
                    let _ = sender.send(url.to_owned());
                }
            }
        });
        let url = expect_url.then(|| match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("darkroom {args:?} did not report its address");
            }
        });
        Self { child, url }
    }

    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `darkroom serve` with a fresh data directory (or bucket and queues).
pub struct TestApp {
    pub server: Process,
    pub data: tempfile::TempDir,
    pub backend: Backend,
}

impl TestApp {
    pub fn serve(backend: &Backend, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec!["serve", "--auto-setup"];
        args.extend_from_slice(FAST);
        args.extend_from_slice(extra);
        let server = Process::start(backend, data.path(), &args, true);
        Self { server, data, backend: backend.clone() }
    }

    /// How many jobs have objects in the store, where the test can look (local backend).
    pub fn stored_jobs(&self) -> Option<usize> {
        self.backend
            .is_local()
            .then(|| std::fs::read_dir(self.data.path().join("store/objects/jobs")).map(|d| d.count()).unwrap_or(0))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON (HTTP {}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    try_reply(response.expect("HTTP request completes")).expect("the reply's body is read to its end")
}

/// The reply, or `None` if its body could not be read to its end (the connection was cut).
pub fn try_reply(mut response: ureq::http::Response<ureq::Body>) -> Option<Reply> {
    let status = response.status().as_u16();
    let headers =
        response.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    let body = response.body_mut().with_config().limit(512 << 20).read_to_vec().ok()?;
    Some(Reply { status, headers, body })
}

pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

pub fn post(url: &str, headers: &[(&str, &str)], content_type: &str, body: &[u8]) -> Reply {
    let mut request = agent().post(url).header("Content-Type", content_type);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.send(body))
}

pub fn delete(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent().delete(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply(request.call())
}

pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

/// A multipart/form-data body: (content type, bytes).
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = format!("darkroom-test-{:016x}", rand_u64());
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(name, file_name, bytes) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn rand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id())
}

/// Creates a job through the API; returns the reply (201 expected by most callers).
pub fn create_job(base: &str, recipe: &str, files: &[(&str, &[u8])]) -> Reply {
    let mut parts = vec![Part::Text("recipe", recipe)];
    parts.extend(files.iter().map(|(name, bytes)| Part::File("photos", name, bytes)));
    let (content_type, body) = multipart(&parts);
    post(&format!("{base}/api/v1/jobs"), &[], &content_type, &body)
}

/// Polls the job until it is finished (the job's state is not queued/processing).
pub fn wait_for_job(base: &str, job_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let view = get(&format!("{base}/api/v1/jobs/{job_id}")).json();
        let state = view["state"].as_str().unwrap_or("").to_owned();
        if !["queued", "processing"].contains(&state.as_str()) {
            return view;
        }
        assert!(Instant::now() < deadline, "job {job_id} not finished within {within:?}: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls until `condition` holds on the job view.
pub fn wait_for_view(base: &str, job_id: &str, within: Duration, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let view = get(&format!("{base}/api/v1/jobs/{job_id}")).json();
        if condition(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "condition not met within {within:?}: {view:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sum of one counter over all its labels, from a process's /metrics.
pub fn counter(process: &Process, name: &str) -> u64 {
    let text = get(&format!("{}/metrics", process.url())).text();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

pub fn output_url<'a>(photo: &'a Value, name: &str) -> &'a str {
    photo["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no {name} output: {photo:#}"))["url"]
        .as_str()
        .unwrap()
}

pub fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("output decodes")
}
