//! What of a camera's EXIF a result keeps, by the recipe's `metadata` policy, in every output
//! format and across a pipeline's hand-over between stages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use darkroom_core::{Limits, MetadataPolicy, OutputFormat, Recipe};
use darkroom_imaging::{
    apply_ops, decode, decode_for_ops, encode, encode_intermediate, encode_with_metadata, DecodeLimits,
};
use exif::{Field, In, Tag, Value};

fn limits() -> DecodeLimits {
    DecodeLimits::from(Limits::default())
}

/// A 600×400 JPEG (the coffee fixture) stored sideways with a camera's EXIF: orientation 6
/// (turn 90° clockwise to view), time, camera, lens, artist, copyright, GPS, a serial number.
fn camera_jpeg() -> Vec<u8> {
    let coffee = image::open(darkroom_testkit::fixture_path("coffee.jpg")).unwrap().rotate270().into_rgb8();
    let ascii = |tag, text: &str| Field { tag, ifd_num: In::PRIMARY, value: Value::Ascii(vec![text.into()]) };
    let fields = [
        ascii(Tag::Make, "Canon"),
        ascii(Tag::Model, "EOS R5"),
        ascii(Tag::Artist, "Sofia"),
        ascii(Tag::Copyright, "(c) Sofia"),
        ascii(Tag::DateTimeOriginal, "2024:06:01 17:30:05"),
        ascii(Tag::LensModel, "RF 50mm F1.8"),
        ascii(Tag::BodySerialNumber, "0123456789"),
        Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) },
        Field { tag: Tag::FNumber, ifd_num: In::PRIMARY, value: Value::Rational(vec![(18, 10).into()]) },
        Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![(48, 1).into(), (51, 1).into(), (24, 1).into()]),
        },
    ];
    let mut writer = exif::experimental::Writer::new();
    fields.iter().for_each(|field| writer.push_field(field));
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, true).unwrap();
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.add_exif_metadata(&tiff.into_inner()).unwrap();
    encoder.encode(coffee.as_raw(), 400, 600, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn exif_of(file: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new().read_from_container(&mut std::io::Cursor::new(file)).ok()
}

fn text(exif: &exif::Exif, tag: Tag) -> Option<String> {
    exif.get_field(tag, In::PRIMARY).map(|field| field.display_value().to_string())
}

#[test]
fn no_location_keeps_the_photographers_fields_in_every_format() {
    let recipe = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":300}]}"#).unwrap();
    assert_eq!(recipe.metadata, MetadataPolicy::NoLocation, "the default");
    let photo = apply_ops(decode(&camera_jpeg(), limits()).unwrap(), &recipe.ops).unwrap();
    assert_eq!((photo.width(), photo.height()), (300, 200), "turned upright at decode");
    for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
        let bytes = encode_with_metadata(&photo, format, 85, recipe.metadata).unwrap();
        let exif = exif_of(&bytes).unwrap_or_else(|| panic!("{format:?} carries EXIF"));
        assert_eq!(text(&exif, Tag::Make).as_deref(), Some("\"Canon\""), "{format:?}");
        assert_eq!(text(&exif, Tag::DateTimeOriginal).as_deref(), Some("2024-06-01 17:30:05"), "{format:?}");
        assert!(text(&exif, Tag::Copyright).is_some() && text(&exif, Tag::LensModel).is_some(), "{format:?}");
        assert!(text(&exif, Tag::FNumber).is_some(), "{format:?}");
        assert_eq!(text(&exif, Tag::GPSLatitude), None, "{format:?}: no location");
        assert_eq!(text(&exif, Tag::BodySerialNumber), None, "{format:?}: no serial number");
        assert_eq!(exif.get_field(Tag::Orientation, In::PRIMARY).and_then(|f| f.value.get_uint(0)), Some(1));
        assert_eq!(exif.get_field(Tag::PixelXDimension, In::PRIMARY).and_then(|f| f.value.get_uint(0)), Some(300));
        // Upright in the file too: a viewer that honours orientation does not turn it again.
        let back = decode(&bytes, limits()).unwrap();
        assert_eq!((back.width(), back.height()), (300, 200), "{format:?}");
    }
}

#[test]
fn keep_keeps_the_location_and_strip_and_display_copies_keep_nothing() {
    let photo = decode(&camera_jpeg(), limits()).unwrap();
    let kept = encode_with_metadata(&photo, OutputFormat::Jpeg, 85, MetadataPolicy::Keep).unwrap();
    let exif = exif_of(&kept).unwrap();
    assert!(text(&exif, Tag::GPSLatitude).is_some());
    assert!(text(&exif, Tag::BodySerialNumber).is_some());
    let stripped = encode_with_metadata(&photo, OutputFormat::Jpeg, 85, MetadataPolicy::Strip).unwrap();
    assert!(exif_of(&stripped).is_none());
    assert!(exif_of(&encode(&photo, OutputFormat::Jpeg, 85).unwrap()).is_none(), "previews and thumbnails");
}

#[test]
fn the_exif_survives_a_reduced_decode_and_a_hand_over_between_stages_without_turning_twice() {
    let ops = Recipe::from_json(r#"{"ops":[{"op":"thumbnail","size":100}]}"#).unwrap().ops;
    let reduced = decode_for_ops(&camera_jpeg(), limits(), &ops, 0).unwrap();
    assert!(reduced.width() < 400, "decoded at reduced scale: {}", reduced.width());
    let intermediate = encode_intermediate(&reduced).unwrap();
    let next_stage = decode(&intermediate, DecodeLimits::for_intermediate(Limits::default())).unwrap();
    assert_eq!((next_stage.width(), next_stage.height()), (reduced.width(), reduced.height()));
    let result = apply_ops(next_stage, &ops).unwrap();
    let bytes = encode_with_metadata(&result, OutputFormat::Jpeg, 85, MetadataPolicy::NoLocation).unwrap();
    let exif = exif_of(&bytes).unwrap();
    assert_eq!(text(&exif, Tag::Model).as_deref(), Some("\"EOS R5\""));
    assert_eq!(text(&exif, Tag::GPSLatitude), None);
    assert_eq!(darkroom_imaging::metadata::capture_time(&bytes), Some((2024, 6, 1, 17, 30, 5)));
}
