//! `customize`: brightness, contrast, saturation, sharpen, rotate, flip, border, caption —
//! applied in that order (DESIGN.md), whatever order the keys had in the recipe.

use crate::color::{apply_lut, luma, map_pixels};
use crate::pipeline::Photo;
use crate::ImagingError;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use darkroom_core::recipe::{Border, Caption, CaptionPosition, Customize, Flip};
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
    if let Some(border) = &settings.border {
        add_border(photo, border)?;
    }
    if let Some(caption) = &settings.caption {
        draw_caption(&mut photo.image, caption)?;
    }
    Ok(())
}

/// Unsharp mask: add back `amount` times the difference from a blurred copy.
fn sharpen(image: &mut DynamicImage, amount: f32) {
    let blurred = image.fast_blur(1.2);
    let (DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) = image else {
        return;
    };
    let channels = usize::from(image.color().channel_count());
    let blurred_bytes = blurred.as_bytes().to_vec();
    let bytes: &mut [u8] = match image {
        DynamicImage::ImageRgb8(buffer) => buffer,
        DynamicImage::ImageRgba8(buffer) => buffer,
        _ => return,
    };
    for (index, (value, soft)) in bytes.iter_mut().zip(blurred_bytes).enumerate() {
        if channels == 4 && index % 4 == 3 {
            continue;
        }
        let original = f32::from(*value);
        *value = clamp_u8(original + amount * (original - f32::from(soft)));
    }
}

fn add_border(photo: &mut Photo, border: &Border) -> Result<(), ImagingError> {
    let (width, height) = photo.image.dimensions();
    let new_width = width.checked_add(border.width * 2);
    let new_height = height.checked_add(border.width * 2);
    let (Some(new_width), Some(new_height)) = (new_width, new_height) else {
        return Err(ImagingError::op("customize", "border makes the image too large"));
    };
    let [r, g, b] = border.color.0;
    let mut framed = match &photo.image {
        DynamicImage::ImageRgba8(_) => {
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(new_width, new_height, image::Rgba([r, g, b, 255])))
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_pixel(new_width, new_height, image::Rgb([r, g, b]))),
    };
    image::imageops::replace(&mut framed, &photo.image, i64::from(border.width), i64::from(border.width));
    photo.image = framed;
    photo.frame = photo.frame.translated(f64::from(border.width), f64::from(border.width));
    Ok(())
}

fn blend(image: &mut DynamicImage, x: u32, y: u32, color: [u8; 3], alpha: f32) {
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

/// White text on a darkened band across the top or bottom, sized to the photo and shrunk
/// to fit its width.
fn draw_caption(image: &mut DynamicImage, caption: &Caption) -> Result<(), ImagingError> {
    let font = FontRef::try_from_slice(CAPTION_FONT)
        .map_err(|e| ImagingError::op("customize", format!("caption font: {e}")))?;
    let (width, height) = image.dimensions();
    let text: String = caption.text.chars().filter(|c| !c.is_control()).collect();
    let measure = |size: f32| {
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
    };
    let mut size = (height as f32 / 14.0).clamp(10.0, 200.0);
    let text_width = measure(size);
    let room = width as f32 * 0.92;
    if text_width > room && text_width > 0.0 {
        size = (size * room / text_width).max(6.0);
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
    let total = measure(size);
    let mut pen_x = ((width as f32 - total) / 2.0).max(0.0);
    let baseline =
        band_top as f32 + (band_height as f32 - (scaled.ascent() - scaled.descent())) / 2.0 + scaled.ascent();
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
                    blend(image, x as u32, y as u32, [255, 255, 255], coverage.min(1.0));
                }
            });
        }
    }
    Ok(())
}
