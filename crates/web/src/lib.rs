//! The web tier: upload page, job pages, the JSON API and downloads (docs/ARCHITECTURE.md "HTTP JSON
//! API"). It holds no state of its own: originals and job documents go to the object store,
//! work goes to the request queue, and the job view is read back from the store. Any number
//! of web processes can serve the same jobs. The only images it makes are interactive ones,
//! each bounded by slots of its own: a recipe's preview on one photo (`preview.rs`) and
//! small copies of originals for the job page (`original_thumb.rs`); a job's photos are
//! processed by workers.

mod access;
pub use access::{key_hash, AccessKeys, AccessKeysError};
mod api;
mod api_page;
mod assets;
mod body_reader;
mod downloads;
mod error;
mod form;
mod health;
mod idempotency;
pub use health::health_routes;
mod job_actions;
mod live;
mod login;
mod my_jobs;
mod names;
mod openapi;
mod operations;
pub use openapi::document as openapi_document;
mod job_lookup;
mod original_thumb;
mod owner;
mod pages;
mod preview;
mod rate_limit;
mod recipe_check;
mod seats;
mod security;
mod slots;
mod tenant;
mod upload;
mod upload_parts;
mod watermark_parts;

pub use error::ApiError;
/// The pure parts of intake, public for the fuzzers (`fuzz/`).
pub use form::recipe_from_fields;
pub use rate_limit::ClientRateLimit;
pub use upload::{judge, Judgement};

use actix_web::{web, App, HttpServer};
use darkroom_core::{ErrorCode, Limits};
use darkroom_queue::QueueDirectory;
use darkroom_store::ObjectStore;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::TcpListener;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct WebSettings {
    pub limits: Limits,
    /// The largest multipart body accepted in one request (many photos at once).
    pub max_request_bytes: u64,
    /// Uploads handled at once by this process; beyond it, requests get 429 (unless a slow
    /// upload can be evicted).
    pub max_concurrent_uploads: usize,
    /// Uploads one client may have going at once.
    pub max_uploads_per_client: usize,
    /// Bytes per second below which an upload gives its slot up to a waiting one.
    pub min_upload_rate: u64,
    /// An upload whose body stops arriving for this long is ended (408).
    pub upload_idle_timeout: std::time::Duration,
    /// The longest one upload request may take (408 after it).
    pub upload_deadline: std::time::Duration,
    /// Requests per second each client may send on average (0: no limit), and in a burst.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Take the client's address from `X-Forwarded-For` (behind a load balancer).
    pub trust_forwarded_for: bool,
    /// Mark the owner cookie `Secure` (served over https, e.g. behind the load balancer).
    pub secure_cookies: bool,
    /// Lets a request bearing it see `/metrics` and readiness details on the public listener.
    pub metrics_token: Option<String>,
    /// Jobs may name a `callback_url` (a webhook secret is configured).
    pub webhooks_enabled: bool,
    /// Callback URLs may point at loopback and private addresses.
    pub webhook_allow_internal: bool,
}

/// Archives one web process builds at once; more get 429.
const MAX_CONCURRENT_ARCHIVES: usize = 8;
/// Archives one client (an IPv4 address, an IPv6 /64) downloads at once.
const MAX_ARCHIVES_PER_CLIENT: usize = 2;
/// Bytes per second below which an archive gives its slot up to a waiting one: 32 KiB/s,
/// a slow mobile link's pace.
const MIN_ARCHIVE_RATE: u64 = 32 * 1024;

type ReadinessCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Checks of the process's other components (a worker's or status's breaker) for
/// `/readyz`: each says why its component is not ready, or nothing.
#[derive(Clone, Default)]
pub struct Readiness(Vec<ReadinessCheck>);

impl Readiness {
    pub fn add(&mut self, check: impl Fn() -> Option<String> + Send + Sync + 'static) {
        self.0.push(Arc::new(check));
    }

    /// Why the process is not ready, if it is not.
    pub fn not_ready(&self) -> Vec<String> {
        self.0.iter().filter_map(|check| check()).collect()
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Readiness({} checks)", self.0.len())
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn ObjectStore>,
    pub queues: QueueDirectory,
    pub settings: Arc<WebSettings>,
    pub metrics: Option<PrometheusHandle>,
    /// Jobs in the store: views, attempts, deletion (shared with the status process).
    pub jobs: darkroom_jobs::Jobs,
    pub upload_slots: Arc<slots::ProgressSlots>,
    /// Zip archives being built at once (each streams on a thread of its own), per client
    /// too, kept only while their clients read at a pace (see `slots`).
    pub archive_slots: Arc<slots::ProgressSlots>,
    pub rate_limit: Option<Arc<ClientRateLimit>>,
    /// The other components' readiness, for `/readyz`.
    pub readiness: Readiness,
    pub readiness_cache: Arc<health::ReadinessCache>,
    /// Served on the operator listener (`--metrics-listen`): every health detail is shown.
    pub operator_listener: bool,
    /// Live job views being streamed (see `live`), in all and per job.
    pub live_streams: Arc<tokio::sync::Semaphore>,
    pub live_views: Arc<live::LiveViews>,
    /// Cancelled when the server shuts down: long-lived responses end at once.
    pub closing: tokio_util::sync::CancellationToken,
    /// Previews rendered at once, and previews rendering or waiting to (see `preview`).
    pub preview_slots: Arc<tokio::sync::Semaphore>,
    pub preview_waiting: Arc<tokio::sync::Semaphore>,
    /// Copies of originals waiting for a render slot, the slots, and the copies made lately
    /// (see `original_thumb.rs`).
    pub original_thumbs_waiting: Arc<tokio::sync::Semaphore>,
    pub original_thumb_slots: Arc<tokio::sync::Semaphore>,
    pub original_copies: Arc<original_thumb::Copies>,
    /// A private deployment's access keys (`--access-keys`); `None`: open to all.
    pub access_keys: Option<Arc<AccessKeys>>,
    /// Upload commits in flight, run apart from their requests.
    pub commits: Commits,
    /// When each full job's seats were last looked over for abandoned ones (see `seats`).
    pub(crate) seat_scans: Arc<seats::SeatScans>,
}

/// Runs the commit of an upload (photo manifests, job manifest, queue messages) apart from
/// the request that brought it: a client that disconnects, or a server whose drain gives
/// up on the request, cannot stop a commit half-way and leave photos that point at nothing
/// (docs/ARCHITECTURE.md "Nothing is acknowledged before it is durable"). Commits run on
/// the runtime that made the state — the process's, which outlives the HTTP workers — and
/// the process waits for them before it exits ([`Commits::drain`]).
#[derive(Debug, Clone)]
pub struct Commits {
    runtime: Option<tokio::runtime::Handle>,
    tracker: tokio_util::task::TaskTracker,
}

impl Default for Commits {
    fn default() -> Self {
        Self { runtime: tokio::runtime::Handle::try_current().ok(), tracker: tokio_util::task::TaskTracker::new() }
    }
}

impl Commits {
    /// Runs `commit` to its end even if the caller stops waiting for it.
    pub async fn run<T: Send + 'static>(
        &self,
        commit: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
    ) -> Result<T, ApiError> {
        let Some(runtime) = &self.runtime else { return commit.await };
        match self.tracker.spawn_on(commit, runtime).await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the server is shutting down; send the upload again",
            )),
        }
    }

    /// Waits, at most `within`, for the commits in flight; returns how many were left.
    pub async fn drain(&self, within: std::time::Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait()).await.is_err() {
            return self.tracker.len();
        }
        0
    }
}

impl AppState {
    /// The web tier over `jobs` (the process's one job lifecycle, shared with its other
    /// roles: one cache of job views per process) and its store and queues.
    pub fn new(jobs: darkroom_jobs::Jobs, settings: WebSettings, metrics: Option<PrometheusHandle>) -> Self {
        let (store, queues) = (jobs.store().clone(), jobs.queues().clone());
        let upload_slots = Arc::new(slots::ProgressSlots::for_uploads(
            settings.max_concurrent_uploads,
            settings.max_uploads_per_client,
            settings.min_upload_rate,
        ));
        let rate_limit = ClientRateLimit::new(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            settings.trust_forwarded_for,
        )
        .map(Arc::new);
        let preview_slots = preview::preview_slots();
        Self {
            store,
            queues,
            settings: Arc::new(settings),
            metrics,
            jobs,
            upload_slots,
            archive_slots: Arc::new(slots::ProgressSlots::for_archives(
                MAX_CONCURRENT_ARCHIVES,
                MAX_ARCHIVES_PER_CLIENT,
                MIN_ARCHIVE_RATE,
            )),
            rate_limit,
            readiness: Readiness::default(),
            readiness_cache: Arc::default(),
            operator_listener: false,
            live_streams: Arc::new(tokio::sync::Semaphore::new(live::MAX_STREAMS)),
            live_views: Arc::default(),
            closing: tokio_util::sync::CancellationToken::new(),
            access_keys: None,
            commits: Commits::default(),
            seat_scans: Arc::default(),
            preview_slots: Arc::new(tokio::sync::Semaphore::new(preview_slots)),
            original_thumbs_waiting: Arc::new(tokio::sync::Semaphore::new(original_thumb::WAITING)),
            original_thumb_slots: Arc::new(tokio::sync::Semaphore::new(preview_slots)),
            original_copies: Arc::new(original_thumb::Copies::new(original_thumb::CACHED)),
            preview_waiting: Arc::new(tokio::sync::Semaphore::new(
                preview_slots * (1 + preview::PREVIEW_WAITING_PER_SLOT),
            )),
        }
    }
}

/// Routes of the whole web tier, for `App::configure`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(assets::asset)
        .service(login::login_page)
        .service(login::login)
        .service(login::logout)
        .service(pages::upload_page)
        .service(pages::create_job_from_form)
        .service(pages::job_page)
        .service(downloads::archive)
        .service(downloads::api_archive)
        .service(original_thumb::original_thumb)
        .service(downloads::photo_file)
        .service(downloads::attempt_output)
        .service(openapi::openapi_json)
        .service(openapi::api_reference)
        .service(
            web::scope("/api/v1")
                .service(api::create_job)
                .service(my_jobs::my_jobs)
                .service(api::get_job)
                .service(live::job_events)
                .service(api::delete_job)
                .service(api::add_photos)
                .service(api::retry_failed)
                .service(api::resume_cancelled)
                .service(api::reprocess_photo)
                .service(api::reprocess_job)
                .service(api::cancel_job)
                .service(api::webhook_log)
                .service(preview::preview)
                .service(recipe_check::check_recipe)
                .service(operations::operations),
        )
        .default_service(web::to(pages::not_found));
}

/// Binds the web tier to `listener` and returns the running server (await it to serve).
pub fn build(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::JsonConfig::default().limit(256 * 1024).error_handler(api::json_error))
            .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::not_found().into()))
            .wrap(actix_web::middleware::from_fn(security::refuse_cross_site))
            .wrap(actix_web::middleware::from_fn(access::require_access))
            .wrap(actix_web::middleware::from_fn(rate_limit::limit_requests))
            .wrap(actix_web::middleware::from_fn(security::add_headers))
            .wrap(actix_web::middleware::Compress::default())
            .wrap(tracing_request_logger())
            .configure(routes)
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .disable_signals()
    .run();
    Ok(server)
}

fn tracing_request_logger() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%r %s %b %Dms").log_target("darkroom::http")
}

/// Only `/healthz`, `/readyz` and `/metrics`: for worker and status processes.
pub fn build_health(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let state = AppState { operator_listener: true, ..state };
    let server = HttpServer::new(move || App::new().app_data(web::Data::new(state.clone())).configure(health_routes))
        .listen(listener)?
        .workers(1)
        .disable_signals()
        .run();
    Ok(server)
}
