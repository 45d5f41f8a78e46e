//! HEIC/HEIF decoding (feature `heic`) with libheif, built from source by `libheif-sys`
//! (`embedded-libheif`) and decoding HEVC through the system's libde265.
//!
//! libheif applies the file's own geometry (`irot`, `imir`, `clap`) while decoding, which is
//! what the HEIF standard asks: the EXIF orientation a phone also writes describes the same
//! turn and must not be applied a second time. The ICC profile is kept like a JPEG's; an
//! `nclx` colour description (no ICC) is converted to RGB by libheif and treated as sRGB.

use crate::codec::DecodeLimits;
use crate::photo::Photo;
use crate::ImagingError;
use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{color_profile_types, ColorSpace, HeifContext, HeifError, LibHeif, RgbChroma, SecurityLimits};

/// The largest ICC profile taken from a HEIC file.
const MAX_ICC_BYTES: u32 = 4 << 20;

fn corrupt(error: HeifError) -> ImagingError {
    ImagingError::Corrupt(format!("HEIC: {}", error.message))
}

/// Decodes the primary image of a HEIC/HEIF file: size checked against the limits before a
/// pixel is decoded, upright, 8-bit RGB or RGBA.
pub(crate) fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Photo, ImagingError> {
    let library = LibHeif::new();
    let mut context = HeifContext::new().map_err(corrupt)?;
    // libheif's own guards (tiles, items, memory), tightened to darkroom's limits, so a
    // crafted file cannot ask for more than the largest photo we accept would take.
    let mut security = SecurityLimits::new();
    security.set_max_image_size_pixels(limits.limits.max_pixels);
    security.set_max_total_memory(limits.max_alloc_bytes);
    // The profile is copied into every output: a few megabytes is more than any real one.
    security.set_max_color_profile_size(MAX_ICC_BYTES);
    context.set_security_limits(&security).map_err(corrupt)?;
    // One thread per decode: the worker runs --concurrency photos at once already.
    context.set_max_decoding_threads(1);
    context.read_bytes(bytes).map_err(corrupt)?;
    let handle = context.primary_image_handle().map_err(corrupt)?;
    // The handle's size is after the file's rotation and crop: what the photo will be.
    let (width, height) = (handle.width(), handle.height());
    limits.limits.check_dimensions(width, height).map_err(ImagingError::TooManyPixels)?;
    let with_alpha = handle.has_alpha_channel();
    let icc_profile = handle
        .color_profile_raw()
        .filter(|profile| {
            use libheif_rs::ColorProfile as _;
            profile.profile_type() != color_profile_types::NCLX && !profile.data.is_empty()
        })
        .map(|profile| profile.data);
    let chroma = if with_alpha { RgbChroma::Rgba } else { RgbChroma::Rgb };
    let decoded = library.decode(&handle, ColorSpace::Rgb(chroma), None).map_err(|error| {
        if matches!(error.sub_code, libheif_rs::HeifErrorSubCode::UnsupportedCodec) {
            ImagingError::UnsupportedFormat {
                detail: ": this HEIF file's codec is not supported (darkroom decodes HEVC, the iPhone's)".to_owned(),
            }
        } else {
            corrupt(error)
        }
    })?;
    let planes = decoded.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| ImagingError::Corrupt("HEIC: the decoder returned no interleaved RGB plane".to_owned()))?;
    let channels: usize = if with_alpha { 4 } else { 3 };
    let (plane_width, plane_height) = (plane.width, plane.height);
    let row_bytes = usize::try_from(plane_width).unwrap_or(usize::MAX).saturating_mul(channels);
    let rows = usize::try_from(plane_height).unwrap_or(usize::MAX);
    if plane.stride < row_bytes || plane.data.len() < plane.stride.saturating_mul(rows.saturating_sub(1)) + row_bytes {
        return Err(ImagingError::Corrupt("HEIC: the decoded plane is smaller than its declared size".to_owned()));
    }
    // Rows are padded to the stride: copy each row's pixels only.
    let mut pixels = Vec::with_capacity(row_bytes * rows);
    for row in plane.data.chunks(plane.stride).take(rows) {
        pixels.extend_from_slice(&row[..row_bytes]);
    }
    let image = if with_alpha {
        RgbaImage::from_raw(plane_width, plane_height, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(plane_width, plane_height, pixels).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| ImagingError::Corrupt("HEIC: the decoded pixels do not fill the image".to_owned()))?;
    tracing::debug!(width = plane_width, height = plane_height, with_alpha, "HEIC decoded");
    let mut photo = Photo::new(image, icc_profile);
    photo.exif = exif_block(&handle);
    Ok(photo)
}

/// The photo's EXIF as a TIFF structure. HEIF's Exif item starts with a 4-byte offset to the
/// TIFF header (past an optional `Exif\0\0`).
fn exif_block(handle: &libheif_rs::ImageHandle) -> Option<Vec<u8>> {
    let mut ids = [0; 1];
    if handle.metadata_block_ids(&mut ids, b"Exif") == 0 {
        return None;
    }
    let block = handle.metadata(ids[0]).ok()?;
    let offset = usize::try_from(u32::from_be_bytes(block.get(..4)?.try_into().ok()?)).ok()?;
    block.get(4usize.checked_add(offset)?..).filter(|exif| crate::metadata::exif_is_sane(exif)).map(<[u8]>::to_vec)
}
