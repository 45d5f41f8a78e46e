//! `watermark`: a line of text on the photo, its height a fraction of the photo's short
//! side, so a batch of mixed sizes carries the same mark; in a corner or the centre, with
//! a margin of half its height, at the recipe's opacity. A faint dark outline under light
//! text (and a light one under dark) keeps it legible on any background.

use crate::adjust::{caption_font, draw_text, text_width};
use crate::ImagingError;
use ab_glyph::{Font, PxScale, ScaleFont};
use darkroom_core::recipe::{Color, WatermarkPosition};
use image::DynamicImage;

#[derive(Debug)]
pub(crate) struct Watermark<'a> {
    pub text: &'a str,
    pub position: WatermarkPosition,
    pub opacity: f32,
    /// The line's height as a fraction of the short side.
    pub size: f32,
    pub color: Color,
}

pub(crate) fn draw(image: &mut DynamicImage, mark: &Watermark<'_>) -> Result<(), ImagingError> {
    let font = caption_font()?;
    let (width, height) = (image.width() as f32, image.height() as f32);
    let line = (mark.size * width.min(height)).max(6.0);
    // ab_glyph's scale is the font's ascent-to-descent height: the line's.
    let mut size = line;
    let room = width * 0.9;
    let measured = text_width(&font, mark.text, size);
    if measured > room && measured > 0.0 {
        size = (size * room / measured).max(6.0);
    }
    let scaled = font.as_scaled(PxScale::from(size));
    let text_w = text_width(&font, mark.text, size);
    let text_h = scaled.ascent() - scaled.descent();
    let margin = line / 2.0;
    let x = match mark.position {
        WatermarkPosition::BottomLeft | WatermarkPosition::TopLeft => margin,
        WatermarkPosition::BottomRight | WatermarkPosition::TopRight => width - margin - text_w,
        WatermarkPosition::Center => (width - text_w) / 2.0,
    }
    .max(0.0);
    let top = match mark.position {
        WatermarkPosition::TopLeft | WatermarkPosition::TopRight => margin,
        WatermarkPosition::BottomLeft | WatermarkPosition::BottomRight => height - margin - text_h,
        WatermarkPosition::Center => (height - text_h) / 2.0,
    }
    .max(0.0);
    let baseline = top + scaled.ascent();
    let color = mark.color.0;
    let light = crate::color::luma(color) > 128.0;
    let outline = if light { [0, 0, 0] } else { [255, 255, 255] };
    let offset = (size / 24.0).max(1.0);
    for (dx, dy) in [(-offset, 0.0), (offset, 0.0), (0.0, -offset), (0.0, offset)] {
        draw_text(image, &font, mark.text, size, (x + dx, baseline + dy), outline, mark.opacity * 0.25);
    }
    draw_text(image, &font, mark.text, size, (x, baseline), color, mark.opacity);
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
        Watermark { text: "© darkroom", position, opacity: 0.5, size: 0.05, color: Color([255, 255, 255]) }
    }

    #[test]
    fn the_mark_is_the_same_fraction_of_any_photo_and_sits_where_asked() {
        let mut small = grey(400, 300);
        let mut large = grey(1600, 1200);
        draw(&mut small, &mark(WatermarkPosition::BottomRight)).expect("draws");
        draw(&mut large, &mark(WatermarkPosition::BottomRight)).expect("draws");
        let (sx0, sy0, sx1, sy1) = marked(&small).expect("marked");
        let (lx0, ly0, lx1, ly1) = marked(&large).expect("marked");
        // Four times the photo, four times the mark (within the rasteriser's rounding).
        let ratio = f64::from(lx1 - lx0) / f64::from(sx1 - sx0);
        assert!((3.6..=4.4).contains(&ratio), "widths {} and {}", sx1 - sx0, lx1 - lx0);
        assert!(sx0 > 200 && sy0 > 250 && sx1 < 400 && sy1 < 300, "bottom right: {sx0},{sy0}–{sx1},{sy1}");
        assert!(lx0 > 800 && ly0 > 1000, "bottom right: {lx0},{ly0}–{lx1},{ly1}");

        let mut top_left = grey(400, 300);
        draw(&mut top_left, &mark(WatermarkPosition::TopLeft)).expect("draws");
        let (x0, y0, x1, _) = marked(&top_left).expect("marked");
        assert!(x0 < 20 && y0 < 20 && x1 < 200, "top left: {x0},{y0}–{x1}");
    }

    #[test]
    fn opacity_zero_leaves_the_photo_as_it_was() {
        let mut photo = grey(200, 100);
        draw(&mut photo, &Watermark { opacity: 0.0, ..mark(WatermarkPosition::Center) }).expect("draws");
        assert_eq!(marked(&photo), None);
    }
}
