//! The image decoders (JPEG, PNG, WebP, GIF, TIFF; full and reduced-scale): any bytes
//! decode within the limits or fail with an error — never a panic, never a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = darkroom_imaging::DecodeLimits::from(darkroom_core::Limits {
        max_file_bytes: 64 << 20,
        max_photos_per_job: 1,
        // Small limits keep each run fast; the checks are the same.
        max_pixels: 4_000_000,
        max_side: 4000,
    });
    let _ = darkroom_imaging::probe(data);
    if let Ok(photo) = darkroom_imaging::decode(data, limits) {
        assert!(u64::from(photo.width()) * u64::from(photo.height()) <= 4_000_000);
    }
    let _ = darkroom_imaging::decode_at_least(data, limits, 64);
    // Small enough that small inputs take the 1/8-scale paths (the DC-scan reader too).
    let _ = darkroom_imaging::decode_at_least(data, limits, 8);
    // A half and a quarter of the photo's long side: the 1/2 and 1/4 paths (for progressive
    // JPEGs, the decoder that keeps only the low-frequency coefficients).
    if let Some((width, height)) = darkroom_imaging::probe(data).ok().and_then(|probed| probed.dimensions) {
        let long_side = width.max(height);
        let _ = darkroom_imaging::decode_at_least(data, limits, long_side / 2);
        let _ = darkroom_imaging::decode_at_least(data, limits, long_side / 4);
    }
});
