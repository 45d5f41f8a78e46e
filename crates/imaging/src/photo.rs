//! A photo in work: its pixels, colour profile and EXIF as read, where the original's
//! coordinates are now (`Frame`), and the faces found in it.

use crate::geometry::Frame;
use crate::resize::resize_exact;
use crate::ImagingError;
use image::DynamicImage;

/// A decoded photo: pixels, its colour profile (carried to the output), and where the
/// original's coordinates are now.
#[derive(Clone)]
pub struct Photo {
    pub image: DynamicImage,
    pub icc_profile: Option<Vec<u8>>,
    /// The original's EXIF as read (a TIFF structure), orientation included: what a result
    /// keeps of it is the recipe's `metadata` policy's call, at encode.
    pub exif: Option<Vec<u8>>,
    pub frame: Frame,
    /// Faces found in this image, with the frame and size they were found at: red-eye and
    /// teeth whitening in one recipe detect once (colour changes keep faces where they are;
    /// any change of geometry shows in the frame or the size).
    faces: Option<(Frame, u32, u32, Vec<crate::faces::Area>)>,
}

impl std::fmt::Debug for Photo {
    /// Dimensions, not pixels: a failed test must not print megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("width", &self.width())
            .field("height", &self.height())
            .field("color", &self.image.color())
            .field("icc_profile_bytes", &self.icc_profile.as_ref().map(Vec::len))
            .field("exif_bytes", &self.exif.as_ref().map(Vec::len))
            .finish()
    }
}

impl Photo {
    pub fn new(image: DynamicImage, icc_profile: Option<Vec<u8>>) -> Self {
        let frame = Frame::identity(image.width(), image.height());
        Self { image, icc_profile, exif: None, frame, faces: None }
    }

    /// The faces in the image, largest first (detected once per geometry).
    pub fn faces(&mut self) -> Vec<crate::faces::Area> {
        let key = (self.frame, self.width(), self.height());
        if let Some((frame, width, height, faces)) = &self.faces {
            if (*frame, *width, *height) == key {
                return faces.clone();
            }
        }
        let faces = crate::faces::detect_faces(&self.image);
        self.faces = Some((key.0, key.1, key.2, faces.clone()));
        faces
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }

    pub(crate) fn resize_to(&mut self, width: u32, height: u32) -> Result<(), ImagingError> {
        let sx = f64::from(width) / f64::from(self.width());
        let sy = f64::from(height) / f64::from(self.height());
        self.image = resize_exact(&self.image, width, height)?;
        self.frame = self.frame.scaled(sx, sy);
        Ok(())
    }

    pub(crate) fn crop_to(&mut self, x: u32, y: u32, width: u32, height: u32) -> Result<(), ImagingError> {
        let image = std::mem::replace(&mut self.image, DynamicImage::new_rgb8(0, 0));
        self.image = crate::resize::crop_in_place(image, x, y, width, height)?;
        self.frame = self.frame.translated(-f64::from(x), -f64::from(y));
        Ok(())
    }
}
