//! Red-eye reduction and teeth whitening, inside areas given by the user or found on
//! detected faces. Each works only inside its areas, so red lips, red clothes or roses
//! elsewhere in the photo are never touched.

use crate::faces::{self, Area};
use crate::photo::Photo;
use darkroom_core::recipe::Region;
use image::DynamicImage;

/// The areas to work in: the user's regions (original pixels, mapped through the frame),
/// or the areas `locate` finds on detected faces.
fn work_areas(photo: &mut Photo, regions: &Option<Vec<Region>>, locate: impl Fn(&Area) -> Vec<Area>) -> Vec<Area> {
    match regions {
        Some(regions) => regions
            .iter()
            .filter_map(|r| photo.frame.map_region(r.x, r.y, r.width, r.height, photo.width(), photo.height()))
            .map(|(x, y, width, height)| Area { x: x as f32, y: y as f32, width: width as f32, height: height as f32 })
            .collect(),
        None => photo.faces().iter().flat_map(&locate).collect(),
    }
}

/// How red a pixel is compared with its other channels, 0 when not red at all.
pub fn redness([r, g, b]: [u8; 3]) -> f32 {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    (r - g.max(b)).max(0.0)
}

fn is_red_pupil(rgb: [u8; 3]) -> bool {
    let [r, g, b] = rgb.map(f32::from);
    r > 70.0 && r > 1.7 * g.max(b) && redness(rgb) > 45.0
}

pub(crate) fn pixel(image: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    match image {
        DynamicImage::ImageRgb8(buffer) => buffer.get_pixel(x, y).0,
        DynamicImage::ImageRgba8(buffer) => {
            let [r, g, b, _] = buffer.get_pixel(x, y).0;
            [r, g, b]
        }
        other => {
            let [r, g, b, _] = image::GenericImageView::get_pixel(other, x, y).0;
            [r, g, b]
        }
    }
}

pub(crate) fn set_pixel(image: &mut DynamicImage, x: u32, y: u32, rgb: [u8; 3]) {
    match image {
        DynamicImage::ImageRgb8(buffer) => buffer.put_pixel(x, y, image::Rgb(rgb)),
        DynamicImage::ImageRgba8(buffer) => {
            let alpha = buffer.get_pixel(x, y)[3];
            buffer.put_pixel(x, y, image::Rgba([rgb[0], rgb[1], rgb[2], alpha]));
        }
        _ => {}
    }
}

/// The largest 4-connected blob of red-pupil pixels in the area that is round enough to be
/// a pupil; its pixels, as (x, y).
fn pupil_blob(image: &DynamicImage, area: &Area) -> Vec<(u32, u32)> {
    let Some((x0, y0, x1, y1)) = area.clamp(image.width(), image.height()) else { return Vec::new() };
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut red = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            red[y * w + x] = is_red_pupil(pixel(image, x0 + x as u32, y0 + y as u32));
        }
    }
    let mut seen = vec![false; w * h];
    let mut best: Vec<(u32, u32)> = Vec::new();
    for start in 0..w * h {
        if !red[start] || seen[start] {
            continue;
        }
        let mut blob = Vec::new();
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(index) = stack.pop() {
            let (x, y) = (index % w, index / w);
            blob.push((x0 + x as u32, y0 + y as u32));
            let neighbours = [
                (x > 0).then(|| index - 1),
                (x + 1 < w).then(|| index + 1),
                (y > 0).then(|| index - w),
                (y + 1 < h).then(|| index + w),
            ];
            for next in neighbours.into_iter().flatten() {
                if red[next] && !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        let (min_x, max_x) = blob.iter().fold((u32::MAX, 0), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let (min_y, max_y) = blob.iter().fold((u32::MAX, 0), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let (bw, bh) = ((max_x - min_x + 1) as f32, (max_y - min_y + 1) as f32);
        // A pupil is a filled, roughly round blob, not a thin streak or a ring.
        let round = bw / bh < 2.2 && bh / bw < 2.2 && blob.len() as f32 >= 0.45 * bw * bh;
        if round && blob.len() >= 4 && blob.len() > best.len() {
            best = blob;
        }
    }
    best
}

/// Neutralises red pupils: red is replaced by the mean of green and blue and the pupil
/// darkened a little, which keeps the catch-light (not red, so not in the mask) bright.
pub fn reduce_red_eye(photo: &mut Photo, regions: &Option<Vec<Region>>) -> usize {
    let areas = work_areas(photo, regions, |face| faces::eye_areas(face).to_vec());
    let mut fixed = 0;
    for area in areas {
        let blob = pupil_blob(&photo.image, &area);
        if blob.is_empty() {
            continue;
        }
        fixed += 1;
        let mask: std::collections::HashSet<(u32, u32)> = blob.iter().copied().collect();
        // The blob, plus a one-pixel fringe corrected at half strength so no pink ring remains.
        let mut fringe = Vec::new();
        for &(x, y) in &blob {
            for (dx, dy) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx >= 0
                    && ny >= 0
                    && (nx as u32) < photo.width()
                    && (ny as u32) < photo.height()
                    && !mask.contains(&(nx as u32, ny as u32))
                {
                    fringe.push((nx as u32, ny as u32));
                }
            }
        }
        for (points, strength) in [(blob, 1.0f32), (fringe, 0.5)] {
            for (x, y) in points {
                let [r, g, b] = pixel(&photo.image, x, y);
                let target = (f32::from(g) + f32::from(b)) / 2.0 * 0.85;
                let mix = |from: u8, to: f32| {
                    (f32::from(from) * (1.0 - strength) + to * strength).round().clamp(0.0, 255.0) as u8
                };
                if strength < 1.0 && redness([r, g, b]) < 25.0 {
                    continue;
                }
                set_pixel(
                    &mut photo.image,
                    x,
                    y,
                    [mix(r, target), mix(g, f32::from(g) * 0.85), mix(b, f32::from(b) * 0.85)],
                );
            }
        }
    }
    tracing::debug!(pupils = fixed, "red-eye reduction");
    fixed
}

/// Whitens teeth in each mouth area (see `teeth.rs` for how they are found); returns how
/// many mouths were whitened.
pub fn whiten_teeth(photo: &mut Photo, regions: &Option<Vec<Region>>, strength: f32) -> usize {
    let areas = work_areas(photo, regions, |face| vec![faces::mouth_area(face)]);
    let placed = regions.is_none();
    let mut whitened = 0;
    for area in areas {
        if let Some(mask) = crate::teeth::find_teeth(&photo.image, &area, placed) {
            whitened += usize::from(crate::teeth::whiten(&mut photo.image, &mask, strength));
        }
    }
    tracing::debug!(mouths = whitened, "teeth whitening");
    whitened
}
