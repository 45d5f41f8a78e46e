//! A test world (feature `world`): the real embedded store and queues, each behind its fault
//! switch, with every queue darkroom makes (`Jobs::create_queues`, as `darkroom setup` makes
//! them) and the one `Jobs` a process shares, plus seeded jobs for tests that start from a
//! job already stored. One place, so the jobs, status and web tests run on the same
//! topology a deployment has.

use crate::{FaultyQueues, FaultyStore};
use darkroom_core::job::MANIFEST_VERSION;
use darkroom_core::{keys, JobId, JobManifest, OwnerToken, PhotoId, PhotoManifest, QueueNames, Recipe, StageMap};
use darkroom_jobs::{Jobs, NewPhoto, QueueSettings};
use darkroom_queue::{Queue, QueueDirectory, SqliteQueues};
use darkroom_store::json::put_json;
use darkroom_store::{LocalStore, ObjectStore};
use std::sync::Arc;
use std::time::Duration;

/// The queue prefix of every test world.
pub const PREFIX: &str = "t";

/// How the world's queues are made: a short visibility timeout and the default redrive.
pub const QUEUE_SETTINGS: QueueSettings =
    QueueSettings { visibility_timeout: Duration::from_secs(30), max_receive_count: 5, fair_lanes: 1 };

pub struct World {
    _dir: tempfile::TempDir,
    /// The store, with its fault switch.
    pub store: Arc<FaultyStore>,
    /// The queues, with their fault switch.
    pub queues: Arc<FaultyQueues>,
    pub names: QueueNames,
    /// The job lifecycle over both, as a process builds it once.
    pub jobs: Jobs,
}

impl World {
    /// A world on a fresh temporary directory, with the default stage map.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let local: Arc<dyn ObjectStore> =
            Arc::new(LocalStore::open(dir.path().join("store")).expect("the embedded store opens"));
        let backend =
            Arc::new(SqliteQueues::open(dir.path().join("queues.sqlite3")).expect("the embedded queues open"));
        let store = Arc::new(FaultyStore::new(local));
        let queues = Arc::new(FaultyQueues::new(backend));
        let names = QueueNames::new(PREFIX);
        let jobs = Jobs::new(store.clone(), QueueDirectory::new(queues.clone()), names.clone(), StageMap::default());
        jobs.create_queues(&QUEUE_SETTINGS).await.expect("the world's queues are made");
        Self { _dir: dir, store, queues, names, jobs }
    }

    /// The store as the code under test takes it.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The request queue of `stage`.
    pub async fn requests(&self, stage: &str) -> Arc<dyn Queue> {
        self.jobs.queues().get(&self.names.requests(stage)).await.expect("the stage's queue exists")
    }

    /// The response queue.
    pub async fn responses(&self) -> Arc<dyn Queue> {
        self.jobs.queues().get(&self.names.responses()).await.expect("the response queue exists")
    }

    /// A job of `photos` photos with `recipe`, created through `Jobs::create` as an upload
    /// is: originals, manifests, index, active mark, and one request per photo queued.
    pub async fn create_job(&self, recipe: &str, photos: usize) -> (JobManifest, Vec<PhotoId>) {
        let manifest = job_manifest(recipe, darkroom_core::now_millis());
        let new_photos = new_photos(&manifest, 0..photos);
        self.put_originals(&manifest.id, &new_photos).await;
        self.jobs.create(&manifest, &new_photos).await.expect("the job is created");
        (manifest, new_photos.into_iter().map(|photo| photo.manifest.id).collect())
    }

    /// A job whose documents were stored `created_at` but whose photos were never sent: a
    /// web process that died between storing and sending, as the reconciler finds it.
    /// Originals, photo manifests, the index entry, the active mark and the job manifest.
    pub async fn unsent_job(&self, photos: usize, created_at: u64) -> (JobManifest, Vec<PhotoId>) {
        let manifest = job_manifest(r#"{"ops":[{"op":"thumbnail","size":64}]}"#, created_at);
        let mut new_photos = new_photos(&manifest, 0..photos);
        for photo in &mut new_photos {
            photo.manifest.added_at = created_at;
        }
        self.put_originals(&manifest.id, &new_photos).await;
        let store = self.store.as_ref();
        for photo in &new_photos {
            put_json(store, &keys::photo_manifest(&manifest.id, &photo.manifest.id), &photo.manifest)
                .await
                .expect("a photo manifest is stored");
        }
        self.jobs.index_created(&manifest).await.expect("the job is indexed");
        self.jobs.mark_active(&manifest.id).await.expect("the job is marked active");
        put_json(store, &keys::job_manifest(&manifest.id), &manifest).await.expect("the job manifest is stored");
        (manifest, new_photos.into_iter().map(|photo| photo.manifest.id).collect())
    }

    async fn put_originals(&self, job: &JobId, photos: &[NewPhoto]) {
        for photo in photos {
            self.store
                .put(&keys::original(job, &photo.manifest.id), bytes::Bytes::from_static(b"jpg"), "image/jpeg")
                .await
                .expect("an original is stored");
        }
    }
}

/// A job's manifest with `recipe` (JSON), made at `created_at`.
pub fn job_manifest(recipe: &str, created_at: u64) -> JobManifest {
    JobManifest {
        v: MANIFEST_VERSION,
        id: JobId::generate(),
        created_at,
        owner_token_sha256: OwnerToken::generate().sha256_hex(),
        recipe: Recipe::from_json(recipe).expect("the test's recipe is valid"),
        callback_url: None,
        tenant: None,
        name: None,
    }
}

/// The manifest of the photo at `position` of `job`, a three-byte JPEG named `p<position>.jpg`.
pub fn photo_manifest(job: &JobManifest, position: usize) -> PhotoManifest {
    PhotoManifest {
        v: MANIFEST_VERSION,
        job_id: job.id.clone(),
        id: PhotoId::generate(),
        name: format!("p{position}.jpg"),
        content_type: "image/jpeg".into(),
        size: 3,
        width: None,
        height: None,
        added_at: darkroom_core::now_millis(),
        position: u32::try_from(position).unwrap_or(u32::MAX),
    }
}

/// Photos at `positions` of `job`, as an upload brings them, with no recipe of their own.
pub fn new_photos(job: &JobManifest, positions: std::ops::Range<usize>) -> Vec<NewPhoto> {
    positions.map(|position| NewPhoto { manifest: photo_manifest(job, position), own_recipe: None }).collect()
}
