//! Health endpoints, served by the web tier and — through [`health_routes`] — by worker and
//! status processes on `--metrics-listen`: `/healthz` (alive), `/readyz` (store and queues
//! reachable, with queue depths), `/metrics` (Prometheus text).

use crate::{ApiError, AppState};
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use darkroom_core::{ErrorCode, QueueNames};
use serde_json::json;

pub fn health_routes(config: &mut web::ServiceConfig) {
    config.service(healthz).service(readyz).service(metrics);
}

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({"status": "ok"}))
}

/// Every queue of the deployment: each stage's requests, the responses, and their DLQs.
fn all_queue_names(state: &AppState) -> Vec<String> {
    let names = &state.settings.names;
    let mut queues: Vec<String> = state.settings.stage_map.stages().iter().map(|stage| names.requests(stage)).collect();
    queues.push(names.responses());
    let dead_letters: Vec<String> = queues.iter().map(|q| QueueNames::dead_letter(q)).collect();
    queues.extend(dead_letters);
    queues
}

async fn queue_depths(state: &AppState) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let mut depths = serde_json::Map::new();
    for name in all_queue_names(state) {
        let counts = state.queues.get(&name).await?.counts().await?;
        ::metrics::gauge!("darkroom_queue_backlog", "queue" => name.clone()).set(counts.visible as f64);
        ::metrics::gauge!("darkroom_queue_in_flight", "queue" => name.clone()).set(counts.in_flight as f64);
        depths.insert(name, json!({"visible": counts.visible, "in_flight": counts.in_flight}));
    }
    Ok(depths)
}

#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let not_ready = state.readiness.not_ready();
    if !not_ready.is_empty() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, not_ready.join("; ")));
    }
    state.store.check().await.map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, format!("object store not ready: {e}"))
    })?;
    let depths = queue_depths(&state).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"status": "ready", "queues": depths})))
}

#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Queue depths are sampled on scrape, so autoscaling sees the current backlog.
    if let Err(error) = queue_depths(&state).await {
        tracing::warn!(error.message = %error, "could not sample queue depths for /metrics");
    }
    let text = state.metrics.as_ref().map(|handle| handle.render()).unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}
