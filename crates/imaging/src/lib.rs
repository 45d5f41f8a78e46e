//! darkroom's photo operations: pure functions from image to image, plus decoding with
//! limits and encoding. Knows nothing of queues or stores: the worker hands it bytes and
//! gets bytes back, the `process` command does the same with files.
//!
//! Every error here is permanent — the same bytes and recipe fail the same way on any
//! worker — so the worker fails the photo at once instead of retrying it.

mod adjust;
pub mod avif;
mod codec;
mod color;
/// The most pixels an operation may grow a photo to (borders grow it): a recipe of many wide
/// borders must not grow it past this, and a later pipeline segment decodes up to this.
pub const MAX_GROWN_PIXELS: u64 = 200_000_000;

mod decode_limits;
mod decode_scale;
mod decorate;
mod dry_run;
mod encode;
mod enhance;
pub mod faces;
mod geometry;
#[cfg(feature = "heic")]
mod heic;
mod heif_boxes;
pub mod metadata;
mod photo;
mod pipeline;
mod progressive_scaled;
mod reduced;
mod resize;
pub mod retouch;
mod shrink_first;
mod straighten;
mod teeth;
mod vignette;
mod watermark;
mod webp;

pub use codec::{decode, decode_at_least, decode_for_ops, probe, DecodeLimits, FileHeader, SourceFormat};
pub use dry_run::{dry_run, result_scale, undecorated_size};
pub use encode::{encode, encode_intermediate, encode_result, encode_with_metadata};
pub use geometry::Frame;
pub use photo::Photo;
pub use pipeline::{
    apply_ops, apply_ops_with, apply_range, apply_steps, decorate, decorate_within, fit_within, fit_within_for_display,
    reduced_decode_long_side,
};
pub use reduced::render_reduced;
pub use shrink_first::shrink_first;
pub use watermark::WatermarkImages;

use darkroom_core::ErrorCode;

/// Whether this build decodes HEIC (feature `heic`).
pub const HEIC_SUPPORTED: bool = cfg!(feature = "heic");

/// The upload formats this build decodes, as told to users.
pub const SUPPORTED_FORMATS: &str =
    if HEIC_SUPPORTED { "JPEG, PNG, WebP, GIF, TIFF, HEIC" } else { "JPEG, PNG, WebP, GIF, TIFF" };

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagingError {
    #[error("not an image in a supported format ({SUPPORTED_FORMATS}){detail}")]
    UnsupportedFormat { detail: String },
    #[error("{0}")]
    TooManyPixels(String),
    #[error("the image could not be decoded ({0}); the file may be truncated or corrupt")]
    Corrupt(String),
    #[error("{op}: {message}")]
    Operation { op: &'static str, message: String },
    #[error("could not encode the result as {format}: {message}")]
    Encode { format: &'static str, message: String },
}

impl ImagingError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedFormat { .. } => ErrorCode::UnsupportedFormat,
            Self::TooManyPixels(_) => ErrorCode::TooManyPixels,
            Self::Corrupt(_) | Self::Operation { .. } | Self::Encode { .. } => ErrorCode::ProcessingFailed,
        }
    }

    pub(crate) fn op(op: &'static str, message: impl Into<String>) -> Self {
        Self::Operation { op, message: message.into() }
    }
}
