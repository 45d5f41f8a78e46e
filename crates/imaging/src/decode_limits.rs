//! How much a decode may take: the upload limits for an upload, wider ones for the
//! intermediates later pipeline segments continue from.

use darkroom_core::Limits;

/// Decoding limits: the upload limits plus a cap on what the decoder may allocate.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub limits: Limits,
    pub max_alloc_bytes: u64,
}

impl From<Limits> for DecodeLimits {
    fn from(limits: Limits) -> Self {
        // Room for the largest allowed photo as 8-bit RGBA, plus decoder scratch space.
        Self { limits, max_alloc_bytes: limits.max_pixels.saturating_mul(4).saturating_add(256 << 20) }
    }
}

impl DecodeLimits {
    /// The limits for an intermediate image, which a later pipeline segment decodes: an
    /// earlier segment may have grown an accepted upload past the upload limits (a border,
    /// up to [`crate::MAX_GROWN_PIXELS`]), and what one segment made the next must take,
    /// or a recipe that succeeds in one stage fails when split over two. Intermediates are
    /// darkroom's own PNGs; the pixel bound still caps what decoding one may allocate.
    pub fn for_intermediate(upload: Limits) -> Self {
        let limits = Limits {
            max_pixels: upload.max_pixels.max(crate::MAX_GROWN_PIXELS),
            max_side: upload.max_side.max(MAX_INTERMEDIATE_SIDE),
            ..upload
        };
        limits.into()
    }
}

/// The longest side an intermediate may have: the upload's longest side plus the widest
/// borders a recipe can add, with room to spare.
const MAX_INTERMEDIATE_SIDE: u32 = 65_535;
