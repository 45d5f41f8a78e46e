//! The parameters operations take that are more than a number: regions and boxes on the
//! photo, colours, recolouring modes, flips, borders and captions (see `recipe.rs`).

use super::ResultLength;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    #[schema(maximum = 1_000_000)]
    pub x: u32,
    #[schema(maximum = 1_000_000)]
    pub y: u32,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub width: u32,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub height: u32,
}

/// A box as fractions (0–1) of the original's width and height: the same part of every
/// photo, whatever its size (a crop drawn on one photo of a batch of mixed sizes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelativeBox {
    #[schema(minimum = 0, maximum = 1)]
    pub x: f64,
    #[schema(minimum = 0, maximum = 1)]
    pub y: f64,
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub width: f64,
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub height: f64,
}

impl RelativeBox {
    /// The box in pixels of a `width`×`height` original: at least one pixel, inside it.
    pub fn in_pixels(&self, width: u32, height: u32) -> Region {
        let (w, h) = (f64::from(width), f64::from(height));
        let x = ((self.x * w).round() as u32).min(width.saturating_sub(1));
        let y = ((self.y * h).round() as u32).min(height.saturating_sub(1));
        let box_width = ((self.width * w).round() as u32).clamp(1, width - x);
        let box_height = ((self.height * h).round() as u32).clamp(1, height - y);
        Region { x, y, width: box_width, height: box_height }
    }
}

/// `#rrggbb`, parsed once so operations never see text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Color(pub [u8; 3]);

impl TryFrom<String> for Color {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let hex = text.strip_prefix('#').filter(|hex| hex.len() == 6 && hex.is_ascii());
        let channel = |i: usize| hex.and_then(|hex| u8::from_str_radix(&hex[i..i + 2], 16).ok());
        match (channel(0), channel(2), channel(4)) {
            (Some(r), Some(g), Some(b)) => Ok(Color([r, g, b])),
            _ => Err(format!("expected a colour as \"#rrggbb\", got {text:?}")),
        }
    }
}

impl utoipa::PartialSchema for Color {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^#[0-9a-fA-F]{6}$"))
            .description(Some("A colour, \"#rrggbb\""))
            .examples([serde_json::json!("#ffffff")])
            .into()
    }
}

impl utoipa::ToSchema for Color {}

impl From<Color> for String {
    fn from(color: Color) -> String {
        let [r, g, b] = color.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecolorMode {
    Grayscale,
    Sepia,
    Tint,
    Hue,
    AutoLevels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    Horizontal,
    Vertical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptionPosition {
    Bottom,
    Top,
}

/// A border round the finished result (docs/ARCHITECTURE.md "Decorations").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Border {
    /// Pixels of the result (1–2000), or `"N%"` of its short side (0.1–25).
    pub width: ResultLength,
    pub color: Color,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Caption {
    #[schema(min_length = 1, max_length = 200)]
    pub text: String,
    #[serde(default = "default_caption_position")]
    pub position: CaptionPosition,
    /// The text's height: pixels of the result (6–1000), or `"N%"` of its short side
    /// (0.5–25); by default 7% (never under 10 px). Long text is shrunk to fit the width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ResultLength>,
}

fn default_caption_position() -> CaptionPosition {
    CaptionPosition::Bottom
}
