//! The operation registry (docs/ARCHITECTURE.md, "Operations"): one entry per operation, in
//! the order the plain form applies them, with what every other part reads from here
//! instead of keeping a list of its own:
//!
//! - its name (recipes, stage maps, metrics) and its default stage (the default stage map);
//! - its title and summary (the pages' palette and cards, the plain form, the API's list);
//! - what the recipe builder adds (the operation with its defaults);
//! - its plain parameters: type, range, step, default, label and help. Validation checks
//!   their ranges from here; an operation marked [`Editor::Generic`] needs nothing else: the
//!   builder and the plain form make its fields from these.
//!
//! `GET /api/v1/operations` serves it, with each operation's JSON schema.
//! Adding an operation: its variant in `recipe.rs`, its entry here, its code in imaging
//! (`pipeline.rs` dispatches), and its tests.

use serde::Serialize;

/// One operation, as the registry tells it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OperationSpec {
    /// The name recipes use (`"op"`).
    pub name: &'static str,
    /// How the pages name it.
    pub title: &'static str,
    /// One sentence: what it does.
    pub summary: &'static str,
    /// The stage it runs in unless the stage map says otherwise (`--stage-map`).
    pub stage: &'static str,
    /// The operation as the builder adds it (JSON), with its defaults.
    pub added_as: &'static str,
    /// Its parameters that take plain values.
    pub params: &'static [Param],
    /// Who draws its editor on the pages.
    pub editor: Editor,
}

/// Who draws an operation's editor on the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Editor {
    /// The builder and the plain form have one of their own (regions, boxes, nested values).
    Own,
    /// Made from [`OperationSpec::params`] alone.
    Generic,
}

/// A parameter with a plain value. Validation refuses a value outside `min`–`max`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Param {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    #[serde(rename = "type")]
    pub kind: ParamKind,
    pub min: f64,
    pub max: f64,
    /// The step an editor moves it by.
    pub step: f64,
    /// Its value when a recipe leaves it out.
    pub default: f64,
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Number,
}

/// The stage of the long operations (the seed's Server B).
const SLOW: &str = "slow";
const QUICK: &str = crate::plan::DEFAULT_STAGE;

/// Every operation, in the order the plain form applies them: face fixes on the
/// full-resolution photo (in the slow stage, so that straighten after them keeps one hop
/// between stages), the horizon levelled, then framing and colour, then the size, then
/// decorations and the watermark at the final size.
pub const OPERATIONS: &[OperationSpec] = &[
    OperationSpec {
        name: "redeye",
        title: "Red-eye reduction",
        summary: "Red pupils neutralised: in regions drawn on the photo, or in the eyes of the faces found.",
        stage: SLOW,
        added_as: r#"{"op":"redeye"}"#,
        params: &[],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "whiten_teeth",
        title: "Teeth whitening",
        summary: "Teeth whitened: in regions drawn on the photo, or in the mouths of the faces found.",
        stage: SLOW,
        added_as: r#"{"op":"whiten_teeth","strength":0.5}"#,
        params: &[STRENGTH_HALF],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "straighten",
        title: "Straighten",
        summary: "A tilted horizon levelled, keeping the largest upright rectangle: no empty corners.",
        stage: QUICK,
        added_as: r#"{"op":"straighten","angle":0}"#,
        params: &[Param {
            name: "angle",
            label: "Angle (° clockwise)",
            help: "Degrees, clockwise; −45 to 45.",
            kind: ParamKind::Number, min: -crate::recipe::MAX_STRAIGHTEN_DEGREES as f64, max: crate::recipe::MAX_STRAIGHTEN_DEGREES as f64, step: 0.1, default: 0.0,
        }],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "crop",
        title: "Crop",
        summary: "A box, the same part of every photo, or the largest crop of an aspect ratio, centred or on the faces.",
        stage: QUICK,
        added_as: r#"{"op":"crop","aspect":"4:3","smart":true}"#,
        params: &[],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "auto_enhance",
        title: "Auto-enhance",
        summary: "White balance, levels and exposure from the photo's own statistics; a well-exposed photo is left nearly as it is.",
        stage: QUICK,
        added_as: r#"{"op":"auto_enhance","strength":0.6}"#,
        params: &[Param {
            name: "strength",
            label: "Strength",
            help: "0 leaves the photo as it is, 1 applies the whole correction.",
            kind: ParamKind::Number, min: 0.0, max: 1.0, step: 0.05, default: crate::recipe::DEFAULT_ENHANCE_STRENGTH as f64,
        }],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "recolor",
        title: "Re-color",
        summary: "Black & white, sepia, a tint, a hue shift, or auto levels.",
        stage: QUICK,
        added_as: r#"{"op":"recolor","mode":"grayscale"}"#,
        params: &[],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "vignette",
        title: "Vignette",
        summary: "The edges darkened towards the corners, drawing the eye to the middle.",
        stage: QUICK,
        added_as: r#"{"op":"vignette","strength":0.5,"radius":0.5}"#,
        params: &[
            Param {
                name: "strength",
                label: "Strength",
                help: "How dark the corners get: 0 not at all, 1 black.",
                kind: ParamKind::Number, min: 0.0, max: 1.0, step: 0.05, default: 0.5,
            },
            Param {
                name: "radius",
                label: "Starts at",
                help: "Where the darkening starts, from the middle (0) to the corners (1).",
                kind: ParamKind::Number, min: 0.0, max: 0.95, step: 0.05, default: 0.5,
            },
        ],
        editor: Editor::Generic,
    },
    OperationSpec {
        name: "thumbnail",
        title: "Resize",
        summary: "Fit inside a square of the given side, aspect kept, never upscaled.",
        stage: QUICK,
        added_as: r#"{"op":"thumbnail","size":1600}"#,
        params: &[],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "customize",
        title: "Customize",
        summary: "Brightness, contrast, saturation, sharpen, rotate and flip, then a caption and a border.",
        stage: QUICK,
        added_as: r#"{"op":"customize","contrast":0.1}"#,
        params: &[],
        editor: Editor::Own,
    },
    OperationSpec {
        name: "watermark",
        title: "Watermark",
        summary: "A text or a logo on the result, scaled to it.",
        stage: QUICK,
        added_as: r#"{"op":"watermark","text":"© ","position":"bottom-right","opacity":0.5,"size":0.05}"#,
        params: &[],
        editor: Editor::Own,
    },
];

const STRENGTH_HALF: Param = Param {
    name: "strength",
    label: "Strength",
    help: "0 leaves the teeth as they are, 1 whitens them fully.",
    kind: ParamKind::Number,
    min: 0.0,
    max: 1.0,
    step: 0.05,
    default: 0.5,
};

/// The registry's entry for `name`.
pub fn spec(name: &str) -> Option<&'static OperationSpec> {
    OPERATIONS.iter().find(|spec| spec.name == name)
}

/// Every operation's name, in the registry's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().map(|spec| spec.name)
}

/// The stage map's default: every operation that does not run in the default stage.
pub fn default_stage_map() -> String {
    OPERATIONS
        .iter()
        .filter(|spec| spec.stage != crate::plan::DEFAULT_STAGE)
        .map(|spec| format!("{}={}", spec.name, spec.stage))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Operation, Recipe};

    #[test]
    fn every_entry_is_an_operation_added_as_it_says_and_named_once() {
        for (index, spec) in OPERATIONS.iter().enumerate() {
            let recipe = Recipe::from_json(&format!(r#"{{"ops":[{}]}}"#, spec.added_as))
                .unwrap_or_else(|error| panic!("{}: its added_as is refused: {error}", spec.name));
            assert_eq!(recipe.ops[0].name(), spec.name);
            assert!(OPERATIONS[..index].iter().all(|other| other.name != spec.name), "{} twice", spec.name);
        }
    }

    #[test]
    fn the_default_stage_map_is_the_registrys() {
        assert_eq!(default_stage_map(), crate::plan::DEFAULT_STAGE_MAP);
    }

    #[test]
    fn a_parameter_out_of_its_range_is_refused_where_it_is() {
        let error = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":9},{"op":"vignette","radius":1.5}]}"#)
            .expect_err("out of range");
        assert_eq!(error.field, "ops[1].radius");
        // Past f32's range the value parses as infinity: refused, not taken as null.
        for huge in [
            r#"{"ops":[{"op":"straighten","angle":1e39}]}"#,
            r#"{"ops":[{"op":"auto_enhance","strength":-1e39}]}"#,
            r#"{"ops":[{"op":"vignette","strength":1e300}]}"#,
        ] {
            let error = Recipe::from_json(huge).expect_err(huge);
            assert!(error.field.starts_with("ops[0]."), "{huge}: {error:?}");
        }
        let ok = Recipe::from_json(r#"{"ops":[{"op":"vignette"}]}"#).expect("defaults");
        assert_eq!(ok.ops[0], Operation::Vignette { strength: None, radius: None });
    }
}
