//! Static files, compiled into the binary so `darkroom` runs from any directory.

use actix_web::{get, web, HttpResponse};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// One file of `static/`, by name, with its content type.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset { name: $name, content_type: $content_type, body: include_str!(concat!("../../../static/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("upload.js", JS),
    asset!("upload_preview.js", JS),
    asset!("upload_sizes.js", JS),
    asset!("common.js", JS),
    asset!("builder.js", JS),
    asset!("compare.js", JS),
    asset!("job.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The entity tag of `ASSETS[index]`: a digest of its content, made once per process for all.
fn etag(index: usize) -> &'static str {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        use sha2::Digest;
        ASSETS
            .iter()
            .map(|each| {
                let digest = sha2::Sha256::digest(each.body.as_bytes());
                let hex: String = digest.iter().take(12).map(|byte| format!("{byte:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    &tags[index]
}

/// Served for revalidation on every use (`no-cache`, with an entity tag: a 304 costs a round
/// trip and no body): the pages' scripts share one global scope, so a page must never run
/// with a script cached from the previous release next to one of this release.
#[get("/static/{name}")]
pub async fn asset(request: actix_web::HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(index) = ASSETS.iter().position(|each| each.name == name.as_str()) else {
        return actix_web::ResponseError::error_response(&crate::ApiError::not_found());
    };
    let (found, tag) = (&ASSETS[index], etag(index));
    // Weak: the compression middleware may send the same content gzip'd or not.
    let unchanged = request.headers().get_all(actix_web::http::header::IF_NONE_MATCH).any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .map(str::trim)
                .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
        })
    });
    let mut response = if unchanged { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response.insert_header(("Cache-Control", "no-cache")).insert_header(("ETag", format!("W/{tag}")));
    if unchanged {
        return response.finish();
    }
    response.content_type(found.content_type).body(found.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, App};

    #[actix_web::test]
    async fn an_asset_is_revalidated_every_time_and_unchanged_costs_no_body() {
        let app = test::init_service(App::new().service(asset)).await;
        let first = test::call_service(&app, test::TestRequest::get().uri("/static/upload.js").to_request()).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers().get("Cache-Control").unwrap(), "no-cache");
        let tag = first.headers().get("ETag").unwrap().to_str().unwrap().to_owned();
        assert!(tag.len() > 10 && tag.starts_with("W/\""), "{tag}");
        let again = test::TestRequest::get().uri("/static/upload.js").insert_header(("If-None-Match", tag.as_str()));
        let again = test::call_service(&app, again.to_request()).await;
        assert_eq!(again.status(), 304);
        assert!(test::read_body(again).await.is_empty());
        let other = test::TestRequest::get().uri("/static/job.js").insert_header(("If-None-Match", tag.as_str()));
        assert_eq!(test::call_service(&app, other.to_request()).await.status(), 200, "another asset's tag");
        for each in ASSETS {
            let reply =
                test::call_service(&app, test::TestRequest::get().uri(&format!("/static/{}", each.name)).to_request())
                    .await;
            assert_eq!(reply.status(), 200, "{}", each.name);
            assert_eq!(reply.headers().get("Content-Type").unwrap().to_str().unwrap(), each.content_type);
            assert!(!test::read_body(reply).await.is_empty(), "{} is empty", each.name);
        }
        let missing = test::call_service(&app, test::TestRequest::get().uri("/static/nothing.js").to_request()).await;
        assert_eq!(missing.status(), 404);
    }
}
