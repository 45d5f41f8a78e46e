//! `auto_enhance`: white balance, levels, exposure and contrast from the photo's own
//! statistics, as one lookup table per channel.
//!
//! Each correction has a dead zone where a well-exposed, neutral photo sits, and grows
//! smoothly beyond it, so such a photo is left nearly as it is while a tinted, dark, bright
//! or dull one is corrected. Statistics come from at most ~250,000 evenly spread pixels,
//! so the cost is one pass of table lookups whatever the photo's size.
//!
//! - **White balance**: the densest cluster of chromas near grey taken for the neutral
//!   surfaces, their mean colour made grey by per-channel gains in linear light.
//! - **Levels** (the contrast fix): the 0.5th and 99.5th luma percentiles moved out to at
//!   least 12 and 243, so a photo already spanning that range is left alone.
//! - **Exposure**: a gamma curve taking the median luma toward mid-grey, when it lies
//!   outside 85–140.
//! - **Contrast**: spread about the mean when the luma's standard deviation is under 40.

use crate::color::{apply_lut, lab_from_linear, linear_to_srgb, luma, srgb_to_linear};
use image::DynamicImage;

/// Pixels looked at for the statistics, at most.
const SAMPLES: u64 = 250_000;
/// Mid-grey, sRGB-encoded (18 % reflectance).
const MID_GREY: f32 = 118.0;
const EXPOSURE_BAND: (f32, f32) = (85.0, 140.0);
const LEVELS_BLACK: f32 = 12.0;
const LEVELS_WHITE: f32 = 243.0;
const MAX_LEVELS_SLOPE: f32 = 1.6;

fn smoothstep(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

fn evenly_spread_samples(image: &DynamicImage) -> Vec<[u8; 3]> {
    let (channels, bytes): (usize, &[u8]) = match image {
        DynamicImage::ImageRgb8(buffer) => (3, buffer.as_raw()),
        DynamicImage::ImageRgba8(buffer) => (4, buffer.as_raw()),
        _ => return Vec::new(),
    };
    let pixels = (bytes.len() / channels) as u64;
    let step = usize::try_from(pixels.div_ceil(SAMPLES).max(1)).unwrap_or(1);
    bytes.chunks_exact(channels).step_by(step).map(|p| [p[0], p[1], p[2]]).collect()
}

/// CIE a*, b* of a linear-light pixel: how far from grey, and which way.
fn chroma_ab(linear: [f32; 3]) -> (f32, f32) {
    let [_, a, b] = lab_from_linear(linear);
    (a, b)
}

/// Casts this far from grey (a*b* units) are looked for; a colour further out is taken for
/// the subject's own (a ginger cat, a cup of coffee), not the light's.
const CAST_SEARCH_RADIUS: f32 = 30.0;
const CAST_BIN: f32 = 2.0;

/// Per-channel gains (linear light) that make the photo's neutral surfaces grey; ones when
/// there are too few of them to tell, or the cast is too small to matter.
///
/// Neutral surfaces (walls, clothes, clouds, concrete) share one chroma under one light: the
/// densest cluster of chromas near grey is taken for them, and the mean colour of the
/// pixels in it for the light's. A coloured subject filling much of the frame is a cluster
/// further out and does not move it.
fn white_balance_gains(samples: &[[u8; 3]]) -> [f32; 3] {
    const SIDE: usize = (2.0 * CAST_SEARCH_RADIUS / CAST_BIN) as usize + 1;
    let mut points = Vec::new();
    for pixel in samples {
        let linear = pixel.map(|c| srgb_to_linear(f32::from(c)));
        let y = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
        // Neither shadows (noise) nor highlights (clipped channels) say much of the light.
        if !(0.03..=0.85).contains(&y) {
            continue;
        }
        let (a, b) = chroma_ab(linear);
        if a.hypot(b) < CAST_SEARCH_RADIUS {
            points.push((a, b, linear));
        }
    }
    if points.len() < samples.len() / 50 || points.is_empty() {
        return [1.0; 3];
    }
    let bin = |v: f32| (((v + CAST_SEARCH_RADIUS) / CAST_BIN).round() as usize).min(SIDE - 1);
    let mut counts = vec![0f32; SIDE * SIDE];
    for (a, b, _) in &points {
        counts[bin(*b) * SIDE + bin(*a)] += 1.0;
    }
    // Smoothed by a 5×5 box twice (close to a Gaussian of 3 bins), so one busy bin of noise
    // does not win over a broad cluster.
    for _ in 0..2 {
        let mut smoothed = vec![0f32; SIDE * SIDE];
        for row in 0..SIDE {
            for column in 0..SIDE {
                let mut sum = 0.0;
                for dr in row.saturating_sub(2)..=(row + 2).min(SIDE - 1) {
                    for dc in column.saturating_sub(2)..=(column + 2).min(SIDE - 1) {
                        sum += counts[dr * SIDE + dc];
                    }
                }
                smoothed[row * SIDE + column] = sum;
            }
        }
        counts = smoothed;
    }
    let densest = (0..SIDE * SIDE).max_by(|i, j| counts[*i].total_cmp(&counts[*j])).unwrap_or(0);
    let mode_a = (densest % SIDE) as f32 * CAST_BIN - CAST_SEARCH_RADIUS;
    let mode_b = (densest / SIDE) as f32 * CAST_BIN - CAST_SEARCH_RADIUS;
    let (mut sum, mut count) = ([0f64; 3], 0usize);
    for (a, b, linear) in &points {
        if (a - mode_a).hypot(b - mode_b) < 6.0 {
            for c in 0..3 {
                sum[c] += f64::from(linear[c]);
            }
            count += 1;
        }
    }
    if count < points.len() / 100 || count == 0 {
        return [1.0; 3];
    }
    let mean = sum.map(|s| (s / count as f64) as f32);
    let grey = (mean[0] + mean[1] + mean[2]) / 3.0;
    // A channel at (almost) nothing cannot be balanced by a gain: leave the photo be.
    if grey <= 0.0 || mean.iter().any(|m| *m < 1e-4) {
        return [1.0; 3];
    }
    // Under 3 a*b* units the light is as good as white: no change, so a neutral photo is not
    // nudged by its own content; the correction grows in fully by 7. Past 14 the cluster is
    // more likely a warm or cool scene (candlelight, a ginger cat, a sunset) than a wrong
    // white balance: the correction fades out by 22.
    let size = mode_a.hypot(mode_b);
    // A second witness: the colour of the brightest unclipped pixels (white-patch). Under a
    // cast both lean the same way; when they disagree, the cluster is more likely the
    // scene's own colour than the light's, and the photo is left as it is.
    let Some((white_a, white_b)) = highlight_chroma(samples) else {
        return [1.0; 3];
    };
    let agreement = 1.0 - smoothstep(((mode_a - white_a).hypot(mode_b - white_b) - 6.0) / 6.0);
    let keep = smoothstep((size - 3.0) / 4.0) * (1.0 - smoothstep((size - 14.0) / 8.0)) * agreement;
    if keep <= 0.0 {
        return [1.0; 3];
    }
    let gains = mean.map(|m| (1.0 + (grey / m - 1.0) * keep).clamp(0.6, 1.6));
    // Brightness is the exposure step's business: gains keep the luminance.
    let scale = 0.2126 * gains[0] + 0.7152 * gains[1] + 0.0722 * gains[2];
    let gains = gains.map(|g| g / scale);
    if gains.iter().all(|g| g.is_finite()) {
        gains
    } else {
        [1.0; 3]
    }
}

/// The chroma (a*, b*) of the mean of the brightest 5 % of the pixels whose channels are
/// not clipped; `None` if there are too few.
fn highlight_chroma(samples: &[[u8; 3]]) -> Option<(f32, f32)> {
    let mut unclipped: Vec<([f32; 3], f32)> = samples
        .iter()
        .filter(|p| p.iter().all(|c| *c < 250))
        .map(|p| {
            let linear = p.map(|c| srgb_to_linear(f32::from(c)));
            (linear, 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2])
        })
        .collect();
    if unclipped.len() < 100 {
        return None;
    }
    unclipped.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top = &unclipped[..unclipped.len() / 20];
    let mean: [f32; 3] = std::array::from_fn(|c| top.iter().map(|(p, _)| p[c]).sum::<f32>() / top.len() as f32);
    Some(chroma_ab(mean))
}

fn percentile(sorted: &[f32], fraction: f32) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f32 * fraction).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// A curve on sRGB-encoded values (0–255), applied to each channel alike.
type Curve = Box<dyn Fn(f32) -> f32>;

fn levels_curve(lumas: &[f32]) -> Curve {
    let low = percentile(lumas, 0.005);
    let high = percentile(lumas, 0.995);
    // The darkest and brightest half-percent moved out to at least these: a photo whose
    // ends are there already is left alone, a flat one is spread (the contrast fix).
    let (black, white) = (low.min(LEVELS_BLACK), high.max(LEVELS_WHITE));
    if high - low < 24.0 {
        return Box::new(|v| v); // a flat image (a wall, a sky): nothing to spread
    }
    // At most 1.6× the spread: a photo of one flat thing (fog, a plank of wood) is flat on
    // purpose, and stretching it to full range makes noise of its texture.
    let slope = ((white - black) / (high - low)).min(MAX_LEVELS_SLOPE);
    let middle = (low + high) / 2.0;
    let target_middle = ((black + white) / 2.0).clamp(middle - 40.0, middle + 40.0);
    Box::new(move |v| target_middle + (v - middle) * slope)
}

/// `highlights`: the brightest half-percent's luma before levels. A dark photo with bright
/// highlights (a night scene, a launch against the sky) is dark on purpose and is left so;
/// one whose highlights are grey too is under-exposed. `clipped`: the fraction of pixels
/// with a channel at the top. A bright photo with little clipped (snow, a white plank, a
/// high-key portrait) is bright on purpose; one that lost its highlights is over-exposed.
fn exposure_curve(lumas: &[f32], highlights: f32, clipped: f32) -> Curve {
    let median = percentile(lumas, 0.5).clamp(1.0, 254.0);
    let (low, high) = EXPOSURE_BAND;
    // How far outside the band, eased in over 25 levels: continuous at its edges.
    let outside = if median < low {
        smoothstep((low - median) / 25.0) * (1.0 - smoothstep((highlights - 170.0) / 30.0))
    } else {
        smoothstep((median - high) / 25.0) * smoothstep((clipped - 0.02) / 0.08)
    };
    let target = median + (MID_GREY - median) * outside;
    let gamma = ((target / 255.0).ln() / (median / 255.0).ln()).clamp(0.45, 2.2);
    if (gamma - 1.0).abs() < 1e-3 {
        return Box::new(|v| v);
    }
    Box::new(move |v| 255.0 * (v.clamp(0.0, 255.0) / 255.0).powf(gamma))
}

/// The three tables `auto_enhance` at `strength` (0–1) applies to this photo.
pub(crate) fn enhancement_tables(image: &DynamicImage, strength: f32) -> [[u8; 256]; 3] {
    let samples = evenly_spread_samples(image);
    let gains = white_balance_gains(&samples);
    let balanced = |c: usize, v: f32| linear_to_srgb(srgb_to_linear(v) * gains[c]);
    let lumas_after = |curves: &[&Curve]| {
        let mut lumas: Vec<f32> = samples
            .iter()
            .map(|p| {
                let rgb: [f32; 3] =
                    std::array::from_fn(|c| curves.iter().fold(balanced(c, f32::from(p[c])), |v, curve| curve(v)));
                luma(rgb.map(|v| v.round().clamp(0.0, 255.0) as u8))
            })
            .collect();
        lumas.sort_by(f32::total_cmp);
        lumas
    };
    let balanced_lumas = lumas_after(&[]);
    let levels = levels_curve(&balanced_lumas);
    let clipped = samples.iter().filter(|p| p.iter().any(|c| *c >= 250)).count() as f32 / samples.len().max(1) as f32;
    let exposure = exposure_curve(&lumas_after(&[&levels]), percentile(&balanced_lumas, 0.995), clipped);
    // Strength 0.6 (the default) applies 90 % of the measured correction; ⅔ and above, all.
    let amount = (strength * 1.5).clamp(0.0, 1.0);
    std::array::from_fn(|c| {
        std::array::from_fn(|i| {
            let v = i as f32;
            let full = exposure(levels(balanced(c, v)));
            (v + (full - v) * amount).round().clamp(0.0, 255.0) as u8
        })
    })
}

pub(crate) fn auto_enhance(image: &mut DynamicImage, strength: f32) {
    if !matches!(image, DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) {
        *image = DynamicImage::ImageRgb8(image.to_rgb8());
    }
    let tables = enhancement_tables(image, strength);
    apply_lut(image, &tables);
}
