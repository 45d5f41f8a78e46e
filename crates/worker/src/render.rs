//! The CPU-bound part of a segment: decode, operate, encode. Runs on a blocking thread;
//! takes and returns plain bytes so it can be tested without a store or a queue.
//!
//! A render can be told to stop ([`CancelFlag`]): when its stage's time budget is spent
//! the worker gives up on it, and the render notices between steps (decode, each
//! operation, the result's encode, the thumbnail) and returns [`RenderError::Cancelled`]
//! instead of running on.
//!
//! The preview and the thumbnail are made on a second thread beside the operations and the
//! result's encode ([`beside`]), so a render may briefly use two cores; a photo with an
//! alpha channel or of more than [`SIDE_BY_SIDE_PIXELS`] makes them one after the other, so
//! that two resamplers' copies of a big image never coexist. If both the operations and the
//! preview fail, the operations' error is the one reported.

use bytes::Bytes;
use darkroom_core::recipe::Operation;
use darkroom_core::{CarriedFrame, MetadataPolicy, OutputFormat};
use darkroom_imaging::{
    apply_ops_with, apply_range, decode, decode_for_ops, decorate, encode_intermediate, encode_result, fit_within,
    fit_within_for_display, result_scale, shrink_first, DecodeLimits, ImagingError, Photo, SourceFormat,
    WatermarkImages,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const PREVIEW_LONG_SIDE: u32 = 1600;
/// Above this many pixels (or with alpha, which the resampler copies premultiplied) the
/// preview and thumbnail are made one after the other with the operations, not beside them.
pub const SIDE_BY_SIDE_PIXELS: u64 = 40_000_000;
pub const THUMB_LONG_SIDE: u32 = 256;
const PREVIEW_QUALITY: u8 = 82;
const THUMB_QUALITY: u8 = 80;

#[derive(Debug, Clone)]
pub struct RenderInput {
    pub bytes: Bytes,
    /// The PNGs the recipe's image watermarks name (last segment only), by name.
    pub watermark_pngs: Vec<(String, Bytes)>,
    /// The whole recipe: the last segment draws its decorations (docs/ARCHITECTURE.md
    /// "Decorations"), and every segment may decode as small as the operations from its
    /// own on allow (a retouch before a thumbnail in another stage need not see every pixel).
    pub recipe_ops: Vec<Operation>,
    /// The operations of this segment, `recipe_ops[segment]`.
    pub segment: std::ops::Range<usize>,
    pub is_first_segment: bool,
    /// A request of an older release (message version 2): each operation's caption,
    /// watermark and border are drawn where it stands, in the pixels of that moment.
    pub decorations_in_place: bool,
    pub format: OutputFormat,
    pub quality: u8,
    /// AVIF's encoder speed, when the recipe names one.
    pub speed: Option<u8>,
    /// What of the original's EXIF the result keeps (previews and thumbnails keep none).
    pub metadata: MetadataPolicy,
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

/// What a segment hands on.
#[derive(Debug, Clone)]
pub enum Handover {
    /// The last segment: `files` hold the result and its thumbnail.
    Finished,
    /// A lossless image for the next segment to continue from.
    NextSegment { intermediate: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// Files to store as outputs: `preview` (first segment), `result` and `thumb` (last).
    pub files: Vec<RenderedFile>,
    pub handover: Handover,
    pub frame: CarriedFrame,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Imaging(#[from] ImagingError),
    #[error("the render was cancelled")]
    Cancelled,
}

/// Set by the worker when it gives up on a render; checked by the render between steps.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), RenderError> {
        if self.is_cancelled() {
            Err(RenderError::Cancelled)
        } else {
            Ok(())
        }
    }
}

fn file(
    name: &'static str,
    photo: &Photo,
    (format, quality, speed): (OutputFormat, u8, Option<u8>),
    metadata: MetadataPolicy,
) -> Result<RenderedFile, ImagingError> {
    Ok(RenderedFile {
        name,
        format,
        bytes: encode_result(photo, format, quality, speed, metadata)?,
        width: photo.width(),
        height: photo.height(),
    })
}

pub fn render(mut input: RenderInput, cancel: &CancelFlag) -> Result<Rendered, RenderError> {
    #[cfg(feature = "fault-injection")]
    inject_faults(input.recipe_ops.get(input.segment.clone()).unwrap_or_default(), cancel);
    let remaining_ops = input.recipe_ops.get(input.segment.start..).unwrap_or_default();
    cancel.check()?;
    // The first segment decodes the upload: a JPEG whose recipe shrinks it early is decoded
    // at reduced scale, but never below the preview's size (which follows the result's).
    // Later segments get an intermediate PNG already at the size the earlier ones left.
    let bytes = std::mem::take(&mut input.bytes);
    let mut photo = if input.is_first_segment && input.frame.is_none() {
        // Only a JPEG decodes at reduced scale. Whichever way it turns: its EXIF orientation
        // is read by the decode.
        let probed = darkroom_imaging::probe(&bytes).ok().filter(|probed| probed.format == SourceFormat::Jpeg);
        let preview_at_most = match probed.and_then(|probed| probed.dimensions) {
            Some((width, height)) => {
                preview_long_side(remaining_ops, width, height).max(preview_long_side(remaining_ops, height, width))
            }
            None => PREVIEW_LONG_SIDE,
        };
        decode_for_ops(&bytes, input.limits, remaining_ops, preview_at_most)?
    } else if input.is_first_segment {
        decode(&bytes, input.limits)?
    } else {
        decode(&bytes, DecodeLimits::for_intermediate(input.limits.limits))?
    };
    // The photo carries what it keeps of the file (EXIF, ICC): a big upload's bytes need not
    // stay in memory through the operations and encodes (docs/ARCHITECTURE.md "Decoding big
    // photos").
    drop(bytes);
    if let Some(frame) = input.frame {
        photo.frame = frame.into();
    }
    if input.metadata == MetadataPolicy::Strip {
        // Not carried through the stages either: nothing of it is wanted.
        photo.exif = None;
    }
    // Decoded before the operations: a PNG that cannot be drawn fails the photo at once.
    let mut watermark_images = WatermarkImages::default();
    for (name, png) in &input.watermark_pngs {
        watermark_images.add(name, png)?;
    }
    // The first segment also makes the "before" preview, resampled and encoded beside the
    // operations. Both read the decoded photo: a recipe that starts by shrinking makes its
    // smaller copy from it at once, and any other waits until the preview is resampled.
    let (preview_file, rest) = if input.is_first_segment {
        cancel.check()?;
        let long_side = preview_long_side(&input.recipe_ops, photo.frame.original_width, photo.frame.original_height);
        let together = side_by_side(&photo);
        let photo = Arc::new(photo);
        let (released, preview_let_go) = std::sync::mpsc::channel::<()>();
        let for_preview = photo.clone();
        let make_preview = move || {
            let preview = fit_within_for_display(&for_preview, long_side);
            drop((for_preview, released)); // the operations may have the photo now
            file("preview", &preview?, (OutputFormat::Jpeg, PREVIEW_QUALITY, None), MetadataPolicy::Strip)
        };
        let operate = || {
            let decoded = Decoded { photo, preview_let_go: Some(preview_let_go) };
            operate_and_encode(decoded, &input, &watermark_images, cancel)
        };
        let (preview, rest) = beside("preview", together, make_preview, operate);
        (Some(preview), rest)
    } else {
        (None, operate_and_encode(Decoded::own(photo), &input, &watermark_images, cancel))
    };
    let (later_files, handover, frame) = rest?;
    let mut files: Vec<RenderedFile> = preview_file.transpose()?.into_iter().collect();
    files.extend(later_files);
    Ok(Rendered { files, handover, frame })
}

/// Whether a photo's preview or thumbnail may be made beside the operations (see the
/// module doc): not for an alpha channel or a very big image.
fn side_by_side(photo: &Photo) -> bool {
    let pixels = u64::from(photo.width()) * u64::from(photo.height());
    !photo.image.color().has_alpha() && pixels <= SIDE_BY_SIDE_PIXELS
}

/// Runs `side` on a thread of its own while `main` runs on this one when `together`, so a
/// lone photo is done sooner on an idle core; otherwise, and when no thread is to be had,
/// `side` runs here, first. (Not on rayon's pool: a join there would run this render's
/// operations, and other photos' work, on the pool's few threads.) The thread logs under
/// the current span (the photo's job and photo ids). `side` is cloned for the thread and the
/// original dropped once the thread runs: capture only handles (an `Arc`, a `Sender`, a
/// reference), never pixels by value.
fn beside<A: Send, B>(
    name: &str,
    together: bool,
    side: impl FnOnce() -> A + Send + Clone,
    main: impl FnOnce() -> B,
) -> (A, B) {
    if !together {
        return (side(), main());
    }
    let span = tracing::Span::current();
    std::thread::scope(|scope| {
        let on_thread = side.clone();
        match std::thread::Builder::new().name(name.to_owned()).spawn_scoped(scope, move || span.in_scope(on_thread)) {
            Ok(thread) => {
                drop(side); // what it holds (e.g. a share of the photo) is the thread's alone now
                let main_result = main();
                (thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), main_result)
            }
            Err(_) => (side(), main()),
        }
    })
}

/// The decoded photo as the operations get it: shared with the preview's thread, if any,
/// which lets go of it once the preview is resampled (`preview_let_go` then disconnects).
struct Decoded {
    photo: Arc<Photo>,
    preview_let_go: Option<std::sync::mpsc::Receiver<()>>,
}

impl Decoded {
    fn own(photo: Photo) -> Self {
        Self { photo: Arc::new(photo), preview_let_go: None }
    }

    /// The photo after the segment's first operations that shrink it, made straight from the
    /// decoded one (`shrink_first`), else the decoded photo itself; and the index of the
    /// first operation still to apply.
    fn start(self, input: &RenderInput) -> Result<(Photo, usize), ImagingError> {
        let Self { photo, preview_let_go } = self;
        // An older request draws each operation's decorations where it stands: step by step.
        if !input.decorations_in_place {
            if let Some((shrunk, taken)) = shrink_first(&photo, &input.recipe_ops, input.segment.clone())? {
                return Ok((shrunk, input.segment.start + taken));
            }
        }
        if let Some(let_go) = preview_let_go {
            // Returns once the preview is resampled (or failed, or panicked).
            let _ = let_go.recv();
        }
        Ok((Arc::unwrap_or_clone(photo), input.segment.start))
    }
}

/// The "before" picture is for comparing with the result at the result's scale (the job
/// page's compare view): no larger than the original at that scale, which for a recipe
/// that shrinks is well under `PREVIEW_LONG_SIDE` and costs that much less to make.
fn preview_long_side(ops: &[Operation], width: u32, height: u32) -> u32 {
    if width == 0 || height == 0 {
        return PREVIEW_LONG_SIDE; // a header's claim: the decode refuses it
    }
    match result_scale(ops, width, height) {
        Some(scale) if scale > 0.0 => {
            let at_result_scale = (f64::from(width.max(height)) * scale).round();
            (at_result_scale.min(f64::from(PREVIEW_LONG_SIDE)) as u32).max(THUMB_LONG_SIDE)
        }
        _ => PREVIEW_LONG_SIDE,
    }
}

/// The segment's operations on the decoded photo, then the result and its thumbnail (last
/// segment) or the intermediate image for the next one.
fn operate_and_encode(
    decoded: Decoded,
    input: &RenderInput,
    watermark_images: &WatermarkImages,
    cancel: &CancelFlag,
) -> Result<(Vec<RenderedFile>, Handover, CarriedFrame), RenderError> {
    let is_last_segment = input.segment.end >= input.recipe_ops.len();
    let mut files = Vec::new();
    let (mut photo, first) = decoded.start(input)?;
    for index in first..input.segment.end {
        cancel.check()?;
        photo = if input.decorations_in_place {
            // The operation as a recipe of its own: its decorations drawn at once, and a
            // thumbnail fitted without room for later borders, as version 2 did.
            apply_ops_with(photo, input.recipe_ops.get(index..index + 1).unwrap_or_default(), watermark_images)?
        } else {
            apply_range(photo, &input.recipe_ops, index..index + 1, watermark_images)?
        };
    }
    if is_last_segment && first > input.segment.start && first >= input.segment.end {
        // The shrinking took the recipe's last operations: its decorations are still to draw.
        photo = decorate(photo, &input.recipe_ops, 1.0, watermark_images)?;
    }
    cancel.check()?;
    let handover = if is_last_segment {
        // The thumbnail is made from the result beside the result's encode.
        let make_thumb = || {
            cancel.check()?;
            let thumb = fit_within(&photo, THUMB_LONG_SIDE)?;
            Ok::<_, RenderError>(file(
                "thumb",
                &thumb,
                (OutputFormat::Jpeg, THUMB_QUALITY, None),
                MetadataPolicy::Strip,
            )?)
        };
        let encode = || file("result", &photo, (input.format, input.quality, input.speed), input.metadata);
        let (thumb, result) = beside("thumbnail", side_by_side(&photo), make_thumb, encode);
        files.push(result?);
        files.push(thumb?);
        Handover::Finished
    } else {
        Handover::NextSegment { intermediate: encode_intermediate(&photo)? }
    };
    Ok((files, handover, photo.frame.into()))
}

/// Test hook (feature `fault-injection`): misbehave on request, so the fault-tolerance tests
/// can make a photo crash or stall a worker. A caption `darkroom-fault:panic` panics,
/// `darkroom-fault:sleep=<ms>` stalls (noticing cancellation, as a long image loop does),
/// `darkroom-fault:hang` stalls for ever and ignores cancellation (a stuck library call).
#[cfg(feature = "fault-injection")]
fn inject_faults(ops: &[Operation], cancel: &CancelFlag) {
    use std::time::{Duration, Instant};
    for op in ops {
        let Operation::Customize(settings) = op else { continue };
        let Some(fault) = settings.caption.as_ref().and_then(|c| c.text.strip_prefix("darkroom-fault:")) else {
            continue;
        };
        if fault == "panic" {
            panic!("injected fault: panic");
        }
        if fault == "hang" {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if let Some(millis) = fault.strip_prefix("sleep=").and_then(|ms| ms.parse().ok()) {
            let until = Instant::now() + Duration::from_millis(millis);
            while Instant::now() < until && !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
            }
        }
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
