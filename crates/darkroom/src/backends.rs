//! Opens the object store and queues the settings name, and creates what `setup` creates.

use crate::config::{Backend, Settings};
use anyhow::Context;
use darkroom_core::QueueNames;
use darkroom_queue::{QueueBackend, QueueDirectory, SqliteQueues};
use darkroom_store::{LocalStore, ObjectStore};
use std::sync::Arc;

pub struct Backends {
    /// The S3 bucket, for `setup` to create (aws backend only).
    #[cfg(feature = "aws")]
    pub bucket: Option<(darkroom_store::S3Store, Option<String>)>,
    /// The one context of the process: the store, the queues and their names, the stage
    /// map, and the job lifecycle over them, built once and shared by every role (web,
    /// worker, status, webhooks): one cache of documents and job views.
    pub jobs: darkroom_jobs::Jobs,
}

pub async fn open(settings: &Settings) -> anyhow::Result<Backends> {
    #[cfg(feature = "aws")]
    let mut bucket = None;
    let (store, queue_backend): (Arc<dyn ObjectStore>, Arc<dyn QueueBackend>) = match settings.backend {
        Backend::Local => {
            let store = LocalStore::open(settings.data_dir.join("store"))
                .with_context(|| format!("opening the object store in --data-dir {}", settings.data_dir.display()))?;
            let queues = SqliteQueues::open(settings.data_dir.join("queues.sqlite3"))
                .with_context(|| format!("opening the queue database in --data-dir {}", settings.data_dir.display()))?;
            (Arc::new(store), Arc::new(queues))
        }
        #[cfg(feature = "aws")]
        Backend::Aws => {
            let aws = crate::aws::connect(&settings.bucket).await?;
            bucket = Some((aws.store.clone(), aws.region));
            (Arc::new(aws.store), Arc::new(aws.queues))
        }
        #[cfg(not(feature = "aws"))]
        Backend::Aws => anyhow::bail!(
            "this darkroom was built without the AWS backend: rebuild with `cargo build --release --features aws` (the Docker image has it)"
        ),
    };
    let queues = QueueDirectory::new(queue_backend);
    let names = QueueNames::new(settings.queue_prefix.clone());
    let stage_map = settings.stage_map()?;
    let jobs = darkroom_jobs::Jobs::new(store, queues, names, stage_map);
    Ok(Backends {
        #[cfg(feature = "aws")]
        bucket,
        jobs,
    })
}

/// Whether every queue (and dead-letter queue) `setup` creates is there already.
pub async fn all_queues_exist(backends: &Backends) -> bool {
    backends.jobs.all_queues_exist().await
}

/// Creates every queue (each stage's requests, the responses, and a DLQ for each) with the
/// configured visibility timeout and redrive; safe to run any number of times.
pub async fn setup(settings: &Settings, backends: &Backends) -> anyhow::Result<Vec<String>> {
    #[cfg(feature = "aws")]
    if let Some((store, region)) = &backends.bucket {
        store.create_bucket(region.as_deref()).await.with_context(|| {
            format!(
                "creating bucket {:?} (check the credentials' permissions, or pick another --bucket)",
                store.bucket()
            )
        })?;
    }
    let queue_settings = darkroom_jobs::QueueSettings {
        visibility_timeout: settings.visibility_timeout,
        max_receive_count: settings.max_receive_count,
        fair_lanes: settings.fair_lanes,
    };
    let queues = backends.jobs.create_queues(&queue_settings).await?;
    backends.jobs.store().check().await.context("checking that the object store is writable")?;
    Ok(queues)
}
