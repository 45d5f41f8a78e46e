//! Teeth whitening, found the way teeth look rather than by brightness alone.
//!
//! In a mouth area (from the face's geometry, or a region the user drew) three kinds of
//! pixels meet: skin, lips and the mouth's inside. What tells teeth apart is CIE a*, the
//! red–green axis: skin is warm (a* ≈ 8–15), lips and gums redder still, while teeth —
//! white or yellow — sit near a* ≈ 0–5; yellow is b*, the other axis, so yellowing does
//! not make teeth look like skin. So:
//!
//! 1. the skin's redness and brightness are measured on the area's border (skin surrounds
//!    the mouth), which makes every threshold relative: pale or dark skin, warm or cool light;
//! 2. candidates are pixels markedly less red than that skin and not dark; yellow teeth
//!    qualify (yellow is blue missing, not red), pale skin and lips do not;
//! 3. each connected group of candidates must sit *inside* the mouth: most of the pixels
//!    around it are lip or dark mouth gap, not skin. A highlight on a chin or cheek is
//!    surrounded by skin and is left alone; a closed mouth has no candidates at all;
//! 4. the mask is feathered, and faded to nothing before the area's border, so no edit has
//!    a hard edge; under it yellow is cut (blue raised towards the red–green mean) and the
//!    teeth lifted a little.

use crate::faces::Area;
use image::DynamicImage;

/// CIE L* and a* of an sRGB pixel (D65).
fn lightness_and_redness(rgb: [f32; 3]) -> (f32, f32) {
    let [lightness, redness, _] = crate::color::lab_from_linear(rgb.map(crate::color::srgb_to_linear));
    (lightness, redness)
}

/// Candidates have an a* below this share of the skin's (or below [`TEETH_REDNESS_FLOOR`])...
const TEETH_REDNESS: f32 = 0.75;
const TEETH_REDNESS_FLOOR: f32 = 3.0;
/// ... and an L* above this share of the skin's.
const TEETH_BRIGHTNESS: f32 = 0.6;
/// Above and below at least this share of a group's columns there is lip or mouth gap.
const ENCLOSURE: f32 = 0.45;

fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable_by(middle, f32::total_cmp).1
}

/// The area is analysed on at most this many samples: a mouth needs far fewer, and a huge
/// region drawn by a user must not cost gigabytes (the mask is sampled back up).
const MAX_SAMPLES: usize = 1_000_000;

/// Where the samples of an area are: every `step` pixels of the `width`×`height` area at
/// (`x0`, `y0`), a `w`×`h` grid. The pixels read and the weights computed share it.
#[derive(Debug, Clone, Copy)]
struct Grid {
    x0: u32,
    y0: u32,
    width: u32,
    height: u32,
    step: u32,
    w: usize,
    h: usize,
}

/// The area's pixels, sampled on its grid, read once.
struct Patch {
    grid: Grid,
    rgb: Vec<[f32; 3]>,
}

impl Patch {
    fn read(image: &DynamicImage, area: &Area) -> Option<Self> {
        let (x0, y0, x1, y1) = area.clamp(image.width(), image.height())?;
        let (width, height) = (x1 - x0, y1 - y0);
        let area_pixels = u64::from(width) * u64::from(height);
        let step = ((area_pixels as f64 / MAX_SAMPLES as f64).sqrt().ceil() as u32).max(1);
        let (w, h) = (width.div_ceil(step) as usize, height.div_ceil(step) as usize);
        if w < 6 || h < 4 {
            return None;
        }
        let mut rgb = Vec::with_capacity(w * h);
        for y in (y0..y1).step_by(step as usize) {
            for x in (x0..x1).step_by(step as usize) {
                rgb.push(crate::retouch::pixel(image, x, y).map(f32::from));
            }
        }
        Some(Self { grid: Grid { x0, y0, width, height, step, w, h }, rgb })
    }
}

/// A weight (0–1) per sample of the area: how much to whiten there.
pub(crate) struct TeethMask {
    grid: Grid,
    weights: Vec<f32>,
}

impl TeethMask {
    /// The weight at an image pixel of the area, interpolated between samples.
    fn weight_at(&self, x: u32, y: u32) -> f32 {
        let Grid { x0, y0, step, w, h, .. } = self.grid;
        if step == 1 {
            return self.weights[(y - y0) as usize * w + (x - x0) as usize];
        }
        let fx = (x - x0) as f32 / step as f32;
        let fy = (y - y0) as f32 / step as f32;
        let (ix, iy) = ((fx as usize).min(w - 1), (fy as usize).min(h - 1));
        let (jx, jy) = ((ix + 1).min(w - 1), (iy + 1).min(h - 1));
        let (tx, ty) = (fx - ix as f32, fy - iy as f32);
        let at = |x: usize, y: usize| self.weights[y * w + x];
        let top = at(ix, iy) * (1.0 - tx) + at(jx, iy) * tx;
        let bottom = at(ix, jy) * (1.0 - tx) + at(jx, jy) * tx;
        top * (1.0 - ty) + bottom * ty
    }
}

/// Finds the teeth in `area`; `None` when there are none (a closed mouth, no face).
/// `placed` says the area was placed by face geometry (not drawn by the user): the teeth
/// are then expected in its lower two thirds, where the mouth opening is, and not above
/// the upper lip, where a blushing cheek and the lip can enclose a patch of pale skin.
pub(crate) fn find_teeth(image: &DynamicImage, area: &Area, placed: bool) -> Option<TeethMask> {
    let patch = Patch::read(image, area)?;
    let (w, h) = (patch.grid.w, patch.grid.h);
    let (bright, red): (Vec<f32>, Vec<f32>) = patch.rgb.iter().map(|p| lightness_and_redness(*p)).unzip();

    // The skin: the area's border band.
    let band = (w.min(h) / 8).max(1);
    let on_border = |x: usize, y: usize| x < band || y < band || x >= w - band || y >= h - band;
    let (mut skin_red, mut skin_bright) = (Vec::new(), Vec::new());
    for y in 0..h {
        for x in 0..w {
            if on_border(x, y) {
                skin_red.push(red[y * w + x]);
                skin_bright.push(bright[y * w + x]);
            }
        }
    }
    let skin_red = median(&mut skin_red);
    let skin_bright = median(&mut skin_bright).max(10.0);
    let red_limit = (skin_red * TEETH_REDNESS).max(TEETH_REDNESS_FLOOR);
    let candidate: Vec<bool> = (0..w * h)
        .map(|i| {
            red[i] < red_limit && bright[i] > skin_bright * TEETH_BRIGHTNESS && {
                // Teeth are never bluer than they are red or green.
                let [r, g, b] = patch.rgb[i];
                b <= r.max(g) + 6.0
            }
        })
        .collect();

    // Lips: pixels redder than skin.
    let lip_red = skin_red + (0.25 * skin_red).max(2.0);
    let lips: Vec<bool> = red.iter().map(|&r| r > lip_red).collect();

    let mut keep = vec![false; w * h];
    let mut seen = vec![false; w * h];
    let min_size = ((w * h) as f32 * 0.002).max(4.0) as usize;
    for start in 0..w * h {
        if !candidate[start] || seen[start] {
            continue;
        }
        let group = flood(&candidate, &mut seen, w, h, start);
        // Teeth lie inside the area: a group that runs out of it is skin or background
        // (a few of its pixels may reach the border on a face turned in the picture).
        let on_edge = group.iter().filter(|&&i| on_border(i % w, i / w)).count();
        if group.len() < min_size || on_edge * 6 > group.len() {
            continue;
        }
        let centre_y = group.iter().map(|&i| (i / w) as f32).sum::<f32>() / group.len() as f32;
        if placed && centre_y < h as f32 * 0.34 {
            continue;
        }
        // Above and below each column of the group, within a few pixels, there must be
        // mouth — lip (redder than skin) or something far darker than the teeth (a gap, or
        // lips on dark skin) — not skin: a highlight on skin has only skin or a soft shadow
        // around it.
        let reach = (h / 5).max(3);
        let group_bright = group.iter().map(|&i| bright[i]).sum::<f32>() / group.len() as f32;
        let is_mouth = |i: usize| lips[i] || bright[i] < group_bright * 0.5;
        let mut columns: std::collections::BTreeMap<usize, (usize, usize)> = std::collections::BTreeMap::new();
        for &i in &group {
            let (x, y) = (i % w, i / w);
            let span = columns.entry(x).or_insert((y, y));
            span.0 = span.0.min(y);
            span.1 = span.1.max(y);
        }
        let total = columns.len();
        let mouth = columns
            .iter()
            .filter(|(&x, &(top, bottom))| {
                let above = (top.saturating_sub(reach)..top).any(|y| is_mouth(y * w + x));
                let below = (bottom + 1..(bottom + 1 + reach).min(h)).any(|y| is_mouth(y * w + x));
                above && below
            })
            .count();
        if total > 0 && mouth as f32 >= total as f32 * ENCLOSURE {
            for &i in &group {
                keep[i] = true;
            }
        }
    }
    if !keep.iter().any(|&k| k) {
        return None;
    }

    // The weight is smooth in space (the kept teeth, blurred) times smooth in colour (1
    // for teeth-coloured pixels, fading to 0 as they get as red as lips or gums), so two
    // neighbours of about the same colour always change by about the same amount: no
    // blotches inside the teeth, no step where the edit ends, lipstick left alone.
    let radius = (w / 60).max(1);
    let spatial = feather(&keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect::<Vec<f32>>(), w, h, radius);
    let smoothstep = |edge0: f32, edge1: f32, v: f32| {
        let t = ((v - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
        t * t * (3.0 - 2.0 * t)
    };
    // The colour test runs on a slightly blurred redness, and its result is blurred again:
    // JPEG noise makes neighbouring teeth pixels differ in redness, and a weight that
    // followed every pixel would whiten the teeth in blotches.
    let smooth_red = blur(&red, w, h, 1);
    let colour: Vec<f32> =
        (0..w * h).map(|i| spatial[i] * smoothstep(red_limit + 2.0, red_limit - 1.0, smooth_red[i])).collect();
    let mut weights = blur(&colour, w, h, radius);
    // Lips, gums and lipstick keep their colour: nothing clearly redder than the skin is
    // changed (judged on the smoothed redness, so that noise makes no speckles), and
    // nothing much darker than the teeth (dark lips, the mouth's inside) is lightened.
    let kept = keep.iter().filter(|&&k| k).count().max(1) as f32;
    let teeth_bright = (0..w * h).filter(|&i| keep[i]).map(|i| bright[i]).sum::<f32>() / kept;
    for i in 0..w * h {
        weights[i] *= 1.0 - smoothstep(skin_red + 1.0, skin_red + 8.0, smooth_red[i]);
        weights[i] *= smoothstep(teeth_bright * 0.45, teeth_bright * 0.75, bright[i]);
    }
    // Fade to zero towards the area's border: no edit may end on a box edge.
    let fade = (band as f32).max(2.0);
    for y in 0..h {
        for x in 0..w {
            let distance = x.min(y).min(w - 1 - x).min(h - 1 - y) as f32;
            weights[y * w + x] *= (distance / fade).clamp(0.0, 1.0);
        }
    }
    Some(TeethMask { grid: patch.grid, weights })
}

fn flood(candidate: &[bool], seen: &mut [bool], w: usize, h: usize, start: usize) -> Vec<usize> {
    let mut group = Vec::new();
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(index) = stack.pop() {
        group.push(index);
        let (x, y) = (index % w, index / w);
        for (dx, dy) in [(-1i64, -1i64), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                continue;
            }
            let next = ny as usize * w + nx as usize;
            if candidate[next] && !seen[next] {
                seen[next] = true;
                stack.push(next);
            }
        }
    }
    group
}

/// A separable box blur, twice (close to a Gaussian); the teeth's own pixels keep at
/// least most of their strength, so small teeth are whitened to their edges.
fn feather(mask: &[f32], w: usize, h: usize, radius: usize) -> Vec<f32> {
    let twice = blur(&blur(mask, w, h, radius), w, h, radius);
    twice.iter().zip(mask).map(|(soft, hard)| soft.max(hard * 0.85)).collect()
}

/// A separable box blur of `radius` (running sums: the cost does not grow with it).
fn blur(input: &[f32], w: usize, h: usize, radius: usize) -> Vec<f32> {
    fn line(get: impl Fn(usize) -> f32, len: usize, radius: usize, mut put: impl FnMut(usize, f32)) {
        let mut prefix = Vec::with_capacity(len + 1);
        prefix.push(0f32);
        for i in 0..len {
            prefix.push(prefix[i] + get(i));
        }
        for i in 0..len {
            let (lo, hi) = (i.saturating_sub(radius), (i + radius).min(len - 1));
            put(i, (prefix[hi + 1] - prefix[lo]) / (hi - lo + 1) as f32);
        }
    }
    let mut horizontal = vec![0f32; w * h];
    for y in 0..h {
        line(|x| input[y * w + x], w, radius, |x, v| horizontal[y * w + x] = v);
    }
    let mut out = vec![0f32; w * h];
    for x in 0..w {
        line(|y| horizontal[y * w + x], h, radius, |y, v| out[y * w + x] = v);
    }
    out
}

/// Whitens under the mask: yellow cut (blue raised towards the red–green mean, a slight
/// red cast evened out) and the teeth lifted, in proportion to `strength` (0–1).
pub(crate) fn whiten(image: &mut DynamicImage, mask: &TeethMask, strength: f32) -> bool {
    let strength = strength.clamp(0.0, 1.0);
    let mut touched = false;
    let Grid { x0, y0, width, height, .. } = mask.grid;
    for py in y0..y0 + height {
        for px in x0..x0 + width {
            let weight = mask.weight_at(px, py);
            if weight < 0.004 {
                continue;
            }
            let [r, g, b] = crate::retouch::pixel(image, px, py).map(f32::from);
            let cut = (1.8 * strength).min(1.0) * weight;
            let neutral = (r + g) / 2.0;
            let b = b + (neutral - b).max(0.0) * cut;
            let r = r - (r - g).max(0.0) * 0.4 * cut;
            let lift = 0.4 * strength * weight;
            let out = [r, g, b].map(|c| (c + (255.0 - c) * lift).round().clamp(0.0, 255.0) as u8);
            crate::retouch::set_pixel(image, px, py, out);
            touched = true;
        }
    }
    touched
}
