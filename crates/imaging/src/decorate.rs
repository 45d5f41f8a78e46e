//! Decorations: captions, watermarks and borders. They are drawn once, on the finished
//! photo at the result's own size, whatever their place in the recipe (docs/ARCHITECTURE.md
//! "Decorations"): a border of 24 px is 24 px of the result, "2%" is 2% of the result's short
//! side, and a batch of mixed sizes comes out looking the same. The order is fixed:
//! captions on the photo, then watermarks over them, then borders round it all, so that a
//! caption never covers a border. The last thumbnail of a recipe bounds the bordered result.

use crate::adjust::{blend, caption_font, draw_text, text_width};
use crate::photo::Photo;
use crate::resize::fit_dimensions;
use crate::watermark::WatermarkImages;
use crate::ImagingError;
use ab_glyph::{Font, PxScale, ScaleFont};
use darkroom_core::recipe::{
    Border, Caption, CaptionPosition, Color, Customize, ResultLength, DEFAULT_WATERMARK_OPACITY, DEFAULT_WATERMARK_SIZE,
};
use darkroom_core::Operation;
use image::{DynamicImage, GenericImageView};

/// A caption's text height when the recipe names none: 7% of the short side, at least 10 px.
const DEFAULT_CAPTION_PERCENT: f32 = 7.0;

/// Every decoration of a recipe, in the order they are drawn.
#[derive(Debug, Default)]
pub(crate) struct Decorations<'a> {
    captions: Vec<&'a Caption>,
    watermarks: Vec<crate::watermark::Watermark<'a>>,
    borders: Vec<&'a Border>,
    /// Pixel lengths are multiplied by this: 1 for a result, less for a preview drawn on a
    /// smaller copy of it.
    pixel_scale: f64,
}

impl<'a> Decorations<'a> {
    /// The decorations of the whole recipe `ops` (not of one segment of it).
    pub(crate) fn of(ops: &'a [Operation]) -> Result<Self, ImagingError> {
        let mut decorations = Decorations { pixel_scale: 1.0, ..Decorations::default() };
        for op in ops {
            match op {
                Operation::Customize(Customize { caption, border, .. }) => {
                    decorations.captions.extend(caption.as_ref());
                    decorations.borders.extend(border.as_ref());
                }
                Operation::Watermark { text, image, position, opacity, size, color } => {
                    let mark = match (text, image) {
                        (Some(text), _) => crate::watermark::Mark::Text(text),
                        (None, Some(name)) => crate::watermark::Mark::Image(name),
                        (None, None) => {
                            return Err(ImagingError::op("watermark", "a watermark needs its text or an image"))
                        }
                    };
                    decorations.watermarks.push(crate::watermark::Watermark {
                        mark,
                        position: position.unwrap_or_default(),
                        opacity: opacity.unwrap_or(DEFAULT_WATERMARK_OPACITY),
                        size: size.unwrap_or(DEFAULT_WATERMARK_SIZE),
                        color: color.unwrap_or(Color([255, 255, 255])),
                    });
                }
                _ => {}
            }
        }
        Ok(decorations)
    }

    /// Pixel lengths scaled by `scale`: for a preview drawn on a copy `scale` times the
    /// result's size.
    pub(crate) fn with_pixel_scale(mut self, scale: f64) -> Self {
        self.pixel_scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        self
    }

    fn pixels(&self, length: ResultLength, short_side: u32) -> u32 {
        match length {
            ResultLength::Pixels(pixels) => ((f64::from(pixels) * self.pixel_scale).round() as u32).max(1),
            percent => percent.in_pixels(short_side),
        }
    }

    /// How much the borders add to each side of a photo of this short side.
    pub(crate) fn border_growth(&self, short_side: u32) -> u64 {
        self.borders.iter().map(|border| u64::from(self.pixels(border.width, short_side))).sum()
    }

    /// The size of a `width`×`height` photo once its borders are on.
    pub(crate) fn bordered_size(&self, width: u32, height: u32) -> (u64, u64) {
        let growth = 2 * self.border_growth(width.min(height));
        (u64::from(width) + growth, u64::from(height) + growth)
    }

    /// What the recipe's last thumbnail of `size` makes of a `width`×`height` photo: the
    /// largest fit whose bordered result still fits inside size×size (never upscaled).
    pub(crate) fn thumbnail_size(&self, width: u32, height: u32, size: u32) -> Result<(u32, u32), ImagingError> {
        let fits = |long_side: u32| {
            let (fitted_width, fitted_height) = fit_dimensions(width, height, long_side);
            let (bordered_width, bordered_height) = self.bordered_size(fitted_width, fitted_height);
            bordered_width.max(bordered_height) <= u64::from(size)
        };
        if fits(size) {
            return Ok(fit_dimensions(width, height, size));
        }
        // The bordered size grows with the photo's: the largest long side that fits, by
        // bisection (a dozen rounds for any size).
        let (mut fitting, mut too_big) = (0u32, size);
        while too_big - fitting > 1 {
            let middle = fitting + (too_big - fitting) / 2;
            if fits(middle) {
                fitting = middle;
            } else {
                too_big = middle;
            }
        }
        if fitting == 0 {
            return Err(ImagingError::op(
                "thumbnail",
                format!("the borders leave no room for the photo in a {size} px thumbnail"),
            ));
        }
        Ok(fit_dimensions(width, height, fitting))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.captions.is_empty() && self.watermarks.is_empty() && self.borders.is_empty()
    }

    /// Draws every decoration on the finished photo.
    pub(crate) fn draw(&self, photo: &mut Photo, images: &WatermarkImages) -> Result<(), ImagingError> {
        let short_side = photo.width().min(photo.height());
        for caption in &self.captions {
            let size = self.pixels(caption.size.unwrap_or(ResultLength::Percent(DEFAULT_CAPTION_PERCENT)), short_side);
            let size = if caption.size.is_none() { size.max(10) } else { size };
            draw_caption(&mut photo.image, caption, size as f32)?;
        }
        for mark in &self.watermarks {
            crate::watermark::draw(&mut photo.image, mark, images)?;
        }
        for border in &self.borders {
            let width = self.pixels(border.width, short_side);
            add_border(photo, width, border.color)?;
        }
        Ok(())
    }
}

use crate::MAX_GROWN_PIXELS as MAX_BORDERED_PIXELS;

/// A bordered image may not grow past [`MAX_BORDERED_PIXELS`].
pub(crate) fn check_bordered_size(new_width: u64, new_height: u64) -> Result<(), ImagingError> {
    let pixels = new_width.saturating_mul(new_height);
    if pixels > MAX_BORDERED_PIXELS {
        return Err(ImagingError::TooManyPixels(format!(
            "the border would make the image {new_width}×{new_height} px ({:.0} megapixels), over the limit of {:.0}",
            pixels as f64 / 1e6,
            MAX_BORDERED_PIXELS as f64 / 1e6
        )));
    }
    Ok(())
}

fn add_border(photo: &mut Photo, width: u32, color: Color) -> Result<(), ImagingError> {
    let (photo_width, photo_height) = photo.image.dimensions();
    let (new_width, new_height) =
        (u64::from(photo_width) + 2 * u64::from(width), u64::from(photo_height) + 2 * u64::from(width));
    check_bordered_size(new_width, new_height)?;
    let (Ok(new_width), Ok(new_height)) = (u32::try_from(new_width), u32::try_from(new_height)) else {
        return Err(ImagingError::op("customize", "border makes the image too large"));
    };
    let [r, g, b] = color.0;
    let mut framed = match &photo.image {
        DynamicImage::ImageRgba8(_) => {
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(new_width, new_height, image::Rgba([r, g, b, 255])))
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_pixel(new_width, new_height, image::Rgb([r, g, b]))),
    };
    image::imageops::replace(&mut framed, &photo.image, i64::from(width), i64::from(width));
    photo.image = framed;
    photo.frame = photo.frame.translated(f64::from(width), f64::from(width));
    Ok(())
}

/// White text `size` px high on a darkened band across the top or bottom, shrunk to fit
/// the photo's width.
fn draw_caption(image: &mut DynamicImage, caption: &Caption, size: f32) -> Result<(), ImagingError> {
    let font = caption_font()?;
    let (width, height) = image.dimensions();
    let text: String = caption.text.chars().filter(|c| !c.is_control()).collect();
    let mut size = size.min(height as f32 / 2.0).max(1.0);
    let measured = text_width(&font, &text, size);
    let room = width as f32 * 0.92;
    if measured > room && measured > 0.0 {
        size = (size * room / measured).max(6.0);
    }
    let scaled = font.as_scaled(PxScale::from(size));
    let band_height = ((scaled.ascent() - scaled.descent()) * 1.5).ceil().min(height as f32) as u32;
    let band_top = match caption.position {
        CaptionPosition::Bottom => height - band_height,
        CaptionPosition::Top => 0,
    };
    for y in band_top..band_top + band_height {
        for x in 0..width {
            blend(image, x, y, [0, 0, 0], 0.55);
        }
    }
    let pen_x = ((width as f32 - text_width(&font, &text, size)) / 2.0).max(0.0);
    let baseline =
        band_top as f32 + (band_height as f32 - (scaled.ascent() - scaled.descent())) / 2.0 + scaled.ascent();
    draw_text(image, &font, &text, size, (pen_x, baseline), [255, 255, 255], 1.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use darkroom_core::Recipe;

    fn recipe(ops: &str) -> Recipe {
        Recipe::from_json(&format!(r#"{{"ops":[{ops}]}}"#)).expect("valid recipe")
    }

    #[test]
    fn the_last_thumbnail_bounds_the_bordered_result() {
        let bordered = recipe(
            r##"{"op":"customize","border":{"width":24,"color":"#000000"}},{"op":"customize","border":{"width":"2%","color":"#ffffff"}},{"op":"thumbnail","size":1024}"##,
        );
        let decorations = Decorations::of(&bordered.ops).unwrap();
        for (width, height) in [(6000, 4000), (4000, 6000), (1024, 1024), (5000, 100), (900, 600)] {
            let (fitted_width, fitted_height) = decorations.thumbnail_size(width, height, 1024).unwrap();
            let (bordered_width, bordered_height) = decorations.bordered_size(fitted_width, fitted_height);
            assert!(
                bordered_width.max(bordered_height) <= 1024,
                "{width}×{height} → {bordered_width}×{bordered_height}"
            );
            // As large as it may be: one pixel more would not fit (unless it is the original).
            if fitted_width.max(fitted_height) < width.max(height) {
                let (wider, taller) = fit_dimensions(width, height, fitted_width.max(fitted_height) + 1);
                let (w, h) = decorations.bordered_size(wider, taller);
                assert!(w.max(h) > 1024, "{width}×{height}: {fitted_width}×{fitted_height} is not the largest fit");
            }
        }
        let tight = Decorations::of(&bordered.ops).unwrap();
        assert!(tight.thumbnail_size(4000, 3000, 40).is_err(), "48 px of border cannot fit in 40 px");
    }

    #[test]
    fn percentages_are_of_the_short_side_and_pixels_scale_for_previews() {
        let relative = recipe(r##"{"op":"customize","border":{"width":"5%","color":"#000000"}}"##);
        assert_eq!(Decorations::of(&relative.ops).unwrap().border_growth(400), 20);
        let pixels = recipe(r##"{"op":"customize","border":{"width":30,"color":"#000000"}}"##);
        let decorations = Decorations::of(&pixels.ops).unwrap();
        assert_eq!(decorations.border_growth(4000), 30);
        assert_eq!(decorations.with_pixel_scale(0.25).border_growth(1000), 8);
    }
}
