//! `ResultLength`: a border's width or a caption's size, in pixels of the result or as a
//! share of its short side (docs/ARCHITECTURE.md "Decorations").

use serde::{Deserialize, Serialize};
use std::fmt;

/// A length on the finished result: a number is pixels of the result, whatever the
/// original's size or the operations before; a string `"N%"` is that share of the result's
/// short side, so a batch of mixed sizes looks the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResultLength {
    Pixels(u32),
    Percent(f32),
}

impl ResultLength {
    /// In pixels of a result whose short side is `short_side`: at least one.
    pub fn in_pixels(self, short_side: u32) -> u32 {
        match self {
            ResultLength::Pixels(pixels) => pixels,
            ResultLength::Percent(percent) => {
                ((f64::from(percent) / 100.0 * f64::from(short_side)).round() as u32).max(1)
            }
        }
    }
}

impl Serialize for ResultLength {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResultLength::Pixels(pixels) => serializer.serialize_u32(*pixels),
            ResultLength::Percent(percent) => serializer.serialize_str(&format!("{percent}%")),
        }
    }
}

impl<'de> Deserialize<'de> for ResultLength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LengthVisitor;
        impl serde::de::Visitor<'_> for LengthVisitor {
            type Value = ResultLength;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of pixels or a percentage of the short side such as \"2%\"")
            }
            fn visit_u64<E: serde::de::Error>(self, pixels: u64) -> Result<ResultLength, E> {
                u32::try_from(pixels)
                    .map(ResultLength::Pixels)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(pixels), &self))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ResultLength, E> {
                // Digits with at most one decimal point, then "%": what the schema says.
                let percent = text
                    .strip_suffix('%')
                    .filter(|number| {
                        !number.is_empty()
                            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                            && number.bytes().filter(|b| *b == b'.').count() <= 1
                    })
                    .and_then(|number| number.parse::<f32>().ok())
                    .filter(|percent| percent.is_finite());
                percent
                    .map(ResultLength::Percent)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_any(LengthVisitor)
    }
}

impl utoipa::PartialSchema for ResultLength {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .description(Some("pixels of the result")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+(\\.[0-9]+)?%$"))
                    .description(Some("a percentage of the result's short side")),
            )
            .examples([serde_json::json!("2%"), serde_json::json!(24)])
            .into()
    }
}

impl utoipa::ToSchema for ResultLength {}
