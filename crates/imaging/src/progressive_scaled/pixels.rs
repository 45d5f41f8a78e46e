//! Coefficients to pixels: the reduced IDCT, chroma upsampling and YCbCr to RGB.

use super::{Component, Layout};
use image::RgbImage;

/// One component's pixels at the reduced scale, clamped to 0–255 as libjpeg does before
/// upsampling.
pub(super) struct Plane {
    pixels: Vec<u8>,
    /// Row length (the padded block grid's), and the part that carries the image.
    stride: usize,
    used_wide: usize,
    used_high: usize,
    h: usize,
    v: usize,
}

impl Plane {
    /// The scaled IDCT of every block, the n-point inverse DCT of its n×n lowest
    /// frequencies (what libjpeg's reduced IDCTs compute), in floating point. The
    /// component's coefficients are dropped as it returns.
    pub(super) fn from_coefficients(component: Component, layout: &Layout) -> Self {
        let pixels = match layout.side {
            4 => inverse_dct::<4, 16>(&component),
            2 => inverse_dct::<2, 4>(&component),
            _ => inverse_dct::<1, 1>(&component),
        };
        let scaled = |component_pixels: usize| (component_pixels * layout.side).div_ceil(8).max(1);
        Self {
            pixels,
            stride: component.blocks_wide * layout.side,
            used_wide: scaled((layout.width * component.h).div_ceil(layout.h_max)),
            used_high: scaled((layout.height * component.v).div_ceil(layout.v_max)),
            h: component.h,
            v: component.v,
        }
    }
}

/// A float in 0–255 to the nearest byte (faster than `round`, which is a libm call).
#[inline]
fn to_byte(value: f32) -> u8 {
    (value + 0.5).clamp(0.0, 255.0) as u8
}

/// The pixels of a component's blocks at N×N each (`AREA` = N×N), row by row over its
/// padded block grid.
fn inverse_dct<const N: usize, const AREA: usize>(component: &Component) -> Vec<u8> {
    // basis[x][u] = C(u)·cos((2x+1)uπ/2N) / 2, C(0) = 1/√2: with a row and a column factor
    // each, the DC coefficient comes out as its value / 8, the block's average.
    let mut basis = [[0f32; N]; N];
    for (x, row) in basis.iter_mut().enumerate() {
        for (u, factor) in row.iter_mut().enumerate() {
            let c = if u == 0 { std::f32::consts::FRAC_1_SQRT_2 } else { 1.0 };
            let angle = (2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / (2 * N) as f32;
            *factor = c * angle.cos() / 2.0;
        }
    }
    let table = component.quantisers.unwrap_or([0; 64]);
    let mut quantisers = [0f32; AREA];
    for v in 0..N {
        for u in 0..N {
            quantisers[v * N + u] = f32::from(table[v * 8 + u]);
        }
    }
    let stride = component.blocks_wide * N;
    let mut pixels = vec![0u8; stride * component.blocks_high * N];
    for (block, coefficients) in component.kept.chunks_exact(AREA).enumerate() {
        let (block_row, block_column) = (block / component.blocks_wide, block % component.blocks_wide);
        let mut dequantised = [0f32; AREA];
        for (value, (&coefficient, &quantiser)) in dequantised.iter_mut().zip(coefficients.iter().zip(&quantisers)) {
            *value = f32::from(coefficient) * quantiser;
        }
        // Rows first (rows[v][x]), then columns.
        let mut rows = [[0f32; N]; N];
        for v in 0..N {
            for x in 0..N {
                let mut sum = 0.0;
                for u in 0..N {
                    sum += dequantised[v * N + u] * basis[x][u];
                }
                rows[v][x] = sum;
            }
        }
        for (y, weights) in basis.iter().enumerate() {
            let line = (block_row * N + y) * stride + block_column * N;
            let out = &mut pixels[line..line + N];
            for (x, pixel) in out.iter_mut().enumerate() {
                let mut sum = 128.0;
                for (weight, row) in weights.iter().zip(&rows) {
                    sum += weight * row[x];
                }
                *pixel = to_byte(sum);
            }
        }
    }
    pixels
}

/// Where an output pixel's centre falls in a plane along one axis: the two neighbouring
/// plane pixels and the weight of the second (linear interpolation, as libjpeg's "fancy"
/// upsampling does for subsampled chroma; weight 0 for a full-resolution plane).
fn taps(out: usize, factor: usize, max_factor: usize, used: usize) -> (usize, usize, f32) {
    let position = ((out as f32 + 0.5) * factor as f32 / max_factor as f32 - 0.5).max(0.0);
    let below = (position.floor() as usize).min(used - 1);
    let above = (below + 1).min(used - 1);
    (below, above, position - below as f32)
}

/// The planes as one RGB picture: subsampled chroma brought up to the luma grid, YCbCr to
/// RGB as JFIF defines it. One output row at a time: each plane's row is interpolated into
/// a line of the output's width, then the lines are converted together.
pub(super) fn to_rgb(planes: &[Plane], layout: &Layout) -> RgbImage {
    let out_w = (layout.width * layout.side).div_ceil(8).max(1);
    let out_h = (layout.height * layout.side).div_ceil(8).max(1);
    let column_taps: Vec<Vec<(usize, usize, f32)>> = planes
        .iter()
        .map(|plane| (0..out_w).map(|x| taps(x, plane.h, layout.h_max, plane.used_wide)).collect())
        .collect();
    let mut rows: Vec<Vec<f32>> = planes.iter().map(|plane| vec![0f32; plane.used_wide]).collect();
    let mut lines: Vec<Vec<f32>> = planes.iter().map(|_| vec![0f32; out_w]).collect();
    let mut image = RgbImage::new(out_w as u32, out_h as u32);
    for (y, output) in image.chunks_exact_mut(out_w * 3).enumerate() {
        for (((plane, row), line), columns) in planes.iter().zip(&mut rows).zip(&mut lines).zip(&column_taps) {
            let (y0, y1, fy) = taps(y, plane.v, layout.v_max, plane.used_high);
            let top = &plane.pixels[y0 * plane.stride..y0 * plane.stride + plane.used_wide];
            let bottom = &plane.pixels[y1 * plane.stride..y1 * plane.stride + plane.used_wide];
            for ((value, &a), &b) in row.iter_mut().zip(top).zip(bottom) {
                *value = f32::from(a) + (f32::from(b) - f32::from(a)) * fy;
            }
            if plane.h == layout.h_max {
                line.copy_from_slice(&row[..out_w]);
            } else {
                for (value, &(x0, x1, fx)) in line.iter_mut().zip(columns) {
                    *value = row[x0] + (row[x1] - row[x0]) * fx;
                }
            }
        }
        if let [luma, cb, cr] = lines.as_slice() {
            for (((pixel, &y), &cb), &cr) in output.chunks_exact_mut(3).zip(luma).zip(cb).zip(cr) {
                let (cb, cr) = (cb - 128.0, cr - 128.0);
                pixel[0] = to_byte(y + 1.402 * cr);
                pixel[1] = to_byte(y - 0.344_136 * cb - 0.714_136 * cr);
                pixel[2] = to_byte(y + 1.772 * cb);
            }
        } else {
            for (pixel, &y) in output.chunks_exact_mut(3).zip(&lines[0]) {
                pixel.fill(to_byte(y));
            }
        }
    }
    image
}
