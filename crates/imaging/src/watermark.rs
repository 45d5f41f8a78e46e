//! `watermark`: a line of text, or a PNG sent with the job (a logo), on the photo; its
//! height a fraction of the photo's short side, so a batch of mixed sizes carries the same
//! mark; in a corner or the centre, with a margin of half its height, at the recipe's
//! opacity. A faint dark outline under light text (and a light one under dark) keeps text
//! legible on any background; a PNG keeps its own transparency.

use crate::adjust::{caption_font, draw_text, text_width};
use crate::ImagingError;
use ab_glyph::{Font, PxScale, ScaleFont};
use darkroom_core::recipe::{Color, WatermarkPosition, MAX_ASSET_BYTES, MAX_ASSET_PIXELS};
use image::{DynamicImage, RgbaImage};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct Watermark<'a> {
    pub mark: Mark<'a>,
    pub position: WatermarkPosition,
    pub opacity: f32,
    /// The mark's height as a fraction of the short side.
    pub size: f32,
    pub color: Color,
}

/// What a watermark draws.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark<'a> {
    Text(&'a str),
    /// The PNG of this name among the job's [`WatermarkImages`].
    Image(&'a str),
}

/// The PNGs a job sent for its recipe's image watermarks, decoded, by file name. Cheap to
/// clone (the images are shared).
#[derive(Debug, Default, Clone)]
pub struct WatermarkImages(HashMap<String, Arc<RgbaImage>>);

impl WatermarkImages {
    /// Decodes `bytes` as the PNG the recipe calls `name`: a PNG of at most
    /// [`MAX_ASSET_BYTES`] and [`MAX_ASSET_PIXELS`], or a clear error.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ImagingError> {
        let refused = |why: String| ImagingError::op("watermark", format!("the watermark image {name}: {why}"));
        if bytes.len() as u64 > MAX_ASSET_BYTES {
            return Err(refused(format!("{} bytes is more than the {MAX_ASSET_BYTES} allowed", bytes.len())));
        }
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(MAX_ASSET_PIXELS * 8);
        reader.limits(limits);
        let decoder = reader.into_decoder().map_err(|e| refused(format!("not a readable PNG ({e})")))?;
        let (width, height) = image::ImageDecoder::dimensions(&decoder);
        if u64::from(width) * u64::from(height) > MAX_ASSET_PIXELS {
            return Err(refused(format!("{width}×{height} is more than the {MAX_ASSET_PIXELS} pixels allowed")));
        }
        let decoded = DynamicImage::from_decoder(decoder).map_err(|e| refused(format!("not a readable PNG ({e})")))?;
        self.0.insert(name.to_owned(), Arc::new(decoded.into_rgba8()));
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&RgbaImage> {
        self.0.get(name).map(Arc::as_ref)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(crate) fn draw(
    image: &mut DynamicImage,
    mark: &Watermark<'_>,
    images: &WatermarkImages,
) -> Result<(), ImagingError> {
    let text = match mark.mark {
        Mark::Text(text) => text,
        Mark::Image(name) => {
            let Some(logo) = images.get(name) else {
                return Err(ImagingError::op(
                    "watermark",
                    format!("the watermark image {name} was not sent with the job"),
                ));
            };
            return draw_image(image, logo, mark);
        }
    };
    let font = caption_font()?;
    let (width, height) = (image.width() as f32, image.height() as f32);
    let line = (mark.size * width.min(height)).max(6.0);
    // ab_glyph's scale is the font's ascent-to-descent height: the line's.
    let mut size = line;
    let room = width * 0.9;
    let measured = text_width(&font, text, size);
    if measured > room && measured > 0.0 {
        size = (size * room / measured).max(6.0);
    }
    let scaled = font.as_scaled(PxScale::from(size));
    let text_w = text_width(&font, text, size);
    let text_h = scaled.ascent() - scaled.descent();
    let margin = line / 2.0;
    let (x, top) = place(mark.position, (width, height), (text_w, text_h), margin);
    let baseline = top + scaled.ascent();
    let color = mark.color.0;
    let light = crate::color::luma(color) > 128.0;
    let outline = if light { [0, 0, 0] } else { [255, 255, 255] };
    let offset = (size / 24.0).max(1.0);
    for (dx, dy) in [(-offset, 0.0), (offset, 0.0), (0.0, -offset), (0.0, offset)] {
        draw_text(image, &font, text, size, (x + dx, baseline + dy), outline, mark.opacity * 0.25);
    }
    draw_text(image, &font, text, size, (x, baseline), color, mark.opacity);
    Ok(())
}

/// Where a mark `mark_w`×`mark_h` goes on a `width`×`height` photo: its top-left corner.
fn place(
    position: WatermarkPosition,
    (width, height): (f32, f32),
    (mark_w, mark_h): (f32, f32),
    margin: f32,
) -> (f32, f32) {
    let x = match position {
        WatermarkPosition::BottomLeft | WatermarkPosition::TopLeft => margin,
        WatermarkPosition::BottomRight | WatermarkPosition::TopRight => width - margin - mark_w,
        WatermarkPosition::Center => (width - mark_w) / 2.0,
    };
    let y = match position {
        WatermarkPosition::TopLeft | WatermarkPosition::TopRight => margin,
        WatermarkPosition::BottomLeft | WatermarkPosition::BottomRight => height - margin - mark_h,
        WatermarkPosition::Center => (height - mark_h) / 2.0,
    };
    (x.max(0.0), y.max(0.0))
}

/// A PNG mark: `size` × the short side tall (narrowed to 90% of the width if it is wider),
/// its own alpha times the recipe's opacity.
fn draw_image(image: &mut DynamicImage, logo: &RgbaImage, mark: &Watermark<'_>) -> Result<(), ImagingError> {
    let (width, height) = (image.width() as f32, image.height() as f32);
    let (logo_w, logo_h) = (logo.width().max(1) as f32, logo.height().max(1) as f32);
    let mut mark_h = (mark.size * width.min(height)).max(1.0);
    let mut mark_w = mark_h * logo_w / logo_h;
    if mark_w > width * 0.9 {
        (mark_w, mark_h) = (width * 0.9, width * 0.9 * logo_h / logo_w);
    }
    let (mark_w, mark_h) = (mark_w.round().max(1.0) as u32, mark_h.round().max(1.0) as u32);
    let scaled = crate::resize::resize_exact(&DynamicImage::ImageRgba8(logo.clone()), mark_w, mark_h)?.into_rgba8();
    let margin = (mark.size * width.min(height)) / 2.0;
    let (left, top) = place(mark.position, (width, height), (mark_w as f32, mark_h as f32), margin);
    let (left, top) = (left.round() as u32, top.round() as u32);
    for (x, y, pixel) in scaled.enumerate_pixels() {
        let (px, py) = (left + x, top + y);
        if px >= image.width() || py >= image.height() {
            continue;
        }
        let alpha = f32::from(pixel[3]) / 255.0 * mark.opacity;
        if alpha > 0.0 {
            crate::adjust::blend(image, px, py, [pixel[0], pixel[1], pixel[2]], alpha);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([100, 100, 100])))
    }

    /// The box of pixels the mark changed.
    fn marked(image: &DynamicImage) -> Option<(u32, u32, u32, u32)> {
        let rgb = image.to_rgb8();
        let changed: Vec<(u32, u32)> =
            rgb.enumerate_pixels().filter(|(_, _, p)| p.0 != [100, 100, 100]).map(|(x, y, _)| (x, y)).collect();
        let min_x = changed.iter().map(|p| p.0).min()?;
        let max_x = changed.iter().map(|p| p.0).max()?;
        let min_y = changed.iter().map(|p| p.1).min()?;
        let max_y = changed.iter().map(|p| p.1).max()?;
        Some((min_x, min_y, max_x, max_y))
    }

    fn mark(position: WatermarkPosition) -> Watermark<'static> {
        Watermark { mark: Mark::Text("© darkroom"), position, opacity: 0.5, size: 0.05, color: Color([255, 255, 255]) }
    }

    fn logo_png() -> Vec<u8> {
        // 40×20: opaque red on the left half, transparent on the right.
        let logo =
            RgbaImage::from_fn(
                40,
                20,
                |x, _| if x < 20 { image::Rgba([255, 0, 0, 255]) } else { image::Rgba([0, 0, 0, 0]) },
            );
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(logo).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        png
    }

    #[test]
    fn an_image_mark_scales_with_the_photo_and_keeps_its_transparency() {
        let mut images = WatermarkImages::default();
        images.add("logo.png", &logo_png()).expect("a PNG");
        let image_mark =
            |position| Watermark { mark: Mark::Image("logo.png"), opacity: 1.0, size: 0.1, ..mark(position) };
        let mut small = grey(400, 300);
        let mut large = grey(1600, 1200);
        draw(&mut small, &image_mark(WatermarkPosition::BottomRight), &images).expect("draws");
        draw(&mut large, &image_mark(WatermarkPosition::BottomRight), &images).expect("draws");
        // 10% of the short side tall: 30 px and 120 px; the opaque half 30 and 120 px wide
        // (and the few pixels the resampler blends into the transparent half).
        let (sx0, sy0, sx1, sy1) = marked(&small).expect("marked");
        let (lx0, ly0, lx1, ly1) = marked(&large).expect("marked");
        assert!(
            (29..=31).contains(&(sy1 - sy0 + 1)) && (29..=36).contains(&(sx1 - sx0 + 1)),
            "{sx0},{sy0}–{sx1},{sy1}"
        );
        assert!(
            (118..=122).contains(&(ly1 - ly0 + 1)) && (118..=144).contains(&(lx1 - lx0 + 1)),
            "{lx0},{ly0}–{lx1},{ly1}"
        );
        // Bottom right with a margin of half its height (15 px): the logo starts 15 + 60 px
        // from the right edge, and ends 15 px above the bottom.
        assert!((284..=286).contains(&sy1), "bottom: {sy1}");
        assert!((324..=326).contains(&sx0), "left edge of the logo: {sx0}");
        let red = small.to_rgb8().get_pixel(sx0 + 5, sy0 + 5).0;
        assert_eq!(red, [255, 0, 0], "opaque at opacity 1");
    }

    #[test]
    fn a_missing_or_bad_image_is_a_clear_error() {
        let images = WatermarkImages::default();
        let missing = Watermark { mark: Mark::Image("logo.png"), ..mark(WatermarkPosition::Center) };
        let error = draw(&mut grey(100, 100), &missing, &images).unwrap_err().to_string();
        assert!(error.contains("logo.png was not sent with the job"), "{error}");
        let mut images = WatermarkImages::default();
        let error = images.add("logo.png", b"not a png at all").unwrap_err().to_string();
        assert!(error.contains("not a readable PNG"), "{error}");
        assert!(images.is_empty());
    }

    #[test]
    fn the_mark_is_the_same_fraction_of_any_photo_and_sits_where_asked() {
        let mut small = grey(400, 300);
        let mut large = grey(1600, 1200);
        let none = WatermarkImages::default();
        draw(&mut small, &mark(WatermarkPosition::BottomRight), &none).expect("draws");
        draw(&mut large, &mark(WatermarkPosition::BottomRight), &none).expect("draws");
        let (sx0, sy0, sx1, sy1) = marked(&small).expect("marked");
        let (lx0, ly0, lx1, ly1) = marked(&large).expect("marked");
        // Four times the photo, four times the mark (within the rasteriser's rounding).
        let ratio = f64::from(lx1 - lx0) / f64::from(sx1 - sx0);
        assert!((3.6..=4.4).contains(&ratio), "widths {} and {}", sx1 - sx0, lx1 - lx0);
        assert!(sx0 > 200 && sy0 > 250 && sx1 < 400 && sy1 < 300, "bottom right: {sx0},{sy0}–{sx1},{sy1}");
        assert!(lx0 > 800 && ly0 > 1000, "bottom right: {lx0},{ly0}–{lx1},{ly1}");

        let mut top_left = grey(400, 300);
        draw(&mut top_left, &mark(WatermarkPosition::TopLeft), &none).expect("draws");
        let (x0, y0, x1, _) = marked(&top_left).expect("marked");
        assert!(x0 < 20 && y0 < 20 && x1 < 200, "top left: {x0},{y0}–{x1}");
    }

    #[test]
    fn opacity_zero_leaves_the_photo_as_it_was() {
        let mut photo = grey(200, 100);
        let none = WatermarkImages::default();
        draw(&mut photo, &Watermark { opacity: 0.0, ..mark(WatermarkPosition::Center) }, &none).expect("draws");
        assert_eq!(marked(&photo), None);
    }
}
