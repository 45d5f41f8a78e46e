//! The recipe of the plain HTML form (no JavaScript needed). Fields are turned into the
//! same JSON recipe an API client would send and validated by the same parser, so the
//! form can never accept what the API would refuse. The upload page's recipe builder builds
//! the same JSON in the browser (static/builder.js: keep the two in step).

use darkroom_core::{Recipe, RecipeError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn number(fields: &HashMap<String, String>, name: &str) -> Result<Option<f64>, RecipeError> {
    match fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<f64>()
            .map(Some)
            .map_err(|_| RecipeError { field: name.to_owned(), message: format!("expected a number, got {text:?}") }),
    }
}

fn text<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn checked(fields: &HashMap<String, String>, name: &str) -> bool {
    fields.get(name).is_some_and(|v| !v.is_empty() && v != "off" && v != "false")
}

fn integer(value: f64) -> Value {
    json!(value.round() as i64)
}

pub fn recipe_from_fields(fields: &HashMap<String, String>) -> Result<Recipe, RecipeError> {
    let mut ops = Vec::new();
    // In the registry's order (darkroom_core::operations says why that order).
    for op in darkroom_core::operations::names() {
        if !checked(fields, &format!("op_{op}")) {
            continue;
        }
        let mut spec = Map::new();
        spec.insert("op".into(), json!(op));
        match op {
            "straighten" => {
                spec.insert("angle".into(), json!(number(fields, "straighten_angle")?.unwrap_or(0.0)));
            }
            "watermark" => {
                // The text, or when it is left empty the logo sent with the form (its name in
                // `watermark_image`, filled in from the `assets` part).
                match (text(fields, "watermark_text"), text(fields, "watermark_image")) {
                    (None, Some(image)) => spec.insert("image".into(), json!(image)),
                    (text, _) => spec.insert("text".into(), json!(text.unwrap_or(""))),
                };
                spec.insert("position".into(), json!(text(fields, "watermark_position").unwrap_or("bottom-right")));
                if let Some(opacity) = number(fields, "watermark_opacity")? {
                    spec.insert("opacity".into(), json!(opacity));
                }
                if let Some(size) = number(fields, "watermark_size")? {
                    spec.insert("size".into(), json!(size));
                }
                if let Some(color) = text(fields, "watermark_color") {
                    spec.insert("color".into(), json!(color));
                }
            }
            "auto_enhance" => {
                if let Some(strength) = number(fields, "enhance_strength")? {
                    spec.insert("strength".into(), json!(strength));
                }
            }
            "whiten_teeth" => {
                if let Some(strength) = number(fields, "whiten_strength")? {
                    spec.insert("strength".into(), json!(strength));
                }
            }
            "crop" => {
                spec.insert("aspect".into(), json!(text(fields, "crop_aspect").unwrap_or("1:1")));
                if checked(fields, "crop_smart") {
                    spec.insert("smart".into(), json!(true));
                }
            }
            "recolor" => {
                let mode = text(fields, "recolor_mode").unwrap_or("grayscale");
                spec.insert("mode".into(), json!(mode));
                match mode {
                    "tint" => {
                        spec.insert("color".into(), json!(text(fields, "tint_color").unwrap_or("#704214")));
                        if let Some(strength) = number(fields, "tint_strength")? {
                            spec.insert("strength".into(), json!(strength));
                        }
                    }
                    "hue" => {
                        spec.insert("degrees".into(), json!(number(fields, "hue_degrees")?.unwrap_or(0.0)));
                    }
                    _ => {}
                }
            }
            "thumbnail" => {
                spec.insert("size".into(), integer(number(fields, "thumbnail_size")?.unwrap_or(1024.0)));
            }
            "customize" => {
                for name in ["brightness", "contrast", "saturation", "sharpen"] {
                    if let Some(value) = number(fields, name)?.filter(|v| *v != 0.0) {
                        spec.insert(name.into(), json!(value));
                    }
                }
                if let Some(rotate) = number(fields, "rotate")?.filter(|v| *v != 0.0) {
                    spec.insert("rotate".into(), integer(rotate));
                }
                if let Some(flip) = text(fields, "flip").filter(|f| *f != "none") {
                    spec.insert("flip".into(), json!(flip));
                }
                if let Some(width) = number(fields, "border_width")?.filter(|w| *w > 0.0) {
                    // Pixels unless a share of the short side is chosen (a page of the
                    // release before sends no unit, and meant pixels).
                    let width = match text(fields, "border_unit") {
                        Some("percent") => json!(format!("{width}%")),
                        _ => integer(width),
                    };
                    spec.insert(
                        "border".into(),
                        json!({"width": width, "color": text(fields, "border_color").unwrap_or("#ffffff")}),
                    );
                }
                if let Some(caption) = text(fields, "caption_text") {
                    let mut caption =
                        json!({"text": caption, "position": text(fields, "caption_position").unwrap_or("bottom")});
                    if let Some(size) = number(fields, "caption_size")?.filter(|size| *size > 0.0) {
                        caption["size"] = json!(format!("{size}%"));
                    }
                    spec.insert("caption".into(), caption);
                }
            }
            // Any other operation has its fields made from its registry entry (the upload
            // page's template): `<op>_<parameter>`, each left out when empty.
            generic => {
                let params = darkroom_core::operations::spec(generic).map_or(&[][..], |spec| spec.params);
                for param in params {
                    if let Some(value) = number(fields, &format!("{generic}_{}", param.name))? {
                        spec.insert(param.name.into(), json!(value));
                    }
                }
            }
        }
        ops.push(Value::Object(spec));
    }
    let mut recipe = Map::new();
    recipe.insert("ops".into(), Value::Array(ops));
    recipe.insert("format".into(), json!(text(fields, "format").unwrap_or("jpeg")));
    if let Some(quality) = number(fields, "quality")? {
        recipe.insert("quality".into(), integer(quality));
    }
    if let Some(metadata) = text(fields, "metadata") {
        recipe.insert("metadata".into(), json!(metadata));
    }
    Recipe::from_json(&Value::Object(recipe).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn builds_the_recipe_in_form_order() {
        let recipe = recipe_from_fields(&fields(&[
            ("op_thumbnail", "on"),
            ("thumbnail_size", "512"),
            ("op_crop", "on"),
            ("crop_aspect", "4:3"),
            ("crop_smart", "on"),
            ("op_customize", "on"),
            ("brightness", "0.2"),
            ("rotate", "90"),
            ("flip", "none"),
            ("op_straighten", "on"),
            ("straighten_angle", "-2.5"),
            ("op_watermark", "on"),
            ("watermark_text", "© Sofia"),
            ("watermark_position", "top-left"),
            ("format", "png"),
            ("metadata", "strip"),
        ]))
        .expect("valid");
        let names: Vec<_> = recipe.ops.iter().map(|op| op.name()).collect();
        assert_eq!(names, ["straighten", "crop", "thumbnail", "customize", "watermark"]);
        assert!(
            darkroom_core::operations::names().position(|op| op == "whiten_teeth")
                < darkroom_core::operations::names().position(|op| op == "straighten")
        );
        assert!(matches!(recipe.ops[1], darkroom_core::recipe::Operation::Crop { smart: Some(true), .. }));
        assert_eq!(recipe.format, darkroom_core::OutputFormat::Png);
        assert_eq!(recipe.metadata, darkroom_core::MetadataPolicy::Strip);
    }

    #[test]
    fn nothing_chosen_is_an_error_naming_ops() {
        assert_eq!(recipe_from_fields(&fields(&[])).unwrap_err().field, "ops");
        assert_eq!(
            recipe_from_fields(&fields(&[("op_thumbnail", "on"), ("thumbnail_size", "big")])).unwrap_err().field,
            "thumbnail_size"
        );
    }

    #[test]
    fn an_operation_of_the_registry_takes_its_fields_from_it() {
        let recipe = recipe_from_fields(&fields(&[
            ("op_vignette", "on"),
            ("vignette_strength", "0.3"),
            ("vignette_radius", ""),
            ("op_thumbnail", "on"),
            ("thumbnail_size", "800"),
        ]))
        .unwrap();
        assert_eq!(recipe.ops[0], darkroom_core::Operation::Vignette { strength: Some(0.3), radius: None });
        assert_eq!(recipe.ops[1].name(), "thumbnail", "in the registry's order");
        let refused = recipe_from_fields(&fields(&[("op_vignette", "on"), ("vignette_strength", "3")])).unwrap_err();
        assert_eq!(refused.field, "ops[0].strength");
    }
}
