//! `darkroom process`: a recipe applied to local files with the same imaging code the
//! workers run, but no queues and no store. One line per photo on stdout; exit status 1
//! if any photo failed.

use anyhow::Context;
use darkroom_core::{Limits, Recipe};
use darkroom_imaging::{apply_ops_with, decode_for_ops, encode_result, DecodeLimits, WatermarkImages};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn run(recipe_json: &str, out: &Path, photos: &[PathBuf], limits: Limits) -> anyhow::Result<bool> {
    let recipe = Recipe::from_json(recipe_json).map_err(|e| anyhow::anyhow!("--recipe: {e}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating --out {}", out.display()))?;
    // An image watermark names a PNG file, here in the current directory.
    let mut watermark_images = WatermarkImages::default();
    for name in recipe.asset_names() {
        let size = std::fs::metadata(name).map(|m| m.len()).unwrap_or(0);
        anyhow::ensure!(
            size <= darkroom_core::recipe::MAX_ASSET_BYTES,
            "the watermark image {name} is {size} bytes, more than the {} allowed",
            darkroom_core::recipe::MAX_ASSET_BYTES
        );
        let png = std::fs::read(name)
            .with_context(|| format!("reading the watermark image {name} (from the current directory)"))?;
        watermark_images.add(name, &png)?;
    }
    let mut all_ok = true;
    for path in photos {
        let started = Instant::now();
        let result = (|| -> anyhow::Result<(PathBuf, u32, u32)> {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            // A recipe that shrinks early lets a JPEG decode at reduced scale.
            let photo = decode_for_ops(&bytes, DecodeLimits::from(limits), &recipe.ops, 0)?;
            // The photo carries what it keeps of the file (EXIF, ICC): the rest of a 30 MB
            // original need not stay in memory while it is processed.
            drop(bytes);
            let photo = apply_ops_with(photo, &recipe.ops, &watermark_images)?;
            let encoded = encode_result(&photo, recipe.format, recipe.quality, recipe.speed, recipe.metadata)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
            let target = out.join(format!("{stem}.{}", recipe.format.extension()));
            std::fs::write(&target, encoded).with_context(|| format!("writing {}", target.display()))?;
            Ok((target, photo.width(), photo.height()))
        })();
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((target, width, height)) => {
                println!("ok\t{}\t{}\t{width}x{height}\t{millis:.1}ms", path.display(), target.display())
            }
            Err(error) => {
                all_ok = false;
                println!("failed\t{}\t{error:#}", path.display());
            }
        }
    }
    Ok(all_ok)
}
