//! The one place HTTP errors are shaped: every 4xx/5xx of the API carries
//! `{"error": {"code", "message"}}` (docs/ARCHITECTURE.md "Errors"), with the status that fits.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use darkroom_core::{ErrorCode, PhotoError};
use darkroom_queue::QueueError;
use darkroom_store::json::JsonDocError;
use darkroom_store::StoreError;
use std::fmt;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Extra top-level fields (e.g. `rejected` when no photo of an upload was acceptable).
    pub extra: Option<(&'static str, serde_json::Value)>,
    /// What a 503 or 429 says in `Retry-After`, in seconds.
    pub retry_after_seconds: u32,
    /// A 5xx that is no fault of this server (a rollout under way): logged as a warning.
    pub expected: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None, retry_after_seconds: 5, expected: false }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such job, photo or output (or you are not its owner)")
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// No fault of this server: logged as a warning, not an error.
    pub fn expected(mut self) -> Self {
        self.expected = true;
        self
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = seconds;
        self
    }

    /// When the client may come back (`Retry-After`, seconds): for a 503 or a 429.
    pub fn retry_after(&self) -> Option<u32> {
        let busy = self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS;
        busy.then_some(self.retry_after_seconds)
    }

    /// Logs the error for the operator, once per answer, on the API (`surface` "api") or a
    /// page: a server's fault as an error, one that is not (a rollout) as a warning.
    pub(crate) fn log(&self, surface: &'static str) {
        let (status, code) = (self.status.as_u16(), self.code.as_str());
        if self.expected {
            tracing::warn!(surface, status, error.code = code, error.message = %self.message, "request not served here");
        } else if self.status.is_server_error() {
            tracing::error!(surface, status, error.code = code, error.message = %self.message, "request failed");
        }
    }

    pub fn with_extra(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extra = Some((name, value));
        self
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({"error": PhotoError::new(self.code, self.message.clone())});
        if let (Some((name, value)), Some(object)) = (&self.extra, body.as_object_mut()) {
            object.insert((*name).to_owned(), value.clone());
        }
        body
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.log("api");
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after() {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.insert_header(("Cache-Control", "no-store")).json(self.body())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InsufficientStorage { .. } => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                ErrorCode::InsufficientStorage,
                "the photo store is full; nothing from this request was kept. Try again later.",
            ),
            other if other.is_retryable() => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                format!("the photo store is unavailable ({other}); try again in a few seconds"),
            ),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("object store error: {other}"),
            ),
        }
    }
}

impl From<JsonDocError> for ApiError {
    fn from(error: JsonDocError) -> Self {
        match error {
            JsonDocError::Store(store) => store.into(),
            corrupt => Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, corrupt.to_string()),
        }
    }
}

impl From<darkroom_jobs::JobsError> for ApiError {
    fn from(error: darkroom_jobs::JobsError) -> Self {
        use darkroom_jobs::JobsError;
        match error {
            JobsError::Store(store) => store.into(),
            JobsError::Queue(queue) => queue.into(),
            JobsError::Shared(message) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                format!("the photo store is unavailable ({message}); try again in a few seconds"),
            ),
            JobsError::TooManyRetries | JobsError::AlreadyStarted => Self::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidRequest,
                "too many concurrent retries of this photo; try again",
            ),
            JobsError::NotFound => Self::not_found(),
            // Until this replica is upgraded (or the newer one rolled forward again after a
            // rollback): a minute between tries, logged once per request by error_response.
            JobsError::NewerVersion { found, reads, .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                format!("this job was saved by a newer version of darkroom than this server runs (version {found}; it reads up to {reads}): an upgrade is under way; try again in a minute"),
            )
            .with_retry_after(60)
            .expected(),
            corrupt @ JobsError::Corrupt { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, corrupt.to_string())
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("the processing queue is unavailable ({error}); nothing from this request was kept. Try again in a few seconds."),
        )
    }
}
