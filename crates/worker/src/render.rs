//! The CPU-bound part of a segment: decode, operate, encode. Runs on a blocking thread;
//! takes and returns plain bytes so it can be tested without a store or a queue.

use bytes::Bytes;
use darkroom_core::recipe::Operation;
use darkroom_core::{CarriedFrame, OutputFormat};
use darkroom_imaging::{
    apply_ops, decode, decode_for_ops, encode, encode_intermediate, fit_within, DecodeLimits, ImagingError, Photo,
};

pub const PREVIEW_LONG_SIDE: u32 = 1600;
pub const THUMB_LONG_SIDE: u32 = 256;
const PREVIEW_QUALITY: u8 = 82;
const THUMB_QUALITY: u8 = 80;

#[derive(Debug, Clone)]
pub struct RenderInput {
    pub bytes: Bytes,
    pub ops: Vec<Operation>,
    pub is_first_segment: bool,
    pub is_last_segment: bool,
    pub format: OutputFormat,
    pub quality: u8,
    pub frame: Option<CarriedFrame>,
    pub limits: DecodeLimits,
}

#[derive(Debug, Clone)]
pub struct RenderedFile {
    pub name: &'static str,
    pub format: OutputFormat,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// `preview` (first segment), `result` and `thumb` (last segment).
    pub files: Vec<RenderedFile>,
    /// The lossless hand-over to the next segment, when this is not the last one.
    pub intermediate: Option<Vec<u8>>,
    pub frame: CarriedFrame,
}

fn file(name: &'static str, photo: &Photo, format: OutputFormat, quality: u8) -> Result<RenderedFile, ImagingError> {
    Ok(RenderedFile {
        name,
        format,
        bytes: encode(photo, format, quality)?,
        width: photo.width(),
        height: photo.height(),
    })
}

pub fn render(input: RenderInput) -> Result<Rendered, ImagingError> {
    #[cfg(feature = "fault-injection")]
    inject_faults(&input.ops);
    // The first segment decodes the upload: a JPEG whose recipe shrinks it early is decoded
    // at reduced scale, but never below the preview's size. Later segments get an
    // intermediate PNG already at the size the earlier ones left.
    let mut photo = if input.is_first_segment && input.frame.is_none() {
        decode_for_ops(&input.bytes, input.limits, &input.ops, PREVIEW_LONG_SIDE)?
    } else {
        decode(&input.bytes, input.limits)?
    };
    if let Some(frame) = input.frame {
        photo.frame = frame.into();
    }
    let mut files = Vec::new();
    if input.is_first_segment {
        let preview = fit_within(&photo, PREVIEW_LONG_SIDE)?;
        files.push(file("preview", &preview, OutputFormat::Jpeg, PREVIEW_QUALITY)?);
    }
    let photo = apply_ops(photo, &input.ops)?;
    let mut intermediate = None;
    if input.is_last_segment {
        files.push(file("result", &photo, input.format, input.quality)?);
        let thumb = fit_within(&photo, THUMB_LONG_SIDE)?;
        files.push(file("thumb", &thumb, OutputFormat::Jpeg, THUMB_QUALITY)?);
    } else {
        intermediate = Some(encode_intermediate(&photo)?);
    }
    Ok(Rendered { files, intermediate, frame: photo.frame.into() })
}

/// Test hook (feature `fault-injection`): misbehave on request, so the fault-tolerance tests
/// can make a photo crash or stall a worker.
#[cfg(feature = "fault-injection")]
fn inject_faults(ops: &[Operation]) {
    for op in ops {
        let Operation::Customize(settings) = op else { continue };
        let Some(fault) = settings.caption.as_ref().and_then(|c| c.text.strip_prefix("darkroom-fault:")) else {
            continue;
        };
        if fault == "panic" {
            panic!("injected fault: panic");
        }
        if let Some(millis) = fault.strip_prefix("sleep=").and_then(|ms| ms.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(millis));
        }
    }
}
