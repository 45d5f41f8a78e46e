//! `GET /api/v1/operations`: the operation registry (`darkroom_core::operations`) as an API
//! client or a page reads it: each operation's name, title, summary, the stage it runs in on
//! this deployment, what the builder adds, its plain parameters, and its JSON schema (taken
//! from the API document, so the two cannot disagree). The pages get the same list embedded
//! (`page_json`), so the recipe builder draws its palette, and a generic operation's editor,
//! without a request of its own.

use crate::AppState;
use actix_web::{get, web, HttpResponse};
use darkroom_core::operations::{Editor, Param, OPERATIONS};
use serde::Serialize;
use std::sync::OnceLock;

/// One operation, as served.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationEntry {
    /// The name recipes use (`"op"`).
    name: &'static str,
    /// How the pages name it.
    title: &'static str,
    summary: &'static str,
    /// The stage it runs in on this deployment (`--stage-map`).
    stage: String,
    /// The operation as the recipe builder adds it, with its defaults.
    #[schema(value_type = Object)]
    added_as: serde_json::Value,
    /// Its parameters with plain values: type, range, step, default, label, help.
    #[schema(value_type = Vec<Object>)]
    params: &'static [Param],
    /// `own`: the pages have an editor of their own; `generic`: made from `params`.
    #[schema(value_type = String)]
    editor: Editor,
    /// Its JSON schema, as in the API document.
    #[schema(value_type = Object)]
    schema: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OperationsReply {
    /// In the order the plain form applies them.
    operations: Vec<OperationEntry>,
}

/// Each operation's schema in the API document, by name: the `oneOf` of `Operation`, each
/// told apart by its `op` property's one value.
fn schemas() -> &'static Vec<(String, serde_json::Value)> {
    static SCHEMAS: OnceLock<Vec<(String, serde_json::Value)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let document: serde_json::Value = serde_json::from_str(crate::openapi::document()).unwrap_or_default();
        let variants = document["components"]["schemas"]["Operation"]["oneOf"].as_array().cloned().unwrap_or_default();
        variants.into_iter().filter_map(|schema| Some((op_name(&schema)?, schema))).collect()
    })
}

/// The one value of the `op` property somewhere in a variant's schema.
fn op_name(schema: &serde_json::Value) -> Option<String> {
    if let Some(name) = schema["properties"]["op"]["enum"][0].as_str() {
        return Some(name.to_owned());
    }
    let parts = schema["allOf"].as_array().into_iter().chain(schema["oneOf"].as_array()).flatten();
    parts.into_iter().find_map(op_name)
}

#[utoipa::path(get, path = "/api/v1/operations", tag = "jobs", summary = "The operations a recipe may hold",
    description = "Each operation's name, title, summary, the stage it runs in here, what the recipe builder adds, its plain parameters (type, range, step, default), and its JSON schema.",
    responses((status = 200, description = "Every operation, in the order the plain form applies them", body = OperationsReply)))]
#[get("/operations")]
pub async fn operations(state: web::Data<AppState>) -> HttpResponse {
    let stage_map = state.jobs.stage_map();
    let operations = OPERATIONS
        .iter()
        .map(|spec| OperationEntry {
            name: spec.name,
            title: spec.title,
            summary: spec.summary,
            stage: stage_map.stage_of_name(spec.name).to_owned(),
            added_as: serde_json::from_str(spec.added_as).unwrap_or_default(),
            params: spec.params,
            editor: spec.editor,
            schema: schemas()
                .iter()
                .find(|(name, _)| name == spec.name)
                .map(|(_, schema)| schema.clone())
                .unwrap_or_default(),
        })
        .collect();
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(OperationsReply { operations })
}

/// The registry for the pages' recipe builder, as JSON safe inside a `<script>` element.
pub fn page_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_string(OPERATIONS).unwrap_or_else(|_| "[]".to_owned()).replace('<', "\\u003c"))
}
