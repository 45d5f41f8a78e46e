//! Health endpoints, served by the web tier and — through [`health_routes`] — by worker and
//! status processes on `--metrics-listen`: `/healthz` (alive), `/readyz` (store and queues
//! reachable, with queue depths), `/metrics` (Prometheus text).
//!
//! On the public listener these are for operators, not the internet: `/metrics` and the
//! queue depths of `/readyz` answer only loopback clients or a request bearing
//! `--metrics-token`, and readiness is computed at most once a second (it writes a probe
//! to the store), so polling it costs nothing. The operator listener (`--metrics-listen`)
//! serves everything.

use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use darkroom_core::ErrorCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long one readiness check answers for.
const READINESS_TTL: Duration = Duration::from_secs(1);
/// How long one readiness check may take (waiting requests queue behind it): past this the
/// store or queues count as not answering.
const READINESS_CHECK_LIMIT: Duration = Duration::from_secs(5);

/// The last readiness check: when, and what it found (`Err` = not ready, why). An async
/// lock, held through a check: requests arriving meanwhile wait for that one check instead
/// of each probing the store again (single flight).
pub type ReadinessCache = tokio::sync::Mutex<Option<(Instant, Result<serde_json::Value, String>)>>;

/// What a client that is not an operator is told when the service is not ready: the reason
/// names buckets, endpoints and breaker states, which are the operator's business.
const NOT_READY_PUBLICLY: &str = "darkroom is not ready: its store or queues do not answer. Operators see why at /readyz from loopback, with --metrics-token, or on --metrics-listen, and in the log";

/// Whether the request may see operator details.
fn is_operator(state: &AppState, request: &HttpRequest) -> bool {
    if state.operator_listener {
        return true;
    }
    // A loopback peer is the operator only when no proxy is in front: behind a proxy on the
    // same host every client arrives from loopback, with a forwarding header.
    let proxied = state.settings.trust_forwarded_for
        || request.headers().contains_key("x-forwarded-for")
        || request.headers().contains_key("forwarded");
    if !proxied && request.peer_addr().is_some_and(|peer| peer.ip().is_loopback()) {
        return true;
    }
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (&state.settings.metrics_token, bearer) {
        (Some(expected), Some(presented)) => {
            darkroom_core::ids::sha256_hex(expected.as_bytes()) == darkroom_core::ids::sha256_hex(presented.as_bytes())
        }
        _ => false,
    }
}

pub fn health_routes(config: &mut web::ServiceConfig) {
    config.service(healthz).service(readyz).service(metrics);
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Alive",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({"status": "ok"}))
}

/// Every queue of the deployment: each stage's requests, the responses, and their DLQs.
fn all_queue_names(state: &AppState) -> Vec<String> {
    let names = state.jobs.names();
    let pairs = names.all(&state.jobs.stage_map().stages());
    let dead_letters = pairs.iter().map(|pair| pair.dead_letter.clone()).collect::<Vec<_>>();
    pairs.into_iter().map(|pair| pair.queue).chain(dead_letters).collect()
}

async fn queue_depths(state: &AppState) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut depths = serde_json::Map::new();
    let webhooks = state.jobs.names().webhooks();
    for name in all_queue_names(state) {
        let queue = match state.queues.get(&name).await {
            Ok(queue) => queue,
            // The webhook queues came with a later release: a deployment that has not run
            // `darkroom setup` since is ready all the same (it sends no webhooks until then).
            Err(_) if name.starts_with(&webhooks) && !state.settings.webhooks_enabled => {
                depths.insert(name, json!({"missing": "run `darkroom setup` to create it"}));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let counts = queue.counts().await?;
        ::metrics::gauge!("darkroom_queue_backlog", "queue" => name.clone()).set(counts.visible as f64);
        ::metrics::gauge!("darkroom_queue_in_flight", "queue" => name.clone()).set(counts.in_flight as f64);
        depths.insert(name, json!({"visible": counts.visible, "in_flight": counts.in_flight}));
    }
    Ok(depths)
}

async fn check_readiness(state: &AppState) -> Result<serde_json::Value, String> {
    let not_ready = state.readiness.not_ready();
    if !not_ready.is_empty() {
        return Err(not_ready.join("; "));
    }
    state.store.check().await.map_err(|e| format!("object store not ready: {e}"))?;
    queue_depths(state).await.map(serde_json::Value::Object).map_err(|e| e.to_string())
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Ready: the store and queues answer",
    description = "Operators (loopback, `--metrics-token`, or the metrics listener) also get the queue depths.",
    responses((status = 200, description = "Ready", body = Object)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let result = {
        let mut cache = state.readiness_cache.lock().await;
        match cache.as_ref().filter(|(at, _)| at.elapsed() < READINESS_TTL) {
            Some((_, result)) => result.clone(),
            None => {
                let result =
                    tokio::time::timeout(READINESS_CHECK_LIMIT, check_readiness(&state)).await.unwrap_or_else(|_| {
                        Err(format!("the store and queues did not answer within {READINESS_CHECK_LIMIT:?}"))
                    });
                if let Err(reason) = &result {
                    tracing::warn!(reason, "not ready");
                }
                *cache = Some((Instant::now(), result.clone()));
                result
            }
        }
    };
    let operator = is_operator(&state, &request);
    let depths = result.map_err(|reason| {
        let message = if operator { reason } else { NOT_READY_PUBLICLY.to_owned() };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message)
    })?;
    let body = if operator { json!({"status": "ready", "queues": depths}) } else { json!({"status": "ready"}) };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics (operators)",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 404, description = "Not an operator", body = crate::openapi::ErrorBody),
    ))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    if !is_operator(&state, &request) {
        return actix_web::ResponseError::error_response(&ApiError::not_found());
    }
    // Queue depths are sampled on scrape, so autoscaling sees the current backlog.
    if let Err(error) = queue_depths(&state).await {
        tracing::warn!(error.message = %error, "could not sample queue depths for /metrics");
    }
    let text = state.metrics.as_ref().map(|handle| handle.render()).unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}
