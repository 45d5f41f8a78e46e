//! Progressive JPEGs at 1/8 scale from their DC scans alone.
//!
//! At 1/8 scale every 8×8 block becomes one pixel, the block's average, which is its DC
//! coefficient (what libjpeg's 1×1 IDCT computes). A baseline JPEG interleaves DC and AC
//! coefficients, so every bit must be entropy-decoded anyway; a progressive one sends the DC
//! coefficients in scans of their own, first, and the AC coefficients (most of the file and
//! most of the decoding time) after. This decoder reads the DC scans and skips the AC scans
//! unread: a large progressive photo bound for a thumbnail costs a fraction of a full
//! entropy decode. Tests hold its output to jpeg-decoder's at 1/8.
//!
//! Only the common case is taken — 8-bit progressive Huffman JPEG, grey or YCbCr, sampling
//! factors 1–2 — and anything else, or any doubt about the data, returns `None` so that the
//! general decoder takes the file (and reports what is wrong with it).

use image::RgbImage;

/// More DC scans than any encoder writes (one per component and refinement bit).
const MAX_DC_SCANS: usize = 16;

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_table: usize,
    /// The DC quantiser, as it was when the component's first DC scan began (as libjpeg
    /// latches it); `None` until then.
    quantiser: Option<u16>,
    /// DC coefficients of this component's blocks, row by row over its padded block grid.
    coefficients: Vec<i32>,
    /// The padded block grid (whole MCUs) and the blocks that carry the image.
    blocks_wide: usize,
    blocks_high: usize,
    used_wide: usize,
    used_high: usize,
    /// Whether a first DC scan covered this component.
    seen: bool,
}

/// A Huffman table as canonical code lengths, decoded bit by bit (DC symbols are few:
/// the table is small and each block needs one symbol).
#[derive(Clone, Default)]
struct Huffman {
    /// For each length 1..=16: the first code, the first symbol index, the count.
    first_code: [i32; 17],
    first_index: [usize; 17],
    counts: [usize; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8], symbols: &[u8]) -> Option<Self> {
        let mut table = Self { symbols: symbols.to_vec(), ..Self::default() };
        let (mut code, mut index) = (0i32, 0usize);
        for length in 1..=16 {
            let count = usize::from(counts[length - 1]);
            table.first_code[length] = code;
            table.first_index[length] = index;
            table.counts[length] = count;
            code = (code + count as i32) << 1;
            index += count;
        }
        (index == symbols.len()).then_some(table)
    }
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
    buffer: u32,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], at: usize) -> Self {
        Self { data, at, buffer: 0, count: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        if self.count == 0 {
            let byte = *self.data.get(self.at)?;
            if byte == 0xFF {
                match self.data.get(self.at + 1)? {
                    0x00 => self.at += 2,
                    // The scan's data ran out before its blocks did: a damaged or crafted
                    // file, which the general decoder judges.
                    _ => return None,
                }
            } else {
                self.at += 1;
            }
            self.buffer = u32::from(byte);
            self.count = 8;
        }
        self.count -= 1;
        Some((self.buffer >> self.count) & 1)
    }

    fn bits(&mut self, n: u32) -> Option<i32> {
        let mut value = 0i32;
        for _ in 0..n {
            value = (value << 1) | self.bit()? as i32;
        }
        Some(value)
    }

    fn decode(&mut self, table: &Huffman) -> Option<u8> {
        let mut code = 0i32;
        for length in 1..=16 {
            code = (code << 1) | self.bit()? as i32;
            let offset = code - table.first_code[length];
            if table.counts[length] > 0 && offset >= 0 && (offset as usize) < table.counts[length] {
                return table.symbols.get(table.first_index[length] + offset as usize).copied();
            }
        }
        None
    }

    /// At a restart interval's end: drop the partial byte and step over the RSTn marker.
    fn restart(&mut self) -> Option<()> {
        self.count = 0;
        while self.data.get(self.at) == Some(&0xFF) && self.data.get(self.at + 1) == Some(&0xFF) {
            self.at += 1; // fill bytes
        }
        match (self.data.get(self.at), self.data.get(self.at + 1)) {
            (Some(0xFF), Some(0xD0..=0xD7)) => {
                self.at += 2;
                Some(())
            }
            _ => None,
        }
    }
}

fn extend(value: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if value < 1 << (size - 1) {
        value - (1 << size) + 1
    } else {
        value
    }
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

/// The photo at 1/8 scale (each side rounded up), if this is a progressive JPEG this decoder
/// takes; `None` otherwise.
pub(crate) fn decode_eighth(data: &[u8]) -> Option<RgbImage> {
    if data.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut quant: [Option<u16>; 4] = [None; 4];
    let mut dc_tables: [Option<Huffman>; 4] = Default::default();
    let mut components: Vec<Component> = Vec::new();
    let (mut width, mut height, mut mcus_wide, mut mcus_high) = (0usize, 0usize, 0usize, 0usize);
    let (mut h_max, mut v_max) = (1usize, 1usize);
    let mut restart_interval = 0usize;
    let mut adobe_rgb = false;
    let mut jfif = false;
    let mut dc_scans = 0;
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
            0xC2 => {
                // SOF2: progressive, Huffman-coded. 8-bit, 1 or 3 components only.
                if segment.first() != Some(&8) || !components.is_empty() {
                    return None;
                }
                height = u16_at(segment, 1)?;
                width = u16_at(segment, 3)?;
                let count = usize::from(*segment.get(5)?);
                if width == 0 || height == 0 || !(count == 1 || count == 3) {
                    return None;
                }
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
                        quantiser: None,
                        coefficients: Vec::new(),
                        blocks_wide: 0,
                        blocks_high: 0,
                        used_wide: 0,
                        used_high: 0,
                        seen: false,
                    });
                }
                h_max = components.iter().map(|c| c.h).max()?;
                v_max = components.iter().map(|c| c.v).max()?;
                mcus_wide = width.div_ceil(8 * h_max);
                mcus_high = height.div_ceil(8 * v_max);
                for component in &mut components {
                    component.blocks_wide = mcus_wide * component.h;
                    component.blocks_high = mcus_high * component.v;
                    component.used_wide = (width * component.h).div_ceil(h_max).div_ceil(8);
                    component.used_high = (height * component.v).div_ceil(v_max).div_ceil(8);
                    component.coefficients = vec![0; component.blocks_wide * component.blocks_high];
                }
            }
            // Any other frame type (baseline, extended, lossless, arithmetic): not ours.
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDB => {
                // DQT: only each table's first (DC) entry matters here.
                let mut rest = segment;
                while let Some(&spec) = rest.first() {
                    let (precision, id) = (spec >> 4, usize::from(spec & 15));
                    let size = if precision == 0 { 64 } else { 128 };
                    let table = rest.get(1..1 + size)?;
                    *quant.get_mut(id)? = Some(if precision == 0 {
                        u16::from(table[0])
                    } else {
                        u16::from_be_bytes([table[0], table[1]])
                    });
                    rest = &rest[1 + size..];
                }
            }
            0xC4 => {
                // DHT: keep the DC tables.
                let mut rest = segment;
                while let Some(&spec) = rest.first() {
                    let counts = rest.get(1..17)?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = rest.get(17..17 + total)?;
                    if spec >> 4 == 0 {
                        *dc_tables.get_mut(usize::from(spec & 15))? = Some(Huffman::new(counts, symbols)?);
                    }
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
                let count = usize::from(*segment.first()?);
                if count == 0 || count > components.len() {
                    return None;
                }
                let mut in_scan: Vec<(usize, usize)> = Vec::with_capacity(count);
                for s in 0..count {
                    let spec = segment.get(1 + 2 * s..3 + 2 * s)?;
                    let index = components.iter().position(|c| c.id == spec[0])?;
                    // Each component once, in frame order (as the standard requires).
                    if in_scan.last().is_some_and(|&(previous, _)| previous >= index) {
                        return None;
                    }
                    in_scan.push((index, usize::from(spec[1] >> 4)));
                }
                let tail = segment.get(1 + 2 * count..4 + 2 * count)?;
                let (spectral_start, spectral_end) = (tail[0], tail[1]);
                let (high, low) = (u32::from(tail[2] >> 4), u32::from(tail[2] & 15));
                let start = at + length;
                if spectral_start == 0 {
                    // A DC scan: DC only, a first scan or a one-bit refinement, and no more
                    // than the 10 blocks per MCU the standard allows.
                    let blocks_per_mcu: usize = in_scan.iter().map(|&(i, _)| components[i].h * components[i].v).sum();
                    let refinement_ok = high == 0 || high == low + 1;
                    if spectral_end != 0 || low > 13 || !refinement_ok || (count > 1 && blocks_per_mcu > 10) {
                        return None;
                    }
                    for &(index, _) in &in_scan {
                        let component = &mut components[index];
                        if high == 0 {
                            // At most one first scan per component; its quantiser is latched now.
                            if component.seen || component.quantiser.is_some() {
                                return None;
                            }
                            component.quantiser = Some((*quant.get(component.quant_table)?)?);
                        }
                    }
                    // Encoders send two or three DC scans (one per component, or a first and
                    // a refinement); a file with dozens is crafted to make each one cost a
                    // pass over every block.
                    dc_scans += 1;
                    if dc_scans > MAX_DC_SCANS {
                        return None;
                    }
                    let end = decode_dc_scan(
                        data,
                        start,
                        &mut components,
                        &in_scan,
                        &dc_tables,
                        (high, low),
                        (mcus_wide, mcus_high),
                        restart_interval,
                    )?;
                    at = skip_entropy_data(data, end)?;
                } else {
                    at = skip_entropy_data(data, start)?;
                }
                continue;
            }
            _ => {} // APPn, COM and the like
        }
        at += length;
    }
    if components.is_empty() || components.iter().any(|c| !c.seen) {
        return None;
    }
    // Three components are YCbCr when JFIF says so or their ids are 1, 2, 3 (what
    // jpeg-decoder and libjpeg conclude too); an Adobe RGB transform, ids "R","G","B" and
    // anything else unusual go to the general decoder.
    let ids_ycc = components.iter().map(|c| c.id).eq([1, 2, 3]);
    if components.len() == 3 && (adobe_rgb || !(jfif || ids_ycc)) {
        return None;
    }
    Some(to_rgb(&components, width, height, (h_max, v_max)))
}

#[allow(clippy::too_many_arguments)]
fn decode_dc_scan(
    data: &[u8],
    start: usize,
    components: &mut [Component],
    in_scan: &[(usize, usize)],
    dc_tables: &[Option<Huffman>; 4],
    (high, low): (u32, u32),
    (mcus_wide, mcus_high): (usize, usize),
    restart_interval: usize,
) -> Option<usize> {
    let first = high == 0;
    let tables: Vec<Option<&Huffman>> = in_scan.iter().map(|&(_, t)| dc_tables.get(t)?.as_ref()).collect();
    if first && tables.iter().any(Option::is_none) {
        return None;
    }
    if !first && in_scan.iter().any(|&(index, _)| !components[index].seen) {
        return None; // a refinement of coefficients never sent
    }
    let mut bits = Bits::new(data, start);
    let mut predictors = vec![0i32; in_scan.len()];
    // One component alone is scanned block by block over the blocks that carry the image;
    // several are interleaved, MCU by MCU.
    let single = in_scan.len() == 1;
    let units = if single {
        let component = &components[in_scan[0].0];
        component.used_wide * component.used_high
    } else {
        mcus_wide * mcus_high
    };
    for unit in 0..units {
        if restart_interval > 0 && unit > 0 && unit % restart_interval == 0 {
            bits.restart()?;
            predictors.iter_mut().for_each(|p| *p = 0);
        }
        for (slot, &(index, _)) in in_scan.iter().enumerate() {
            let component = &mut components[index];
            // The blocks of this unit: one, or the component's h×v blocks of the MCU.
            let (rows, columns, top, left) = if single {
                (1, 1, unit / component.used_wide, unit % component.used_wide)
            } else {
                let (mcu_row, mcu_column) = (unit / mcus_wide, unit % mcus_wide);
                (component.v, component.h, mcu_row * component.v, mcu_column * component.h)
            };
            for row in top..top + rows {
                for column in left..left + columns {
                    let coefficient = component.coefficients.get_mut(row * component.blocks_wide + column)?;
                    if first {
                        let size = u32::from(bits.decode(tables[slot]?)?);
                        if size > 11 {
                            return None;
                        }
                        let difference = extend(bits.bits(size)?, size);
                        predictors[slot] = predictors[slot].checked_add(difference)?;
                        *coefficient = predictors[slot].checked_shl(low)?;
                    } else if bits.bit()? == 1 {
                        *coefficient |= 1 << low;
                    }
                }
            }
        }
    }
    if first {
        for &(index, _) in in_scan {
            components[index].seen = true;
        }
    }
    Some(bits.at)
}

/// Blocks to pixels (DC × quantiser / 8, centred on 128), subsampled chroma brought up to
/// the luma grid by linear interpolation (as libjpeg's "fancy" upsampling does), YCbCr to RGB
/// as JFIF defines it.
fn to_rgb(components: &[Component], width: usize, height: usize, (h_max, v_max): (usize, usize)) -> RgbImage {
    let (out_w, out_h) = (width.div_ceil(8), height.div_ceil(8));
    let value = |component: &Component, bx: usize, by: usize| -> f32 {
        let dc = component.coefficients[by * component.blocks_wide + bx];
        dc as f32 * f32::from(component.quantiser.unwrap_or(0)) / 8.0 + 128.0
    };
    // Where an output pixel's centre falls in a component's block grid, and the two
    // neighbouring blocks with their weights, along one axis.
    let taps = |out: usize, factor: usize, max_factor: usize, used: usize| -> (usize, usize, f32) {
        let position = ((out as f32 + 0.5) * factor as f32 / max_factor as f32 - 0.5).max(0.0);
        let below = (position.floor() as usize).min(used - 1);
        let above = (below + 1).min(used - 1);
        (below, above, position - below as f32)
    };
    let sample = |component: &Component, x: usize, y: usize| -> f32 {
        let (x0, x1, fx) = taps(x, component.h, h_max, component.used_wide);
        let (y0, y1, fy) = taps(y, component.v, v_max, component.used_high);
        let top = value(component, x0, y0) * (1.0 - fx) + value(component, x1, y0) * fx;
        let bottom = value(component, x0, y1) * (1.0 - fx) + value(component, x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    };
    let mut image = RgbImage::new(out_w as u32, out_h as u32);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let (x, y) = (x as usize, y as usize);
        let luma = sample(&components[0], x, y);
        let rgb = if components.len() == 3 {
            let (cb, cr) = (sample(&components[1], x, y) - 128.0, sample(&components[2], x, y) - 128.0);
            [luma + 1.402 * cr, luma - 0.344_136 * cb - 0.714_136 * cr, luma + 1.772 * cb]
        } else {
            [luma; 3]
        };
        pixel.0 = rgb.map(|value| value.round().clamp(0.0, 255.0) as u8);
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    }

    #[test]
    fn takes_progressive_photos_and_leaves_the_rest() {
        let colour = decode_eighth(&fixture("coffee-progressive.jpg")).expect("libjpeg's progressive 4:2:0");
        assert_eq!(colour.dimensions(), (100, 67));
        let grey = decode_eighth(&fixture("astronaut-progressive-gray.jpg")).expect("greyscale progressive");
        assert_eq!(grey.dimensions(), (64, 64));
        assert!(decode_eighth(&fixture("astronaut.jpg")).is_none(), "baseline JPEGs go to the general decoder");
    }

    #[test]
    fn refuses_scans_the_standard_does_not_allow() {
        let whole = fixture("coffee-progressive.jpg");
        let sos = whole.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap_or_default();
        // The first scan names its components: list the first one twice.
        let mut repeated = whole.clone();
        repeated[sos + 7] = repeated[sos + 5];
        assert!(decode_eighth(&repeated).is_none());
        // A DC scan whose data ends before its blocks do.
        let next_marker = sos
            + 2
            + whole[sos + 2..]
                .windows(2)
                .position(|w| w[0] == 0xFF && w[1] != 0 && !(0xD0..=0xD7).contains(&w[1]))
                .unwrap_or_default();
        let mut short = whole[..sos + 40].to_vec();
        short.extend_from_slice(&whole[next_marker..]);
        assert!(decode_eighth(&short).is_none());
    }
}
