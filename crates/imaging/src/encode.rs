//! Encoding: results (with the metadata the recipe keeps), display copies (preview,
//! thumbnail), and the lossless intermediates between pipeline segments.

use crate::photo::Photo;
use crate::ImagingError;
use darkroom_core::{MetadataPolicy, OutputFormat};
use image::{DynamicImage, ImageEncoder};

/// Encodes a copy for display (preview, thumbnail): the ICC profile, so colours stay right,
/// and no EXIF.
pub fn encode(photo: &Photo, format: OutputFormat, quality: u8) -> Result<Vec<u8>, ImagingError> {
    encode_with_metadata(photo, format, quality, MetadataPolicy::Strip)
}

/// Encodes a result: the ICC profile, and what `metadata` keeps of the original's EXIF
/// (see [`crate::metadata::exif_for_result`]).
pub fn encode_with_metadata(
    photo: &Photo,
    format: OutputFormat,
    quality: u8,
    metadata: MetadataPolicy,
) -> Result<Vec<u8>, ImagingError> {
    encode_result(photo, format, quality, None, metadata)
}

/// [`encode_with_metadata`] with the recipe's AVIF encoder `speed` (see [`crate::avif`]).
pub fn encode_result(
    photo: &Photo,
    format: OutputFormat,
    quality: u8,
    speed: Option<u8>,
    metadata: MetadataPolicy,
) -> Result<Vec<u8>, ImagingError> {
    let exif = crate::metadata::exif_for_result(photo.exif.as_deref(), metadata, photo.width(), photo.height());
    let mut out = Vec::new();
    let failed = |message: String| ImagingError::Encode { format: format.extension(), message };
    match format {
        OutputFormat::Jpeg => {
            // jpeg-encoder: SIMD forward DCT, libjpeg's quality scale, 4:2:0 chroma below q90
            // (as libjpeg, libvips and Pillow do), about twice as fast as image's encoder.
            let rgb = flatten_alpha(&photo.image);
            let (Ok(width), Ok(height)) = (u16::try_from(rgb.width()), u16::try_from(rgb.height())) else {
                return Err(failed(format!(
                    "{}×{} is larger than JPEG allows (65,535 px a side)",
                    rgb.width(),
                    rgb.height()
                )));
            };
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
            if let Some(exif) = &exif {
                // EXIF that does not fit one segment (64 KiB) is left out, not the photo.
                if let Err(error) = encoder.add_exif_metadata(exif) {
                    tracing::debug!(error.message = %error, "EXIF left out of the JPEG");
                }
            }
            if let Some(icc) = &photo.icc_profile {
                encoder.add_icc_profile(icc).map_err(|e| failed(format!("ICC profile: {e}")))?;
            }
            encoder
                .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| failed(e.to_string()))?;
        }
        OutputFormat::Png => {
            let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Default,
                image::codecs::png::FilterType::Adaptive,
            );
            if let Some(icc) = &photo.icc_profile {
                let _ = encoder.set_icc_profile(icc.clone());
            }
            if let Some(exif) = exif {
                let _ = encoder.set_exif_metadata(exif);
            }
            write_dynamic(encoder, &photo.image).map_err(|e| failed(e.to_string()))?;
        }
        OutputFormat::Webp => {
            out = crate::webp::encode_lossy(&photo.image, quality, photo.icc_profile.as_deref(), exif.as_deref())?;
        }
        OutputFormat::Avif => {
            let speed = speed.unwrap_or(crate::avif::DEFAULT_AVIF_SPEED);
            out = crate::avif::encode(&photo.image, quality, speed, exif.as_deref())?;
        }
    }
    Ok(out)
}

/// A fast lossless encoding for the image one pipeline stage hands to the next. Its EXIF is
/// the original's, upright (the pixels are turned already): the last stage applies the
/// recipe's policy to it.
pub fn encode_intermediate(photo: &Photo) -> Result<Vec<u8>, ImagingError> {
    let exif =
        crate::metadata::exif_for_result(photo.exif.as_deref(), MetadataPolicy::Keep, photo.width(), photo.height());
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    );
    if let Some(icc) = &photo.icc_profile {
        let _ = encoder.set_icc_profile(icc.clone());
    }
    if let Some(exif) = exif {
        let _ = encoder.set_exif_metadata(exif);
    }
    write_dynamic(encoder, &photo.image).map_err(|e| ImagingError::Encode { format: "png", message: e.to_string() })?;
    Ok(out)
}

fn write_dynamic(encoder: impl ImageEncoder, image: &DynamicImage) -> image::ImageResult<()> {
    encoder.write_image(image.as_bytes(), image.width(), image.height(), image.color().into())
}

/// JPEG has no alpha: composite transparent pixels over white rather than dropping alpha
/// (which would show whatever colour hid under transparency, often black).
fn flatten_alpha(image: &DynamicImage) -> std::borrow::Cow<'_, image::RgbImage> {
    match image {
        DynamicImage::ImageRgb8(rgb) => std::borrow::Cow::Borrowed(rgb),
        other => {
            let rgba = other.to_rgba8();
            let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
            for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
                let alpha = u32::from(src[3]);
                for channel in 0..3 {
                    dst[channel] = ((u32::from(src[channel]) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
                }
            }
            std::borrow::Cow::Owned(rgb)
        }
    }
}
