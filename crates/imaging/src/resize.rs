//! Resampling with fast_image_resize (SIMD convolution, Lanczos3), and cropping. Resizing happens in
//! gamma-encoded sRGB, as in libvips, Pillow and ImageMagick's defaults, so our outputs
//! match what users compare them with.

use crate::ImagingError;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

/// The size that fits `width`×`height` inside `long_side`×`long_side`, keeping the aspect;
/// never larger than the input.
pub fn fit_dimensions(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_side {
        return (width, height);
    }
    let scale = f64::from(long_side) / f64::from(long);
    let fit = |side: u32| ((f64::from(side) * scale).round() as u32).clamp(1, long_side);
    if width >= height {
        (long_side, fit(height))
    } else {
        (fit(width), long_side)
    }
}

/// The largest `aspect_w:aspect_h` box inside `width`×`height`; exact when the image
/// allows it, otherwise the closest whole-pixel size.
pub(crate) fn largest_centred(width: u32, height: u32, aspect_w: u32, aspect_h: u32) -> (u32, u32) {
    let (w, h, aw, ah) = (u64::from(width), u64::from(height), u64::from(aspect_w), u64::from(aspect_h));
    if w * ah >= h * aw {
        // Too wide: keep the height.
        let crop_w = ((h * aw + ah / 2) / ah).clamp(1, w.max(1));
        (crop_w as u32, height)
    } else {
        let crop_h = ((w * ah + aw / 2) / aw).clamp(1, h.max(1));
        (width, crop_h as u32)
    }
}

pub fn resize_exact(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    resize_with(image, width, height, FilterType::Lanczos3)
}

/// A bilinear (triangle) filter spread over the pixels each output pixel covers: smooth,
/// a little softer than Lanczos3, with a third of its taps.
pub fn resize_bilinear(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    resize_with(image, width, height, FilterType::Bilinear)
}

fn resize_with(
    image: &DynamicImage,
    width: u32,
    height: u32,
    filter: FilterType,
) -> Result<DynamicImage, ImagingError> {
    if (width, height) == (image.width(), image.height()) {
        return Ok(image.clone());
    }
    let mut resized = DynamicImage::new(width, height, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    Resizer::new().resize(image, &mut resized, &options).map_err(|e| ImagingError::op("resize", e.to_string()))?;
    Ok(resized)
}

/// The `width`×`height` window at (`x`, `y`) of `image`, resampled (Lanczos3) to
/// `out_width`×`out_height` straight from `image`, which is left as it is: the same pixels as
/// [`crop_in_place`] then [`resize_exact`] (the filter reaches no pixel outside the window),
/// without moving the window's rows first. A window not inside the image is an error.
pub fn crop_and_resize(
    image: &DynamicImage,
    (x, y, width, height): (u32, u32, u32, u32),
    out_width: u32,
    out_height: u32,
) -> Result<DynamicImage, ImagingError> {
    let window = fast_image_resize::images::CroppedImage::new(image, x, y, width, height)
        .map_err(|e| ImagingError::op("crop", format!("the window {width}×{height} at ({x}, {y}): {e}")))?;
    let mut resized = DynamicImage::new(out_width, out_height, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&window, &mut resized, &options).map_err(|e| ImagingError::op("resize", e.to_string()))?;
    Ok(resized)
}

/// A quick shrink (SIMD box-filtered convolution) for analysis, where speed matters more
/// than the last bit of sharpness: face detection on a small copy.
pub fn resize_fast(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    resize_with(image, width, height, FilterType::Box)
}

/// The `width`×`height` window at (`x`, `y`), in the image's own buffer: its rows moved to
/// the front and the rest cut off, where `DynamicImage::crop_imm` would copy pixel by pixel
/// into a new one (a tenth of a small recipe's time). A window not inside the image is an
/// error.
pub fn crop_in_place(
    image: DynamicImage,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ImagingError> {
    fn window<P: image::Pixel<Subpixel = u8>>(
        image: image::ImageBuffer<P, Vec<u8>>,
        (x, y, width, height): (u32, u32, u32, u32),
    ) -> Option<image::ImageBuffer<P, Vec<u8>>> {
        let channels = usize::from(P::CHANNEL_COUNT);
        let stride = image.width() as usize * channels;
        let (left, top, row) = (x as usize * channels, y as usize, width as usize * channels);
        let mut pixels = image.into_raw();
        // Each row moves to an offset no later than where it was, so in order nothing is
        // overwritten before it is moved.
        for r in 0..height as usize {
            let from = (top + r) * stride + left;
            pixels.copy_within(from..from + row, r * row);
        }
        let kept = row * height as usize;
        pixels.truncate(kept);
        // A small window of a big photo gives the rest of the memory back to later steps.
        if kept < pixels.capacity() / 2 {
            pixels.shrink_to_fit();
        }
        image::ImageBuffer::from_raw(width, height, pixels)
    }
    let inside = x.checked_add(width).is_some_and(|right| right <= image.width())
        && y.checked_add(height).is_some_and(|bottom| bottom <= image.height());
    if !inside {
        let size = (image.width(), image.height());
        return Err(ImagingError::op("crop", format!("the window {width}×{height} at ({x}, {y}) is outside {size:?}")));
    }
    let area = (x, y, width, height);
    let moved = match image {
        DynamicImage::ImageRgb8(rgb) => window(rgb, area).map(DynamicImage::ImageRgb8),
        DynamicImage::ImageRgba8(rgba) => window(rgba, area).map(DynamicImage::ImageRgba8),
        DynamicImage::ImageLuma8(grey) => window(grey, area).map(DynamicImage::ImageLuma8),
        other => Some(other.crop_imm(x, y, width, height)),
    };
    moved.ok_or_else(|| ImagingError::op("crop", "the cropped pixels did not fill the window"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_long_side_exactly_and_never_upscales() {
        assert_eq!(fit_dimensions(4000, 3000, 256), (256, 192));
        assert_eq!(fit_dimensions(3000, 4000, 256), (192, 256));
        assert_eq!(fit_dimensions(100, 50, 256), (100, 50));
        assert_eq!(fit_dimensions(10_000, 1, 256), (256, 1));
    }

    #[test]
    fn crops_in_place_as_crop_imm_copies() {
        let rgb = image::RgbImage::from_fn(37, 23, |x, y| image::Rgb([x as u8, y as u8, (x * y) as u8]));
        let rgba = image::RgbaImage::from_fn(37, 23, |x, y| image::Rgba([x as u8, y as u8, 7, (x + y) as u8]));
        let grey = image::GrayImage::from_fn(37, 23, |x, y| image::Luma([(x * 3 + y) as u8]));
        for image in [DynamicImage::ImageRgb8(rgb), DynamicImage::ImageRgba8(rgba), DynamicImage::ImageLuma8(grey)] {
            for (x, y, width, height) in [(0, 0, 37, 23), (5, 3, 20, 11), (36, 22, 1, 1), (0, 10, 37, 5)] {
                let cropped = crop_in_place(image.clone(), x, y, width, height).expect("inside");
                assert_eq!(
                    cropped,
                    image.crop_imm(x, y, width, height),
                    "{:?} {x},{y} {width}×{height}",
                    image.color()
                );
            }
            assert!(crop_in_place(image.clone(), 30, 0, 8, 1).is_err(), "past the right edge");
            assert!(crop_in_place(image, 0, u32::MAX, 1, 2).is_err(), "overflowing");
        }
    }

    #[test]
    fn crops_and_resizes_as_a_crop_then_a_resize_do() {
        // Noise, so that a filter tap reaching past the window's edge would change the result.
        let noise = |x: u32, y: u32, k: u32| ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ k) % 251) as u8;
        let rgb = image::RgbImage::from_fn(97, 61, |x, y| image::Rgb([noise(x, y, 1), noise(x, y, 2), noise(x, y, 3)]));
        let rgba = image::RgbaImage::from_fn(97, 61, |x, y| {
            image::Rgba([noise(x, y, 1), noise(x, y, 2), noise(x, y, 3), noise(x, y, 4).max(1)])
        });
        let grey = image::GrayImage::from_fn(97, 61, |x, y| image::Luma([noise(x, y, 5)]));
        for image in [DynamicImage::ImageRgb8(rgb), DynamicImage::ImageRgba8(rgba), DynamicImage::ImageLuma8(grey)] {
            for (window, out) in [((11, 7, 60, 40), (30, 20)), ((0, 0, 97, 61), (24, 15)), ((36, 20, 61, 41), (17, 11))]
            {
                let (x, y, width, height) = window;
                let expected =
                    resize_exact(&crop_in_place(image.clone(), x, y, width, height).expect("inside"), out.0, out.1)
                        .expect("resized");
                let fused = crop_and_resize(&image, window, out.0, out.1).expect("resized");
                assert_eq!(fused, expected, "{:?} {window:?} → {out:?}", image.color());
            }
            assert!(crop_and_resize(&image, (90, 0, 8, 1), 4, 1).is_err(), "past the right edge");
        }
    }
}
