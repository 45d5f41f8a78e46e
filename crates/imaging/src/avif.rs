//! AVIF results through ravif (rav1e, an AV1 encoder in Rust: the default build needs
//! nothing but Rust; the `avif-asm` feature adds rav1e's assembly, which needs nasm).
//! 10-bit YCbCr, the recipe's quality, the recipe's speed (1 slowest and smallest to 10
//! fastest). The EXIF goes in as ravif embeds it; ravif writes no ICC profile, so a photo
//! with one is shown as if it were sRGB (README "Recipes" says so).

use crate::ImagingError;
use image::DynamicImage;
#[cfg(feature = "avif")]
use ravif::{Encoder, Img, RGB8, RGBA8};

/// The encoder speed when the recipe names none: a result of a few megapixels in about a
/// second on one core of the pure-Rust build.
pub const DEFAULT_AVIF_SPEED: u8 = 7;

/// The most pixels an AVIF result may have at an encoder `speed`: the encode's time grows
/// with both and cannot be interrupted, so it must end well inside a stage's time budget
/// (25 megapixels at speed 7 take about 40 s in the pure-Rust build on two cores).
pub(crate) fn max_pixels(speed: u8) -> u64 {
    match speed {
        0..=3 => 4_000_000,
        4..=5 => 12_000_000,
        _ => 25_000_000,
    }
}

/// AV1 holds up to 65,536 px a side.
const MAX_SIDE: u32 = 65_535;

pub(crate) fn check_size(width: u32, height: u32, speed: Option<u8>) -> Result<(), ImagingError> {
    let speed = speed.unwrap_or(DEFAULT_AVIF_SPEED);
    let pixels = u64::from(width) * u64::from(height);
    let most = max_pixels(speed);
    if pixels > most || width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImagingError::Encode {
            format: "avif",
            message: format!(
                "{width}×{height} ({:.1} megapixels) is more than this service encodes as AVIF at speed {speed} ({} megapixels, {MAX_SIDE} px a side); add a thumbnail, raise the recipe's speed, or choose JPEG or WebP",
                pixels as f64 / 1e6,
                most / 1_000_000
            ),
        });
    }
    Ok(())
}

#[cfg(feature = "avif")]
pub(crate) fn encode(
    image: &DynamicImage,
    quality: u8,
    speed: u8,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    let failed = |message: String| ImagingError::Encode { format: "avif", message };
    let (width, height) = (image.width() as usize, image.height() as usize);
    check_size(image.width(), image.height(), Some(speed))?;
    let mut encoder = Encoder::new()
        .with_quality(f32::from(quality.clamp(1, 100)))
        .with_alpha_quality(f32::from(quality.clamp(1, 100)))
        .with_speed(speed.clamp(1, 10));
    if let Some(exif) = exif {
        encoder = encoder.with_exif(exif);
    }
    let encoded = match image {
        DynamicImage::ImageRgba8(rgba) => {
            let pixels: Vec<RGBA8> = rgba.pixels().map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
            encoder.encode_rgba(Img::new(&pixels[..], width, height))
        }
        DynamicImage::ImageRgb8(rgb) => {
            let pixels: Vec<RGB8> = rgb.pixels().map(|p| RGB8::new(p[0], p[1], p[2])).collect();
            encoder.encode_rgb(Img::new(&pixels[..], width, height))
        }
        other => {
            let pixels: Vec<RGB8> = other.to_rgb8().pixels().map(|p| RGB8::new(p[0], p[1], p[2])).collect();
            encoder.encode_rgb(Img::new(&pixels[..], width, height))
        }
    };
    encoded.map(|encoded| encoded.avif_file).map_err(|error| failed(error.to_string()))
}

/// A build without the `avif` feature (only the fuzzing build) has no encoder.
#[cfg(not(feature = "avif"))]
pub(crate) fn encode(
    image: &DynamicImage,
    _quality: u8,
    speed: u8,
    _exif: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    check_size(image.width(), image.height(), Some(speed))?;
    Err(ImagingError::Encode {
        format: "avif",
        message: "this build of darkroom has no AVIF encoder (built without the `avif` feature)".to_owned(),
    })
}
