use super::*;

fn error_of(json: &str) -> RecipeError {
    match Recipe::from_json(json) {
        Ok(recipe) => panic!("accepted {json}: {recipe:?}"),
        Err(error) => error,
    }
}

#[test]
fn parses_the_design_example() {
    let recipe = Recipe::from_json(
        r#"{"ops": [{"op": "redeye"}, {"op": "crop", "aspect": "4:3"},
            {"op": "recolor", "mode": "sepia"}, {"op": "thumbnail", "size": 256}],
            "format": "jpeg", "quality": 85}"#,
    )
    .expect("valid recipe");
    assert_eq!(recipe.ops.len(), 4);
    assert_eq!(recipe.format, OutputFormat::Jpeg);
    assert_eq!(crop_spec(&recipe.ops[1], "ops[1]"), Ok(CropSpec::Aspect { width: 4, height: 3, smart: false }));
}

#[test]
fn defaults_format_and_quality() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":10}]}"#).expect("valid");
    assert_eq!((recipe.format, recipe.quality), (OutputFormat::Jpeg, 85));
    assert_eq!(recipe.metadata, MetadataPolicy::NoLocation);
    // The default is not written back: a recipe reads the same to a worker of the release before.
    assert!(!recipe.to_json().contains("metadata"), "{}", recipe.to_json());
}

#[test]
fn takes_a_metadata_policy_by_name() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":10}],"metadata":"keep"}"#).expect("valid");
    assert_eq!(recipe.metadata, MetadataPolicy::Keep);
    assert_eq!(Recipe::from_json(&recipe.to_json()), Ok(recipe));
    assert_eq!(error_of(r#"{"ops":[{"op":"thumbnail","size":10}],"metadata":"gps"}"#).field, "metadata");
}

#[test]
fn round_trips_through_json() {
    let text = r##"{"ops":[{"op":"customize","brightness":0.2,"border":{"width":4,"color":"#ff0000"},"caption":{"text":"hi"}},{"op":"recolor","mode":"tint","color":"#336699"}],"format":"png"}"##;
    let recipe = Recipe::from_json(text).expect("valid");
    assert_eq!(Recipe::from_json(&recipe.to_json()), Ok(recipe));
}

#[test]
fn names_the_offending_field() {
    assert_eq!(error_of(r#"{"ops":[{"op":"thumbnail","size":0}]}"#).field, "ops[0].size");
    assert_eq!(
        error_of(r#"{"ops":[{"op":"crop","aspect":"4:3"},{"op":"thumbnail","size":5000}]}"#).field,
        "ops[1].size"
    );
    assert_eq!(error_of(r#"{"ops":[]}"#).field, "ops");
    assert_eq!(error_of(r#"{"ops":[{"op":"thumbnail","size":5}],"quality":0}"#).field, "quality");
    assert_eq!(error_of(r#"{"ops":[{"op":"crop","aspect":"4:0"}]}"#).field, "ops[0].aspect");
    assert_eq!(
        error_of(r#"{"ops":[{"op":"crop","x":0,"y":0,"width":5,"height":5,"smart":true}]}"#).field,
        "ops[0].smart"
    );
    let smart = Recipe::from_json(r#"{"ops":[{"op":"crop","aspect":"1:1","smart":true}]}"#).unwrap();
    assert_eq!(
        crate::recipe::crop_spec(&smart.ops[0], "ops[0]").unwrap(),
        crate::recipe::CropSpec::Aspect { width: 1, height: 1, smart: true }
    );
    assert_eq!(error_of(r#"{"ops":[{"op":"crop","x":1,"y":1,"width":3}]}"#).field, "ops[0].height");
    assert_eq!(error_of(r#"{"ops":[{"op":"recolor","mode":"tint"}]}"#).field, "ops[0].color");
    assert_eq!(error_of(r#"{"ops":[{"op":"recolor","mode":"hue","degrees":400}]}"#).field, "ops[0].degrees");
    assert_eq!(error_of(r#"{"ops":[{"op":"customize","rotate":45}]}"#).field, "ops[0].rotate");
    assert_eq!(error_of(r#"{"ops":[{"op":"customize","contrast":1.5}]}"#).field, "ops[0].contrast");
    assert_eq!(error_of(r#"{"ops":[{"op":"whiten_teeth","strength":2}]}"#).field, "ops[0].strength");
}

#[test]
fn rejects_unknown_ops_keys_and_garbage() {
    let unknown_op = error_of(r#"{"ops":[{"op":"sparkle"}]}"#);
    assert!(unknown_op.message.contains("sparkle"), "{unknown_op}");
    let unknown_key = error_of(r#"{"ops":[{"op":"thumbnail","size":5,"sise":4}]}"#);
    assert!(unknown_key.message.contains("sise"), "{unknown_key}");
    let top = error_of(r#"{"ops":[{"op":"thumbnail","size":5}],"colour":"red"}"#);
    assert!(top.message.contains("colour"), "{top}");
    error_of("not json");
    error_of(r#"{"ops":[{"op":"thumbnail","size":-3}]}"#);
    error_of(r#"{"ops":[{"op":"recolor","mode":"tint","color":"red"}]}"#);
    error_of(r#"{"ops":[{"op":"customize"}]}"#);
}

#[test]
fn bounds_the_work_regions_can_ask_for() {
    let full_frame = r#"{"x":0,"y":0,"width":8000,"height":5000}"#;
    let many: Vec<&str> = std::iter::repeat_n(full_frame, 64).collect();
    let error = error_of(&format!(r#"{{"ops":[{{"op":"redeye","regions":[{}]}}]}}"#, many.join(",")));
    assert_eq!(error.field, "ops[0].regions");
    assert!(error.message.contains("megapixels"), "{error}");
    // Spread over two operations, the total still counts.
    let half: Vec<&str> = std::iter::repeat_n(full_frame, 3).collect();
    let error = error_of(&format!(
        r#"{{"ops":[{{"op":"redeye","regions":[{0}]}},{{"op":"whiten_teeth","regions":[{0}]}}]}}"#,
        half.join(",")
    ));
    assert_eq!(error.field, "ops[1].regions");
    let error = error_of(r#"{"ops":[{"op":"redeye","regions":[{"x":4294967295,"y":0,"width":10,"height":10}]}]}"#);
    assert_eq!(error.field, "ops[0].regions[0]");
    assert!(Recipe::from_json(&format!(r#"{{"ops":[{{"op":"redeye","regions":[{full_frame}]}}]}}"#)).is_ok());
}

#[test]
fn integral_floats_are_integers_as_json_says() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":512.0}],"quality":85.0}"#).unwrap();
    assert_eq!(recipe.ops, vec![Operation::Thumbnail { size: 512 }]);
    assert_eq!(recipe.quality, 85);
    let error = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":512.5}]}"#).unwrap_err();
    assert!(error.field.starts_with("ops[0]"), "{error}");
}

#[test]
fn a_relative_crop_is_the_same_part_of_every_photo() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"crop","relative":{"x":0.25,"y":0.1,"width":0.5,"height":0.8}}]}"#)
        .expect("valid");
    let Ok(CropSpec::Relative(relative)) = crop_spec(&recipe.ops[0], "ops[0]") else { panic!("a relative crop") };
    assert_eq!(relative.in_pixels(2000, 1000), Region { x: 500, y: 100, width: 1000, height: 800 });
    assert_eq!(relative.in_pixels(512, 512), Region { x: 128, y: 51, width: 256, height: 410 });
    // Never empty, never outside, even on a 1×1 photo.
    assert_eq!(relative.in_pixels(1, 1), Region { x: 0, y: 0, width: 1, height: 1 });
}

#[test]
fn a_relative_crop_must_lie_inside_the_photo() {
    let of = |relative: &str| error_of(&format!(r#"{{"ops":[{{"op":"crop","relative":{relative}}}]}}"#));
    assert_eq!(of(r#"{"x":0.6,"y":0,"width":0.5,"height":1}"#).field, "ops[0].relative");
    assert_eq!(of(r#"{"x":-0.1,"y":0,"width":0.5,"height":1}"#).field, "ops[0].relative.x");
    assert_eq!(of(r#"{"x":0,"y":0,"width":0,"height":1}"#).field, "ops[0].relative.width");
    assert_eq!(
        error_of(r#"{"ops":[{"op":"crop","aspect":"1:1","relative":{"x":0,"y":0,"width":1,"height":1}}]}"#).field,
        "ops[0]"
    );
}

#[test]
fn straighten_and_auto_enhance_take_their_ranges() {
    let recipe =
        Recipe::from_json(r#"{"ops":[{"op":"straighten","angle":-3.5},{"op":"auto_enhance"}]}"#).expect("valid");
    assert_eq!(recipe.ops[0], Operation::Straighten { angle: -3.5 });
    assert_eq!(recipe.ops[1], Operation::AutoEnhance { strength: None });
    assert_eq!(error_of(r#"{"ops":[{"op":"straighten","angle":46}]}"#).field, "ops[0].angle");
    assert_eq!(error_of(r#"{"ops":[{"op":"straighten"}]}"#).field, "ops[0]");
    assert_eq!(error_of(r#"{"ops":[{"op":"auto_enhance","strength":1.5}]}"#).field, "ops[0].strength");
    assert_eq!(error_of(r#"{"ops":[{"op":"whiten_teeth","strength":-0.1}]}"#).field, "ops[0].strength");
}

#[test]
fn a_watermark_takes_text_and_refuses_what_it_cannot_do() {
    let recipe =
        Recipe::from_json(r##"{"ops":[{"op":"watermark","text":"© Sofia","position":"top-left","opacity":0.3,"size":0.1,"color":"#000000"}]}"##)
            .expect("valid");
    assert_eq!(Recipe::from_json(&recipe.to_json()), Ok(recipe));
    assert_eq!(error_of(r#"{"ops":[{"op":"watermark"}]}"#).field, "ops[0].text");
    // An image: the file name of a PNG sent with the job, usable in a store key.
    let logo = Recipe::from_json(
        r#"{"ops":[{"op":"watermark","image":"Logo_2.png"},{"op":"watermark","image":"Logo_2.png"}]}"#,
    )
    .expect("valid");
    assert_eq!(logo.asset_names(), ["Logo_2.png"]);
    for bad in ["../logo.png", "logo.jpg", ".png", "a/b.png", "logo .png", ".hidden.png"] {
        let json = format!(r#"{{"ops":[{{"op":"watermark","image":"{bad}"}}]}}"#);
        assert_eq!(error_of(&json).field, "ops[0].image", "{bad}");
    }
    assert_eq!(error_of(r#"{"ops":[{"op":"watermark","text":"x","image":"logo.png"}]}"#).field, "ops[0]");
    assert_eq!(error_of(r#"{"ops":[{"op":"watermark","text":"a\nb"}]}"#).field, "ops[0].text");
    assert_eq!(error_of(r#"{"ops":[{"op":"watermark","text":"x","size":0.9}]}"#).field, "ops[0].size");
    let position = error_of(r#"{"ops":[{"op":"watermark","text":"x","position":"middle"}]}"#);
    assert!(position.field.starts_with("ops[0]") && position.message.contains("middle"), "{position}");
}

#[test]
fn border_and_caption_lengths_are_pixels_or_a_percentage_of_the_short_side() {
    let recipe = Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":"2.5%","color":"#ffffff"},"caption":{"text":"Hi","size":30}}]}"##,
    )
    .expect("valid");
    let Operation::Customize(customize) = &recipe.ops[0] else { panic!("customize") };
    assert_eq!(customize.border.map(|b| b.width), Some(ResultLength::Percent(2.5)));
    assert_eq!(customize.caption.as_ref().and_then(|c| c.size), Some(ResultLength::Pixels(30)));
    assert_eq!(ResultLength::Percent(2.5).in_pixels(1000), 25);
    assert_eq!(ResultLength::Percent(0.1).in_pixels(100), 1, "never under one pixel");
    // Written back as it was given.
    assert!(recipe.to_json().contains(r#""width":"2.5%""#), "{}", recipe.to_json());
    assert_eq!(Recipe::from_json(&recipe.to_json()), Ok(recipe));
    let border = |width: &str| {
        error_of(&format!(r##"{{"ops":[{{"op":"customize","border":{{"width":{width},"color":"#ffffff"}}}}]}}"##))
    };
    for bad in [r#""wide""#, r#""2 px""#, "2.5", "-3", r#""NaN%""#, r#""+2%""#, r#""2e1%""#, r#"" 2 %""#, r#""1.2.3%""#]
    {
        let error = border(bad);
        // Inside an operation serde loses the path below it: the op, and what was wrong.
        assert!(error.field.starts_with("ops[0]"), "{bad}: {error}");
        assert!(error.message.contains("percentage"), "{bad}: {error}");
    }
    assert!(border(r#""30%""#).message.contains("25"));
    assert!(border("2001").message.contains("2000"));
    let caption = error_of(r#"{"ops":[{"op":"customize","caption":{"text":"Hi","size":"40%"}}]}"#);
    assert_eq!(caption.field, "ops[0].caption.size");
}

#[test]
fn the_last_thumbnail_must_leave_room_inside_the_borders() {
    let error = error_of(
        r##"{"ops":[{"op":"customize","border":{"width":60,"color":"#ffffff"}},{"op":"thumbnail","size":150}]}"##,
    );
    assert_eq!(error.field, "ops[1].size");
    assert!(error.message.contains("no room"), "{error}");
    Recipe::from_json(
        r##"{"ops":[{"op":"customize","border":{"width":"5%","color":"#ffffff"}},{"op":"thumbnail","size":150}]}"##,
    )
    .expect("a narrow border in percent leaves room");
    // Each border is at least a pixel, however small its share.
    let many = vec![r##"{"op":"customize","border":{"width":"0.1%","color":"#ffffff"}}"##; 15].join(",");
    let error = error_of(&format!(r#"{{"ops":[{many},{{"op":"thumbnail","size":40}}]}}"#));
    assert_eq!(error.field, "ops[15].size", "{error}");
}

#[test]
fn avif_takes_an_encoder_speed_and_other_formats_do_not() {
    let recipe =
        Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":10}],"format":"avif","speed":4}"#).expect("valid");
    assert_eq!((recipe.format, recipe.speed), (OutputFormat::Avif, Some(4)));
    assert_eq!(OutputFormat::from_content_type("image/avif"), Some(OutputFormat::Avif));
    assert_eq!(Recipe::from_json(&recipe.to_json()), Ok(recipe));
    assert_eq!(error_of(r#"{"ops":[{"op":"thumbnail","size":10}],"format":"jpeg","speed":4}"#).field, "speed");
    assert_eq!(error_of(r#"{"ops":[{"op":"thumbnail","size":10}],"format":"avif","speed":11}"#).field, "speed");
}
