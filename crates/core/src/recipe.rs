//! The recipe: which operations to apply to a photo, in order, and how to encode the result
//! (docs/ARCHITECTURE.md "Recipe"). Parsing is strict — an unknown op, an unknown key, a missing or
//! out-of-range parameter is a [`RecipeError`] naming the offending field — because a
//! recipe that is wrong should fail at upload, not on a worker minutes later.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_OPS: usize = 16;
pub const MAX_REGIONS: usize = 64;
/// The pixels all `regions` of a recipe may cover together: retouching works region by
/// region, so this bounds its work whatever the photo (a full-frame region of the largest
/// allowed photo fits; 64 of them do not).
pub const MAX_REGION_PIXELS: u64 = 150_000_000;
/// No coordinate or size of a region may exceed this (no photo is larger).
pub const MAX_REGION_COORDINATE: u32 = 1_000_000;
pub const MAX_CAPTION_CHARS: usize = 200;
pub const MAX_BORDER_WIDTH: u32 = 2000;
/// A border's largest share of the result's short side, in percent.
pub const MAX_BORDER_PERCENT: f32 = 25.0;
/// A caption's text height: pixels and percent of the short side.
pub const CAPTION_PIXELS: std::ops::RangeInclusive<u32> = 6..=1000;
pub const CAPTION_PERCENT: std::ops::RangeInclusive<f32> = 0.5..=25.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RecipeError {
    /// Where the problem is, as a path into the recipe JSON (`ops[1].size`).
    pub field: String,
    pub message: String,
}

impl RecipeError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What to do to every photo of a job: `ops` applied in order, then encoded as `format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ops": [{"op": "crop", "aspect": "4:3"}, {"op": "thumbnail", "size": 1024}], "format": "jpeg", "quality": 85}))]
pub struct Recipe {
    /// 1–16 operations, applied in this order.
    #[schema(min_items = 1, max_items = 16)]
    pub ops: Vec<Operation>,
    #[serde(default)]
    pub format: OutputFormat,
    /// For lossy formats (JPEG, WebP).
    #[serde(default = "default_quality")]
    #[schema(minimum = 1, maximum = 100, default = 85)]
    pub quality: u8,
    /// What of the original's EXIF the result keeps (see [`MetadataPolicy`]).
    #[serde(default, skip_serializing_if = "MetadataPolicy::is_default")]
    pub metadata: MetadataPolicy,
    /// AVIF only: the encoder's speed, 1 (slowest, smallest) to 10 (fastest); default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10)]
    pub speed: Option<u8>,
}

/// What of the original's EXIF a result keeps. Whatever the policy, the orientation is
/// reset to upright (the pixels are turned already), the embedded thumbnail is dropped
/// (it would show the photo before processing) and the sizes are the result's; the ICC
/// profile is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetadataPolicy {
    /// Capture date and time, camera, lens, exposure, artist and copyright; no GPS or other
    /// location, no serial numbers, no maker notes.
    #[default]
    NoLocation,
    /// Everything the original carried, GPS included.
    Keep,
    /// No EXIF at all.
    Strip,
}

impl MetadataPolicy {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_quality() -> u8 {
    85
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    #[default]
    Jpeg,
    Png,
    Webp,
    /// AV1 in HEIF: about half JPEG's bytes at the same look, slower to encode.
    Avif,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 4] = [Self::Jpeg, Self::Png, Self::Webp, Self::Avif];

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// The format of an output stored with `content_type` (every output darkroom writes).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.content_type() == content_type)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Fit inside size×size, aspect kept, never upscaled.
    Thumbnail {
        /// The long side, in pixels.
        #[schema(minimum = 1, maximum = 4096)]
        size: u32,
    },
    /// A box (`x`, `y`, `width`, `height` in pixels of the original), a `relative` box
    /// (fractions of the original's sides: the same part of every photo), or the largest
    /// crop of an `aspect` ("W:H"), centred, or on the faces with `smart`.
    Crop {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        x: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        y: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(pattern = "^[0-9]{1,5}:[0-9]{1,5}$", example = "4:3")]
        aspect: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relative: Option<RelativeBox>,
        /// With `aspect`: centre the crop on the faces in the photo instead of the middle.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        smart: Option<bool>,
    },
    /// Red pupils neutralised: in `regions`, or in the eyes of the faces found.
    Redeye {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_items = 64)]
        regions: Option<Vec<Region>>,
    },
    /// Teeth whitened: in `regions`, or in the mouths of the faces found.
    WhitenTeeth {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_items = 64)]
        regions: Option<Vec<Region>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 1, default = 0.5)]
        strength: Option<f32>,
    },
    /// Colour transforms: `tint` takes `color` and `strength`, `hue` takes `degrees`.
    Recolor {
        mode: RecolorMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<Color>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 1, default = 0.3)]
        strength: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = -360, maximum = 360)]
        degrees: Option<f32>,
    },
    /// Adjustments and decorations: brightness, contrast, saturation, sharpen, rotate,
    /// flip, then the caption and last the border, which frames it.
    Customize(Customize),
    /// Rotation by any angle (a tilted horizon levelled), keeping the largest upright
    /// rectangle inside the turned photo: no empty corners.
    Straighten {
        /// Degrees, clockwise; −45 to 45.
        #[schema(minimum = -45, maximum = 45)]
        angle: f32,
    },
    /// The edges darkened towards the corners: `strength` (0–1, default 0.5) is how dark the
    /// corners get, `radius` (0–0.95, default 0.5) where the darkening starts, from the
    /// middle (0) to the corners (1).
    Vignette {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 1, default = 0.5)]
        strength: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 0.95, default = 0.5)]
        radius: Option<f32>,
    },
    /// Levels, contrast and white balance from the photo's own statistics: a dull, dark or
    /// tinted photo corrected, a well-exposed neutral one left nearly as it is.
    AutoEnhance {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 1, default = 0.6)]
        strength: Option<f32>,
    },
    /// A mark on the photo, scaled to it: `text` (1–100 characters) or `image` (the file
    /// name of a PNG sent with the job as an `assets` part) at `position`, its height `size`
    /// × the photo's short side, text in `color`, at `opacity`.
    Watermark {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(min_length = 1, max_length = 100)]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<WatermarkPosition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0, maximum = 1, default = 0.5)]
        opacity: Option<f32>,
        /// The text line's height as a fraction of the photo's short side.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 0.01, maximum = 0.5, default = 0.05)]
        size: Option<f32>,
        /// `#rrggbb`, white when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<Color>,
    },
}

/// Where a watermark sits on the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WatermarkPosition {
    #[default]
    BottomRight,
    BottomLeft,
    TopRight,
    TopLeft,
    Center,
}

pub const MAX_WATERMARK_CHARS: usize = 100;
/// The most bytes and pixels a watermark PNG may have (a logo, not a photo).
pub const MAX_ASSET_BYTES: u64 = 4 << 20;
pub const MAX_ASSET_PIXELS: u64 = 4_000_000;
/// The most files a job may send for its recipes.
pub const MAX_ASSETS_PER_JOB: usize = 8;

/// Whether `name` may name a file sent with the job: 1–100 letters, digits, `.`, `_` or
/// `-`, not starting with a dot, ending in `.png`. It becomes part of a store key.
pub fn is_asset_name(name: &str) -> bool {
    (5..=100).contains(&name.len())
        && !name.starts_with('.')
        && name.to_ascii_lowercase().ends_with(".png")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
pub const DEFAULT_WATERMARK_OPACITY: f32 = 0.5;
pub const DEFAULT_WATERMARK_SIZE: f32 = 0.05;

/// `vignette`'s strength and radius when the recipe names none.
pub const DEFAULT_VIGNETTE_STRENGTH: f32 = 0.5;
pub const DEFAULT_VIGNETTE_RADIUS: f32 = 0.5;

/// `auto_enhance`'s strength when the recipe names none.
pub const DEFAULT_ENHANCE_STRENGTH: f32 = 0.6;
/// `straighten`'s largest angle either way, in degrees.
pub const MAX_STRAIGHTEN_DEGREES: f32 = 45.0;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1, maximum = 1)]
    pub brightness: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1, maximum = 1)]
    pub contrast: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1, maximum = 1)]
    pub saturation: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub sharpen: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Clockwise: 90, 180 or 270.
    #[schema(minimum = 90, maximum = 270, multiple_of = 90)]
    pub rotate: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip: Option<Flip>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub border: Option<Border>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<Caption>,
}

/// A crop as the imaging code wants it: validated, one of its forms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropSpec {
    Box(Region),
    /// Fractions of the original's sides (see [`RelativeBox`]).
    Relative(RelativeBox),
    /// The largest `width:height` box, centred — on the faces when `smart`.
    Aspect {
        width: u32,
        height: u32,
        smart: bool,
    },
}

/// `512.0` is the integer 512 in JSON (and what Python's `json.dumps` writes for a float):
/// such numbers are taken as integers, so integer fields accept them.
fn integral_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            if let Some(float) = number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = serde_json::Value::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

impl Operation {
    /// The name used in recipes, stage maps and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Thumbnail { .. } => "thumbnail",
            Self::Crop { .. } => "crop",
            Self::Redeye { .. } => "redeye",
            Self::WhitenTeeth { .. } => "whiten_teeth",
            Self::Recolor { .. } => "recolor",
            Self::Customize(_) => "customize",
            Self::Straighten { .. } => "straighten",
            Self::AutoEnhance { .. } => "auto_enhance",
            Self::Watermark { .. } => "watermark",
            Self::Vignette { .. } => "vignette",
        }
    }

    /// Its entry in the operation registry (`operations.rs`).
    pub fn spec(&self) -> Option<&'static crate::operations::OperationSpec> {
        crate::operations::spec(self.name())
    }
}

impl Recipe {
    /// The files the recipe's image watermarks name, in order, each once.
    pub fn asset_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for op in &self.ops {
            if let Operation::Watermark { image: Some(name), .. } = op {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Parses and validates a recipe from JSON text.
    pub fn from_json(text: &str) -> Result<Self, RecipeError> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|error| RecipeError::new("recipe", format!("not JSON: {error}")))?;
        integral_numbers_as_integers(&mut value);
        let recipe: Recipe = serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { "recipe".to_owned() } else { path };
            RecipeError::new(field, error.into_inner().to_string())
        })?;
        recipe.validate()?;
        Ok(recipe)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[path = "recipe_parts.rs"]
mod parts;
pub use parts::{Border, Caption, CaptionPosition, Color, Flip, RecolorMode, Region, RelativeBox};

#[path = "recipe_length.rs"]
mod length;
pub use length::ResultLength;

#[path = "recipe_validate.rs"]
mod validate;
pub use validate::crop_spec;

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;
