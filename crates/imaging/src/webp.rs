//! Lossy WebP through libwebp (the `webp` crate; libwebp is compiled from source with the C
//! compiler, so the default build needs nothing else). The `image` crate only writes
//! lossless WebP, several times larger than a photo needs. libwebp's simple API does not
//! embed an ICC profile or EXIF, so the container is extended here: a VP8X header chunk with
//! their flags, the ICCP chunk, the image chunks libwebp wrote, then the EXIF chunk.

use crate::ImagingError;
use image::DynamicImage;

/// WebP stores each side in 14 bits.
const MAX_SIDE: u32 = 16_383;
const ICC_FLAG: u8 = 0x20;
const EXIF_FLAG: u8 = 0x08;

/// WebP cannot hold an image with a side over [`MAX_SIDE`].
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), ImagingError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImagingError::Encode {
            format: "webp",
            message: format!("{width}×{height} is larger than WebP allows ({MAX_SIDE} px a side)"),
        });
    }
    Ok(())
}

pub fn encode_lossy(
    image: &DynamicImage,
    quality: u8,
    icc_profile: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    let failed = |message: String| ImagingError::Encode { format: "webp", message };
    let (width, height) = (image.width(), image.height());
    check_size(width, height)?;
    let quality = f32::from(quality.clamp(1, 100));
    let encoded = match image {
        DynamicImage::ImageRgba8(rgba) => {
            webp::Encoder::from_rgba(rgba.as_raw(), width, height).encode_simple(false, quality)
        }
        DynamicImage::ImageRgb8(rgb) => {
            webp::Encoder::from_rgb(rgb.as_raw(), width, height).encode_simple(false, quality)
        }
        other => {
            let rgb = other.to_rgb8();
            webp::Encoder::from_rgb(rgb.as_raw(), width, height).encode_simple(false, quality)
        }
    }
    .map_err(|e| failed(format!("libwebp: {e:?}")))?;
    if icc_profile.is_none() && exif.is_none() {
        return Ok(encoded.to_vec());
    }
    with_metadata(&encoded, icc_profile, exif, width, height)
        .ok_or_else(|| failed("libwebp wrote an unexpected container".to_owned()))
}

/// Appends a RIFF chunk, padded to an even length as RIFF wants.
fn push_chunk(body: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) -> Option<()> {
    body.extend_from_slice(fourcc);
    body.extend_from_slice(&u32::try_from(data.len()).ok()?.to_le_bytes());
    body.extend_from_slice(data);
    if data.len() % 2 == 1 {
        body.push(0);
    }
    Some(())
}

/// Rewrites a WebP file so that it carries `icc` and `exif`; `None` if the file is not a
/// WebP RIFF.
fn with_metadata(webp: &[u8], icc: Option<&[u8]>, exif: Option<&[u8]>, width: u32, height: u32) -> Option<Vec<u8>> {
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let chunks = &webp[12..];
    let flags = if icc.is_some() { ICC_FLAG } else { 0 } | if exif.is_some() { EXIF_FLAG } else { 0 };
    let extra = icc.map_or(0, <[u8]>::len) + exif.map_or(0, <[u8]>::len);
    let mut body = Vec::with_capacity(webp.len() + extra + 48);
    body.extend_from_slice(b"WEBP");
    let rest = if &chunks[..4] == b"VP8X" {
        // Extended already (e.g. lossy with alpha): set the flags, ICCP goes right after VP8X.
        let mut vp8x = chunks.get(..18)?.to_vec();
        vp8x[8] |= flags;
        body.extend_from_slice(&vp8x);
        &chunks[18..]
    } else {
        body.extend_from_slice(b"VP8X");
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(&[flags, 0, 0, 0]);
        body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        chunks
    };
    if let Some(icc) = icc {
        push_chunk(&mut body, b"ICCP", icc)?;
    }
    body.extend_from_slice(rest);
    if let Some(exif) = exif {
        push_chunk(&mut body, b"EXIF", exif)?;
    }
    let mut file = Vec::with_capacity(body.len() + 8);
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
    file.extend_from_slice(&body);
    Some(file)
}
