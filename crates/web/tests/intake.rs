//! The web tier in process, on the real embedded store and queues with faults injected: an
//! upload whose request goes away while it is being committed, and an Idempotency-Key
//! whose reply cannot be stored, each add their photos exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use actix_web::test;
use common::{multipart, queued, web_world, Fixture};
use darkroom_core::{keys, JobId};
use darkroom_store::ObjectStore;
use std::sync::Arc;
use std::time::Duration;

fn add_request(job: &JobId, token: &str, photos: usize, idempotency_key: Option<&str>) -> test::TestRequest {
    let (content_type, body) = multipart(photos, None);
    let mut request = test::TestRequest::post()
        .uri(&format!("/api/v1/jobs/{job}/photos"))
        .insert_header(("Content-Type", content_type))
        .insert_header(("X-Owner-Token", token.to_owned()));
    if let Some(key) = idempotency_key {
        request = request.insert_header(("Idempotency-Key", key.to_owned()));
    }
    request.set_payload(body)
}

/// The job's photos as the store holds them, and how many have their original.
async fn photos_of(fixture: &Fixture, job: &JobId) -> (usize, usize) {
    let manifest = fixture.state.jobs.load_job(job).await.unwrap().unwrap();
    let view = fixture.state.jobs.load_view_in_full(&manifest).await.unwrap();
    let mut originals = 0;
    for photo in &view.photos {
        if fixture.world.store.head(&keys::original(job, &photo.id)).await.unwrap().is_some() {
            originals += 1;
        }
    }
    (view.photos.len(), originals)
}

/// The client goes away while its batch is being committed (photo manifests half written):
/// the commit finishes anyway, so every photo has its original and its queue message, none
/// points at nothing.
#[actix_web::test]
async fn a_batch_whose_request_goes_away_mid_commit_is_added_whole() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (job, token) = create_job!(app);
    assert_eq!(queued(&fixture).await, 1);
    let held = fixture
        .world
        .store
        .hold_puts_where(Arc::new(|key: &str, _: &[u8]| key.contains("/photos/") && key.ends_with("/photo.json")));
    let call = test::call_service(&app, add_request(&job, &token, 3, None).to_request());
    tokio::select! {
        _ = call => panic!("the request finished while its photo manifests were held"),
        () = held.reached() => {} // the request is dropped here, mid-commit
    }
    held.release();
    assert_eq!(fixture.state.commits.drain(Duration::from_secs(30)).await, 0, "the commit finishes");
    assert_eq!(photos_of(&fixture, &job).await, (4, 4), "every photo added, each with its original");
    assert_eq!(queued(&fixture).await, 4, "every photo sent to work");
}

/// The batch is added but its reply cannot be stored: the answer is still 201, and a retry
/// with the same Idempotency-Key gets the same reply instead of adding the photos again.
#[actix_web::test]
async fn a_batch_whose_reply_cannot_be_stored_is_not_added_twice() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (job, token) = create_job!(app);
    let reply_key = keys::batch_reply(&job, &darkroom_core::ids::sha256_hex(b"batch-1"));
    let failing = reply_key.clone();
    fixture.world.store.fail_puts_where(Some(Arc::new(move |key: &str, body: &[u8]| {
        key == failing && String::from_utf8_lossy(body).contains("\"done\"")
    })));
    let first = test::call_service(&app, add_request(&job, &token, 2, Some("batch-1")).to_request()).await;
    assert_eq!(first.status(), 201, "the photos were added");
    let first: serde_json::Value = test::read_body_json(first).await;
    fixture.world.store.fail_puts_where(None);

    // Retried at once: the first request may still be committing.
    let early = test::call_service(&app, add_request(&job, &token, 2, Some("batch-1")).to_request()).await;
    assert_eq!(early.status(), 409);
    // Retried after the claim's lease: the photos are there, so the reply is replayed.
    let mut record: serde_json::Value =
        serde_json::from_slice(&fixture.world.store.get(&reply_key).await.unwrap()).unwrap();
    assert_eq!(record["state"], "committing");
    record["since"] = 1.into();
    fixture.world.store.put(&reply_key, serde_json::to_vec(&record).unwrap().into(), "application/json").await.unwrap();
    let late = test::call_service(&app, add_request(&job, &token, 2, Some("batch-1")).to_request()).await;
    assert_eq!(late.status(), 201);
    assert_eq!(late.headers().get("Idempotent-Replayed").unwrap(), "true");
    let late: serde_json::Value = test::read_body_json(late).await;
    assert_eq!(late["photos"], first["photos"], "the same photos, not new ones");
    assert_eq!(photos_of(&fixture, &job).await, (3, 3), "one photo from creation, two from the batch, once");
}

/// A batch whose photos cannot be sent to work is refused (503) and leaves nothing: no
/// photo, no original, and its Idempotency-Key free, so the retry adds the batch once.
#[actix_web::test]
async fn a_batch_that_fails_to_commit_leaves_nothing_and_its_key_free() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (job, token) = create_job!(app);
    fixture.world.queues.set_down(true);
    let refused = test::call_service(&app, add_request(&job, &token, 2, Some("batch-2")).to_request()).await;
    assert_eq!(refused.status(), 503);
    fixture.world.queues.set_down(false);
    assert_eq!(photos_of(&fixture, &job).await, (1, 1), "nothing of the refused batch remains");
    let originals = fixture.world.store.list(&keys::photos_prefix(&job)).await.unwrap();
    assert_eq!(originals.iter().filter(|o| o.key.ends_with("/original")).count(), 1, "{originals:?}");
    let reply_key = keys::batch_reply(&job, &darkroom_core::ids::sha256_hex(b"batch-2"));
    assert!(fixture.world.store.head(&reply_key).await.unwrap().is_none(), "the key is released");
    let retried = test::call_service(&app, add_request(&job, &token, 2, Some("batch-2")).to_request()).await;
    assert_eq!(retried.status(), 201);
    assert_eq!(photos_of(&fixture, &job).await, (3, 3));
    assert_eq!(queued(&fixture).await, 3);
}

/// The owner deletes the job while a batch is being committed into it (held at its change
/// log entry, after its photos are stored and sent): the deletion's sweep runs first, the
/// batch is answered 404, and nothing of the job remains (no seat, original, manifest,
/// change or Idempotency-Key record).
#[actix_web::test]
async fn a_batch_committed_while_its_job_is_deleted_leaves_nothing_behind() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (job, token) = create_job!(app);
    let held = fixture.world.store.hold_puts_where(Arc::new(|key: &str, _: &[u8]| key.contains("/changes/")));
    let adding = test::call_service(&app, add_request(&job, &token, 2, Some("batch-1")).to_request());
    let deleting = async {
        held.reached().await;
        let manifest = fixture.state.jobs.load_job(&job).await.unwrap().unwrap();
        let outcome = fixture.state.jobs.delete(&manifest, darkroom_core::DeletionCause::Owner).await.unwrap();
        held.release();
        outcome
    };
    let (added, deleted) = tokio::join!(adding, deleting);
    assert!(matches!(deleted, darkroom_jobs::DeleteOutcome::Swept { .. }), "{deleted:?}");
    assert_eq!(added.status(), 404, "a batch into a deleted job is not added");
    let left = fixture.world.store.list(&keys::job_prefix(&job)).await.unwrap();
    assert!(
        left.is_empty(),
        "objects of the deleted job left behind: {:?}",
        left.iter().map(|m| &m.key).collect::<Vec<_>>()
    );
}

/// A batch's process was killed half-way through its commit: one of its two photos has its
/// manifest and original, the other nothing, and its reply was never recorded. A retry with
/// the same Idempotency-Key after the lease adds the batch afresh, and the half-committed
/// photo goes, so the job holds exactly the photos its owner was told of.
#[actix_web::test]
async fn a_retry_after_a_commit_cut_off_half_way_leaves_no_photo_nobody_was_told_of() {
    let fixture = web_world().await;
    let app = app!(fixture);
    let (job, token) = create_job!(app);
    let (stored, missing) = (darkroom_core::PhotoId::generate(), darkroom_core::PhotoId::generate());
    let manifest = darkroom_core::PhotoManifest {
        v: darkroom_core::job::MANIFEST_VERSION,
        job_id: job.clone(),
        id: stored.clone(),
        name: "half.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 3,
        width: None,
        height: None,
        added_at: 1,
        position: 0,
    };
    darkroom_store::json::put_json(fixture.world.store.as_ref(), &keys::photo_manifest(&job, &stored), &manifest)
        .await
        .unwrap();
    fixture
        .world
        .store
        .put(&keys::original(&job, &stored), bytes::Bytes::from_static(b"jpg"), "image/jpeg")
        .await
        .unwrap();
    let reply_key = keys::batch_reply(&job, &darkroom_core::ids::sha256_hex(b"batch-1"));
    let cut_off = serde_json::json!({"state": "committing", "since": 1, "body": {}, "photos": [stored, missing]});
    fixture
        .world
        .store
        .put(&reply_key, serde_json::to_vec(&cut_off).unwrap().into(), "application/json")
        .await
        .unwrap();
    assert_eq!(photos_of(&fixture, &job).await, (2, 2), "the half-committed photo shows before the retry");

    let retry = test::call_service(&app, add_request(&job, &token, 2, Some("batch-1")).to_request()).await;
    assert_eq!(retry.status(), 201);
    let retry: serde_json::Value = test::read_body_json(retry).await;
    assert_eq!(retry["photos"].as_array().unwrap().len(), 2);
    assert_eq!(photos_of(&fixture, &job).await, (3, 3), "one photo from creation and the two of the retry, no other");
    assert!(fixture.world.store.head(&keys::original(&job, &stored)).await.unwrap().is_none());
}
