//! `vignette`: the edges darkened towards the corners. The darkening depends on each pixel's
//! distance from the middle as a share of the way to the corners (an ellipse of the photo's
//! shape), so it looks the same on a thumbnail and on the full photo, and it rises smoothly
//! from `radius` to the corners, where it reaches `strength`.

use image::DynamicImage;
use rayon::prelude::*;

/// Darkens `image` towards its corners: by `strength` (0–1) at the corners, from `radius`
/// (0–1 of the way from the middle) on. Colour only: alpha is kept.
pub fn vignette(image: &mut DynamicImage, strength: f32, radius: f32) {
    let strength = strength.clamp(0.0, 1.0);
    if strength == 0.0 || image.width() == 0 || image.height() == 0 {
        return;
    }
    let radius = radius.clamp(0.0, 0.99);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let (channels, bytes): (usize, &mut [u8]) = match image {
        DynamicImage::ImageRgb8(buffer) => (3, buffer),
        DynamicImage::ImageRgba8(buffer) => (4, buffer),
        other => {
            *other = DynamicImage::ImageRgb8(other.to_rgb8());
            return vignette(other, strength, radius);
        }
    };
    // Squared distances from the middle per column and per row, as shares of the half
    // sides; a corner is at 2, so the sum halved is the squared share of the way there.
    let share = |index: usize, size: usize| {
        let half = size as f32 / 2.0;
        let offset = (index as f32 + 0.5 - half) / half;
        offset * offset / 2.0
    };
    let columns: Vec<f32> = (0..width).map(|x| share(x, width)).collect();
    // Pixels inside `radius` are left as they are, without a square root each.
    let untouched = radius * radius;
    bytes.par_chunks_mut(width * channels).enumerate().for_each(|(y, row)| {
        let row_share = share(y, height);
        for (pixel, column_share) in row.chunks_exact_mut(channels).zip(&columns) {
            let squared = row_share + column_share;
            if squared <= untouched {
                continue;
            }
            let factor = 1.0 - strength * smoothstep(radius, 1.0, squared.sqrt());
            for channel in &mut pixel[..3] {
                *channel = (f32::from(*channel) * factor).round() as u8;
            }
        }
    });
}

/// 0 below `from`, 1 above `to`, a smooth S between.
fn smoothstep(from: f32, to: f32, value: f32) -> f32 {
    let t = ((value - from) / (to - from)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn grey(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(width, height, Rgb([200, 200, 200])))
    }

    #[test]
    fn the_corners_darken_by_the_strength_and_the_middle_stays() {
        let mut image = grey(300, 200);
        vignette(&mut image, 0.5, 0.5);
        let image = image.to_rgb8();
        assert_eq!(image.get_pixel(150, 100).0, [200, 200, 200], "the middle");
        let corner = image.get_pixel(0, 0).0[0];
        assert!((98..=106).contains(&corner), "a corner at about half: {corner}");
        let edge = image.get_pixel(0, 100).0[0];
        assert!(edge > corner && edge < 200, "the middle of an edge in between: {edge}");
        assert_eq!(image.get_pixel(299, 199).0, image.get_pixel(0, 0).0, "symmetric");
    }

    #[test]
    fn no_strength_changes_nothing_and_alpha_is_kept() {
        let mut image = grey(40, 30);
        vignette(&mut image, 0.0, 0.5);
        assert!(image.to_rgb8().pixels().all(|p| p.0 == [200, 200, 200]));
        let mut clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 30, Rgba([200, 200, 200, 77])));
        vignette(&mut clear, 1.0, 0.0);
        let clear = clear.to_rgba8();
        assert!(clear.pixels().all(|p| p.0[3] == 77));
        assert!(clear.get_pixel(0, 0).0[0] < 10, "full strength: a corner nearly black");
    }

    #[test]
    fn it_looks_the_same_at_any_size() {
        let (mut small, mut large) = (grey(120, 80), grey(1200, 800));
        vignette(&mut small, 0.7, 0.3);
        vignette(&mut large, 0.7, 0.3);
        let (small, large) = (small.to_rgb8(), large.to_rgb8());
        for (x, y) in [(10u32, 10u32), (30, 60), (100, 20)] {
            let (a, b) = (small.get_pixel(x, y).0[0], large.get_pixel(x * 10 + 5, y * 10 + 5).0[0]);
            assert!(a.abs_diff(b) <= 3, "at {x},{y}: {a} vs {b}");
        }
    }
}
