//! The jobs crate against the real embedded store and queue, with faults injected: an
//! attempt whose enqueue fails is withdrawn; a deletion interrupted half-way is finished
//! by the sweeper; retention expires old jobs and, later, their tombstones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::job::MANIFEST_VERSION;
use darkroom_core::{keys, now_millis, DeletionCause, JobId, PhotoId, PhotoManifest, PhotoState, Recipe};
use darkroom_jobs::{DeleteOutcome, NewPhoto};
use darkroom_queue::QueueDirectory;
use darkroom_store::json::put_json;
use darkroom_store::ObjectStore;
use darkroom_testkit::World;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_whose_enqueue_fails_is_withdrawn_and_can_be_started_again() {
    let fixture = World::new().await;
    let (manifest, photos) = fixture.unsent_job(1, now_millis()).await;
    let recipe = manifest.recipe.clone();
    fixture.queues.set_down(true);
    assert!(fixture.jobs.start_attempt(&manifest, &photos[0], 1, recipe.clone(), None).await.is_err());
    assert!(
        fixture.store.head(&keys::queued_event(&manifest.id, &photos[0], 2)).await.unwrap().is_none(),
        "a queued event with nothing in the queue was left"
    );
    let view = fixture.jobs.load_view(&manifest).await.unwrap();
    assert_eq!(view.photos[0].attempt, 1, "the photo keeps its previous state");

    fixture.queues.set_down(false);
    assert_eq!(fixture.jobs.start_attempt(&manifest, &photos[0], 1, recipe, None).await.unwrap(), 2);
    let queue = QueueDirectory::new(fixture.queues.clone()).get(&fixture.names.requests("quick")).await.unwrap();
    assert_eq!(queue.counts().await.unwrap().visible, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_sent_twice_restarts_the_photo_once_but_retries_still_stack() {
    let fixture = World::new().await;
    let (manifest, photos) = fixture.unsent_job(1, now_millis()).await;
    let recipe = manifest.recipe.clone();
    // Two "resume" requests that both saw attempt 1 (two tabs, a double click).
    assert_eq!(fixture.jobs.restart_attempt(&manifest, &photos[0], 1, recipe.clone()).await.unwrap(), 2);
    assert!(matches!(
        fixture.jobs.restart_attempt(&manifest, &photos[0], 1, recipe.clone()).await,
        Err(darkroom_jobs::JobsError::AlreadyStarted)
    ));
    let queue = QueueDirectory::new(fixture.queues.clone()).get(&fixture.names.requests("quick")).await.unwrap();
    assert_eq!(queue.counts().await.unwrap().visible, 1, "one request for the photo, not two");
    // A reprocess with another recipe is a new attempt whatever the view said.
    assert_eq!(fixture.jobs.start_attempt(&manifest, &photos[0], 1, recipe, None).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_interrupted_half_way_is_finished_by_the_sweeper() {
    let fixture = World::new().await;
    let (manifest, _) = fixture.unsent_job(30, now_millis()).await;
    // The bulk delete fails (throttled): the answer is "deleted", the sweep is pending.
    fixture.store.fail_next_bulk_deletes(1);
    assert_eq!(fixture.jobs.delete(&manifest, DeletionCause::Owner).await.unwrap(), DeleteOutcome::Pending);
    assert!(fixture.jobs.load_job(&manifest.id).await.unwrap().is_none(), "the job is gone for readers at once");
    assert!(!fixture.store.list(&keys::job_prefix(&manifest.id)).await.unwrap().is_empty());

    let report = fixture.jobs.sweep_pending(20, &mut None).await.unwrap();
    assert_eq!(report.jobs, 1);
    assert!(report.objects >= 60, "{report:?}");
    assert!(fixture.store.list(&keys::job_prefix(&manifest.id)).await.unwrap().is_empty(), "objects left behind");
    assert!(fixture.store.list(keys::SWEEP_PREFIX).await.unwrap().is_empty());
    assert!(fixture.store.list(keys::ACTIVE_PREFIX).await.unwrap().is_empty());
    let tombstone = fixture.jobs.tombstone(&manifest.id).await.unwrap().expect("kept for retried deletes");
    assert_eq!(tombstone.owner_token_sha256, manifest.owner_token_sha256);
    // Bulk deletes: 60 objects in a handful of calls, not one each.
    assert!(fixture.store.requests.deletes.load(std::sync::atomic::Ordering::SeqCst) < 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_old_jobs_then_forgets_them() {
    let fixture = World::new().await;
    let day = 24 * 3600 * 1000;
    let now = now_millis();
    let (old, _) = fixture.unsent_job(2, now - 40 * day).await;
    let (recent, _) = fixture.unsent_job(2, now - day).await;
    assert_eq!(fixture.jobs.expire(now - 30 * day, 100, &mut None).await.unwrap(), 1);
    assert!(fixture.jobs.load_job(&old.id).await.unwrap().is_none());
    assert!(fixture.store.list(&keys::job_prefix(&old.id)).await.unwrap().is_empty());
    assert!(fixture.jobs.load_job(&recent.id).await.unwrap().is_some());
    // The expired job's record and index entries are gone too; the recent one's stay.
    assert!(fixture.jobs.tombstone(&old.id).await.unwrap().is_none());
    let created: Vec<String> =
        fixture.store.list(keys::CREATED_PREFIX).await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(created, [keys::created_marker(&recent.id, recent.created_at)]);

    // An owner-deleted job's tombstone stays until the job would have expired.
    fixture.jobs.delete(&recent, DeletionCause::Owner).await.unwrap();
    assert_eq!(fixture.jobs.expire(now - 30 * day, 100, &mut None).await.unwrap(), 0);
    assert!(fixture.jobs.tombstone(&recent.id).await.unwrap().is_some());
    assert_eq!(fixture.jobs.expire(now, 100, &mut None).await.unwrap(), 0);
    assert!(fixture.jobs.tombstone(&recent.id).await.unwrap().is_none());
    assert!(fixture.store.list("").await.unwrap().is_empty(), "{:?}", fixture.store.list("").await.unwrap());
    let _ = PhotoState::Queued;
}

/// Records a state event as the status process does: the event, then its change-log entry.
async fn record(fixture: &World, job: &JobId, photo: &PhotoId, state: PhotoState, stage: &str, step: u32) {
    let mut event = darkroom_core::EventDoc::new(1, state);
    event.stage = Some(stage.to_owned());
    let key = keys::event(job, photo, 1, state, step);
    darkroom_store::json::put_json_if_absent(fixture.store.as_ref(), &key, &event).await.unwrap();
    darkroom_jobs::log_change(fixture.store.as_ref(), job, &darkroom_jobs::event_change(job, photo, step, &event))
        .await;
}

fn requests(fixture: &World) -> u64 {
    fixture.store.requests.total()
}

/// Once a job's view has been read, reading it again costs one listing of what changed and
/// one read per change, whether the job has one photo or a thousand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_view_costs_the_same_store_requests_for_one_photo_or_a_thousand() {
    let mut steady_costs = Vec::new();
    for size in [1, 1000] {
        let fixture = World::new().await;
        let jobs = fixture.jobs.clone().with_view_refresh(Duration::ZERO);
        let (manifest, photos) = fixture.unsent_job(size, now_millis()).await;
        let cold = requests(&fixture);
        assert_eq!(jobs.load_view(&manifest).await.unwrap().photos.len(), size);
        let cold = requests(&fixture) - cold;
        // Three photos move on.
        for photo in photos.iter().take(3) {
            record(&fixture, &manifest.id, photo, PhotoState::Processing, "quick", 0).await;
        }
        let before = requests(&fixture);
        let view = jobs.load_view(&manifest).await.unwrap();
        let steady = requests(&fixture) - before;
        let processing = view.photos.iter().filter(|p| p.state == PhotoState::Processing).count();
        assert_eq!(processing, size.min(3), "the view shows the new states");
        // Nothing new: one listing.
        let before = requests(&fixture);
        jobs.load_view(&manifest).await.unwrap();
        assert_eq!(requests(&fixture) - before, 1, "an unchanged job costs one listing");
        println!("{size} photos: first read {cold} requests, then {steady} for {} changes", size.min(3));
        steady_costs.push(steady);
    }
    assert!(steady_costs.iter().all(|&cost| cost <= 4), "1 listing + 1 read per change: {steady_costs:?}");
    assert_eq!(steady_costs[0] + 2, steady_costs[1], "a thousand photos cost what one does, change for change");
}

/// Readers of one job within the refresh window share one read, however many there are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_of_one_job_share_one_read() {
    let fixture = World::new().await;
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::from_secs(60));
    let (manifest, _) = fixture.unsent_job(20, now_millis()).await;
    jobs.load_view(&manifest).await.unwrap();
    let before = requests(&fixture);
    let readers: Vec<_> = (0..50).map(|_| jobs.load_view(&manifest)).collect();
    for view in futures::future::join_all(readers).await {
        assert_eq!(view.unwrap().photos.len(), 20);
    }
    assert_eq!(requests(&fixture) - before, 0, "fifty readers within the window cost nothing more");
}

/// Readers queued behind a read that failed on an outage get its answer for the refresh
/// window, not one store request each, even right after this process changed the job;
/// after the window the job is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_behind_a_failed_read_share_its_failure() {
    let fixture = World::new().await;
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::from_secs(60));
    let (manifest, _) = fixture.unsent_job(5, now_millis()).await;
    fixture.store.set_down(true);
    let before = requests(&fixture);
    let readers: Vec<_> = (0..50).map(|_| jobs.load_view(&manifest)).collect();
    let answers = futures::future::join_all(readers).await;
    assert!(answers.iter().all(|answer| answer.as_ref().is_err_and(darkroom_jobs::JobsError::is_retryable)));
    assert_eq!(requests(&fixture) - before, 1, "fifty readers during an outage cost one failed listing");
    jobs.changed(&manifest.id);
    let before = requests(&fixture);
    assert!(jobs.load_view(&manifest).await.is_err());
    assert_eq!(requests(&fixture) - before, 0, "a change made here does not end the shared failure early");
    fixture.store.set_down(false);
    // The same fold, read once its window is over (a zero window: always over).
    let after_window = jobs.clone().with_view_refresh(Duration::ZERO);
    assert_eq!(after_window.load_view(&manifest).await.unwrap().photos.len(), 5);
}

/// The log is an index, not the truth: an event whose log entry was lost shows after the
/// next full read; an event logged before its photo's "added" entry is kept until the photo
/// shows; a later state never gives way to an earlier one read after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_misses_nothing_for_long_and_never_goes_backwards() {
    let fixture = World::new().await;
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::ZERO).with_full_read_every(Duration::from_millis(300));
    let (manifest, photos) = fixture.unsent_job(3, now_millis()).await;
    jobs.load_view(&manifest).await.unwrap();
    // Done recorded first, then a late "processing" of the same attempt arrives.
    record(&fixture, &manifest.id, &photos[0], PhotoState::Done, "quick", keys::TERMINAL_STEP).await;
    record(&fixture, &manifest.id, &photos[0], PhotoState::Processing, "quick", 0).await;
    // An event written without its log entry (a crash between the two).
    let mut lost = darkroom_core::EventDoc::new(1, PhotoState::Failed);
    lost.stage = Some("quick".into());
    let key = keys::event(&manifest.id, &photos[1], 1, PhotoState::Failed, keys::TERMINAL_STEP);
    put_json(fixture.store.as_ref(), &key, &lost).await.unwrap();
    let view = jobs.load_view(&manifest).await.unwrap();
    assert_eq!(view.photos[0].state, PhotoState::Done, "done stays done");
    darkroom_testkit::eventually(Duration::from_secs(5), "the unlogged event shows after a full read", || async {
        jobs.load_view(&manifest).await.unwrap().photos[1].state == PhotoState::Failed
    })
    .await;
    // A photo whose event is logged before the photo itself.
    let late = PhotoId::generate();
    record(&fixture, &manifest.id, &late, PhotoState::Processing, "quick", 0).await;
    let photo = PhotoManifest {
        v: MANIFEST_VERSION,
        job_id: manifest.id.clone(),
        id: late.clone(),
        name: "late.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 3,
        width: None,
        height: None,
        added_at: now_millis(),
        position: 3,
    };
    put_json(fixture.store.as_ref(), &keys::photo_manifest(&manifest.id, &late), &photo).await.unwrap();
    darkroom_jobs::log_change(
        fixture.store.as_ref(),
        &manifest.id,
        &darkroom_jobs::Change::Photos { photos: vec![photo], rejected: None },
    )
    .await;
    let view = jobs.load_view(&manifest).await.unwrap();
    let shown = view.photos.iter().find(|p| p.id == late).expect("the added photo");
    assert_eq!(shown.state, PhotoState::Processing);
}

/// A full read whose listing missed an event the log had already reported does not step the
/// view back: the log's recent entries are folded in again after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_read_never_steps_the_view_back() {
    let fixture = World::new().await;
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::ZERO).with_full_read_every(Duration::ZERO);
    let (manifest, photos) = fixture.unsent_job(2, now_millis()).await;
    // Logged, but (as if the full read's listing ran just before it was written) its event
    // document is not where the listing looks.
    let mut done = darkroom_core::EventDoc::new(1, PhotoState::Done);
    done.stage = Some("quick".into());
    let change = darkroom_jobs::event_change(&manifest.id, &photos[0], keys::TERMINAL_STEP, &done);
    darkroom_jobs::log_change(fixture.store.as_ref(), &manifest.id, &change).await;
    for _ in 0..3 {
        let view = jobs.load_view(&manifest).await.unwrap();
        let photo = view.photos.iter().find(|p| p.id == photos[0]).unwrap();
        assert_eq!(photo.state, PhotoState::Done, "every read, full or not, shows what the log reported");
    }
}

/// A live stream remembers the version of the view it last sent. A job whose fold was
/// evicted from the cache and folded again must not come back under a version the stream
/// has already seen, or the stream sends nothing and the page never learns the job is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_folded_again_after_eviction_is_never_taken_for_one_already_sent() {
    let fixture = World::new().await;
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::ZERO);
    let (manifest, photos) = fixture.unsent_job(1, now_millis()).await;
    let (seen, view) = jobs.load_view_if_changed(&manifest, None).await.unwrap();
    assert_eq!(view.unwrap().photos[0].state, PhotoState::Queued);
    // Many other jobs are watched meanwhile: this one's fold leaves the cache.
    for _ in 0..1000 {
        let mut other = manifest.clone();
        other.id = JobId::generate();
        jobs.load_view(&other).await.unwrap();
    }
    record(&fixture, &manifest.id, &photos[0], PhotoState::Done, "quick", 9).await;
    let (_, view) = jobs.load_view_if_changed(&manifest, Some(seen)).await.unwrap();
    let view = view.expect("the stream gets the view folded again, not \"nothing changed\"");
    assert_eq!(view.photos[0].state, PhotoState::Done);
}

/// Jobs that fail to expire (here: a corrupt manifest) are passed over until the next round:
/// a page full of them does not stop retention for the jobs behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_goes_past_jobs_that_keep_failing() {
    let fixture = World::new().await;
    let day = 24 * 3600 * 1000;
    let now = now_millis();
    for age in 0..5 {
        let (bad, _) = fixture.unsent_job(0, now - (50 - age) * day).await;
        fixture
            .store
            .put(&keys::job_manifest(&bad.id), bytes::Bytes::from_static(b"{not json"), "application/json")
            .await
            .unwrap();
    }
    let (old, _) = fixture.unsent_job(1, now - 40 * day).await;
    let mut cursor = None;
    assert_eq!(fixture.jobs.expire(now - 30 * day, 3, &mut cursor).await.unwrap(), 0);
    assert!(cursor.is_some(), "the next pass goes on after this page");
    assert_eq!(
        fixture.jobs.expire(now - 30 * day, 3, &mut cursor).await.unwrap(),
        1,
        "the good job behind the bad ones expires"
    );
    assert!(fixture.jobs.load_job(&old.id).await.unwrap().is_none());
    assert_eq!(fixture.jobs.expire(now - 30 * day, 3, &mut cursor).await.unwrap(), 0);
    assert!(cursor.is_none(), "the end of the index: the next round starts over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_uploaded_with_a_recipe_of_its_own_keeps_it_for_its_retries_and_replays() {
    let fixture = World::new().await;
    let (manifest, photos) = fixture.unsent_job(2, now_millis()).await;
    let own = Recipe::from_json(r#"{"ops":[{"op":"redeye","regions":[{"x":1,"y":1,"width":5,"height":5}]}]}"#).unwrap();
    let mut queued = darkroom_core::EventDoc::new(1, PhotoState::Queued);
    queued.recipe = Some(own.clone());
    put_json(fixture.store.as_ref(), &keys::queued_event(&manifest.id, &photos[0], 1), &queued).await.unwrap();
    assert_eq!(fixture.jobs.recipe_of_attempt(&manifest, &photos[0], 1).await.unwrap(), own);
    assert_eq!(fixture.jobs.recipe_of_attempt(&manifest, &photos[1], 1).await.unwrap(), manifest.recipe);
    // A read that fails is an error, never the job's recipe standing in for the photo's own.
    fixture.store.set_down(true);
    assert!(fixture.jobs.recipe_of_attempt(&manifest, &photos[0], 1).await.is_err());
    fixture.store.set_down(false);
    // A replayed batch sends each photo with the recipe it runs.
    fixture.jobs.enqueue_as_recorded(&manifest, &[(photos[0].clone(), 1), (photos[1].clone(), 1)]).await.unwrap();
    let queue = QueueDirectory::new(fixture.queues.clone()).get(&fixture.names.requests("slow")).await.unwrap();
    assert_eq!(queue.counts().await.unwrap().visible, 1, "the red-eye recipe starts in the slow stage");
    let quick = QueueDirectory::new(fixture.queues.clone()).get(&fixture.names.requests("quick")).await.unwrap();
    assert_eq!(quick.counts().await.unwrap().visible, 1, "the job's recipe in the quick one");
}

/// A finish is named from the store, never from a fold another role of the process cached
/// (`darkroom serve` shares one): a fold that shows the job finished while the store has
/// moved on (a retry whose change-log entry was lost) sends no webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_sent_for_what_the_store_holds_not_for_a_stale_fold() {
    let fixture = World::new().await;
    let webhooks = fixture.names.webhooks();
    let queue = QueueDirectory::new(fixture.queues.clone()).get(&webhooks).await.unwrap();
    let jobs = fixture.jobs.clone().with_view_refresh(Duration::from_secs(60));
    let (mut manifest, photos) = fixture.unsent_job(1, now_millis()).await;
    manifest.callback_url = Some("https://hooks.example/darkroom".to_owned());
    record(&fixture, &manifest.id, &photos[0], PhotoState::Done, "quick", keys::TERMINAL_STEP).await;
    assert!(jobs.load_view(&manifest).await.unwrap().state.is_finished());

    // A retry's queued event, its change-log entry lost: the fold, within its refresh
    // window, still shows the job finished.
    let queued = darkroom_core::EventDoc::new(2, PhotoState::Queued);
    darkroom_store::json::put_json_if_absent(
        fixture.store.as_ref(),
        &keys::queued_event(&manifest.id, &photos[0], 2),
        &queued,
    )
    .await
    .unwrap();
    assert!(jobs.load_view(&manifest).await.unwrap().state.is_finished(), "the fold is behind the store");
    assert_eq!(jobs.schedule_webhook_if_finished(&manifest, None).await.unwrap(), darkroom_jobs::Scheduling::NotDue);
    assert_eq!(queue.counts().await.unwrap().visible, 0, "no webhook for a finish the store no longer holds");

    // The retry finishes: now the store holds a finish, and it is sent once.
    let mut done = darkroom_core::EventDoc::new(2, PhotoState::Done);
    done.stage = Some("quick".to_owned());
    let key = keys::event(&manifest.id, &photos[0], 2, PhotoState::Done, keys::TERMINAL_STEP);
    darkroom_store::json::put_json_if_absent(fixture.store.as_ref(), &key, &done).await.unwrap();
    jobs.changed(&manifest.id);
    assert_eq!(jobs.schedule_webhook_if_finished(&manifest, None).await.unwrap(), darkroom_jobs::Scheduling::Sent);
    assert_eq!(queue.counts().await.unwrap().visible, 1);
}

/// A job is created whole or not at all: with the queues down nothing of it is left (no
/// documents, no active mark), and once they are back the same call stores it and sends
/// one request per photo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_created_whole_or_not_at_all() {
    let fixture = World::new().await;
    let manifest = darkroom_testkit::world::job_manifest(r#"{"ops":[{"op":"thumbnail","size":64}]}"#, now_millis());
    let photos = darkroom_testkit::world::new_photos(&manifest, 0..3);
    fixture.queues.set_down(true);
    assert!(fixture.jobs.create(&manifest, &photos).await.is_err());
    fixture.queues.set_down(false);
    assert!(fixture.store.list(&keys::job_prefix(&manifest.id)).await.unwrap().is_empty(), "nothing of it is left");
    assert!(fixture.store.head(&keys::active_marker(&manifest.id)).await.unwrap().is_none());
    assert!(fixture.jobs.load_job(&manifest.id).await.unwrap().is_none());

    fixture.jobs.create(&manifest, &photos).await.unwrap();
    assert!(fixture.jobs.load_job(&manifest.id).await.unwrap().is_some());
    let view = fixture.jobs.load_view(&manifest).await.unwrap();
    assert_eq!(view.photos.len(), 3);
    assert!(view.photos.iter().all(|photo| photo.state == PhotoState::Queued));
    assert_eq!(fixture.requests("quick").await.counts().await.unwrap().visible, 3);
}

/// A photo with a recipe of its own is sent with it, to that recipe's first stage, and the
/// recipe is stored where a retry finds it; the others run the job's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_with_its_own_recipe_is_sent_with_it() {
    let fixture = World::new().await;
    let (manifest, _) = fixture.create_job(r#"{"ops":[{"op":"thumbnail","size":64}]}"#, 1).await;
    let own = Recipe::from_json(r#"{"ops":[{"op":"redeye"}]}"#).unwrap();
    let photo =
        NewPhoto { manifest: darkroom_testkit::world::photo_manifest(&manifest, 1), own_recipe: Some(own.clone()) };
    fixture.jobs.add_photos(&manifest, std::slice::from_ref(&photo)).await.unwrap();
    assert_eq!(fixture.jobs.recipe_of_attempt(&manifest, &photo.manifest.id, 1).await.unwrap(), own);
    assert_eq!(fixture.requests("slow").await.counts().await.unwrap().visible, 1, "red-eye starts in the slow stage");
    assert_eq!(fixture.requests("quick").await.counts().await.unwrap().visible, 1, "the job's photo in the quick one");
}

/// A batch that cannot be sent leaves none of its photos, and the job's earlier photos
/// stay; a batch for a job deleted meanwhile is refused and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_added_whole_or_not_at_all_and_never_to_a_deleted_job() {
    let fixture = World::new().await;
    let (manifest, first) = fixture.create_job(r#"{"ops":[{"op":"thumbnail","size":64}]}"#, 1).await;
    let batch = darkroom_testkit::world::new_photos(&manifest, 1..3);
    fixture.queues.set_down(true);
    assert!(fixture.jobs.add_photos(&manifest, &batch).await.is_err());
    fixture.queues.set_down(false);
    for photo in &batch {
        let left = fixture.store.list(&keys::photo_prefix(&manifest.id, &photo.manifest.id)).await.unwrap();
        assert!(left.is_empty(), "a photo of the failed batch is left: {left:?}");
    }
    let view = fixture.jobs.load_view_in_full(&manifest).await.unwrap();
    assert_eq!(view.photos.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), first, "the earlier photo stays");

    fixture.jobs.delete(&manifest, DeletionCause::Owner).await.unwrap();
    assert!(matches!(fixture.jobs.add_photos(&manifest, &batch).await, Err(darkroom_jobs::JobsError::NotFound)));
    assert!(fixture.store.list(&keys::job_prefix(&manifest.id)).await.unwrap().is_empty());
    assert!(fixture.jobs.remove_if_deleted(&manifest.id).await, "the job reads as deleted");
}

/// During a rollout an older process meets documents a newer one wrote, with operations it
/// does not know: it says so (the rollout is to be finished), where a document that simply
/// does not parse is corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_from_a_newer_darkroom_is_told_from_a_corrupt_one() {
    let fixture = World::new().await;
    let (manifest, photos) = fixture.unsent_job(1, now_millis()).await;
    let newer = u64::from(MANIFEST_VERSION) + 1;
    let mut job = serde_json::to_value(&manifest).unwrap();
    job["v"] = newer.into();
    job["recipe"]["ops"][0] = serde_json::json!({"op": "an_operation_from_the_future"});
    let key = keys::job_manifest(&manifest.id);
    fixture.store.put(&key, serde_json::to_vec(&job).unwrap().into(), "application/json").await.unwrap();
    match fixture.jobs.load_job(&manifest.id).await {
        Err(darkroom_jobs::JobsError::NewerVersion { found, reads, .. }) => {
            assert_eq!((found, reads), (newer, MANIFEST_VERSION));
        }
        other => panic!("a newer job manifest read as {other:?}"),
    }
    job["v"] = MANIFEST_VERSION.into();
    fixture.store.put(&key, serde_json::to_vec(&job).unwrap().into(), "application/json").await.unwrap();
    assert!(matches!(fixture.jobs.load_job(&manifest.id).await, Err(darkroom_jobs::JobsError::Corrupt { .. })));

    // An attempt started by a newer process, with a recipe this one cannot read, and logged:
    // the view this process keeps up to date from the log does not skip it, it reads the job
    // in full and says why it cannot show it.
    fixture.jobs.load_view(&manifest).await.unwrap();
    let mut queued_event = darkroom_core::EventDoc::new(2, PhotoState::Queued);
    queued_event.recipe = Some(manifest.recipe.clone());
    let mut event = serde_json::to_value(&queued_event).unwrap();
    event["v"] = newer.into();
    event["recipe"]["ops"][0] = serde_json::json!({"op": "an_operation_from_the_future"});
    let queued = keys::queued_event(&manifest.id, &photos[0], 2);
    fixture.store.put(&queued, serde_json::to_vec(&event).unwrap().into(), "application/json").await.unwrap();
    let mut change =
        serde_json::to_value(darkroom_jobs::event_change(&manifest.id, &photos[0], keys::TERMINAL_STEP, &queued_event))
            .unwrap();
    change["event"] = event;
    let change_key = darkroom_jobs::changes::change_key(&manifest.id, now_millis());
    fixture.store.put(&change_key, serde_json::to_vec(&change).unwrap().into(), "application/json").await.unwrap();
    fixture.jobs.changed(&manifest.id);
    let error = fixture.jobs.load_view(&manifest).await.unwrap_err();
    assert!(matches!(error, darkroom_jobs::JobsError::NewerVersion { .. }), "{error:?}");
    assert!(error.to_string().contains("finish the rollout"), "{error}");
    // And the next look again, not the view from before the entry.
    fixture.jobs.changed(&manifest.id);
    let again = fixture.jobs.load_view(&manifest).await;
    assert!(matches!(again, Err(darkroom_jobs::JobsError::NewerVersion { .. })), "{again:?}");
    let error = fixture.jobs.load_view_in_full(&manifest).await.unwrap_err();
    assert!(matches!(error, darkroom_jobs::JobsError::NewerVersion { .. }), "{error:?}");
}
