//! Lossy WebP through libwebp (the `webp` crate; libwebp is compiled from source with the C
//! compiler, so the default build needs nothing else). The `image` crate only writes
//! lossless WebP, several times larger than a photo needs. libwebp's simple API does not
//! embed an ICC profile, so the container is extended here: a VP8X header chunk with the
//! ICC flag, then the ICCP chunk, then the image chunks libwebp wrote.

use crate::ImagingError;
use image::DynamicImage;

/// WebP stores each side in 14 bits.
const MAX_SIDE: u32 = 16_383;
const ICC_FLAG: u8 = 0x20;

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

pub fn encode_lossy(image: &DynamicImage, quality: u8, icc_profile: Option<&[u8]>) -> Result<Vec<u8>, ImagingError> {
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
    match icc_profile {
        Some(icc) => with_icc_profile(&encoded, icc, width, height)
            .ok_or_else(|| failed("libwebp wrote an unexpected container".to_owned())),
        None => Ok(encoded.to_vec()),
    }
}

/// Rewrites a WebP file so that it carries `icc`; `None` if the file is not a WebP RIFF.
fn with_icc_profile(webp: &[u8], icc: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    if webp.len() < 20 || &webp[..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return None;
    }
    let chunks = &webp[12..];
    let mut body = Vec::with_capacity(webp.len() + icc.len() + 40);
    body.extend_from_slice(b"WEBP");
    let rest = if &chunks[..4] == b"VP8X" {
        // Extended already (e.g. lossy with alpha): set the flag, ICCP goes right after VP8X.
        let mut vp8x = chunks.get(..18)?.to_vec();
        vp8x[8] |= ICC_FLAG;
        body.extend_from_slice(&vp8x);
        &chunks[18..]
    } else {
        body.extend_from_slice(b"VP8X");
        body.extend_from_slice(&10u32.to_le_bytes());
        body.extend_from_slice(&[ICC_FLAG, 0, 0, 0]);
        body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
        body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
        chunks
    };
    body.extend_from_slice(b"ICCP");
    body.extend_from_slice(&u32::try_from(icc.len()).ok()?.to_le_bytes());
    body.extend_from_slice(icc);
    if icc.len() % 2 == 1 {
        body.push(0); // chunks are padded to an even length
    }
    body.extend_from_slice(rest);
    let mut file = Vec::with_capacity(body.len() + 8);
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
    file.extend_from_slice(&body);
    Some(file)
}
