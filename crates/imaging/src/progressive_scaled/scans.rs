//! The four kinds of progressive scan: DC first and refinement, AC first and refinement;
//! and the one kind of sequential scan, every coefficient at once (read as a first DC scan
//! whose blocks each go on with their AC coefficients).

use super::entropy::{extend, Bits, Huffman};
use super::{Component, Layout, NOT_KEPT};

/// A scan's header: its components (index, Huffman table), spectral band and successive
/// approximation bits, checked against what the standard allows in a progressive frame.
pub(super) struct Scan {
    pub(super) components: Vec<(usize, usize)>,
    pub(super) spectral: (u8, u8),
    pub(super) approximation: (u32, u32),
}

impl Scan {
    pub(super) fn read(segment: &[u8], components: &[Component], sequential: bool) -> Option<Self> {
        let count = usize::from(*segment.first()?);
        if count == 0 || count > components.len() {
            return None;
        }
        let tail = segment.get(1 + 2 * count..4 + 2 * count)?;
        let (start, end) = (tail[0], tail[1]);
        let mut in_scan: Vec<(usize, usize)> = Vec::with_capacity(count);
        for s in 0..count {
            let spec = segment.get(1 + 2 * s..3 + 2 * s)?;
            let index = components.iter().position(|c| c.id == spec[0])?;
            // Each component once, in frame order (as the standard requires).
            if in_scan.last().is_some_and(|&(previous, _)| previous >= index) {
                return None;
            }
            // The DC table's number in the high nibble, the AC table's in the low one: a
            // sequential scan uses both (kept whole), a progressive one one of them.
            let table = if sequential {
                spec[1]
            } else if start == 0 {
                spec[1] >> 4
            } else {
                spec[1] & 15
            };
            in_scan.push((index, usize::from(table)));
        }
        let (high, low) = (u32::from(tail[2] >> 4), u32::from(tail[2] & 15));
        let refinement_ok = high == 0 || high == low + 1;
        if low > 13 || !refinement_ok {
            return None;
        }
        if sequential {
            // All 64 coefficients, each component in one scan, at most 10 blocks per MCU.
            let blocks_per_mcu: usize = in_scan.iter().map(|&(i, _)| components[i].h * components[i].v).sum();
            let seen = in_scan.iter().any(|&(index, _)| components[index].dc_seen);
            if (start, end, high, low) != (0, 63, 0, 0) || seen || (count > 1 && blocks_per_mcu > 10) {
                return None;
            }
            return Some(Self { components: in_scan, spectral: (0, 63), approximation: (0, 0) });
        }
        if start == 0 {
            // DC only, and no more than the 10 blocks per MCU the standard allows.
            let blocks_per_mcu: usize = in_scan.iter().map(|&(i, _)| components[i].h * components[i].v).sum();
            if end != 0 || (count > 1 && blocks_per_mcu > 10) {
                return None;
            }
            for &(index, _) in &in_scan {
                // At most one first DC scan per component; a refinement after it.
                if (high == 0) == components[index].dc_seen {
                    return None;
                }
            }
        } else if count != 1 || end < start || end > 63 || !components[in_scan[0].0].dc_seen {
            // An AC scan covers one component, after its DC coefficients.
            return None;
        }
        Some(Self { components: in_scan, spectral: (start, end), approximation: (high, low) })
    }

    /// The blocks of a one-component scan, in order: those that carry the image.
    fn single_blocks(component: &Component) -> impl Iterator<Item = usize> {
        let (used_wide, used_high, blocks_wide) = (component.used_wide, component.used_high, component.blocks_wide);
        (0..used_high).flat_map(move |row| (0..used_wide).map(move |column| row * blocks_wide + column))
    }
}

/// The Huffman tables a scan may use, by number.
#[derive(Clone, Copy)]
pub(super) struct ScanTables<'a> {
    pub(super) dc: &'a [Option<Huffman>; 4],
    pub(super) ac: &'a [Option<Huffman>; 4],
}

/// A DC scan, first or refinement; in a sequential frame, every coefficient of its blocks.
pub(super) fn decode_dc_scan(
    bits: &mut Bits,
    components: &mut [Component],
    scan: &Scan,
    all_tables: ScanTables,
    layout: &Layout,
    restart_interval: usize,
) -> Option<()> {
    let (high, low) = scan.approximation;
    let first = high == 0;
    // A sequential scan's table numbers hold the DC table's in the high nibble, the AC
    // table's in the low one; a progressive DC scan's, the DC table's alone.
    let dc_table = |t: usize| if layout.sequential { t >> 4 } else { t };
    let tables: Vec<Option<&Huffman>> =
        scan.components.iter().map(|&(_, t)| all_tables.dc.get(dc_table(t))?.as_ref()).collect();
    if first && tables.iter().any(Option::is_none) {
        return None;
    }
    let ac_tables: Vec<&Huffman> = if layout.sequential {
        scan.components.iter().map(|&(_, t)| all_tables.ac.get(t & 15)?.as_ref()).collect::<Option<_>>()?
    } else {
        Vec::new()
    };
    let kept_per_block = layout.side * layout.side;
    let mut predictors = vec![0i32; scan.components.len()];
    // One component alone is scanned block by block over the blocks that carry the image;
    // several are interleaved, MCU by MCU.
    let single = scan.components.len() == 1;
    let units = if single {
        let component = &components[scan.components[0].0];
        component.used_wide * component.used_high
    } else {
        layout.mcus_wide * layout.mcus_high
    };
    for unit in 0..units {
        if bits.begin_unit(unit, restart_interval)? {
            predictors.iter_mut().for_each(|p| *p = 0);
        }
        for (place, &(index, _)) in scan.components.iter().enumerate() {
            let component = &mut components[index];
            // The blocks of this unit: one, or the component's h×v blocks of the MCU.
            let (rows, columns, top, left) = if single {
                (1, 1, unit / component.used_wide, unit % component.used_wide)
            } else {
                let (mcu_row, mcu_column) = (unit / layout.mcus_wide, unit % layout.mcus_wide);
                (component.v, component.h, mcu_row * component.v, mcu_column * component.h)
            };
            for row in top..top + rows {
                for column in left..left + columns {
                    let block = row * component.blocks_wide + column;
                    let kept = component.kept.get_mut(block * kept_per_block..(block + 1) * kept_per_block)?;
                    if first {
                        let size = u32::from(bits.decode(tables[place]?)?);
                        if size > 11 {
                            return None;
                        }
                        let difference = extend(bits.bits(size), size);
                        predictors[place] = predictors[place].checked_add(difference)?;
                        kept[0] = i16::try_from(predictors[place].checked_shl(low)?).ok()?;
                        if let Some(&ac_table) = ac_tables.get(place) {
                            decode_sequential_ac(bits, ac_table, kept, layout)?;
                        }
                    } else if bits.bit() {
                        kept[0] |= 1 << low;
                    }
                }
            }
        }
    }
    if first {
        for &(index, _) in &scan.components {
            components[index].dc_seen = true;
        }
    }
    Some(())
}

/// The AC coefficients of one block of a sequential scan: run-length coded values to the
/// block's end-of-block, those of the kept n×n stored, the rest read past.
#[inline]
fn decode_sequential_ac(bits: &mut Bits, table: &Huffman, kept: &mut [i16], layout: &Layout) -> Option<()> {
    let mut k = 1;
    while k < 64 {
        let symbol = bits.decode(table)?;
        let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
        if size == 0 {
            if run < 15 {
                break; // end of block
            }
            k += 16; // sixteen zeros
            continue;
        }
        k += run;
        let slot = *layout.slot.get(k)?;
        let value = extend(bits.bits(size), size);
        if slot != NOT_KEPT {
            kept[usize::from(slot)] = i16::try_from(value).ok()?;
        }
        k += 1;
    }
    Some(())
}

/// A first AC scan (successive approximation high bit 0): run-length coded values, with
/// end-of-band runs that span blocks.
pub(super) fn decode_ac_first(
    bits: &mut Bits,
    component: &mut Component,
    table: &Huffman,
    scan: &Scan,
    layout: &Layout,
    restart_interval: usize,
) -> Option<()> {
    let (start, end) = (usize::from(scan.spectral.0), usize::from(scan.spectral.1));
    let low = scan.approximation.1;
    let kept_per_block = layout.side * layout.side;
    let mut end_of_band_run = 0u32;
    for (unit, block) in Scan::single_blocks(component).enumerate() {
        if bits.begin_unit(unit, restart_interval)? {
            end_of_band_run = 0;
        }
        if end_of_band_run > 0 {
            end_of_band_run -= 1;
            continue;
        }
        let mut nonzero = component.nonzero[block];
        let mut k = start;
        while k <= end {
            let symbol = bits.decode(table)?;
            let (run, size) = (usize::from(symbol >> 4), u32::from(symbol & 15));
            if size != 0 {
                k += run;
                if k > end {
                    return None;
                }
                let value = extend(bits.bits(size), size) << low;
                nonzero |= 1u64 << k;
                let slot = layout.slot[k];
                if slot != NOT_KEPT {
                    component.kept[block * kept_per_block + usize::from(slot)] = i16::try_from(value).ok()?;
                }
                k += 1;
            } else if run < 15 {
                end_of_band_run = (1 << run) - 1 + bits.bits(run as u32) as u32;
                break;
            } else {
                k += 16; // sixteen zeros
            }
        }
        component.nonzero[block] = nonzero;
    }
    Some(())
}

/// A refinement AC scan: one more bit of every coefficient already non-zero, and new ones
/// of magnitude 1 placed by counting the zeros between them (as libjpeg's
/// `decode_mcu_AC_refine` does).
pub(super) fn decode_ac_refinement(
    bits: &mut Bits,
    component: &mut Component,
    table: &Huffman,
    scan: &Scan,
    layout: &Layout,
    restart_interval: usize,
) -> Option<()> {
    let (start, end) = (usize::from(scan.spectral.0), usize::from(scan.spectral.1));
    let low = scan.approximation.1;
    let (plus, minus) = (1i16 << low, (-1i16) << low);
    let kept_per_block = layout.side * layout.side;
    let mut end_of_band_run = 0u32;
    for (unit, block) in Scan::single_blocks(component).enumerate() {
        if bits.begin_unit(unit, restart_interval)? {
            end_of_band_run = 0;
        }
        let mut nonzero = component.nonzero[block];
        let kept = &mut component.kept[block * kept_per_block..(block + 1) * kept_per_block];
        let mut k = start;
        if end_of_band_run == 0 {
            while k <= end {
                let symbol = bits.decode(table)?;
                let (mut run, size) = (i32::from(symbol >> 4), symbol & 15);
                let mut new_value = 0i16;
                if size != 0 {
                    if size != 1 {
                        return None; // a new coefficient is ±1 in this bit
                    }
                    new_value = if bits.bit() { plus } else { minus };
                } else if run != 15 {
                    end_of_band_run = (1 << run) + bits.bits(run as u32) as u32;
                    break;
                }
                // Past the coefficients already non-zero (each gets its correction bit) and
                // `run` zeros, to where the new one goes (or past sixteen zeros).
                while k <= end {
                    if nonzero & (1u64 << k) != 0 {
                        if bits.bit() {
                            sharpen(kept, layout.slot[k], (plus, minus))?;
                        }
                    } else {
                        if run == 0 {
                            break;
                        }
                        run -= 1;
                    }
                    k += 1;
                }
                if new_value != 0 {
                    if k > end {
                        return None;
                    }
                    nonzero |= 1u64 << k;
                    let slot = layout.slot[k];
                    if slot != NOT_KEPT {
                        kept[usize::from(slot)] = new_value;
                    }
                }
                k += 1;
            }
        }
        if end_of_band_run > 0 {
            // The rest of the band in an end-of-band run: correction bits only, for the
            // coefficients already non-zero (visited by their bits, not position by position).
            let band = if k > end { 0 } else { (u64::MAX >> (63 - end)) & (u64::MAX << k) };
            let mut pending = nonzero & band;
            while pending != 0 {
                let position = pending.trailing_zeros() as usize;
                if bits.bit() {
                    sharpen(kept, layout.slot[position], (plus, minus))?;
                }
                pending &= pending - 1;
            }
            end_of_band_run -= 1;
        }
        component.nonzero[block] = nonzero;
    }
    Some(())
}

/// A correction bit of 1 for a coefficient already non-zero: one more bit of magnitude, if
/// it is kept (and not already given it). `None` when that would leave 16 bits, which only
/// a crafted file asks for.
#[inline]
fn sharpen(kept: &mut [i16], slot: u8, (plus, minus): (i16, i16)) -> Option<()> {
    if let Some(coefficient) = kept.get_mut(usize::from(slot)) {
        if *coefficient & plus == 0 {
            *coefficient = coefficient.checked_add(if *coefficient >= 0 { plus } else { minus })?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_past_sixteen_bits_is_refused() {
        let mut kept = [i16::MIN, 6, -6];
        assert_eq!(sharpen(&mut kept, 0, (1, -1)), None, "−32768 − 1");
        assert_eq!(sharpen(&mut kept, 1, (1, -1)), Some(()));
        assert_eq!(sharpen(&mut kept, 2, (1, -1)), Some(()));
        assert_eq!(kept[1..], [7, -7]);
        // Not kept at this scale: nothing to change.
        assert_eq!(sharpen(&mut kept, super::NOT_KEPT, (1, -1)), Some(()));
    }
}
