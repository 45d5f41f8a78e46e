//! What the web tier's in-process tests share: the test world (`darkroom_testkit::World`)
//! with the web tier's state over its `Jobs`, multipart bodies, and the app built with
//! actix's test service on it.

#![allow(dead_code, unused_macros)]

use darkroom_testkit::World;
use darkroom_web::{AppState, WebSettings};
use std::time::Duration;

pub struct Fixture {
    pub world: World,
    pub state: AppState,
}

/// The test world with the web tier's state over its `Jobs`.
pub async fn web_world() -> Fixture {
    let world = World::new().await;
    let settings = WebSettings {
        limits: darkroom_core::Limits::default(),
        max_request_bytes: 64 << 20,
        max_concurrent_uploads: 8,
        max_uploads_per_client: 8,
        min_upload_rate: 0,
        upload_idle_timeout: Duration::from_secs(30),
        upload_deadline: Duration::from_secs(60),
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        trust_forwarded_for: false,
        secure_cookies: false,
        metrics_token: None,
        webhooks_enabled: false,
        webhook_allow_internal: false,
    };
    let state = AppState::new(world.jobs.clone(), settings, None);
    Fixture { world, state }
}

pub fn photo() -> Vec<u8> {
    darkroom_testkit::fixture("chelsea.jpg")
}

/// A multipart body of `photos` copies of the fixture, with a recipe part if given.
pub fn multipart(photos: usize, recipe: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "darkroom-intake-test";
    let mut body = Vec::new();
    if let Some(recipe) = recipe {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"recipe\"\r\n\r\n{recipe}\r\n").as_bytes(),
        );
    }
    for n in 0..photos {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"p{n}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
        body.extend_from_slice(&photo());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

macro_rules! app {
    ($fixture:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .app_data(actix_web::web::Data::new($fixture.state.clone()))
                .configure(darkroom_web::routes),
        )
        .await
    };
}

/// Creates a job of one photo; evaluates to its id and owner token.
macro_rules! create_job {
    ($app:expr) => {{
        let (content_type, body) = common::multipart(1, Some(r#"{"ops":[{"op":"thumbnail","size":64}]}"#));
        let request = actix_web::test::TestRequest::post()
            .uri("/api/v1/jobs")
            .insert_header(("Content-Type", content_type))
            .set_payload(body)
            .to_request();
        let reply: serde_json::Value = actix_web::test::call_and_read_body_json(&$app, request).await;
        let job = darkroom_core::JobId::parse(reply["id"].as_str().unwrap()).unwrap();
        (job, reply["owner_token"].as_str().unwrap().to_owned())
    }};
}

/// Requests waiting in every stage's queue.
pub async fn queued(fixture: &Fixture) -> u64 {
    let mut total = 0;
    for stage in fixture.world.jobs.stage_map().stages() {
        let queue = fixture.state.queues.get(&fixture.world.names.requests(&stage)).await.unwrap();
        total += queue.counts().await.unwrap().visible;
    }
    total
}
