//! Decoding with limits (encoding is in `encode.rs`). Formats are sniffed from the bytes, never from a
//! file name; dimensions are checked against the limits before any pixel buffer is
//! allocated, so a 50,000×50,000 PNG costs a header read, not 10 GB.

pub use crate::decode_limits::DecodeLimits;
use crate::decode_scale::{choose_eighths, scales_down, DecodeTarget, ALL_EIGHTHS, POWER_OF_TWO_EIGHTHS};
use crate::heif_boxes::{heif_stored_dimensions, is_heic};
use crate::photo::Photo;
use crate::ImagingError;
use darkroom_core::recipe::Operation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    /// HEIC/HEIF with HEVC inside (iPhones' default). Recognised by every build; decoded only
    /// by a build with the `heic` feature, the others refuse it with a clear message.
    Heic,
}

impl SourceFormat {
    fn from_image_format(format: ImageFormat) -> Option<Self> {
        match format {
            ImageFormat::Jpeg => Some(Self::Jpeg),
            ImageFormat::Png => Some(Self::Png),
            ImageFormat::WebP => Some(Self::Webp),
            ImageFormat::Gif => Some(Self::Gif),
            ImageFormat::Tiff => Some(Self::Tiff),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
            Self::Tiff => "image/tiff",
            Self::Heic => "image/heic",
        }
    }
}

/// What the first bytes of a file say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub format: SourceFormat,
    /// `None` when the header needs more bytes than were given.
    pub dimensions: Option<(u32, u32)>,
}

/// Sniffs the format from the leading bytes and, if the header is among them, reads the
/// declared dimensions. Never decodes pixels.
pub fn probe(head: &[u8]) -> Result<FileHeader, ImagingError> {
    if is_heic(head) {
        if !crate::HEIC_SUPPORTED {
            return Err(ImagingError::UnsupportedFormat {
                detail: ": HEIC photos need a darkroom built with the `heic` feature (as the Docker image is); \
                         export them as JPEG, or ask the operator to enable it"
                    .to_owned(),
            });
        }
        // The decoder checks the size again, after the file's crop and rotation, before
        // decoding a pixel.
        return Ok(FileHeader { format: SourceFormat::Heic, dimensions: heif_stored_dimensions(head) });
    }
    let format = image::guess_format(head)
        .ok()
        .and_then(SourceFormat::from_image_format)
        .ok_or_else(|| ImagingError::UnsupportedFormat { detail: sniff_detail(head) })?;
    let dimensions =
        ImageReader::new(Cursor::new(head)).with_guessed_format().ok().and_then(|reader| reader.into_dimensions().ok());
    Ok(FileHeader { format, dimensions })
}

fn sniff_detail(head: &[u8]) -> String {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return ": AVIF and other ISO media files are not supported, export as JPEG".to_owned();
    }
    if head.iter().take(512).all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace()) && !head.is_empty() {
        return ": the file looks like text".to_owned();
    }
    String::new()
}

fn corrupt(error: image::ImageError) -> ImagingError {
    match error {
        image::ImageError::Limits(limit) => {
            ImagingError::TooManyPixels(format!("the image exceeds the decoding limits ({limit})"))
        }
        image::ImageError::Unsupported(unsupported) => {
            ImagingError::UnsupportedFormat { detail: format!(": {unsupported}") }
        }
        other => ImagingError::Corrupt(other.to_string()),
    }
}

/// Decodes a photo: sniff, check the declared size against the limits, decode, apply the
/// EXIF orientation, keep the ICC profile. The result is 8-bit RGB, or RGBA if the source
/// has transparency.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Photo, ImagingError> {
    decode_probed(bytes, probe(bytes)?, limits)
}

fn decode_probed(bytes: &[u8], probed: FileHeader, limits: DecodeLimits) -> Result<Photo, ImagingError> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(match probed.format {
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Webp => ImageFormat::WebP,
        SourceFormat::Gif => ImageFormat::Gif,
        SourceFormat::Tiff => ImageFormat::Tiff,
        SourceFormat::Heic => return decode_heic(bytes, limits),
    });
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.limits.max_side);
    decoder_limits.max_image_height = Some(limits.limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(decoder_limits);
    if probed.format == SourceFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a truncated image with grey instead of failing; a photo
        // cut short in upload must not come out as "done" with half of it missing.
        return Err(ImagingError::Corrupt("the JPEG data ends before its end-of-image marker".to_owned()));
    }
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    limits.limits.check_dimensions(width, height).map_err(ImagingError::TooManyPixels)?;
    // Metadata problems must not cost the user the photo: fall back to no rotation and no profile.
    // The EXIF first: reading it lets the decoder answer the orientation without a second parse.
    let exif = decoder.exif_metadata().ok().flatten().filter(|exif| crate::metadata::exif_is_sane(exif));
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let icc_profile = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let image = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let mut photo = Photo::new(image, icc_profile);
    photo.exif = exif;
    Ok(photo)
}

#[cfg(feature = "heic")]
fn decode_heic(bytes: &[u8], limits: DecodeLimits) -> Result<Photo, ImagingError> {
    crate::heic::decode(bytes, limits)
}

#[cfg(not(feature = "heic"))]
fn decode_heic(_bytes: &[u8], _limits: DecodeLimits) -> Result<Photo, ImagingError> {
    // `probe` already refuses HEIC without the feature; a caller with its own FileHeader gets the same.
    Err(ImagingError::UnsupportedFormat {
        detail: ": HEIC photos need a darkroom built with the `heic` feature".to_owned(),
    })
}

/// Walks the JPEG's marker segments from SOI to EOI (skipping entropy-coded data) and
/// says whether the EOI marker is there. Data after EOI (camera trailers, motion-photo
/// videos) is allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != SOI {
        return false;
    }
    let mut at = 2;
    loop {
        // Find the next marker: 0xFF, optional 0xFF fill bytes, then the marker code.
        while at < bytes.len() && bytes[at] != 0xFF {
            at += 1;
        }
        while at < bytes.len() && bytes[at] == 0xFF {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return false;
        };
        at += 1;
        match marker {
            EOI => return true,
            // Standalone markers: restart markers, TEM, and a stray 0x00 (stuffed byte).
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let Some(length) = bytes.get(at..at + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else {
                    return false;
                };
                if length < 2 {
                    return false;
                }
                at += length;
                if marker == SOS {
                    // Entropy-coded data follows: skip to the next real marker, where
                    // 0xFF 0x00 is a stuffed byte and 0xFF 0xD0..D7 a restart marker.
                    loop {
                        while at < bytes.len() && bytes[at] != 0xFF {
                            at += 1;
                        }
                        match bytes.get(at + 1) {
                            None => return false,
                            Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => at += 1,
                            Some(_) => break,
                        }
                    }
                }
            }
        }
    }
}

/// Decodes a photo for `ops`: at reduced scale when they shrink it early enough (see
/// [`crate::reduced_decode_long_side`]), never below `keep_long_side` (what the caller needs
/// besides, such as the preview); in full otherwise.
pub fn decode_for_ops(
    bytes: &[u8],
    limits: DecodeLimits,
    ops: &[Operation],
    keep_long_side: u32,
) -> Result<Photo, ImagingError> {
    let probed = probe(bytes)?;
    let reduced = match probed.dimensions {
        Some((width, height)) if probed.format == SourceFormat::Jpeg => {
            // Knowing which way the photo turns lets an aspect crop be planned for the one
            // orientation it has, instead of the larger need of both.
            let planned = match jpeg_turns_sideways(bytes) {
                Some(turned) => crate::pipeline::reduced_decode_long_side_oriented(ops, width, height, turned),
                None => crate::reduced_decode_long_side(ops, width, height),
            };
            planned.map(|preferred| DecodeTarget {
                at_least: preferred.div_ceil(crate::pipeline::RESAMPLE_MARGIN).max(keep_long_side),
                preferred: preferred.max(keep_long_side),
            })
        }
        _ => None,
    };
    match reduced {
        Some(target) => decode_at_least_probed(bytes, probed, limits, target),
        None => decode_probed(bytes, probed, limits),
    }
}

/// Decodes a photo that will be shown at most `needed_long_side` px large. JPEGs are
/// decoded at reduced scale (DCT scaling: 1/2, 1/4 or 1/8) to the smallest size whose long
/// side is still at least that — a 24 MP photo bound for a 256 px thumbnail never decodes
/// in full. The photo's frame records the scale, so original-pixel regions stay right.
/// Other formats, and JPEGs the scaled decoder cannot take, decode in full.
pub fn decode_at_least(bytes: &[u8], limits: DecodeLimits, needed_long_side: u32) -> Result<Photo, ImagingError> {
    let target = DecodeTarget { at_least: needed_long_side, preferred: needed_long_side };
    decode_at_least_probed(bytes, probe(bytes)?, limits, target)
}

fn decode_at_least_probed(
    bytes: &[u8],
    probed: FileHeader,
    limits: DecodeLimits,
    target: DecodeTarget,
) -> Result<Photo, ImagingError> {
    // Photos too small for even a 1/2 scale go straight to the full decoder, without a
    // first walk over the JPEG's markers that the full decoder would repeat.
    let worth_scaling = probed.dimensions.is_none_or(|(width, height)| scales_down(width.max(height), target.at_least));
    if probed.format == SourceFormat::Jpeg && worth_scaling && jpeg_is_complete(bytes) {
        if let Some(decoded) = decode_scaled_jpeg(bytes, limits, target) {
            return decoded;
        }
    }
    decode_probed(bytes, probed, limits)
}

/// Whether the JPEG's EXIF orientation turns it by 90° or 270° (from its headers only);
/// `None` when they cannot be read.
fn jpeg_turns_sideways(bytes: &[u8]) -> Option<bool> {
    use image::metadata::Orientation;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().ok()?;
    let orientation = decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
    Some(matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    ))
}

fn decode_scaled_jpeg(bytes: &[u8], limits: DecodeLimits, target: DecodeTarget) -> Option<Result<Photo, ImagingError>> {
    use image::metadata::Orientation;
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if let Err(reason) = limits.limits.check_dimensions(width, height) {
        return Some(Err(ImagingError::TooManyPixels(reason)));
    }
    // A progressive JPEG goes to the decoder that keeps only the coefficients its scale
    // needs (see progressive_scaled/), whose scales are powers of two. With libjpeg-turbo,
    // one that no power of two will do gets its n/8 scales, at libjpeg-turbo's memory cost,
    // rather than a full decode.
    let progressive = info.coding_process == jpeg_decoder::CodingProcess::DctProgressive;
    let available: &[u32] =
        if progressive || !cfg!(feature = "turbojpeg") { &POWER_OF_TWO_EIGHTHS } else { &ALL_EIGHTHS };
    let mut eighths = choose_eighths(width, height, target, available);
    // The default build decodes baseline JPEGs that way too: it reads past the AC
    // coefficients a reduced scale does not need instead of keeping and transforming them
    // (libjpeg-turbo's own scaled decode is faster than that, so it keeps them).
    let mut by_coefficients = progressive || !cfg!(feature = "turbojpeg");
    if eighths == 8 && progressive && cfg!(feature = "turbojpeg") {
        eighths = choose_eighths(width, height, target, &ALL_EIGHTHS);
        by_coefficients = false;
    }
    if eighths == 8 {
        return None; // no reduced scale will do: the full decoder's turn
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX));
    let orientation = decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms);
    let icc_profile = decoder.icc_profile();
    let exif = decoder.exif_data().filter(|exif| crate::metadata::exif_is_sane(exif)).map(<[u8]>::to_vec);
    let from_coefficients = if by_coefficients {
        let shift = 3 - eighths.trailing_zeros();
        let decoded = crate::progressive_scaled::decode_scaled(bytes, shift, limits.max_alloc_bytes);
        if decoded.is_none() {
            // Unusual (12-bit, CMYK, many scans) or damaged: the general decoder takes it; a
            // progressive one then keeps every coefficient, which costs 128 bytes a block.
            tracing::debug!(width, height, eighths, progressive, "JPEG left to the general decoder");
        }
        decoded
    } else {
        None
    };
    let decoder_name = if from_coefficients.is_some() {
        "coefficients-scaled"
    } else if cfg!(feature = "turbojpeg") {
        "libjpeg-turbo"
    } else {
        "jpeg-decoder"
    };
    let image = match from_coefficients {
        Some(image) => image,
        None => match scaled_pixels(decoder, bytes, eighths)? {
            Ok(image) => image,
            Err(error) => return Some(Err(error)),
        },
    };
    let (scaled_width, scaled_height) = (image.width(), image.height());
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    let swaps_axes = matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    let (original_width, original_height) = if swaps_axes { (height, width) } else { (width, height) };
    let mut photo = Photo::new(image, icc_profile);
    photo.exif = exif;
    photo.frame = crate::Frame::identity(original_width, original_height).scaled(
        f64::from(photo.width()) / f64::from(original_width),
        f64::from(photo.height()) / f64::from(original_height),
    );
    tracing::debug!(
        width,
        height,
        scaled_width,
        scaled_height,
        eighths,
        decoder = decoder_name,
        "JPEG decoded at reduced scale"
    );
    Some(Ok(photo))
}

/// The pixels of a JPEG at `eighths`/8 scale (1, 2 or 4) with the pure-Rust decoder. `None`
/// when it cannot do this JPEG (CMYK, 16-bit): the full decoder takes it then.
#[cfg(not(feature = "turbojpeg"))]
fn scaled_pixels(
    mut decoder: jpeg_decoder::Decoder<Cursor<&[u8]>>,
    _bytes: &[u8],
    eighths: u32,
) -> Option<Result<image::RgbImage, ImagingError>> {
    let info = decoder.info()?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let gray = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => true,
        jpeg_decoder::PixelFormat::RGB24 => false,
        _ => return None,
    };
    let request = |side: u32| u16::try_from((side * eighths).div_ceil(8)).unwrap_or(u16::MAX);
    let (scaled_width, scaled_height) = decoder.scale(request(width), request(height)).ok()?;
    let pixels = match decoder.decode() {
        Ok(pixels) => pixels,
        Err(error) => return Some(Err(ImagingError::Corrupt(error.to_string()))),
    };
    let (w, h) = (u32::from(scaled_width), u32::from(scaled_height));
    let image = if gray {
        image::GrayImage::from_raw(w, h, pixels).map(|g| DynamicImage::ImageLuma8(g).into_rgb8())
    } else {
        image::RgbImage::from_raw(w, h, pixels)
    };
    image.map(Ok)
}

/// The same with libjpeg-turbo (feature `turbojpeg`), at any scale n/8: its Huffman and SIMD
/// IDCT code make thumbnails about 1.4× faster than with the pure-Rust decoder
/// (bench/RESULTS.md).
/// Metadata still comes from jpeg-decoder's header parse.
#[cfg(feature = "turbojpeg")]
fn scaled_pixels(
    _decoder: jpeg_decoder::Decoder<Cursor<&[u8]>>,
    bytes: &[u8],
    eighths: u32,
) -> Option<Result<image::RgbImage, ImagingError>> {
    use turbojpeg::ScalingFactor;
    let factor = ScalingFactor::new(usize::try_from(eighths).ok()?, 8);
    let mut decompressor = turbojpeg::Decompressor::new().ok()?;
    let header = decompressor.read_header(bytes).ok()?;
    decompressor.set_scaling_factor(factor).ok()?;
    let scaled = header.scaled(factor);
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; 3 * scaled.width * scaled.height],
        width: scaled.width,
        pitch: 3 * scaled.width,
        height: scaled.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    // A JPEG libjpeg-turbo cannot turn into RGB (CMYK) goes to the full decoder instead.
    decompressor.decompress(bytes, image.as_deref_mut()).ok()?;
    image::RgbImage::from_raw(u32::try_from(scaled.width).ok()?, u32::try_from(scaled.height).ok()?, image.pixels)
        .map(Ok)
}
