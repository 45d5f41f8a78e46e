//! Upload and decode limits (docs/ARCHITECTURE.md "Limits"). One struct, so the web tier's upload
//! checks, the worker's decoder and the upload page all state the same numbers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_photos_per_job: usize,
    pub max_pixels: u64,
    pub max_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_file_bytes: 64 * 1024 * 1024, max_photos_per_job: 1000, max_pixels: 120_000_000, max_side: 30_000 }
    }
}

impl Limits {
    /// Why a photo of these dimensions is refused, if it is.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), String> {
        if width == 0 || height == 0 {
            return Err(format!("the image declares an empty size ({width}×{height})"));
        }
        if width > self.max_side || height > self.max_side {
            return Err(format!("{width}×{height} px exceeds the limit of {} px per side", self.max_side));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(format!(
                "{width}×{height} px is {:.1} megapixels, over the limit of {:.0}",
                pixels as f64 / 1e6,
                self.max_pixels as f64 / 1e6
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_decompression_bomb_and_accepts_a_camera_photo() {
        let limits = Limits::default();
        assert!(limits.check_dimensions(50_000, 50_000).is_err());
        assert!(limits.check_dimensions(12_000, 11_000).is_err());
        assert!(limits.check_dimensions(6000, 4000).is_ok());
        assert!(limits.check_dimensions(0, 10).is_err());
    }
}
