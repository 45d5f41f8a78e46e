//! Which DCT scale a JPEG is decoded at: small enough to save most of the decode's time and
//! memory, large enough for what the recipe makes of it. See docs/ARCHITECTURE.md
//! ("Decoding big photos").

/// The long side a reduced decode must reach, and the one it would rather reach: enough
/// for Lanczos3, not the DCT's box filter, to do the last of the shrinking
/// ([`crate::pipeline::RESAMPLE_MARGIN`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeTarget {
    pub(crate) at_least: u32,
    pub(crate) preferred: u32,
}

/// Decoded pixels past which a photo gives up the margin of [`DecodeTarget::preferred`]
/// for a smaller scale that still reaches [`DecodeTarget::at_least`]: a 120 MP photo bound
/// for 2048 px decodes at 1/4 (7.5 MP) rather than 1/2 (30 MP, 90 MB of RGB). With the
/// progressive decoder, this keeps `darkroom process` under 100 MiB for 4:2:0 JPEGs up to
/// 120 MP bound for 2048 px or less (bench/RESULTS.md, which also gives the exceptions).
const MARGIN_PIXEL_BUDGET: u64 = 10_000_000;

/// The DCT scale, in eighths (8 = full size), to decode a `width`×`height` JPEG at for
/// `target`, among the `available` ones (ascending, ending with 8): the smallest that
/// reaches the preferred size, unless that decodes more than [`MARGIN_PIXEL_BUDGET`]
/// pixels; then the largest within it that still reaches the size needed.
pub(crate) fn choose_eighths(width: u32, height: u32, target: DecodeTarget, available: &[u32]) -> u32 {
    let scaled = |side: u32, eighths: u32| u64::from(side * eighths).div_ceil(8);
    let reach = |eighths: u32| scaled(width.max(height), eighths);
    let pixels = |eighths: u32| scaled(width, eighths) * scaled(height, eighths);
    let preferred = available.iter().copied().find(|&e| reach(e) >= u64::from(target.preferred)).unwrap_or(8);
    if pixels(preferred) <= MARGIN_PIXEL_BUDGET {
        return preferred;
    }
    let reaching = available.iter().copied().filter(|&e| reach(e) >= u64::from(target.at_least));
    reaching.clone().filter(|&e| pixels(e) <= MARGIN_PIXEL_BUDGET).max().or(reaching.min()).unwrap_or(8).min(preferred)
}

/// The scales jpeg-decoder and the progressive decoder have; libjpeg-turbo has every n/8.
pub(crate) const POWER_OF_TWO_EIGHTHS: [u32; 4] = [1, 2, 4, 8];
pub(crate) const ALL_EIGHTHS: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// Whether a JPEG whose long side is `long_side` can be decoded at a reduced DCT scale and
/// still reach `needed_long_side`: at 1/2 with the pure-Rust decoder (its scales are 1/8, 1/4
/// and 1/2), at 7/8 with libjpeg-turbo (which scales by any n/8).
pub(crate) fn scales_down(long_side: u32, needed_long_side: u32) -> bool {
    // The largest reduced scale, rounded up as the decoders round the scaled size.
    let eighths = if cfg!(feature = "turbojpeg") { 7 } else { 4 };
    u64::from(needed_long_side) <= (u64::from(long_side) * eighths).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(at_least: u32, preferred: u32) -> DecodeTarget {
        DecodeTarget { at_least, preferred }
    }

    #[test]
    fn the_margin_is_kept_while_the_decode_stays_small() {
        // 24 MP bound for a 512 px thumbnail: 1/8 (750 px) would not give Lanczos3 its 2×.
        assert_eq!(choose_eighths(6000, 4000, target(512, 1024), &POWER_OF_TWO_EIGHTHS), 2);
        // 50 MP for 2048 px: 1/2 (4330 px) would keep the margin but decodes 12.5 MP, so
        // 1/4 (2165 px) it is, still above the 2048 needed.
        assert_eq!(choose_eighths(8660, 5773, target(2048, 4096), &POWER_OF_TWO_EIGHTHS), 2);
        // 24 MP for 2048 px: the margin would need the full size; 1/2 reaches 3000 px.
        assert_eq!(choose_eighths(6000, 4000, target(2048, 4096), &POWER_OF_TWO_EIGHTHS), 4);
        assert_eq!(choose_eighths(6000, 4000, target(2048, 4096), &ALL_EIGHTHS), 5);
        // 120 MP for 2048 px: 1/4 (3354 px, 7.5 MP) rather than 1/2 (30 MP).
        assert_eq!(choose_eighths(13416, 8944, target(2048, 4096), &POWER_OF_TWO_EIGHTHS), 2);
        // Small photos keep the full size when nothing smaller reaches the need.
        assert_eq!(choose_eighths(3000, 2000, target(2048, 4096), &POWER_OF_TWO_EIGHTHS), 8);
        // Nothing within the budget reaches the need: the smallest scale that does.
        assert_eq!(choose_eighths(20000, 20000, target(9000, 18000), &POWER_OF_TWO_EIGHTHS), 4);
    }

    #[test]
    fn odd_sizes_round_up_as_the_decoders_do() {
        // The largest reduced scale: 1/2 with jpeg-decoder, 7/8 with libjpeg-turbo.
        let largest = if cfg!(feature = "turbojpeg") { 1195 } else { 683 };
        assert!(scales_down(1365, largest), "the largest reduced scale of 1365 px is {largest} px");
        assert!(!scales_down(1365, largest + 1));
    }
}
