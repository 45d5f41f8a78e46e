//! JPEGs at 1/2, 1/4 or 1/8 scale from the coefficients the scale needs: progressive ones in
//! little memory, baseline ones (in the default build) with less work.
//!
//! A progressive JPEG sends its coefficients in several scans over the whole photo, so a
//! decoder must keep every block's coefficients until the last scan: libjpeg and
//! jpeg-decoder keep all 64 of every block, two bytes each (a 33 MP photo: 100 MB before a
//! pixel exists). A reduced-scale decode needs only the n×n coefficients of lowest frequency
//! (n = 4, 2, 1 at 1/2, 1/4, 1/8); what the later scans' bitstream depends on is otherwise only
//! *which* coefficients are non-zero so far (a refinement scan sends a correction bit for each
//! of those and counts zero runs over the others). So each block keeps n×n coefficients and a
//! 64-bit map: 40 or 16 bytes instead of 128. At 1/8 the AC scans are skipped unread (2 bytes
//! a block, no map), the picture being the blocks' averages. A baseline JPEG's one scan
//! carries each block's coefficients together: those not kept are read past, neither
//! dequantised nor transformed (no map needed). See docs/ARCHITECTURE.md ("Decoding big
//! photos").
//!
//! Only the common case is taken — 8-bit Huffman JPEG, progressive or sequential, grey or YCbCr, sampling
//! factors 1–2 — and anything else, or any doubt about the data, returns `None` so that the
//! general decoder takes the file (and reports what is wrong with it). Tests hold the output
//! to jpeg-decoder's at the same scale.

mod entropy;
mod pixels;
mod scans;

use entropy::{Bits, Huffman};
use image::RgbImage;
use pixels::{to_rgb, Plane};
use scans::{decode_ac_first, decode_ac_refinement, decode_dc_scan, Scan, ScanTables};

/// Zig-zag position → natural (row-major) position in an 8×8 block.
const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// More scans than any encoder writes (libjpeg's script has 10, mozjpeg's a few more); a
/// file with hundreds is crafted to make each one cost a pass over every block.
const MAX_SCANS: usize = 64;

/// How many times, on average, the scans may cover each coefficient of a component (an
/// encoder's script covers each about three times: a first scan and two refinements).
const MAX_PASSES: usize = 8;

/// A zig-zag position whose coefficient is not kept.
const NOT_KEPT: u8 = u8::MAX;

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_table: usize,
    /// The quantisation table in natural order, as it was when the component's first scan
    /// began (libjpeg latches it then); `None` until then.
    quantisers: Option<[u16; 64]>,
    /// The kept n×n coefficients of each block, row by row, over the padded block grid.
    kept: Vec<i16>,
    /// For each block, which of its 64 coefficients (bit = zig-zag position) are non-zero
    /// so far; empty when no AC scan is decoded (at 1/8).
    nonzero: Vec<u64>,
    /// The padded block grid (whole MCUs) and the blocks that carry the image.
    blocks_wide: usize,
    blocks_high: usize,
    used_wide: usize,
    used_high: usize,
    /// Whether a first DC scan covered this component.
    dc_seen: bool,
    /// Coefficient positions covered by the scans so far (see `MAX_PASSES`).
    covered: usize,
}

fn u16_at(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?])))
}

/// Where the entropy-coded data that starts at `at` ends: the next marker that is not a
/// stuffed byte or a restart marker.
fn skip_entropy_data(data: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += data.get(at..)?.iter().position(|&b| b == 0xFF)?;
        match data.get(at + 1)? {
            0x00 | 0xD0..=0xD7 | 0xFF => at += 1,
            _ => return Some(at),
        }
    }
}

/// What stays the same through the scans.
struct Layout {
    width: usize,
    height: usize,
    mcus_wide: usize,
    mcus_high: usize,
    h_max: usize,
    v_max: usize,
    /// Kept coefficients per block side (8 >> shift) and where each zig-zag position goes.
    side: usize,
    slot: [u8; 64],
    /// A baseline (sequential) frame: each scan carries its components' every coefficient.
    sequential: bool,
}

/// The photo at 1/2^`shift` scale (`shift` 1–3; each side rounded up, as libjpeg does), if
/// this is a JPEG this decoder takes and its coefficients fit in `max_alloc`
/// bytes; `None` otherwise.
pub(crate) fn decode_scaled(data: &[u8], shift: u32, max_alloc: u64) -> Option<RgbImage> {
    if data.get(0..2)? != [0xFF, 0xD8] || !(1..=3).contains(&shift) {
        return None;
    }
    let side = 8usize >> shift;
    let mut slot = [NOT_KEPT; 64];
    for (zigzag, &natural) in NATURAL.iter().enumerate() {
        let (row, column) = (natural / 8, natural % 8);
        if row < side && column < side {
            slot[zigzag] = (row * side + column) as u8;
        }
    }
    let mut layout =
        Layout { width: 0, height: 0, mcus_wide: 0, mcus_high: 0, h_max: 1, v_max: 1, side, slot, sequential: false };
    let mut quant: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut ac_tables: [Option<Huffman>; 4] = Default::default();
    let mut components: Vec<Component> = Vec::new();
    let mut restart_interval = 0usize;
    let mut adobe_rgb = false;
    let mut jfif = false;
    let mut scans = 0;
    let mut at = 2;
    loop {
        // The next marker (fill bytes allowed).
        while data.get(at) == Some(&0xFF) && data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if *data.get(at)? != 0xFF {
            return None;
        }
        let marker = *data.get(at + 1)?;
        at += 2;
        if marker == 0xD9 {
            break; // EOI
        }
        let length = u16_at(data, at)?;
        let segment = data.get(at + 2..at + length)?;
        match marker {
            // Progressive, and baseline or extended sequential (8-bit precision checked in
            // the frame), all Huffman-coded.
            0xC0..=0xC2 => {
                if !components.is_empty() {
                    return None;
                }
                layout.sequential = marker != 0xC2;
                components = read_frame(segment, &mut layout, max_alloc)?;
            }
            // Any other frame type (lossless, hierarchical, arithmetic): not ours.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDB => {
                let mut rest = segment;
                while let Some(&spec) = rest.first() {
                    let (precision, id) = (spec >> 4, usize::from(spec & 15));
                    let size = if precision == 0 { 64 } else { 128 };
                    let table = rest.get(1..1 + size)?;
                    let mut natural = [0u16; 64];
                    for (zigzag, &position) in NATURAL.iter().enumerate() {
                        natural[position] = if precision == 0 {
                            u16::from(table[zigzag])
                        } else {
                            u16::from_be_bytes([table[2 * zigzag], table[2 * zigzag + 1]])
                        };
                    }
                    *quant.get_mut(id)? = Some(natural);
                    rest = &rest[1 + size..];
                }
            }
            0xC4 => {
                let mut rest = segment;
                while let Some(&spec) = rest.first() {
                    let counts = rest.get(1..17)?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = rest.get(17..17 + total)?;
                    let tables = if spec >> 4 == 0 { &mut dc_tables } else { &mut ac_tables };
                    *tables.get_mut(usize::from(spec & 15))? = Some(Huffman::new(counts, symbols)?);
                    rest = &rest[17 + total..];
                }
            }
            0xDD => restart_interval = u16_at(segment, 0)?,
            0xE0 if segment.starts_with(b"JFIF\0") => jfif = true,
            // Adobe: transform 0 means the three components are RGB, not YCbCr.
            0xEE if segment.starts_with(b"Adobe") && segment.get(11) == Some(&0) => adobe_rgb = true,
            0xDA => {
                if components.is_empty() {
                    return None;
                }
                let scan = Scan::read(segment, &components, layout.sequential)?;
                let start = at + length;
                // At 1/8 the picture is the DC coefficients alone: AC scans are skipped unread.
                if scan.spectral.0 > 0 && side == 1 {
                    at = skip_entropy_data(data, start)?;
                    continue;
                }
                scans += 1;
                if scans > MAX_SCANS {
                    return None;
                }
                for &(index, _) in &scan.components {
                    let component = &mut components[index];
                    if component.quantisers.is_none() {
                        component.quantisers = Some((*quant.get(component.quant_table)?)?);
                    }
                    component.covered += usize::from(scan.spectral.1 - scan.spectral.0) + 1;
                    if component.covered > 64 * MAX_PASSES {
                        return None;
                    }
                }
                let mut bits = Bits::new(data, start);
                if scan.spectral.0 == 0 {
                    let tables = ScanTables { dc: &dc_tables, ac: &ac_tables };
                    decode_dc_scan(&mut bits, &mut components, &scan, tables, &layout, restart_interval)?;
                } else {
                    let (index, table) = scan.components[0];
                    let table = ac_tables.get(table)?.as_ref()?;
                    let component = &mut components[index];
                    if scan.approximation.0 == 0 {
                        decode_ac_first(&mut bits, component, table, &scan, &layout, restart_interval)?;
                    } else {
                        decode_ac_refinement(&mut bits, component, table, &scan, &layout, restart_interval)?;
                    }
                }
                at = skip_entropy_data(data, bits.end()?)?;
                continue;
            }
            _ => {} // APPn, COM and the like
        }
        at += length;
    }
    if components.is_empty() || components.iter().any(|c| !c.dc_seen) {
        return None;
    }
    // Three components are YCbCr when JFIF says so or their ids are 1, 2, 3 (what
    // jpeg-decoder and libjpeg conclude too); an Adobe RGB transform, ids "R","G","B" and
    // anything else unusual go to the general decoder.
    let ids_ycc = components.iter().map(|c| c.id).eq([1, 2, 3]);
    if components.len() == 3 && (adobe_rgb || !(jfif || ids_ycc)) {
        return None;
    }
    let planes: Vec<Plane> =
        components.into_iter().map(|component| Plane::from_coefficients(component, &layout)).collect();
    Some(to_rgb(&planes, &layout))
}

/// SOF0–2: 8-bit, 1 or 3 components, sampling factors 1–2; the coefficient stores allocated
/// once the size is known to fit in `max_alloc`.
fn read_frame(segment: &[u8], layout: &mut Layout, max_alloc: u64) -> Option<Vec<Component>> {
    if segment.first() != Some(&8) {
        return None;
    }
    layout.height = u16_at(segment, 1)?;
    layout.width = u16_at(segment, 3)?;
    let count = usize::from(*segment.get(5)?);
    if layout.width == 0 || layout.height == 0 || !(count == 1 || count == 3) {
        return None;
    }
    let mut components = Vec::with_capacity(count);
    for c in 0..count {
        let spec = segment.get(6 + 3 * c..9 + 3 * c)?;
        let (h, v) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
        if !(1..=2).contains(&h) || !(1..=2).contains(&v) || spec[2] > 3 {
            return None;
        }
        components.push(Component {
            id: spec[0],
            h,
            v,
            quant_table: usize::from(spec[2]),
            quantisers: None,
            kept: Vec::new(),
            nonzero: Vec::new(),
            blocks_wide: 0,
            blocks_high: 0,
            used_wide: 0,
            used_high: 0,
            dc_seen: false,
            covered: 0,
        });
    }
    layout.h_max = components.iter().map(|c| c.h).max()?;
    layout.v_max = components.iter().map(|c| c.v).max()?;
    layout.mcus_wide = layout.width.div_ceil(8 * layout.h_max);
    layout.mcus_high = layout.height.div_ceil(8 * layout.v_max);
    // Per block: its kept coefficients, its map of non-zero ones (not at 1/8), its pixels
    // in the component's plane; and the RGB picture besides.
    let area = layout.side * layout.side;
    let keeps_map = layout.side > 1 && !layout.sequential;
    let per_block = (area * 2 + if keeps_map { 8 } else { 0 } + area) as u64;
    let blocks: usize = components.iter().map(|c| layout.mcus_wide * c.h * layout.mcus_high * c.v).sum();
    let output = 3 * (layout.width * layout.side).div_ceil(8) as u64 * (layout.height * layout.side).div_ceil(8) as u64;
    if (blocks as u64).saturating_mul(per_block).saturating_add(output) > max_alloc {
        return None;
    }
    for component in &mut components {
        component.blocks_wide = layout.mcus_wide * component.h;
        component.blocks_high = layout.mcus_high * component.v;
        component.used_wide = (layout.width * component.h).div_ceil(layout.h_max).div_ceil(8);
        component.used_high = (layout.height * component.v).div_ceil(layout.v_max).div_ceil(8);
        let count = component.blocks_wide * component.blocks_high;
        component.kept = vec![0; count * layout.side * layout.side];
        if keeps_map {
            component.nonzero = vec![0; count];
        }
    }
    Some(components)
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkroom_testkit::fixture;

    #[test]
    fn takes_progressive_and_baseline_photos_and_leaves_the_rest() {
        for (shift, colour_size, grey_size) in
            [(3, (100, 67), (64, 64)), (2, (200, 134), (128, 128)), (1, (400, 267), (256, 256))]
        {
            let colour = decode_scaled(&fixture("coffee-progressive.jpg"), shift, u64::MAX).expect("libjpeg's 4:2:0");
            assert_eq!(colour.dimensions(), colour_size);
            let grey = decode_scaled(&fixture("astronaut-progressive-gray.jpg"), shift, u64::MAX).expect("greyscale");
            assert_eq!(grey.dimensions(), grey_size);
            let baseline = decode_scaled(&fixture("astronaut.jpg"), shift, u64::MAX).expect("baseline");
            assert_eq!(baseline.dimensions(), grey_size);
        }
        // Not a JPEG, or a frame type it does not take (lossless, SOF3).
        assert!(decode_scaled(&fixture("coffee.png"), 2, u64::MAX).is_none());
        let mut lossless = fixture("astronaut.jpg");
        let sof = lossless.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
        lossless[sof + 1] = 0xC3;
        assert!(decode_scaled(&lossless, 2, u64::MAX).is_none());
        // Coefficients that would not fit in the allowance: the general decoder's turn.
        assert!(decode_scaled(&fixture("coffee-progressive.jpg"), 1, 1000).is_none());
    }

    /// Baseline files through this decoder (not a fallback): the picture jpeg-decoder gives
    /// at the same scale, keeping every coefficient.
    #[test]
    fn baseline_photos_match_a_full_entropy_decode() {
        for name in ["astronaut.jpg", "chelsea.jpg", "rocket.jpg", "coffee.jpg"] {
            let bytes = fixture(name);
            for shift in 1..=3u32 {
                let got = decode_scaled(&bytes, shift, u64::MAX).expect("a baseline JPEG is taken");
                let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
                decoder.read_info().expect("a JPEG");
                let info = decoder.info().expect("its header");
                let (width, height) =
                    (u16::try_from(got.width()).expect("small"), u16::try_from(got.height()).expect("small"));
                decoder.scale(width, height).expect("scales");
                let pixels = decoder.decode().expect("decodes");
                let expected = decoder.info().expect("its header");
                assert_eq!(
                    (expected.width, expected.height),
                    (width, height),
                    "{name} from {}×{}",
                    info.width,
                    info.height
                );
                let channels = pixels.len() / (usize::from(width) * usize::from(height));
                let mut total = 0u64;
                for (index, pixel) in got.pixels().enumerate() {
                    for (channel, &value) in pixel.0.iter().enumerate() {
                        let theirs = pixels[index * channels + channel.min(channels - 1)];
                        total += u64::from(value.abs_diff(theirs));
                    }
                }
                let mean = total as f64 / (got.as_raw().len() as f64);
                // A floating-point IDCT against an integer one; at 1/8 jpeg-decoder truncates
                // each block's average where libjpeg and this decoder round it.
                assert!(
                    mean < if shift == 3 { 1.2 } else { 0.5 },
                    "{name} at 1/{}: mean difference {mean:.2}",
                    1 << shift
                );
            }
        }
    }

    #[test]
    fn refuses_scans_the_standard_does_not_allow() {
        let whole = fixture("coffee-progressive.jpg");
        let sos = whole.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap_or_default();
        // The first scan names its components: list the first one twice.
        let mut repeated = whole.clone();
        repeated[sos + 7] = repeated[sos + 5];
        for shift in 1..=3 {
            assert!(decode_scaled(&repeated, shift, u64::MAX).is_none());
        }
        // A DC scan whose data ends before its blocks do.
        let next_marker = sos
            + 2
            + whole[sos + 2..]
                .windows(2)
                .position(|w| w[0] == 0xFF && w[1] != 0 && !(0xD0..=0xD7).contains(&w[1]))
                .unwrap_or_default();
        let mut short = whole[..sos + 40].to_vec();
        short.extend_from_slice(&whole[next_marker..]);
        for shift in 1..=3 {
            assert!(decode_scaled(&short, shift, u64::MAX).is_none());
        }
    }
}
