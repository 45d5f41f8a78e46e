//! Every setting, as a flag and an environment variable (docs/ARCHITECTURE.md "Command line and
//! settings"), read once at start-up and validated with errors that name the setting.
//! Nothing deeper in the code reads the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use darkroom_core::{Limits, StageMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "darkroom",
    version,
    about = "darkroom: an online photo-processing service built on queues and an object store",
    long_about = "darkroom processes photos the way the classic EC2 + SQS architecture prescribes: a web tier \
                  stores uploads and queues one request per photo, interchangeable workers process them, and a \
                  status process records the results. With no subcommand it runs `serve`: everything in one \
                  process on the embedded backend (a data directory and an SQLite queue)."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Web, workers for every stage, and status in one process (the default).
    Serve,
    /// Only the web tier: upload page, job pages, JSON API, downloads.
    Web,
    /// Only a processing server.
    Worker {
        /// Stage(s) to serve; repeat for several. Default: every stage of --stage-map.
        #[arg(long = "stage", env = "DARKROOM_STAGE", value_delimiter = ',')]
        stages: Vec<String>,
    },
    /// Only the status process: Response queue and dead letters into job views.
    Status,
    /// Create the bucket/data directory, request and response queues and their DLQs (idempotent).
    Setup,
    /// Make a new access key for a private deployment (--access-keys): prints the key, once,
    /// and the line that lets it in.
    AccessKey {
        /// A name for whoever gets the key (a program, a person): shown in the logs.
        name: String,
    },
    /// Apply a recipe to local files, without queues or a store: for scripts and benchmarks.
    Process {
        /// The recipe, as JSON (see the README).
        #[arg(long)]
        recipe: String,
        /// Directory for the results (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Photos to process.
        #[arg(required = true)]
        photos: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Data directory + embedded SQLite queue: no cloud, no setup.
    Local,
    /// Amazon S3 + SQS (or LocalStack via AWS_ENDPOINT_URL).
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 500ms, 2m)"))
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Where photos and queues live. `local` never touches the cloud, whatever AWS variables are set.
    #[arg(long, env = "DARKROOM_BACKEND", value_enum, default_value = "local", global = true)]
    pub backend: Backend,

    /// Address the web tier listens on (port 0 picks a free port).
    #[arg(long, env = "DARKROOM_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,

    /// Address for /healthz, /readyz and /metrics of a worker or status process.
    #[arg(long, env = "DARKROOM_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// Data directory of the local backend (photos, job documents, queue database).
    #[arg(long, env = "DARKROOM_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// S3 bucket of the aws backend.
    #[arg(long, env = "DARKROOM_BUCKET", default_value = "darkroom", global = true)]
    pub bucket: String,

    /// Queue names are <prefix>-requests-<stage>, <prefix>-responses, each with a -dlq twin.
    #[arg(long, env = "DARKROOM_QUEUE_PREFIX", default_value = "darkroom", global = true)]
    pub queue_prefix: String,

    /// Which stage runs which operation, as op=stage pairs; others run in --default-stage.
    #[arg(long, env = "DARKROOM_STAGE_MAP", default_value = darkroom_core::plan::DEFAULT_STAGE_MAP, global = true)]
    pub stage_map: String,

    /// Stage of every operation not named in --stage-map.
    #[arg(long, env = "DARKROOM_DEFAULT_STAGE", default_value = darkroom_core::plan::DEFAULT_STAGE, global = true)]
    pub default_stage: String,

    /// How long a received message stays hidden; a crashed worker's photo reappears after it.
    #[arg(long, env = "DARKROOM_VISIBILITY_TIMEOUT", default_value = "30s", value_parser = duration, global = true)]
    pub visibility_timeout: Duration,

    /// How often a worker extends a photo's visibility; at most a third of the timeout.
    #[arg(long, env = "DARKROOM_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = duration, global = true)]
    pub heartbeat_interval: Duration,

    /// Deliveries before a message goes to its dead-letter queue (and the photo is shown failed).
    #[arg(long, env = "DARKROOM_MAX_RECEIVE_COUNT", default_value_t = 5, global = true)]
    pub max_receive_count: u32,

    /// Lanes `setup` spreads each request queue over on SQS, so workers take turns between
    /// jobs there too (LocalStack does not reorder SQS fair-queue groups); 1: one queue each.
    #[arg(long, env = "DARKROOM_FAIR_LANES", default_value_t = 4, global = true)]
    pub fair_lanes: usize,

    /// Long-poll wait of each receive (at most 20s).
    #[arg(long, env = "DARKROOM_WAIT_TIME", default_value = "20s", value_parser = duration, global = true)]
    pub wait_time: Duration,

    /// On SIGTERM, how long in-flight photos may take before they are handed back.
    #[arg(long, env = "DARKROOM_DRAIN_DEADLINE", default_value = "30s", value_parser = duration, global = true)]
    pub drain_deadline: Duration,

    /// How long one photo may take in each stage, as stage=duration pairs (stages not named
    /// get the longest). Past it the render is abandoned; in the last attempt the photo fails.
    #[arg(long, env = "DARKROOM_TIME_BUDGET", default_value = "quick=2m,slow=5m", global = true)]
    pub time_budget: String,

    /// How often the status process does its housekeeping: finishing interrupted deletions,
    /// expiring old jobs, restarting photos whose request was lost.
    #[arg(long, env = "DARKROOM_HOUSEKEEPING_INTERVAL", default_value = "60s", value_parser = duration, global = true)]
    pub housekeeping_interval: Duration,

    /// How long a queued photo waits, at the least, before the reconciler may judge its
    /// request lost and restart it (processing photos get every attempt's time budget).
    #[arg(long, env = "DARKROOM_STUCK_AFTER", default_value = "30m", value_parser = duration, global = true)]
    pub stuck_after: Duration,

    /// Jobs older than this are deleted with everything in them (0 keeps them for ever).
    #[arg(long, env = "DARKROOM_RETENTION", default_value = "30days", value_parser = duration, global = true)]
    pub retention: Duration,

    /// Photos a worker process works on at once (default: one per CPU core).
    #[arg(long, env = "DARKROOM_CONCURRENCY", global = true)]
    pub concurrency: Option<usize>,

    /// Largest accepted photo file, in MiB.
    #[arg(long, env = "DARKROOM_MAX_FILE_MIB", default_value_t = 64, global = true)]
    pub max_file_mib: u64,

    /// Most photos in one job.
    #[arg(long, env = "DARKROOM_MAX_PHOTOS", default_value_t = 1000, global = true)]
    pub max_photos: usize,

    /// Most pixels in one photo, in megapixels.
    #[arg(long, env = "DARKROOM_MAX_MEGAPIXELS", default_value_t = 120, global = true)]
    pub max_megapixels: u64,

    /// Longest side of one photo, in pixels.
    #[arg(long, env = "DARKROOM_MAX_SIDE", default_value_t = 30_000, global = true)]
    pub max_side: u32,

    /// Largest upload request (many photos at once), in MiB.
    #[arg(long, env = "DARKROOM_MAX_REQUEST_MIB", default_value_t = 1024, global = true)]
    pub max_request_mib: u64,

    /// Uploads one web process handles at once; more get 429 with Retry-After.
    #[arg(long, env = "DARKROOM_MAX_CONCURRENT_UPLOADS", default_value_t = 32, global = true)]
    pub max_concurrent_uploads: usize,

    /// Uploads one client may have in progress at once (more get 429, unless one of its
    /// own is slow enough to evict).
    #[arg(long, env = "DARKROOM_MAX_UPLOADS_PER_CLIENT", default_value_t = 8, global = true)]
    pub max_uploads_per_client: usize,

    /// KiB per second below which an upload gives up its slot when others are waiting.
    #[arg(long, env = "DARKROOM_MIN_UPLOAD_KIB_PER_SECOND", default_value_t = 16, global = true)]
    pub min_upload_kib_per_second: u64,

    /// An upload whose body stops arriving for this long is ended with 408.
    #[arg(long, env = "DARKROOM_UPLOAD_IDLE_TIMEOUT", default_value = "30s", value_parser = duration, global = true)]
    pub upload_idle_timeout: Duration,

    /// The longest one upload request may take; send big uploads in batches.
    #[arg(long, env = "DARKROOM_UPLOAD_DEADLINE", default_value = "15m", value_parser = duration, global = true)]
    pub upload_deadline: Duration,

    /// Requests per second one client may send to the web tier on average; beyond it, 429
    /// with Retry-After. 0 turns the limit off. Health and metrics routes are exempt.
    #[arg(long, env = "DARKROOM_RATE_LIMIT", default_value_t = 20, global = true)]
    pub rate_limit: u32,

    /// Requests one client may send at once before the rate limit applies (a page load, a
    /// batch of uploads).
    #[arg(long, env = "DARKROOM_RATE_LIMIT_BURST", default_value_t = 100, global = true)]
    pub rate_limit_burst: u32,

    /// Identify clients by the last address in X-Forwarded-For, as a load balancer appends it.
    /// Only behind one: otherwise clients could pick their own address.
    #[arg(long, env = "DARKROOM_TRUST_FORWARDED_FOR", global = true)]
    pub trust_forwarded_for: bool,

    /// A secret that lets operators read /metrics and readiness details on the public web
    /// listener (`Authorization: Bearer <token>`); loopback clients and --metrics-listen
    /// need none.
    #[arg(long, env = "DARKROOM_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Mark the owner cookie Secure: set it when browsers reach darkroom over https (the
    /// AWS template's load balancer does).
    #[arg(long, env = "DARKROOM_SECURE_COOKIES", global = true)]
    pub secure_cookies: bool,

    /// Make the deployment private: every page and API call needs an access key listed in
    /// this file (`<name> <sha256 hex>` per line; `darkroom access-key NAME` makes one),
    /// as `Authorization: Bearer <key>` or through the sign-in page. The file is read again
    /// when it changes. Off (open to all) by default.
    #[arg(long, env = "DARKROOM_ACCESS_KEYS", global = true)]
    pub access_keys: Option<PathBuf>,

    /// The secret browser sessions of a private deployment are signed with; every web
    /// process needs the same one (16+ characters). Without it each process makes its own,
    /// and a browser's session holds only on the process that signed it in.
    #[arg(long, env = "DARKROOM_SESSION_SECRET", global = true, hide_env_values = true)]
    pub session_secret: Option<String>,

    /// The secret webhooks are signed with (HMAC-SHA256). Without one, jobs may not name a
    /// callback_url. Web and status processes need the same.
    #[arg(long, env = "DARKROOM_WEBHOOK_SECRET", global = true, hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Let callback URLs reach loopback, private and link-local addresses (a receiver on the
    /// same host or network). Off: such targets are refused, after DNS and on redirects.
    #[arg(long, env = "DARKROOM_WEBHOOK_ALLOW_INTERNAL", global = true)]
    pub webhook_allow_internal: bool,

    /// The wait before a failed webhook is tried again; it doubles with each try, up to 15m.
    #[arg(long, env = "DARKROOM_WEBHOOK_RETRY_DELAY", default_value = "10s", value_parser = duration, global = true)]
    pub webhook_retry_delay: Duration,

    /// Tries of one webhook before it is given up (with the default delay, about 2 hours).
    #[arg(long, env = "DARKROOM_WEBHOOK_MAX_TRIES", default_value_t = 12, global = true)]
    pub webhook_max_tries: u32,

    /// Run `setup` (create bucket and queues) before starting; always done by `serve` on the local backend.
    #[arg(long, env = "DARKROOM_AUTO_SETUP", global = true)]
    pub auto_setup: bool,

    /// Log filter, as in RUST_LOG (e.g. `info`, `darkroom_worker=debug`).
    #[arg(long, env = "DARKROOM_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format on stderr.
    #[arg(long, env = "DARKROOM_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_mib.saturating_mul(1 << 20),
            max_photos_per_job: self.max_photos,
            max_pixels: self.max_megapixels.saturating_mul(1_000_000),
            max_side: self.max_side,
        }
    }

    pub fn stage_map(&self) -> anyhow::Result<StageMap> {
        StageMap::parse(&self.default_stage, &self.stage_map)
            .map_err(|e| anyhow::anyhow!("--stage-map / --default-stage: {e}"))
    }

    pub fn time_budgets(&self) -> anyhow::Result<darkroom_worker::TimeBudgets> {
        darkroom_worker::TimeBudgets::parse(&self.time_budget).map_err(|e| anyhow::anyhow!("--time-budget: {e}"))
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
    }

    /// The worker's settings; `stages` empty means every stage of the stage map.
    pub fn worker_settings(&self, stages: Vec<String>) -> anyhow::Result<darkroom_worker::WorkerSettings> {
        let stages = if stages.is_empty() { self.stage_map()?.stages() } else { stages };
        Ok(darkroom_worker::WorkerSettings {
            stages,
            concurrency: self.concurrency(),
            visibility_timeout: self.visibility_timeout,
            heartbeat_interval: self.heartbeat_interval,
            wait_time: self.wait_time,
            drain_deadline: self.drain_deadline,
            limits: self.limits(),
            time_budgets: self.time_budgets()?,
            max_receive_count: self.max_receive_count,
        })
    }

    pub fn status_settings(&self) -> anyhow::Result<darkroom_status::StatusSettings> {
        Ok(darkroom_status::StatusSettings {
            wait_time: self.wait_time,
            max_receive_count: self.max_receive_count,
            housekeeping: darkroom_status::HousekeepingSettings {
                interval: self.housekeeping_interval,
                stuck_after: self.stuck_after,
                retention: (!self.retention.is_zero()).then_some(self.retention),
                visibility_timeout: self.visibility_timeout,
                time_budgets: self.time_budgets()?,
                max_receive_count: self.max_receive_count,
            },
        })
    }

    pub fn webhook_settings(&self) -> darkroom_webhooks::WebhookSettings {
        darkroom_webhooks::WebhookSettings {
            secret: self.webhook_secret.clone().filter(|secret| !secret.is_empty()),
            allow_internal: self.webhook_allow_internal,
            retry_delay: self.webhook_retry_delay,
            max_tries: self.webhook_max_tries,
            wait_time: self.wait_time,
            ..darkroom_webhooks::WebhookSettings::default()
        }
    }

    /// Checks what clap cannot: relations between settings, and ranges. The limits are the
    /// queue crate's (SQS's) and the rules the worker's own validation states.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !darkroom_core::queue_names::is_valid_prefix(&self.queue_prefix) {
            anyhow::bail!("--queue-prefix {:?} must be 1–30 letters, digits, '-' or '_'", self.queue_prefix);
        }
        if self.wait_time > darkroom_queue::MAX_WAIT {
            anyhow::bail!(
                "--wait-time must be at most {:?} (the SQS maximum), got {:?}",
                darkroom_queue::MAX_WAIT,
                self.wait_time
            );
        }
        if self.visibility_timeout < Duration::from_secs(3)
            || self.visibility_timeout > darkroom_queue::MAX_VISIBILITY_TIMEOUT
        {
            anyhow::bail!("--visibility-timeout must be between 3s and 12h, got {:?}", self.visibility_timeout);
        }
        if !(1..=darkroom_queue::MAX_LANES).contains(&self.fair_lanes) {
            anyhow::bail!("--fair-lanes must be 1–{}, got {}", darkroom_queue::MAX_LANES, self.fair_lanes);
        }
        // SQS names are at most 80 characters; the longest darkroom makes is a stage's last lane.
        let names = darkroom_core::QueueNames::new(self.queue_prefix.clone());
        for stage in self.stage_map()?.stages() {
            let longest = darkroom_queue::lane_name(&names.requests(&stage), darkroom_queue::MAX_LANES - 1);
            if longest.len() > 80 {
                anyhow::bail!(
                    "--queue-prefix {:?} with stage {stage:?} makes queue names of {} characters ({longest}); SQS allows 80: shorten one",
                    self.queue_prefix,
                    longest.len()
                );
            }
        }
        if self.max_receive_count == 0 || self.max_receive_count > 1000 {
            anyhow::bail!("--max-receive-count must be 1–1000, got {}", self.max_receive_count);
        }
        if self.max_file_mib == 0 || self.max_photos == 0 || self.max_megapixels == 0 || self.max_side == 0 {
            anyhow::bail!("--max-file-mib, --max-photos, --max-megapixels and --max-side must be positive");
        }
        if self.concurrency == Some(0) {
            anyhow::bail!("--concurrency must be at least 1");
        }
        // `1m` is a minute, not a month: a retention shorter than an hour would delete jobs
        // still in work. (Test builds may use seconds.)
        if !self.retention.is_zero() && self.retention < Duration::from_secs(3600) && !cfg!(feature = "fault-injection")
        {
            anyhow::bail!(
                "--retention {:?} would delete jobs still in work: give at least 1h (e.g. 30days; 0 keeps jobs for ever)",
                self.retention
            );
        }
        if self.housekeeping_interval < Duration::from_secs(1) {
            anyhow::bail!("--housekeeping-interval must be at least 1s, got {:?}", self.housekeeping_interval);
        }
        if self.session_secret.as_deref().is_some_and(|secret| !secret.is_empty() && secret.len() < 16) {
            anyhow::bail!("--session-secret must be at least 16 characters (e.g. `openssl rand -hex 32`)");
        }
        if self.webhook_max_tries == 0 || self.webhook_retry_delay.is_zero() {
            anyhow::bail!("--webhook-max-tries and --webhook-retry-delay must be positive");
        }
        if self.webhook_secret.as_deref().is_some_and(|secret| !secret.is_empty() && secret.len() < 16) {
            anyhow::bail!("--webhook-secret must be at least 16 characters (e.g. `openssl rand -hex 32`)");
        }
        self.worker_settings(Vec::new())?.validate()?;
        Ok(())
    }
}
