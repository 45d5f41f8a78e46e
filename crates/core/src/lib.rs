//! darkroom's domain, as plain data and pure functions: identifiers, recipes and their
//! validation, the pipeline plan, queue messages, job manifests and the job view.
//!
//! Nothing here does IO, so every rule (a recipe's limits, a photo state that never goes
//! backwards, where an object lives in the store) is testable without a network.

pub mod budget;
pub mod error_code;
pub mod ids;
pub mod job;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod operations;
pub mod plan;
pub mod queue_names;
pub mod recipe;
pub mod view;

pub use budget::{BudgetError, TimeBudgets};
pub use error_code::{ErrorCode, PhotoError};
pub use ids::{IdError, JobId, OwnerToken, PhotoId};
pub use job::{
    DeletionCause, EventDoc, JobManifest, OutputInfo, PhotoManifest, PhotoState, RejectedBatch, RejectedFile, Tombstone,
};
pub use limits::Limits;
pub use messages::{CarriedFrame, MessageError, PhotoRequest, PhotoResponse, PhotoUpdate, WebhookRequest};
pub use plan::{Segment, StageMap};
pub use queue_names::QueueNames;
pub use recipe::{MetadataPolicy, Operation, OutputFormat, Recipe, RecipeError};
pub use view::{JobState, JobView, PhotoView};

/// Milliseconds since the Unix epoch: the one clock format stored in manifests and events.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
