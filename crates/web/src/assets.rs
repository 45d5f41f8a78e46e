//! Static files, compiled into the binary so `darkroom` runs from any directory.

use actix_web::{get, web, HttpResponse};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../../static/app.css") },
    Asset {
        name: "upload.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/upload.js"),
    },
    Asset {
        name: "upload_preview.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/upload_preview.js"),
    },
    Asset {
        name: "upload_sizes.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/upload_sizes.js"),
    },
    Asset {
        name: "common.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/common.js"),
    },
    Asset {
        name: "builder.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/builder.js"),
    },
    Asset {
        name: "compare.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/compare.js"),
    },
    Asset {
        name: "job.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../static/job.js"),
    },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_str!("../../../static/favicon.svg") },
];

#[get("/static/{name}")]
pub async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.name == name.as_str()) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header(("Cache-Control", "public, max-age=300"))
            .body(asset.body),
        None => actix_web::ResponseError::error_response(&crate::ApiError::not_found()),
    }
}
