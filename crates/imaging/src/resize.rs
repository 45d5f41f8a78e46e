//! Resampling with fast_image_resize (SIMD convolution, Lanczos3). Resizing happens in
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

pub fn resize_exact(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    if (width, height) == (image.width(), image.height()) {
        return Ok(image.clone());
    }
    let mut resized = DynamicImage::new(width, height, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(image, &mut resized, &options).map_err(|e| ImagingError::op("resize", e.to_string()))?;
    Ok(resized)
}

/// A quick shrink (SIMD box-filtered convolution) for analysis, where speed matters more
/// than the last bit of sharpness: face detection on a small copy.
pub fn resize_fast(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    let mut resized = DynamicImage::new(width, height, image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    Resizer::new().resize(image, &mut resized, &options).map_err(|e| ImagingError::op("resize", e.to_string()))?;
    Ok(resized)
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
}
