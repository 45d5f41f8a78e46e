//! `customize`: brightness, contrast, saturation, sharpen, rotate, flip — applied in that
//! order (docs/ARCHITECTURE.md), whatever order the keys had in the recipe. Its caption and
//! border are decorations, drawn on the finished result (`decorate.rs`). The text drawing
//! that captions and watermarks share lives here.

use crate::color::{apply_lut, luma, map_pixels};
use crate::photo::Photo;
use crate::ImagingError;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use darkroom_core::recipe::{Customize, Flip};
use image::{DynamicImage, GenericImageView};

/// DejaVu Sans Bold (Bitstream Vera licence, `fonts/LICENSE-DejaVu.txt`): bundled, so
/// captions render the same on every machine.
static CAPTION_FONT: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

fn clamp_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

pub fn customize(photo: &mut Photo, settings: &Customize) -> Result<(), ImagingError> {
    let brightness = settings.brightness.unwrap_or(0.0);
    let contrast = settings.contrast.unwrap_or(0.0);
    if brightness != 0.0 || contrast != 0.0 {
        // One table for both: brightness shifts, then contrast scales around mid-grey.
        let table: [u8; 256] = std::array::from_fn(|i| {
            let shifted = i as f32 + brightness * 128.0;
            clamp_u8((shifted - 128.0) * (1.0 + contrast) + 128.0)
        });
        apply_lut(&mut photo.image, &[table; 3]);
    }
    if let Some(saturation) = settings.saturation.filter(|s| *s != 0.0) {
        let factor = 1.0 + saturation;
        map_pixels(&mut photo.image, |rgb| {
            let grey = luma(rgb);
            rgb.map(|c| clamp_u8(grey + (f32::from(c) - grey) * factor))
        });
    }
    if let Some(amount) = settings.sharpen.filter(|a| *a > 0.0) {
        sharpen(&mut photo.image, amount);
    }
    if let Some(degrees) = settings.rotate {
        let (width, height) = photo.image.dimensions();
        photo.image = match degrees {
            90 => photo.image.rotate90(),
            180 => photo.image.rotate180(),
            270 => photo.image.rotate270(),
            other => return Err(ImagingError::op("customize", format!("cannot rotate by {other}°"))),
        };
        photo.frame = photo.frame.rotated_clockwise(degrees, width, height);
    }
    match settings.flip {
        Some(Flip::Horizontal) => {
            photo.frame = photo.frame.flipped_horizontally(photo.image.width());
            photo.image = photo.image.fliph();
        }
        Some(Flip::Vertical) => {
            photo.frame = photo.frame.flipped_vertically(photo.image.height());
            photo.image = photo.image.flipv();
        }
        None => {}
    }
    Ok(())
}

/// Unsharp mask: add back `amount` times the difference from a Gaussian-blurred copy
/// (σ = 1.2 px). The blur is separable, in fixed point, one row per task: a 20 MP photo
/// sharpens in a fraction of a second (image's `fast_blur` in f32 took 1.4 s).
fn sharpen(image: &mut DynamicImage, amount: f32) {
    use rayon::prelude::*;
    let (width, channels, bytes): (usize, usize, &mut [u8]) = match image {
        DynamicImage::ImageRgb8(buffer) => (buffer.width() as usize, 3, buffer),
        DynamicImage::ImageRgba8(buffer) => (buffer.width() as usize, 4, buffer),
        _ => return,
    };
    let stride = width * channels;
    if stride == 0 {
        return;
    }
    let height = bytes.len() / stride;
    let kernel = gaussian_kernel();
    // Horizontal pass: ×4096 weights, kept as ×256 (fits u16). Each row is copied with its
    // edge pixels repeated RADIUS times on either side, so the inner loop has no bounds to
    // clamp and vectorises.
    let mut across = vec![0u16; bytes.len()];
    across.par_chunks_mut(stride).zip(bytes.par_chunks(stride)).for_each(|(out, row)| {
        let pad = RADIUS * channels;
        let mut padded = Vec::with_capacity(stride + 2 * pad);
        for _ in 0..RADIUS {
            padded.extend_from_slice(&row[..channels]);
        }
        padded.extend_from_slice(row);
        for _ in 0..RADIUS {
            padded.extend_from_slice(&row[stride - channels..]);
        }
        let mut sums = vec![0u32; stride];
        for (k, &weight) in kernel.iter().enumerate() {
            let shifted = &padded[k * channels..k * channels + stride];
            for (sum, &p) in sums.iter_mut().zip(shifted) {
                *sum += weight * u32::from(p);
            }
        }
        for (o, sum) in out.iter_mut().zip(sums) {
            *o = (sum >> 4) as u16;
        }
    });
    // Vertical pass, and the unsharp mask, written straight back.
    let last_y = height - 1;
    bytes.par_chunks_mut(stride).enumerate().for_each(|(y, row)| {
        let mut sums = vec![0u32; stride];
        for (k, &weight) in kernel.iter().enumerate() {
            let source_y = (y + k).saturating_sub(RADIUS).min(last_y);
            let source = &across[source_y * stride..(source_y + 1) * stride];
            for (sum, &h) in sums.iter_mut().zip(source) {
                *sum += weight * u32::from(h);
            }
        }
        for (i, (value, sum)) in row.iter_mut().zip(sums).enumerate() {
            if channels == 4 && i % 4 == 3 {
                continue; // alpha stays as it is
            }
            let blurred = ((sum + (1 << 19)) >> 20) as f32;
            let original = f32::from(*value);
            *value = clamp_u8(original + amount * (original - blurred));
        }
    });
}

const RADIUS: usize = 3;

/// A σ = 1.2 Gaussian over 7 taps, weights summing to 4096.
fn gaussian_kernel() -> [u32; 2 * RADIUS + 1] {
    const SIGMA: f64 = 1.2;
    let raw: Vec<f64> =
        (0..=2 * RADIUS).map(|i| (-((i as f64 - RADIUS as f64).powi(2)) / (2.0 * SIGMA * SIGMA)).exp()).collect();
    let total: f64 = raw.iter().sum();
    let mut kernel = [0u32; 2 * RADIUS + 1];
    for (weight, r) in kernel.iter_mut().zip(&raw) {
        *weight = (r / total * 4096.0).round() as u32;
    }
    // Rounding may leave the sum a little off 4096: the centre takes the difference.
    let sum: u32 = kernel.iter().sum();
    kernel[RADIUS] = (kernel[RADIUS] + 4096).saturating_sub(sum);
    kernel
}

pub(crate) fn blend(image: &mut DynamicImage, x: u32, y: u32, color: [u8; 3], alpha: f32) {
    let mix = |under: u8, over: u8| clamp_u8(f32::from(under) * (1.0 - alpha) + f32::from(over) * alpha);
    match image {
        DynamicImage::ImageRgb8(buffer) => {
            let pixel = buffer.get_pixel_mut(x, y);
            for c in 0..3 {
                pixel[c] = mix(pixel[c], color[c]);
            }
        }
        DynamicImage::ImageRgba8(buffer) => {
            let pixel = buffer.get_pixel_mut(x, y);
            for c in 0..3 {
                pixel[c] = mix(pixel[c], color[c]);
            }
            pixel[3] = pixel[3].max(clamp_u8(alpha * 255.0));
        }
        _ => {}
    }
}

/// The bundled font, parsed (a few microseconds: it is a view of the bytes).
pub(crate) fn caption_font() -> Result<FontRef<'static>, ImagingError> {
    FontRef::try_from_slice(CAPTION_FONT).map_err(|e| ImagingError::op("customize", format!("caption font: {e}")))
}

/// How wide `text` is at `size` px, kerning included.
pub(crate) fn text_width(font: &FontRef<'_>, text: &str, size: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut previous = None;
    let mut advance = 0.0;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            advance += scaled.kern(previous, id);
        }
        advance += scaled.h_advance(id);
        previous = Some(id);
    }
    advance
}

/// Draws `text` at `size` px from `pen_x` on `baseline`, in `color` at `opacity`, clipped
/// to the image.
pub(crate) fn draw_text(
    image: &mut DynamicImage,
    font: &FontRef<'_>,
    text: &str,
    size: f32,
    (mut pen_x, baseline): (f32, f32),
    color: [u8; 3],
    opacity: f32,
) {
    let (width, height) = image.dimensions();
    let scaled = font.as_scaled(PxScale::from(size));
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            pen_x += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(PxScale::from(size), ab_glyph::point(pen_x, baseline));
        pen_x += scaled.h_advance(id);
        previous = Some(id);
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let x = bounds.min.x as i64 + i64::from(gx);
                let y = bounds.min.y as i64 + i64::from(gy);
                if (0..i64::from(width)).contains(&x) && (0..i64::from(height)).contains(&y) && coverage > 0.0 {
                    blend(image, x as u32, y as u32, color, coverage.min(1.0) * opacity);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharpening_leaves_flat_areas_and_steepens_edges() {
        assert_eq!(gaussian_kernel().iter().sum::<u32>(), 4096);
        let mut flat = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(40, 30, image::Rgb([90, 140, 200])));
        let before = flat.clone();
        sharpen(&mut flat, 1.5);
        assert_eq!(flat, before);
        // A vertical edge from 100 to 160: the dark side darker, the bright side brighter beside it.
        let mut edge = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(40, 30, |x, _| {
            let v = if x < 20 { 100 } else { 160 };
            image::Rgba([v, v, v, 77])
        }));
        sharpen(&mut edge, 1.0);
        let px = |x| edge.as_rgba8().unwrap().get_pixel(x, 15).0;
        assert!(px(19)[0] < 100 && px(20)[0] > 160, "{:?} {:?}", px(19), px(20));
        assert_eq!(px(2), [100, 100, 100, 77]);
        assert_eq!(px(37), [160, 160, 160, 77]);
    }
}
