//! The status process's reconciler on the real embedded store and queue: photos left with
//! no request (a web process that died before sending them, a lost message) are restarted
//! as a new attempt, at most MAX_RECOVERIES times in a row, then failed with the reason;
//! photos that may still be in a backlog are left alone; finished jobs leave the index,
//! but not when a retry or a status update races with the reconciler or a deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::{
    keys, now_millis, EventDoc, JobManifest, PhotoId, PhotoRequest, PhotoResponse, PhotoState, PhotoUpdate, TimeBudgets,
};
use darkroom_jobs::Jobs;
use darkroom_queue::{OutgoingMessage, Queue};
use darkroom_status::{HousekeepingSettings, StatusSettings, StatusUpdater, MAX_RECOVERIES};
use darkroom_store::json::{get_json, put_json};
use darkroom_store::ObjectStore;
use darkroom_testkit::{FaultyStore, World};
use std::sync::Arc;
use std::time::Duration;

const HOUR: u64 = 3600 * 1000;

struct Fixture {
    world: World,
    store: Arc<dyn ObjectStore>,
    /// The same store, for holding back chosen writes.
    faulty: Arc<FaultyStore>,
    status: StatusUpdater,
    /// What the web tier does to jobs (retries, deletion), on the same store and queues.
    jobs: Jobs,
    quick: Arc<dyn Queue>,
    responses: Arc<dyn Queue>,
}

/// The test world with a status process's updater over it.
async fn status_world() -> Fixture {
    let world = World::new().await;
    let settings = StatusSettings {
        wait_time: Duration::ZERO,
        max_receive_count: 5,
        housekeeping: HousekeepingSettings {
            interval: Duration::from_secs(60),
            stuck_after: Duration::from_secs(30 * 60),
            retention: None,
            visibility_timeout: Duration::from_secs(30),
            time_budgets: TimeBudgets::parse("quick=2m,slow=5m").unwrap(),
            max_receive_count: 5,
        },
    };
    let status = StatusUpdater::new(world.jobs.clone(), settings);
    let (quick, responses) = (world.requests("quick").await, world.responses().await);
    Fixture {
        store: world.object_store(),
        faulty: world.store.clone(),
        jobs: world.jobs.clone(),
        status,
        quick,
        responses,
        world,
    }
}

/// A job whose photos were stored `hours_ago` and never sent: a web process died mid-upload.
async fn orphaned_job(fixture: &Fixture, photos: usize, hours_ago: u64) -> (JobManifest, Vec<PhotoId>) {
    fixture.world.unsent_job(photos, now_millis() - hours_ago * HOUR).await
}

async fn queued_requests(queue: &dyn Queue) -> Vec<PhotoRequest> {
    let mut found = Vec::new();
    loop {
        let batch = queue.receive(10, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            return found;
        }
        found.extend(batch.iter().map(|m| PhotoRequest::decode(&m.body).unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_never_sent_are_restarted_once_and_then_left_to_their_new_attempt() {
    let fixture = status_world().await;
    let (manifest, photos) = orphaned_job(&fixture, 3, 2).await;
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!((report.jobs_checked, report.recovered), (1, 3), "{report:?}");
    let requests = queued_requests(fixture.quick.as_ref()).await;
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.attempt == 2 && r.job_id == manifest.id));
    let queued: EventDoc =
        get_json(fixture.store.as_ref(), &keys::queued_event(&manifest.id, &photos[0], 2)).await.unwrap();
    assert_eq!(queued.recoveries, 1);
    assert!(queued.reason.unwrap().contains("queued for 120 minutes"));

    // The new attempts are fresh: the next pass leaves them alone.
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!(report.recovered, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_lost_again_and_again_is_failed_with_the_reason() {
    let fixture = status_world().await;
    let (manifest, photos) = orphaned_job(&fixture, 1, 3).await;
    let mut queued = EventDoc::new(4, PhotoState::Queued);
    queued.at = now_millis() - 2 * HOUR;
    queued.recoveries = MAX_RECOVERIES;
    put_json(fixture.store.as_ref(), &keys::queued_event(&manifest.id, &photos[0], 4), &queued).await.unwrap();
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!((report.recovered, report.failed), (0, 1), "{report:?}");
    let failed: EventDoc = get_json(
        fixture.store.as_ref(),
        &keys::event(&manifest.id, &photos[0], 4, PhotoState::Failed, keys::TERMINAL_STEP),
    )
    .await
    .unwrap();
    assert!(failed.error.unwrap().message.contains("lost this photo's request 3 times"));
    // The job is finished now: the next pass takes it out of the index.
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!(report.finished_jobs, 1);
    assert!(fixture.store.list(keys::ACTIVE_PREFIX).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_that_may_be_in_a_backlog_are_left_alone() {
    let fixture = status_world().await;
    let (_, _) = orphaned_job(&fixture, 1, 2).await;
    // Someone else's request waits in the queue: the photo may be behind it.
    fixture.quick.send(OutgoingMessage::new("another photo", Default::default())).await.unwrap();
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!(report.recovered, 0, "{report:?}");
}

/// Status was down while the photo was processed: its request is gone, its "done" waits in
/// the response queue, and the photo still shows queued. It must not be restarted (and
/// processed twice) while responses wait to be recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_whose_responses_wait_to_be_recorded_are_left_alone() {
    let fixture = status_world().await;
    let (manifest, photos) = orphaned_job(&fixture, 1, 2).await;
    let done = PhotoResponse::new(
        manifest.id.clone(),
        photos[0].clone(),
        1,
        PhotoUpdate::Done { outputs: Vec::new(), work_ms: None },
    );
    fixture.responses.send(OutgoingMessage::new(done.encode(), Default::default())).await.unwrap();
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!(report.recovered, 0, "{report:?}");
}

/// Records attempt 1 of `photo` as failed, so its job is finished.
async fn fail_first_attempt(fixture: &Fixture, job: &JobManifest, photo: &PhotoId) {
    let failed = EventDoc::new(1, PhotoState::Failed);
    let key = keys::event(&job.id, photo, 1, PhotoState::Failed, keys::TERMINAL_STEP);
    put_json(fixture.store.as_ref(), &key, &failed).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_the_reconciler_keeps_its_job_in_the_index() {
    let fixture = status_world().await;
    let (manifest, photos) = orphaned_job(&fixture, 1, 0).await;
    fail_first_attempt(&fixture, &manifest, &photos[0]).await;
    // The retry marks the job active (a mark that is already there), then stops just before
    // its attempt exists...
    let attempt_2 = keys::queued_event(&manifest.id, &photos[0], 2);
    let held = fixture.faulty.hold_puts_where(Arc::new(move |key, _| key == attempt_2));
    let retry = {
        let (jobs, manifest, photo) = (fixture.jobs.clone(), manifest.clone(), photos[0].clone());
        tokio::spawn(async move { jobs.restart_attempt(&manifest, &photo, 1, manifest.recipe.clone()).await })
    };
    held.reached().await;
    // ...while the reconciler reads the job as finished, twice, and takes it out of the index.
    let report = fixture.status.housekeeper().pass().await.unwrap();
    assert_eq!(report.finished_jobs, 1, "{report:?}");
    held.release();
    assert_eq!(retry.await.unwrap().unwrap(), 2);
    let active = fixture.store.list(keys::ACTIVE_PREFIX).await.unwrap();
    assert_eq!(
        active.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
        vec![keys::active_marker(&manifest.id)],
        "the retried photo must stay where the reconciler looks, in case its request is lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_recorded_while_its_job_is_deleted_leaves_nothing_behind() {
    let fixture = status_world().await;
    let (manifest, photos) = orphaned_job(&fixture, 1, 0).await;
    // The worker's "done" arrives; its event's write is slow...
    let done = PhotoResponse::new(
        manifest.id.clone(),
        photos[0].clone(),
        1,
        PhotoUpdate::Done { outputs: Vec::new(), work_ms: None },
    );
    let event_key = keys::event(&manifest.id, &photos[0], 1, PhotoState::Done, keys::TERMINAL_STEP);
    let held = fixture.faulty.hold_puts_where(Arc::new(move |key, _| key == event_key));
    let body = done.encode();
    let applying = fixture.status.apply_response_message(&body);
    let deleting = async {
        held.reached().await;
        // ...and the owner deletes the job meanwhile: its sweep runs to the end first.
        let outcome = fixture.jobs.delete(&manifest, darkroom_core::DeletionCause::Owner).await.unwrap();
        held.release();
        outcome
    };
    let (applied, _) = tokio::join!(applying, deleting);
    assert_eq!(applied.unwrap(), darkroom_status::Applied::JobGone);
    let left = fixture.store.list(&keys::job_prefix(&manifest.id)).await.unwrap();
    assert!(left.is_empty(), "objects of a deleted job left behind: {left:?}");
}
