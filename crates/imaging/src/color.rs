//! Per-pixel colour transforms (`recolor`, and the tone parts of `customize`). Each works
//! on 8-bit RGB(A) in parallel rows and leaves alpha alone.

use darkroom_core::recipe::{Color, RecolorMode};
use image::DynamicImage;
use rayon::prelude::*;
use std::sync::LazyLock;

/// An sRGB-encoded value (0–255) → linear light (0–1).
pub fn srgb_to_linear(encoded: f32) -> f32 {
    let c = (encoded / 255.0).clamp(0.0, 1.0);
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear light (0–1) → an sRGB-encoded value (0–255), not rounded.
pub fn linear_to_srgb(linear: f32) -> f32 {
    let l = linear.clamp(0.0, 1.0);
    255.0 * if l <= 0.003_130_8 { l * 12.92 } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 }
}

/// CIE L*a*b* (D65) of a linear-light pixel.
pub fn lab_from_linear([r, g, b]: [f32; 3]) -> [f32; 3] {
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f32| if t > 0.008_856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// sRGB-encoded byte → linear light.
static SRGB_TO_LINEAR: LazyLock<[f32; 256]> = LazyLock::new(|| std::array::from_fn(|i| srgb_to_linear(i as f32)));

/// Linear light, quantised to 4096 steps → sRGB-encoded byte.
static LINEAR_TO_SRGB: LazyLock<Vec<u8>> =
    LazyLock::new(|| (0..4096).map(|i| linear_to_srgb(i as f32 / 4095.0).round().clamp(0.0, 255.0) as u8).collect());

fn encode_linear(linear: f32) -> u8 {
    LINEAR_TO_SRGB[(linear.clamp(0.0, 1.0) * 4095.0).round() as usize]
}

/// Relative luminance (Rec. 709 primaries) computed in linear light and re-encoded:
/// the grey a colour really looks like, not an average of its gamma-encoded bytes.
pub fn luminance_srgb(rgb: [u8; 3]) -> u8 {
    let [r, g, b] = rgb.map(|c| SRGB_TO_LINEAR[c as usize]);
    encode_linear(0.2126 * r + 0.7152 * g + 0.0722 * b)
}

/// Rec. 709 luma on gamma-encoded values: cheap, for saturation and tint weights.
pub fn luma(rgb: [u8; 3]) -> f32 {
    0.2126 * f32::from(rgb[0]) + 0.7152 * f32::from(rgb[1]) + 0.0722 * f32::from(rgb[2])
}

fn clamp_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// Applies `transform` to every pixel's RGB, in parallel.
pub fn map_pixels(image: &mut DynamicImage, transform: impl Fn([u8; 3]) -> [u8; 3] + Sync) {
    let (channels, bytes): (usize, &mut [u8]) = match image {
        DynamicImage::ImageRgb8(buffer) => (3, buffer),
        DynamicImage::ImageRgba8(buffer) => (4, buffer),
        other => {
            *other = DynamicImage::ImageRgb8(other.to_rgb8());
            return map_pixels(other, transform);
        }
    };
    bytes.par_chunks_mut(channels * 8192).for_each(|chunk| {
        for pixel in chunk.chunks_exact_mut(channels) {
            let out = transform([pixel[0], pixel[1], pixel[2]]);
            pixel[..3].copy_from_slice(&out);
        }
    });
}

/// Applies a per-channel lookup table.
pub fn apply_lut(image: &mut DynamicImage, lut: &[[u8; 256]; 3]) {
    map_pixels(image, |[r, g, b]| [lut[0][r as usize], lut[1][g as usize], lut[2][b as usize]]);
}

pub fn recolor(
    image: &mut DynamicImage,
    mode: RecolorMode,
    color: Option<Color>,
    strength: Option<f32>,
    degrees: Option<f32>,
) {
    match mode {
        RecolorMode::Grayscale => map_pixels(image, |rgb| [luminance_srgb(rgb); 3]),
        RecolorMode::Sepia => map_pixels(image, sepia),
        RecolorMode::Tint => {
            let Color(target) = color.unwrap_or(Color([112, 66, 20]));
            tint(image, target, strength.unwrap_or(0.3));
        }
        RecolorMode::Hue => rotate_hue(image, degrees.unwrap_or(0.0)),
        RecolorMode::AutoLevels => auto_levels(image),
    }
}

fn sepia([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    [
        clamp_u8(0.393 * r + 0.769 * g + 0.189 * b),
        clamp_u8(0.349 * r + 0.686 * g + 0.168 * b),
        clamp_u8(0.272 * r + 0.534 * g + 0.131 * b),
    ]
}

/// Blends each pixel toward the target colour scaled to the pixel's own luma, so the
/// tint colours the photo without flattening its light and shade.
fn tint(image: &mut DynamicImage, target: [u8; 3], strength: f32) {
    let target_luma = luma(target).max(1.0);
    map_pixels(image, |rgb| {
        let scale = luma(rgb) / target_luma;
        std::array::from_fn(|c| {
            let tinted = f32::from(target[c]) * scale;
            clamp_u8(f32::from(rgb[c]) * (1.0 - strength) + tinted * strength)
        })
    });
}

/// The luminance-preserving hue rotation matrix of SVG/CSS `hue-rotate`.
fn rotate_hue(image: &mut DynamicImage, degrees: f32) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let m = [
        [0.213 + cos * 0.787 - sin * 0.213, 0.715 - cos * 0.715 - sin * 0.715, 0.072 - cos * 0.072 + sin * 0.928],
        [0.213 - cos * 0.213 + sin * 0.143, 0.715 + cos * 0.285 + sin * 0.140, 0.072 - cos * 0.072 - sin * 0.283],
        [0.213 - cos * 0.213 - sin * 0.787, 0.715 - cos * 0.715 + sin * 0.715, 0.072 + cos * 0.928 + sin * 0.072],
    ];
    map_pixels(image, |rgb| {
        let [r, g, b] = rgb.map(f32::from);
        std::array::from_fn(|row| clamp_u8(m[row][0] * r + m[row][1] * g + m[row][2] * b))
    });
}

/// Stretches each channel so its 0.5th and 99.5th percentiles span 0–255; clipping a
/// little at both ends keeps a few specks of noise from defeating the stretch.
fn auto_levels(image: &mut DynamicImage) {
    let mut histograms = [[0u64; 256]; 3];
    let rgb = image.to_rgb8();
    for pixel in rgb.pixels() {
        for c in 0..3 {
            histograms[c][pixel[c] as usize] += 1;
        }
    }
    let total = u64::from(rgb.width()) * u64::from(rgb.height());
    let clip = total / 200;
    let lut: [[u8; 256]; 3] = std::array::from_fn(|c| {
        let histogram = &histograms[c];
        let percentile = |from_top: bool| {
            let mut seen = 0;
            let indices: Box<dyn Iterator<Item = usize>> =
                if from_top { Box::new((0..256).rev()) } else { Box::new(0..256) };
            for i in indices {
                seen += histogram[i];
                if seen > clip {
                    return i;
                }
            }
            if from_top {
                255
            } else {
                0
            }
        };
        let (low, high) = (percentile(false), percentile(true));
        if high <= low {
            return std::array::from_fn(|i| i as u8);
        }
        let span = (high - low) as f32;
        std::array::from_fn(|i| clamp_u8((i as f32 - low as f32) * 255.0 / span))
    });
    apply_lut(image, &lut);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([(x * 16) as u8, (y * 16) as u8, 200])
        }))
    }

    #[test]
    fn grayscale_has_equal_channels_and_correct_luminance() {
        let mut image = sample();
        recolor(&mut image, RecolorMode::Grayscale, None, None, None);
        assert!(image.to_rgb8().pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        // Pure green is far brighter than pure blue to the eye.
        assert!(luminance_srgb([0, 255, 0]) > 200 && luminance_srgb([0, 0, 255]) < 90);
        assert_eq!(luminance_srgb([255, 255, 255]), 255);
        assert_eq!(luminance_srgb([0, 0, 0]), 0);
    }

    #[test]
    fn hue_rotation_by_zero_and_full_turn_changes_almost_nothing() {
        let original = sample().to_rgb8();
        for degrees in [0.0, 360.0] {
            let mut image = sample();
            recolor(&mut image, RecolorMode::Hue, None, None, Some(degrees));
            let max_diff = image.to_rgb8().as_raw().iter().zip(original.as_raw()).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(max_diff <= Some(2), "{degrees}: {max_diff:?}");
        }
    }

    #[test]
    fn auto_levels_stretches_a_dull_image() {
        let mut image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(20, 20, |x, _| {
            image::Rgb([100 + x as u8, 100 + x as u8, 100 + x as u8])
        }));
        recolor(&mut image, RecolorMode::AutoLevels, None, None, None);
        let rgb = image.to_rgb8();
        let (min, max) = rgb.as_raw().iter().fold((255, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((min, max), (0, 255));
    }
}
