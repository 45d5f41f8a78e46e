//! Finding faces, and the eye and mouth areas within them, for automatic red-eye reduction
//! and teeth whitening. The detector is SeetaFace's frontal-face cascade through rustface —
//! pure Rust, its model (1.2 MB, BSD-2) compiled into the binary, so detection works
//! offline on every machine with nothing to install. OpenCV's Haar cascades would add
//! eye and smile detectors, but also a C++ dependency the default build must not need;
//! eye and mouth areas are instead placed by face geometry, then the pixel tests inside
//! them (red pupils, teeth-coloured pixels) do the precise work.

use image::DynamicImage;
use rustface::{ImageData, Model};
use std::sync::LazyLock;

static MODEL_BYTES: &[u8] = include_bytes!("../models/seeta_fd_frontal_v1.0.bin");

/// Parsed once; each detection clones it into a detector of its own (detectors are not `Sync`).
static MODEL: LazyLock<Option<Model>> = LazyLock::new(|| {
    match rustface::read_model(std::io::Cursor::new(MODEL_BYTES)) {
        Ok(model) => Some(model),
        Err(error) => {
            tracing::error!(error.message = %error, "the bundled face model could not be read; automatic red-eye and teeth detection are off");
            None
        }
    }
});

/// Faces are searched on a copy whose long side is at most this: faces in photos are far
/// larger than the detector's 20 px minimum, and a 24 MP search would take seconds.
const DETECTION_LONG_SIDE: u32 = 800;

/// A rectangle in the current image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl Area {
    /// The part of `self` given as fractions of its width and height.
    pub fn part(&self, left: f32, top: f32, right: f32, bottom: f32) -> Area {
        Area {
            x: self.x + self.width * left,
            y: self.y + self.height * top,
            width: self.width * (right - left),
            height: self.height * (bottom - top),
        }
    }

    /// Whole pixels `(x0, y0, x1, y1)` inside a `width`×`height` image.
    pub fn clamp(&self, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let x0 = self.x.floor().max(0.0) as u32;
        let y0 = self.y.floor().max(0.0) as u32;
        let x1 = ((self.x + self.width).ceil().max(0.0) as u32).min(width);
        let y1 = ((self.y + self.height).ceil().max(0.0) as u32).min(height);
        (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
    }
}

/// Frontal faces in the image, largest first.
pub fn detect_faces(image: &DynamicImage) -> Vec<Area> {
    let Some(model) = MODEL.as_ref() else { return Vec::new() };
    let (width, height) = (image.width(), image.height());
    let scale = (DETECTION_LONG_SIDE as f32 / width.max(height) as f32).min(1.0);
    let gray = if scale < 1.0 {
        let (w, h) = (((width as f32 * scale).round() as u32).max(1), ((height as f32 * scale).round() as u32).max(1));
        match crate::resize::resize_fast(image, w, h) {
            Ok(small) => small.to_luma8(),
            Err(_) => image.resize_exact(w, h, image::imageops::FilterType::Triangle).to_luma8(),
        }
    } else {
        image.to_luma8()
    };
    if gray.width() < 24 || gray.height() < 24 {
        return Vec::new();
    }
    let mut detector = rustface::create_detector_with_model(model.clone());
    detector.set_min_face_size(24);
    // True faces score 10–30 here; below 5 the cascade finds faces in clothes and folds.
    detector.set_score_thresh(5.0);
    detector.set_pyramid_scale_factor(0.8);
    detector.set_slide_window_step(4, 4);
    let faces = detector.detect(&ImageData::new(gray.as_raw(), gray.width(), gray.height()));
    let mut areas: Vec<Area> = faces
        .iter()
        .map(|face| {
            let bbox = face.bbox();
            Area {
                x: bbox.x() as f32 / scale,
                y: bbox.y() as f32 / scale,
                width: bbox.width() as f32 / scale,
                height: bbox.height() as f32 / scale,
            }
        })
        .collect();
    areas.sort_by(|a, b| (b.width * b.height).total_cmp(&(a.width * a.height)));
    tracing::debug!(faces = areas.len(), "face detection");
    areas
}

/// Where a `width`×`height` window inside `image` should go to frame its faces: centred on
/// the box around all of them (or on the largest face, when they do not all fit), kept
/// inside the image. Without faces, the middle of the image. Returns the top-left corner.
pub fn framing(image: &DynamicImage, width: u32, height: u32) -> (u32, u32) {
    let (image_width, image_height) = (image.width(), image.height());
    let centred = ((image_width - width.min(image_width)) / 2, (image_height - height.min(image_height)) / 2);
    let faces = detect_faces(image);
    let Some(largest) = faces.first() else {
        return centred;
    };
    let union = faces.iter().skip(1).fold(*largest, |all, face| {
        let (x0, y0) = (all.x.min(face.x), all.y.min(face.y));
        let (x1, y1) = ((all.x + all.width).max(face.x + face.width), (all.y + all.height).max(face.y + face.height));
        Area { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
    });
    let target = if union.width <= width as f32 && union.height <= height as f32 { union } else { *largest };
    let place = |centre: f32, window: u32, limit: u32| -> u32 {
        let start = (centre - window as f32 / 2.0).round().max(0.0) as u32;
        start.min(limit.saturating_sub(window))
    };
    let x = place(target.x + target.width / 2.0, width, image_width);
    let y = place(target.y + target.height / 2.0, height, image_height);
    tracing::debug!(faces = faces.len(), x, y, "smart crop framed on faces");
    (x, y)
}

/// Where the eyes of a detected face are: SeetaFace boxes run from the brows to the chin,
/// with the eyes in the upper middle band, one in each half.
pub fn eye_areas(face: &Area) -> [Area; 2] {
    [face.part(0.10, 0.18, 0.50, 0.52), face.part(0.50, 0.18, 0.90, 0.52)]
}

/// Where the mouth of a detected face is: the lower middle of the box, wide enough for a
/// broad smile or a face turned a little in the picture.
pub fn mouth_area(face: &Area) -> Area {
    face.part(0.16, 0.60, 0.84, 0.97)
}
