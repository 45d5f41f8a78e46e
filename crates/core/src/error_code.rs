//! The error codes of docs/ARCHITECTURE.md's JSON error body, shared by the web tier (HTTP errors)
//! and the worker (why a photo failed), so a user sees the same words either way.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRecipe,
    InvalidRequest,
    UnsupportedFormat,
    EmptyFile,
    FileTooLarge,
    TooManyPixels,
    TooManyPhotos,
    PayloadTooLarge,
    NotFound,
    RateLimited,
    /// The request body stopped arriving, arrived too slowly, or took too long.
    RequestTimeout,
    /// A cross-site request to a route that changes state.
    Forbidden,
    /// A private deployment, and no valid access key or session.
    Unauthorized,
    Unavailable,
    InsufficientStorage,
    Internal,
    /// A photo that passed the upload checks but could not be decoded or processed.
    ProcessingFailed,
    /// A photo whose message was dead-lettered after too many attempts.
    GaveUp,
    /// A photo whose processing ran past its stage's time budget in every attempt.
    TimedOut,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRecipe => "invalid_recipe",
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedFormat => "unsupported_format",
            Self::EmptyFile => "empty_file",
            Self::FileTooLarge => "file_too_large",
            Self::TooManyPixels => "too_many_pixels",
            Self::TooManyPhotos => "too_many_photos",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::RequestTimeout => "request_timeout",
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::Unavailable => "unavailable",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Internal => "internal",
            Self::ProcessingFailed => "processing_failed",
            Self::GaveUp => "gave_up",
            Self::TimedOut => "timed_out",
        }
    }
}

/// `{"code", "message"}`: the error body of the API and the reason a photo failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhotoError {
    pub code: ErrorCode,
    pub message: String,
}

impl PhotoError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}
