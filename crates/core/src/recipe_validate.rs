//! The recipe's rules beyond its shape: ranges, combinations of parameters, the regions'
//! total area — checked once a recipe parses, so a wrong one is refused at upload.

use super::*;
use crate::operations::ParamKind;

impl Recipe {
    pub fn validate(&self) -> Result<(), RecipeError> {
        if self.ops.is_empty() || self.ops.len() > MAX_OPS {
            return Err(RecipeError::new(
                "ops",
                format!("must hold 1 to {MAX_OPS} operations, got {}", self.ops.len()),
            ));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(RecipeError::new("quality", format!("must be 1–100, got {}", self.quality)));
        }
        if let Some(speed) = self.speed {
            if self.format != OutputFormat::Avif {
                return Err(RecipeError::new(
                    "speed",
                    "only AVIF has an encoder speed; leave it out for other formats",
                ));
            }
            if !(1..=10).contains(&speed) {
                return Err(RecipeError::new("speed", format!("must be 1–10, got {speed}")));
            }
        }
        self.validate_room_for_borders()?;
        let mut region_total = 0u64;
        for (index, op) in self.ops.iter().enumerate() {
            validate_op(op, &format!("ops[{index}]"))?;
            if let Operation::Redeye { regions } | Operation::WhitenTeeth { regions, .. } = op {
                region_total += region_pixels(regions);
                if region_total > MAX_REGION_PIXELS {
                    return Err(RecipeError::new(
                        format!("ops[{index}].regions"),
                        format!(
                            "the regions of this recipe cover {:.0} megapixels in all, over the limit of {:.0}; name only the areas to retouch",
                            region_total as f64 / 1e6,
                            MAX_REGION_PIXELS as f64 / 1e6
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Recipe {
    /// The last thumbnail bounds the bordered result (docs/ARCHITECTURE.md "Decorations"):
    /// its borders must leave room for the photo, which at least a third of the side keeps.
    fn validate_room_for_borders(&self) -> Result<(), RecipeError> {
        let Some((index, size)) = self.ops.iter().enumerate().rev().find_map(|(index, op)| match op {
            Operation::Thumbnail { size } => Some((index, *size)),
            _ => None,
        }) else {
            return Ok(());
        };
        let (mut pixels, mut percent) = (0u64, 0f64);
        for op in &self.ops {
            if let Operation::Customize(Customize { border: Some(border), .. }) = op {
                match border.width {
                    ResultLength::Pixels(width) => pixels += u64::from(width),
                    // A border is never under a pixel, however small its share.
                    ResultLength::Percent(share) => {
                        percent += f64::from(share);
                        pixels += 1;
                    }
                }
            }
        }
        // Both sides of each border, the percentages at most of the whole thumbnail (and a
        // pixel more each, as rounding may give).
        let taken = 2.0 * (pixels as f64 + percent / 100.0 * f64::from(size));
        if taken > f64::from(size) * 2.0 / 3.0 {
            return Err(RecipeError::new(
                format!("ops[{index}].size"),
                format!(
                    "a {size} px thumbnail has no room for the photo inside borders {taken:.0} px wide in all; make it larger or the borders narrower"
                ),
            ));
        }
        Ok(())
    }
}

fn in_range(field: String, value: f32, low: f32, high: f32) -> Result<(), RecipeError> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(RecipeError::new(field, format!("must be between {low} and {high}, got {value}")))
    }
}

fn validate_regions(path: &str, regions: &Option<Vec<Region>>) -> Result<(), RecipeError> {
    let Some(regions) = regions else {
        return Ok(());
    };
    if regions.len() > MAX_REGIONS {
        return Err(RecipeError::new(
            format!("{path}.regions"),
            format!("at most {MAX_REGIONS} regions, got {}", regions.len()),
        ));
    }
    for (index, region) in regions.iter().enumerate() {
        if region.width == 0 || region.height == 0 {
            return Err(RecipeError::new(format!("{path}.regions[{index}]"), "width and height must be at least 1"));
        }
        if [region.x, region.y, region.width, region.height].iter().any(|v| *v > MAX_REGION_COORDINATE) {
            return Err(RecipeError::new(
                format!("{path}.regions[{index}]"),
                format!("coordinates and sizes must be at most {MAX_REGION_COORDINATE}"),
            ));
        }
    }
    Ok(())
}

/// The pixels a list of regions covers as declared (overlaps counted twice).
fn region_pixels(regions: &Option<Vec<Region>>) -> u64 {
    regions.iter().flatten().map(|r| u64::from(r.width) * u64::from(r.height)).sum()
}

/// The ranges the operation registry gives an operation's plain parameters
/// (`operations.rs`): the one check of most numbers in a recipe.
fn validate_params(op: &Operation, path: &str) -> Result<(), RecipeError> {
    let Some(spec) = op.spec() else {
        return Err(RecipeError::new(
            path,
            format!("{:?} has no entry in the operation registry (a darkroom bug)", op.name()),
        ));
    };
    if spec.params.is_empty() {
        return Ok(());
    }
    let written = serde_json::to_value(op).map_err(|error| RecipeError::new(path, error.to_string()))?;
    for param in spec.params {
        // Left out: its default. Written as null: a number too large for the operation's
        // field (JSON has no infinity, so an infinite value serialises as null).
        let Some(given) = written.get(param.name) else { continue };
        let field = format!("{path}.{}", param.name);
        match param.kind {
            ParamKind::Number => {
                let number = given.as_f64().ok_or_else(|| {
                    RecipeError::new(
                        field.clone(),
                        format!("must be between {} and {}, got a number too large to hold", param.min, param.max),
                    )
                })?;
                in_range(field, number as f32, param.min as f32, param.max as f32)?;
            }
        }
    }
    Ok(())
}

fn validate_op(op: &Operation, path: &str) -> Result<(), RecipeError> {
    validate_params(op, path)?;
    match op {
        Operation::Thumbnail { size } => {
            if !(1..=4096).contains(size) {
                return Err(RecipeError::new(format!("{path}.size"), format!("must be 1–4096, got {size}")));
            }
        }
        Operation::Crop { .. } => {
            crop_spec(op, path)?;
        }
        Operation::Redeye { regions } => validate_regions(path, regions)?,
        Operation::WhitenTeeth { regions, .. } => validate_regions(path, regions)?,
        Operation::Recolor { mode, color, strength, degrees } => {
            let unexpected =
                |name: &str| RecipeError::new(format!("{path}.{name}"), format!("is not a parameter of mode {mode:?}"));
            match mode {
                RecolorMode::Tint => {
                    if color.is_none() {
                        return Err(RecipeError::new(format!("{path}.color"), "tint needs a colour \"#rrggbb\""));
                    }
                    if let Some(strength) = strength {
                        in_range(format!("{path}.strength"), *strength, 0.0, 1.0)?;
                    }
                    if degrees.is_some() {
                        return Err(unexpected("degrees"));
                    }
                }
                RecolorMode::Hue => {
                    let Some(degrees) = degrees else {
                        return Err(RecipeError::new(format!("{path}.degrees"), "hue needs degrees (−360 to 360)"));
                    };
                    in_range(format!("{path}.degrees"), *degrees, -360.0, 360.0)?;
                    if color.is_some() {
                        return Err(unexpected("color"));
                    }
                    if strength.is_some() {
                        return Err(unexpected("strength"));
                    }
                }
                RecolorMode::Grayscale | RecolorMode::Sepia | RecolorMode::AutoLevels => {
                    for (name, present) in
                        [("color", color.is_some()), ("strength", strength.is_some()), ("degrees", degrees.is_some())]
                    {
                        if present {
                            return Err(unexpected(name));
                        }
                    }
                }
            }
        }
        Operation::Customize(customize) => validate_customize(customize, path)?,
        // Their parameters' ranges are the registry's (`validate_params`).
        Operation::Straighten { .. } | Operation::AutoEnhance { .. } | Operation::Vignette { .. } => {}
        Operation::Watermark { text, image, opacity, size, .. } => {
            if let Some(opacity) = opacity {
                in_range(format!("{path}.opacity"), *opacity, 0.0, 1.0)?;
            }
            if let Some(size) = size {
                in_range(format!("{path}.size"), *size, 0.01, 0.5)?;
            }
            let text = match (text, image) {
                (Some(_), Some(_)) => {
                    return Err(RecipeError::new(path, "a watermark has its text or an image, not both"));
                }
                (None, None) => {
                    return Err(RecipeError::new(format!("{path}.text"), "a watermark needs its text or an image"));
                }
                (None, Some(image)) => {
                    if !crate::recipe::is_asset_name(image) {
                        return Err(RecipeError::new(
                            format!("{path}.image"),
                            "must be the file name of a PNG sent with the job: 1–100 letters, digits, '.', '_' or '-', ending in .png",
                        ));
                    }
                    return Ok(());
                }
                (Some(text), None) => text,
            };
            let chars = text.chars().count();
            if text.chars().any(char::is_control) {
                return Err(RecipeError::new(format!("{path}.text"), "must be one line, without control characters"));
            }
            // Zero-width and direction marks draw nothing: text of only those is no mark.
            let invisible = |c: char| {
                c.is_whitespace()
                    || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
            };
            if text.chars().all(invisible) || chars > MAX_WATERMARK_CHARS {
                return Err(RecipeError::new(
                    format!("{path}.text"),
                    format!("must be 1–{MAX_WATERMARK_CHARS} visible characters, got {chars} characters"),
                ));
            }
        }
    }
    Ok(())
}

fn validate_customize(customize: &Customize, path: &str) -> Result<(), RecipeError> {
    let Customize { brightness, contrast, saturation, sharpen, rotate, flip, border, caption } = customize;
    for (name, value) in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)] {
        if let Some(value) = value {
            in_range(format!("{path}.{name}"), *value, -1.0, 1.0)?;
        }
    }
    if let Some(sharpen) = sharpen {
        in_range(format!("{path}.sharpen"), *sharpen, 0.0, 2.0)?;
    }
    if let Some(rotate) = rotate {
        if ![90, 180, 270].contains(rotate) {
            return Err(RecipeError::new(format!("{path}.rotate"), format!("must be 90, 180 or 270, got {rotate}")));
        }
    }
    if let Some(border) = border {
        let field = format!("{path}.border.width");
        match border.width {
            ResultLength::Pixels(pixels) if !(1..=MAX_BORDER_WIDTH).contains(&pixels) => {
                return Err(RecipeError::new(field, format!("must be 1–{MAX_BORDER_WIDTH} px, got {pixels}")));
            }
            ResultLength::Percent(percent) => in_range(field, percent, 0.1, MAX_BORDER_PERCENT)?,
            ResultLength::Pixels(_) => {}
        }
    }
    if let Some(caption) = caption {
        let chars = caption.text.chars().count();
        if caption.text.trim().is_empty() || chars > MAX_CAPTION_CHARS {
            return Err(RecipeError::new(
                format!("{path}.caption.text"),
                format!("must be 1–{MAX_CAPTION_CHARS} characters, got {chars}"),
            ));
        }
        let field = format!("{path}.caption.size");
        match caption.size {
            Some(ResultLength::Pixels(pixels)) if !CAPTION_PIXELS.contains(&pixels) => {
                return Err(RecipeError::new(
                    field,
                    format!("must be {}–{} px, got {pixels}", CAPTION_PIXELS.start(), CAPTION_PIXELS.end()),
                ));
            }
            Some(ResultLength::Percent(percent)) => {
                in_range(field, percent, *CAPTION_PERCENT.start(), *CAPTION_PERCENT.end())?
            }
            _ => {}
        }
    }
    let nothing_set = brightness.is_none()
        && contrast.is_none()
        && saturation.is_none()
        && sharpen.is_none()
        && rotate.is_none()
        && flip.is_none()
        && border.is_none()
        && caption.is_none();
    if nothing_set {
        return Err(RecipeError::new(path, "customize needs at least one adjustment"));
    }
    Ok(())
}

/// A relative box lies inside the photo and covers some of it.
fn relative_box(relative: &RelativeBox, path: &str) -> Result<RelativeBox, RecipeError> {
    let RelativeBox { x, y, width, height } = *relative;
    let fraction = |name: &str, value: f64| {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(RecipeError::new(
                format!("{path}.{name}"),
                format!("a fraction of the photo's side, 0 to 1, got {value}"),
            ))
        }
    };
    fraction("x", x)?;
    fraction("y", y)?;
    fraction("width", width)?;
    fraction("height", height)?;
    if width <= 0.0 || height <= 0.0 {
        return Err(RecipeError::new(format!("{path}.width"), "width and height must be more than 0"));
    }
    // A thousandth of slack for boxes drawn right to the edge and rounded by a browser.
    if x + width > 1.001 || y + height > 1.001 {
        return Err(RecipeError::new(path, "the box must lie inside the photo (x + width and y + height at most 1)"));
    }
    Ok(*relative)
}

/// The validated form of a `crop` operation.
pub fn crop_spec(op: &Operation, path: &str) -> Result<CropSpec, RecipeError> {
    let Operation::Crop { x, y, width, height, aspect, smart, relative } = op else {
        return Err(RecipeError::new(path, "not a crop"));
    };
    let has_box = [x, y, width, height].iter().any(|v| v.is_some());
    if let Some(relative) = relative {
        if has_box || aspect.is_some() || smart.is_some() {
            return Err(RecipeError::new(path, "give one of x, y, width, height; relative; or aspect"));
        }
        return relative_box(relative, &format!("{path}.relative")).map(CropSpec::Relative);
    }
    if smart.is_some() && aspect.is_none() {
        return Err(RecipeError::new(
            format!("{path}.smart"),
            "smart goes with aspect (a box crop already says where to cut)",
        ));
    }
    match (aspect, has_box) {
        (Some(_), true) => Err(RecipeError::new(path, "give either x, y, width, height or aspect, not both")),
        (None, false) => Err(RecipeError::new(path, "crop needs x, y, width, height or aspect")),
        (Some(aspect), false) => {
            let parsed = aspect
                .split_once(':')
                .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
            match parsed {
                Some((w, h)) if w > 0 && h > 0 && w <= 1000 && h <= 1000 => {
                    Ok(CropSpec::Aspect { width: w, height: h, smart: smart.unwrap_or(false) })
                }
                _ => Err(RecipeError::new(
                    format!("{path}.aspect"),
                    format!("expected \"W:H\" with positive integers up to 1000, got {aspect:?}"),
                )),
            }
        }
        (None, true) => {
            let field = |name: &str, value: &Option<u32>| {
                value.ok_or_else(|| {
                    RecipeError::new(format!("{path}.{name}"), "missing: a box crop needs x, y, width and height")
                })
            };
            let region = Region {
                x: field("x", x)?,
                y: field("y", y)?,
                width: field("width", width)?,
                height: field("height", height)?,
            };
            if region.width == 0 || region.height == 0 {
                return Err(RecipeError::new(format!("{path}.width"), "width and height must be at least 1"));
            }
            Ok(CropSpec::Box(region))
        }
    }
}
