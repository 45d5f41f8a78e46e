//! Criterion benchmarks, one per operation, on real photographs.
//!
//! `cargo bench -p darkroom-imaging` runs them on the committed fixtures; point
//! `DARKROOM_BENCH_CORPUS` at the benchmark corpus (`../shared/bench/fetch-corpus.sh DIR`) to run
//! them on its largest and its median photo instead. For darkroom against libvips, Pillow
//! and ImageMagick on the whole corpus, side by side, see `bench/side-by-side.sh`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops at the first surprise

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use darkroom_core::recipe::Operation;
use darkroom_core::{Limits, OutputFormat, Recipe};
use darkroom_imaging::{apply_ops, decode, decode_for_ops, encode, DecodeLimits, Photo};
use std::path::{Path, PathBuf};

struct Sample {
    label: String,
    bytes: Vec<u8>,
}

/// The photos to measure: the corpus's largest and median JPEG, or the fixtures.
fn samples() -> Vec<Sample> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let label = |path: &Path, bytes: &[u8]| {
        let probe = darkroom_imaging::probe(bytes).expect("a photo");
        let (w, h) = probe.dimensions.expect("dimensions in the header");
        format!("{}-{:.1}MP", path.file_stem().and_then(|s| s.to_str()).unwrap_or("photo"), f64::from(w * h) / 1e6)
    };
    let paths: Vec<PathBuf> = match std::env::var_os("DARKROOM_BENCH_CORPUS") {
        Some(dir) => {
            let mut jpegs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
                .expect("DARKROOM_BENCH_CORPUS is a directory")
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("jpg")))
                .map(|path| {
                    let probe = darkroom_imaging::probe(&read(&path)).expect("a photo");
                    let (w, h) = probe.dimensions.expect("dimensions");
                    (u64::from(w) * u64::from(h), path)
                })
                .collect();
            jpegs.sort();
            assert!(!jpegs.is_empty(), "no .jpg files in DARKROOM_BENCH_CORPUS");
            vec![jpegs[jpegs.len() / 2].1.clone(), jpegs[jpegs.len() - 1].1.clone()]
        }
        None => vec![fixtures.join("astronaut.jpg"), fixtures.join("coffee.jpg")],
    };
    paths
        .iter()
        .map(|path| {
            let bytes = read(path);
            Sample { label: label(path, &bytes), bytes }
        })
        .collect()
}

fn ops(json: &str) -> Vec<Operation> {
    Recipe::from_json(&format!(r#"{{"ops":[{json}]}}"#)).expect("a valid recipe").ops
}

fn limits() -> DecodeLimits {
    DecodeLimits::from(Limits::default())
}

fn decoded(sample: &Sample) -> Photo {
    decode(&sample.bytes, limits()).expect("decodes")
}

/// Decoding, and the end-to-end recipes the side-by-side harness also runs.
fn end_to_end(c: &mut Criterion) {
    let mut group = c.benchmark_group("end_to_end");
    group.sample_size(10);
    let thumb = ops(r#"{"op":"thumbnail","size":256}"#);
    for sample in samples() {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("decode_full/{}", sample.label), |b| b.iter(|| decoded(&sample)));
        group.bench_function(format!("thumbnail256/{}", sample.label), |b| {
            b.iter(|| {
                let photo = decode_for_ops(&sample.bytes, limits(), &thumb, 0).expect("decodes");
                let photo = apply_ops(photo, &thumb).expect("resizes");
                encode(&photo, OutputFormat::Jpeg, 85).expect("encodes")
            })
        });
        // Orient, crop the centre 80 %, fit 1024, JPEG q85: the baselines' "pipe1024".
        let probe = darkroom_imaging::probe(&sample.bytes).expect("a photo");
        let (w, h) = probe.dimensions.expect("dimensions");
        let oriented = decoded(&sample);
        let (w, h) = if (oriented.width(), oriented.height()) == (w, h) { (w, h) } else { (h, w) };
        let (cw, ch) = ((f64::from(w) * 0.8).round() as u32, (f64::from(h) * 0.8).round() as u32);
        let pipe = ops(&format!(
            r#"{{"op":"crop","x":{},"y":{},"width":{cw},"height":{ch}}},{{"op":"thumbnail","size":1024}}"#,
            (w - cw) / 2,
            (h - ch) / 2
        ));
        group.bench_function(format!("pipe1024/{}", sample.label), |b| {
            b.iter(|| {
                let photo = decode_for_ops(&sample.bytes, limits(), &pipe, 0).expect("decodes");
                let photo = apply_ops(photo, &pipe).expect("crops and resizes");
                encode(&photo, OutputFormat::Jpeg, 85).expect("encodes")
            })
        });
    }
    group.finish();
}

/// Each operation on its own, on an already decoded photo (decode is measured above).
fn operations(c: &mut Criterion) {
    let mut group = c.benchmark_group("operation");
    group.sample_size(10);
    let cases = [
        ("thumbnail256", r#"{"op":"thumbnail","size":256}"#),
        ("crop_aspect", r#"{"op":"crop","aspect":"4:3"}"#),
        ("redeye_auto", r#"{"op":"redeye"}"#),
        ("whiten_teeth_auto", r#"{"op":"whiten_teeth"}"#),
        ("grayscale", r#"{"op":"recolor","mode":"grayscale"}"#),
        ("sepia", r#"{"op":"recolor","mode":"sepia"}"#),
        ("tint", r##"{"op":"recolor","mode":"tint","color":"#3366ff"}"##),
        ("hue", r#"{"op":"recolor","mode":"hue","degrees":90}"#),
        ("auto_levels", r#"{"op":"recolor","mode":"auto_levels"}"#),
        ("adjust", r#"{"op":"customize","brightness":0.1,"contrast":0.2,"saturation":0.3}"#),
        ("sharpen", r#"{"op":"customize","sharpen":1.0}"#),
        ("rotate90", r#"{"op":"customize","rotate":90}"#),
        (
            "border_caption",
            r##"{"op":"customize","border":{"width":20,"color":"#ffffff"},"caption":{"text":"darkroom"}}"##,
        ),
    ];
    for sample in samples() {
        let photo = decoded(&sample);
        for (name, json) in cases {
            let recipe = ops(json);
            group.bench_function(format!("{name}/{}", sample.label), |b| {
                b.iter_batched(|| photo.clone(), |p| apply_ops(p, &recipe).expect("applies"), BatchSize::LargeInput)
            });
        }
        for (name, format) in [("jpeg85", OutputFormat::Jpeg), ("png", OutputFormat::Png), ("webp", OutputFormat::Webp)]
        {
            group.bench_function(format!("encode_{name}/{}", sample.label), |b| {
                b.iter(|| encode(&photo, format, 85).expect("encodes"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, end_to_end, operations);
criterion_main!(benches);
