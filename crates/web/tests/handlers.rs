//! Handlers in process (actix's test service on the embedded backend, no binary spawned):
//! the operation registry served, a job created with an operation known only from it,
//! and the answers to a malformed recipe and an unknown job.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use actix_web::test;
use common::{multipart, queued, web_world};
use darkroom_core::{JobId, PhotoState};
use darkroom_store::ObjectStore;

#[actix_web::test]
async fn the_registry_is_served_with_this_deployments_stages() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let reply: serde_json::Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/api/v1/operations").to_request()).await;
    let operations = reply["operations"].as_array().unwrap();
    let names: Vec<&str> = operations.iter().map(|op| op["name"].as_str().unwrap()).collect();
    assert_eq!(names, darkroom_core::operations::names().collect::<Vec<_>>(), "the registry, in its order");
    let redeye = operations.iter().find(|op| op["name"] == "redeye").unwrap();
    assert_eq!(redeye["stage"], "slow");
    assert!(redeye["schema"]["properties"]["regions"].is_object() || redeye["schema"].to_string().contains("regions"));
}

#[actix_web::test]
async fn a_job_with_an_operation_known_only_from_the_registry_is_created_and_queued() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (content_type, body) =
        multipart(2, Some(r#"{"ops":[{"op":"vignette","strength":0.4},{"op":"thumbnail","size":64}]}"#));
    let request =
        test::TestRequest::post().uri("/api/v1/jobs").insert_header(("Content-Type", content_type)).set_payload(body);
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 201);
    let reply: serde_json::Value = test::read_body_json(response).await;
    let job = JobId::parse(reply["id"].as_str().unwrap()).unwrap();
    assert_eq!(queued(&fixture).await, 2, "one request per photo");
    let manifest = fixture.world.jobs.load_job(&job).await.unwrap().unwrap();
    assert_eq!(manifest.recipe.ops[0], darkroom_core::Operation::Vignette { strength: Some(0.4), radius: None });
    let view = fixture.world.jobs.load_view_in_full(&manifest).await.unwrap();
    assert!(view.photos.len() == 2 && view.photos.iter().all(|photo| photo.state == PhotoState::Queued));
    // Nothing done yet: the job page offers no archive to download.
    let page = test::call_and_read_body(&app, test::TestRequest::get().uri(&format!("/jobs/{job}")).to_request()).await;
    let page = String::from_utf8(page.to_vec()).unwrap();
    let download = page.split("id=\"download-all\"").nth(1).and_then(|rest| rest.split('>').next()).unwrap();
    assert!(download.contains("hidden"), "the download button is offered with nothing done: {download}");
}

#[actix_web::test]
async fn a_parameter_out_of_its_range_is_refused_by_name_and_an_unknown_job_is_not_found() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (content_type, body) = multipart(1, Some(r#"{"ops":[{"op":"vignette","radius":2}]}"#));
    let request =
        test::TestRequest::post().uri("/api/v1/jobs").insert_header(("Content-Type", content_type)).set_payload(body);
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 400);
    let reply: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(reply["error"]["code"], "invalid_recipe");
    assert!(reply["error"]["message"].as_str().unwrap().contains("ops[0].radius"), "{reply}");
    assert_eq!(queued(&fixture).await, 0, "nothing sent");

    let unknown = test::TestRequest::get().uri(&format!("/api/v1/jobs/{}", JobId::generate())).to_request();
    assert_eq!(test::call_service(&app, unknown).await.status(), 404);
}

/// A web replica older than the process that saved a job (a rollout under way) answers 503
/// with Retry-After and says why, not 500; a manifest that is simply broken stays a 500.
#[actix_web::test]
async fn a_job_saved_by_a_newer_darkroom_is_unavailable_here_not_an_internal_error() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (content_type, body) = multipart(1, Some(r#"{"ops":[{"op":"thumbnail","size":64}]}"#));
    let request =
        test::TestRequest::post().uri("/api/v1/jobs").insert_header(("Content-Type", content_type)).set_payload(body);
    let reply: serde_json::Value = test::call_and_read_body_json(&app, request.to_request()).await;
    let job = JobId::parse(reply["id"].as_str().unwrap()).unwrap();
    let key = darkroom_core::keys::job_manifest(&job);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fixture.world.store.get(&key).await.unwrap()).unwrap();
    manifest["v"] = (darkroom_core::job::MANIFEST_VERSION + 1).into();
    manifest["recipe"]["ops"][0] = serde_json::json!({"op": "an_operation_from_the_future"});
    fixture.world.store.put(&key, serde_json::to_vec(&manifest).unwrap().into(), "application/json").await.unwrap();

    for uri in [format!("/api/v1/jobs/{job}"), format!("/jobs/{job}")] {
        let response = test::call_service(&app, test::TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(response.status(), 503, "{uri}");
        assert_eq!(
            response.headers().get("Retry-After").map(|v| v.to_str().unwrap().to_owned()),
            Some("60".to_owned()),
            "{uri}: {:?}",
            response.headers()
        );
        let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        assert!(text.contains("newer version of darkroom"), "{uri}: {text}");
    }

    manifest["v"] = darkroom_core::job::MANIFEST_VERSION.into();
    fixture.world.store.put(&key, serde_json::to_vec(&manifest).unwrap().into(), "application/json").await.unwrap();
    let broken = test::TestRequest::get().uri(&format!("/api/v1/jobs/{job}")).to_request();
    assert_eq!(test::call_service(&app, broken).await.status(), 500);
}
