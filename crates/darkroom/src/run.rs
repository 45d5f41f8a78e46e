//! The long-running commands. `serve` runs the very same web, worker and status components
//! that separate processes run, connected through the same queues and store.

use crate::backends::{self, Backends};
use crate::config::Settings;
use anyhow::Context;
use darkroom_status::StatusUpdater;
use darkroom_web::Readiness;
use darkroom_web::{AppState, WebSettings};
use darkroom_worker::Worker;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub web: bool,
    pub worker: bool,
    pub status: bool,
}

fn web_state(settings: &Settings, backends: &Backends, metrics: Option<PrometheusHandle>) -> AppState {
    let web_settings = WebSettings {
        limits: settings.limits(),
        max_request_bytes: settings.max_request_mib.saturating_mul(1 << 20),
        max_concurrent_uploads: settings.max_concurrent_uploads,
        max_uploads_per_client: settings.max_uploads_per_client,
        min_upload_rate: settings.min_upload_kib_per_second.saturating_mul(1024),
        upload_idle_timeout: settings.upload_idle_timeout,
        upload_deadline: settings.upload_deadline,
        rate_limit_per_second: settings.rate_limit,
        rate_limit_burst: settings.rate_limit_burst,
        trust_forwarded_for: settings.trust_forwarded_for,
        secure_cookies: settings.secure_cookies,
        metrics_token: settings.metrics_token.clone().filter(|token| !token.is_empty()),
        webhooks_enabled: settings.webhook_secret.as_deref().is_some_and(|secret| !secret.is_empty()),
        webhook_allow_internal: settings.webhook_allow_internal,
    };
    AppState::new(backends.jobs.clone(), web_settings, metrics)
}

/// Serves the web tier (or only the health endpoints) on `address`; returns the bound address.
fn start_http(
    state: AppState,
    address: std::net::SocketAddr,
    health_only: bool,
    tasks: &mut JoinSet<anyhow::Result<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("binding {address} (is another darkroom already running there? use --listen)"))?;
    let bound = listener.local_addr()?;
    let closing = state.closing.clone();
    let commits = state.commits.clone();
    let server =
        if health_only { darkroom_web::build_health(state, listener)? } else { darkroom_web::build(state, listener)? };
    let handle = server.handle();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        shutdown.cancelled().await;
        closing.cancel(); // live views end now, not when the drain gives up on them
        handle.stop(true).await;
        // Uploads already read finish committing (or roll back) before the process exits.
        // A commit takes well under a second; the wait must fit in the stop grace period
        // of a container (docker-compose.yml: 40 s) after the HTTP drain.
        let left = commits.drain(std::time::Duration::from_secs(5)).await;
        if left > 0 {
            tracing::error!(
                commits = left,
                "exiting with upload commits unfinished; the reconciler sends their photos to work"
            );
        }
        Ok(())
    });
    tasks.spawn(async move { server.await.context("web server failed") });
    Ok(bound)
}

pub async fn run(
    settings: Settings,
    roles: Roles,
    stages: Vec<String>,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<()> {
    let backends = backends::open(&settings).await?;
    // The embedded backend needs no separate setup step, whichever role a process plays: each
    // creates the data directory and queues it needs (idempotent, safe to race), so `web`,
    // `worker` and `status` sharing a --data-dir start in any order. On AWS, creating queues
    // and buckets is an operator's decision (`darkroom setup`, or --auto-setup).
    let embedded_serve = roles.web && roles.worker && roles.status && settings.backend == crate::config::Backend::Local;
    if embedded_serve || settings.auto_setup {
        backends::setup(&settings, &backends).await?;
    } else if settings.backend == crate::config::Backend::Local && !backends::all_queues_exist(&backends).await {
        // Only what is missing: a web process restarted with other flags must not rewrite
        // the visibility timeout and receive count its workers were set up with.
        backends::setup(&settings, &backends).await?;
    }
    let shutdown = CancellationToken::new();
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut readiness = Readiness::default();

    if roles.worker {
        let worker = Worker::new(&backends.jobs, settings.worker_settings(stages)?)?;
        worker.check_queues().await.context("opening the worker's queues")?;
        let worker = Arc::new(worker);
        let watched = worker.clone();
        readiness.add(move || worker_readiness(&watched));
        let token = shutdown.clone();
        tasks.spawn(async move { worker.run(token).await.context("worker failed") });
    }
    if roles.status {
        let status = StatusUpdater::new(backends.jobs.clone(), settings.status_settings()?);
        status.check_queues().await.context("opening the status process's queues")?;
        let status = Arc::new(status);
        let watched = status.clone();
        readiness.add(move || breaker_readiness("status", watched.breaker()));
        let token = shutdown.clone();
        tasks.spawn(async move { status.run(token).await.context("status failed") });
        // Webhooks go out from the status role: it sees jobs finish.
        let deliverer = darkroom_webhooks::Deliverer::new(backends.jobs.clone(), settings.webhook_settings())
            .context("starting webhook delivery")?;
        let token = shutdown.clone();
        tasks.spawn(async move {
            Arc::new(deliverer).run(token).await;
            Ok(())
        });
    }
    let mut state = web_state(&settings, &backends, metrics);
    state.readiness = readiness;
    if let (true, Some(path)) = (roles.web, &settings.access_keys) {
        let secret = match settings.session_secret.as_deref().filter(|secret| !secret.is_empty()) {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                if !(roles.worker && roles.status) {
                    tracing::warn!("no --session-secret: browser sessions hold only on this web process; give every web process the same --session-secret");
                }
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        state.access_keys = Some(Arc::new(darkroom_web::AccessKeys::load(path, &secret).context("--access-keys")?));
    }
    if roles.web {
        let bound = start_http(state, settings.listen, false, &mut tasks, &shutdown)?;
        // The one line on stdout: scripts and tests read the address from it.
        println!("darkroom listening on http://{bound}");
        tracing::info!(address = %bound, backend = ?settings.backend, "web tier listening");
    } else if let Some(address) = settings.metrics_listen {
        let bound = start_http(state, address, true, &mut tasks, &shutdown)?;
        println!("darkroom metrics on http://{bound}");
    }

    let signalled = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new work is taken, in-flight photos are finishing");
        signalled.cancel();
    });
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(error) = result {
            tracing::error!(error.message = %error, error.cause_chain = ?error, "component stopped with an error; shutting down");
            first_error.get_or_insert(error);
            shutdown.cancel();
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Why a consumer with an open breaker is not ready (its dependencies are down).
fn breaker_readiness(component: &str, breaker: &darkroom_consumer::Breaker) -> Option<String> {
    breaker.open_state().map(|open| {
        format!(
            "{component} paused for {}s: a dependency is unavailable ({}); it resumes by itself when the store and queues answer",
            open.since.elapsed().as_secs(),
            open.reason
        )
    })
}

fn worker_readiness(worker: &Worker) -> Option<String> {
    if let Some(reason) = breaker_readiness("worker", worker.breaker()) {
        return Some(reason);
    }
    let stuck = worker.stuck_renders();
    (stuck >= worker.settings().concurrency)
        .then(|| format!("{stuck} renders are stuck past their time budget and still hold CPUs: restart this worker"))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
