//! EXIF for results: what of the original's EXIF a result carries, by the recipe's
//! [`MetadataPolicy`] (docs/ARCHITECTURE.md "Recipe"). Read and written with kamadak-exif.
//!
//! Whatever the policy, the result's EXIF says what the result is: orientation upright (the
//! pixels were turned at decode), its own pixel size, no embedded thumbnail (it would show the
//! photo before processing). Metadata problems never cost the user the photo: EXIF that
//! cannot be read or rewritten is left out, with a debug line.

use darkroom_core::MetadataPolicy;
use exif::{Field, In, Tag, Value};

/// The tags `no-location` keeps: when, with what and how the photo was taken, and whose it
/// is. A list of what to keep rather than of what to drop, so a location or identity field
/// no one thought of (GPS, a serial number, a maker note with coordinates inside) stays out.
const NO_LOCATION_TAGS: [Tag; 44] = [
    Tag::Make,
    Tag::Model,
    Tag::XResolution,
    Tag::YResolution,
    Tag::ResolutionUnit,
    Tag::Software,
    Tag::DateTime,
    Tag::Artist,
    Tag::Copyright,
    Tag::ExposureTime,
    Tag::FNumber,
    Tag::ExposureProgram,
    Tag::PhotographicSensitivity,
    Tag::SensitivityType,
    Tag::ExifVersion,
    Tag::DateTimeOriginal,
    Tag::DateTimeDigitized,
    Tag::OffsetTime,
    Tag::OffsetTimeOriginal,
    Tag::OffsetTimeDigitized,
    Tag::ShutterSpeedValue,
    Tag::ApertureValue,
    Tag::BrightnessValue,
    Tag::ExposureBiasValue,
    Tag::MaxApertureValue,
    Tag::MeteringMode,
    Tag::LightSource,
    Tag::Flash,
    Tag::FocalLength,
    Tag::SubSecTime,
    Tag::SubSecTimeOriginal,
    Tag::SubSecTimeDigitized,
    Tag::ColorSpace,
    Tag::ExposureMode,
    Tag::WhiteBalance,
    Tag::DigitalZoomRatio,
    Tag::FocalLengthIn35mmFilm,
    Tag::SceneCaptureType,
    Tag::Contrast,
    Tag::Saturation,
    Tag::Sharpness,
    Tag::LensSpecification,
    Tag::LensMake,
    Tag::LensModel,
];

/// Tags rewritten for the result rather than copied.
const REWRITTEN_TAGS: [Tag; 6] = [
    Tag::Orientation,
    Tag::PixelXDimension,
    Tag::PixelYDimension,
    Tag::ImageWidth,
    Tag::ImageLength,
    // A maker note's offsets point into the original's EXIF: moved, they point at nothing.
    Tag::MakerNote,
];

/// The most EXIF a photo may carry for it to be kept: as much as JPEG's APP1 holds.
const MAX_EXIF_BYTES: usize = 64 * 1024;
/// Entries in all its directories together (cameras write a few hundred).
const MAX_EXIF_ENTRIES: u64 = 1000;
/// Bytes its entries declare for their values, all together. Entries may share value bytes,
/// and a parser copies them once per entry: this bounds what reading them may allocate.
const MAX_EXIF_VALUE_BYTES: u64 = 256 * 1024;

/// Whether an original's EXIF is small and plain enough to read: at most 64 KiB, 1000
/// entries and 256 KiB of declared values, at most 8 directories, walked without reading
/// a value. EXIF that is not is dropped at decode (the photo is processed without it): a
/// crafted one could otherwise make the parser allocate gigabytes.
pub fn exif_is_sane(tiff: &[u8]) -> bool {
    tiff.len() <= MAX_EXIF_BYTES && walk_directories(tiff).is_some_and(|plain| plain)
}

fn walk_directories(tiff: &[u8]) -> Option<bool> {
    let little_endian = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return Some(false),
    };
    let u16_at = |at: usize| {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if little_endian { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    };
    let u32_at = |at: usize| {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let bytes = [b[0], b[1], b[2], b[3]];
        Some(if little_endian { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) })
    };
    const SUB_DIRECTORIES: [u16; 3] = [0x8769, 0x8825, 0xA005]; // Exif, GPS, Interoperability
    let mut pending = vec![u32_at(4)?];
    let mut visited = Vec::new();
    let (mut entries, mut value_bytes) = (0u64, 0u64);
    while let Some(offset) = pending.pop() {
        if visited.contains(&offset) {
            continue;
        }
        if visited.len() == 8 {
            return Some(false);
        }
        visited.push(offset);
        let start = usize::try_from(offset).ok()?;
        let count = u16_at(start)?;
        entries += u64::from(count);
        if entries > MAX_EXIF_ENTRIES {
            return Some(false);
        }
        for index in 0..usize::from(count) {
            let entry = start + 2 + 12 * index;
            let (tag, kind, values) = (u16_at(entry)?, u16_at(entry + 2)?, u32_at(entry + 4)?);
            let size = match kind {
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 => 8,
                _ => 1,
            };
            value_bytes += u64::from(values) * size;
            if value_bytes > MAX_EXIF_VALUE_BYTES {
                return Some(false);
            }
            if SUB_DIRECTORIES.contains(&tag) {
                pending.push(u32_at(entry + 8)?);
            }
        }
        let next = u32_at(start + 2 + 12 * usize::from(count))?;
        if next != 0 {
            pending.push(next);
        }
    }
    Some(true)
}

/// The EXIF (a TIFF structure, as JPEG's APP1 holds it after `Exif\0\0`) a `width`×`height`
/// result keeps of the original's `source` EXIF under `policy`; `None` for none.
pub fn exif_for_result(source: Option<&[u8]>, policy: MetadataPolicy, width: u32, height: u32) -> Option<Vec<u8>> {
    if policy == MetadataPolicy::Strip {
        return None;
    }
    let source = source.filter(|source| exif_is_sane(source))?;
    // One broken entry (common in phones' EXIF) costs that entry, not all of it: what is kept
    // is chosen by name below anyway.
    let read = exif::Reader::new()
        .continue_on_error(true)
        .read_raw(source.to_vec())
        .or_else(|error| error.distill_partial_result(|_| {}));
    let exif = match read {
        Ok(exif) => exif,
        Err(error) => {
            tracing::debug!(error.message = %error, "the original's EXIF cannot be read: the result carries none");
            return None;
        }
    };
    let kept: Vec<&Field> = exif
        .fields()
        // IFD1 is the embedded thumbnail's.
        .filter(|field| field.ifd_num == In::PRIMARY)
        .filter(|field| !REWRITTEN_TAGS.contains(&field.tag))
        .filter(|field| !matches!(field.value, Value::Unknown(..)))
        .filter(|field| match policy {
            MetadataPolicy::Keep => true,
            MetadataPolicy::NoLocation => NO_LOCATION_TAGS.contains(&field.tag),
            MetadataPolicy::Strip => false,
        })
        .collect();
    let upright = Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![1]) };
    let pixel_width = Field { tag: Tag::PixelXDimension, ifd_num: In::PRIMARY, value: Value::Long(vec![width]) };
    let pixel_height = Field { tag: Tag::PixelYDimension, ifd_num: In::PRIMARY, value: Value::Long(vec![height]) };
    let mut writer = exif::experimental::Writer::new();
    for field in kept.iter().copied().chain([&upright, &pixel_width, &pixel_height]) {
        writer.push_field(field);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    match writer.write(&mut out, exif.little_endian()) {
        Ok(()) => Some(out.into_inner()),
        Err(error) => {
            tracing::debug!(error.message = %error, "the original's EXIF cannot be rewritten: the result carries none");
            None
        }
    }
}

/// When the photo was taken, as its camera's clock said (no zone: EXIF's `DateTimeOriginal`,
/// else `DateTime`), from the EXIF in a JPEG, PNG or WebP file's first bytes:
/// `(year, month, day, hour, minute, second)`.
pub fn capture_time(file_head: &[u8]) -> Option<(u16, u8, u8, u8, u8, u8)> {
    let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(file_head)).ok()?;
    let field =
        exif.get_field(Tag::DateTimeOriginal, In::PRIMARY).or_else(|| exif.get_field(Tag::DateTime, In::PRIMARY))?;
    let Value::Ascii(ref texts) = field.value else { return None };
    let at = exif::DateTime::from_ascii(texts.first()?).ok()?;
    Some((at.year, at.month, at.day, at.hour, at.minute, at.second))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A camera's EXIF: time, camera, lens, artist, GPS, a serial number and orientation 6.
    pub(crate) fn camera_exif() -> Vec<u8> {
        let ascii = |tag, text: &str| Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.into()]) };
        let fields = [
            ascii(Tag::Make, "Canon"),
            ascii(Tag::Model, "EOS R5"),
            ascii(Tag::Artist, "Sofia"),
            ascii(Tag::Copyright, "(c) Sofia"),
            ascii(Tag::DateTimeOriginal, "2024:06:01 17:30:05"),
            ascii(Tag::LensModel, "RF 50mm"),
            ascii(Tag::BodySerialNumber, "0123456789"),
            Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) },
            Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(48, 1).into(), (51, 1).into(), (24, 1).into()]),
            },
        ];
        let mut writer = exif::experimental::Writer::new();
        fields.iter().for_each(|field| writer.push_field(field));
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).unwrap();
        out.into_inner()
    }

    fn tags(exif: &[u8]) -> Vec<Tag> {
        exif::Reader::new().read_raw(exif.to_vec()).unwrap().fields().map(|field| field.tag).collect()
    }

    #[test]
    fn no_location_keeps_the_photographers_fields_and_drops_where_and_whose_camera() {
        let kept = exif_for_result(Some(&camera_exif()), MetadataPolicy::NoLocation, 640, 480).unwrap();
        let tags = tags(&kept);
        for tag in [Tag::Make, Tag::Model, Tag::Artist, Tag::Copyright, Tag::DateTimeOriginal, Tag::LensModel] {
            assert!(tags.contains(&tag), "{tag} kept");
        }
        for tag in [Tag::GPSLatitude, Tag::GPSLatitudeRef, Tag::BodySerialNumber] {
            assert!(!tags.contains(&tag), "{tag} dropped");
        }
        let exif = exif::Reader::new().read_raw(kept).unwrap();
        assert_eq!(exif.get_field(Tag::Orientation, In::PRIMARY).unwrap().value.get_uint(0), Some(1));
        assert_eq!(exif.get_field(Tag::PixelXDimension, In::PRIMARY).unwrap().value.get_uint(0), Some(640));
    }

    #[test]
    fn keep_keeps_the_location_and_strip_keeps_nothing() {
        let kept = exif_for_result(Some(&camera_exif()), MetadataPolicy::Keep, 10, 10).unwrap();
        assert!(tags(&kept).contains(&Tag::GPSLatitude));
        assert!(tags(&kept).contains(&Tag::BodySerialNumber));
        assert_eq!(exif_for_result(Some(&camera_exif()), MetadataPolicy::Strip, 10, 10), None);
        assert_eq!(exif_for_result(None, MetadataPolicy::Keep, 10, 10), None);
    }

    #[test]
    fn unreadable_exif_is_left_out_not_an_error() {
        assert_eq!(exif_for_result(Some(b"not a tiff at all"), MetadataPolicy::Keep, 10, 10), None);
    }

    #[test]
    fn exif_whose_entries_share_a_huge_value_is_refused_before_it_is_parsed() {
        assert!(exif_is_sane(&camera_exif()));
        // 2,000 ASCII entries all pointing at the same 30,000 bytes: 60 MB declared in 54 KB.
        let entries = 2000u16;
        let value_at = 8 + 2 + 12 * u32::from(entries) + 4;
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&entries.to_le_bytes());
        for _ in 0..entries {
            tiff.extend_from_slice(&0x010Eu16.to_le_bytes()); // ImageDescription
            tiff.extend_from_slice(&2u16.to_le_bytes()); // ASCII
            tiff.extend_from_slice(&30_000u32.to_le_bytes());
            tiff.extend_from_slice(&value_at.to_le_bytes());
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.resize(tiff.len() + 30_000, 0);
        assert!(tiff.len() < MAX_EXIF_BYTES);
        assert!(!exif_is_sane(&tiff));
        assert_eq!(exif_for_result(Some(&tiff), MetadataPolicy::Keep, 10, 10), None);
        // A directory pointing at itself ends the walk; one too large is refused.
        assert!(!exif_is_sane(&vec![0u8; MAX_EXIF_BYTES + 1]));
    }
}
