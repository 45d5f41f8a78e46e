#!/usr/bin/env python3
"""AVIF against JPEG at equal perceived quality, through `darkroom process`.

For each photo: a lossless reference (PNG) of the recipe's result, the JPEG result at q85 and
its SSIMULACRA2 score against the reference, then the lowest AVIF quality whose score is at
least the JPEG's (bisection over 1-100). Reports bytes and encode time of both, as ratios.
The times are `darkroom process`'s wall times for the whole photo (decode, resize, encode;
only the encode differs between the two); one process at a time, on one photo at a time.

    python3 -m venv .venv-avif && .venv-avif/bin/pip install pillow ssimulacra2
    cargo build --release [--features avif-asm]
    .venv-avif/bin/python bench/avif.py --darkroom target/release/darkroom PHOTO...

`--long-side` sets the result's size (default 1600 px, a web gallery's); `--speed` the AVIF
encoder's speed (default: darkroom's, 7).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ssimulacra2 import compute_ssimulacra2


def process(darkroom, photo, recipe, out_dir):
    """Runs `darkroom process`; returns (output path, wall seconds)."""
    started = time.perf_counter()
    subprocess.run(
        [darkroom, "process", "--recipe", json.dumps(recipe), "--out", out_dir, photo],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    outputs = [os.path.join(out_dir, name) for name in os.listdir(out_dir)]
    newest = max(outputs, key=os.path.getmtime)
    return newest, elapsed


def run(darkroom, photo, ops, fmt, quality, speed, work):
    out_dir = tempfile.mkdtemp(dir=work)
    recipe = {"ops": ops, "format": fmt, "quality": quality, "metadata": "strip"}
    if fmt == "avif" and speed is not None:
        recipe["speed"] = speed
    path, seconds = process(darkroom, photo, recipe, out_dir)
    return path, seconds, os.path.getsize(path)


def score(reference, path, work):
    """SSIMULACRA2 of `path` against `reference`; AVIF is decoded to PNG first (Pillow)."""
    if path.endswith(".avif"):
        from PIL import Image

        decoded = os.path.join(work, "decoded.png")
        Image.open(path).convert("RGB").save(decoded)
        path = decoded
    return compute_ssimulacra2(reference, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--darkroom", default="target/release/darkroom")
    parser.add_argument("--long-side", type=int, default=1600)
    parser.add_argument("--jpeg-quality", type=int, default=85)
    parser.add_argument("--speed", type=int, default=None)
    parser.add_argument("photos", nargs="+")
    args = parser.parse_args()
    ops = [{"op": "thumbnail", "size": args.long_side}]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for photo in args.photos:
            reference, _, _ = run(args.darkroom, photo, ops, "png", 85, None, work)
            jpeg, jpeg_seconds, jpeg_bytes = run(args.darkroom, photo, ops, "jpeg", args.jpeg_quality, None, work)
            target = score(reference, jpeg, work)
            low, high, best = 1, 100, None
            while low <= high:
                quality = (low + high) // 2
                avif, avif_seconds, avif_bytes = run(args.darkroom, photo, ops, "avif", quality, args.speed, work)
                avif_score = score(reference, avif, work)
                if avif_score >= target:
                    best = (quality, avif_seconds, avif_bytes, avif_score)
                    high = quality - 1
                else:
                    low = quality + 1
            if best is None:
                print(f"{os.path.basename(photo)}: no AVIF quality reaches the JPEG's score {target:.1f}", file=sys.stderr)
                continue
            quality, avif_seconds, avif_bytes, avif_score = best
            row = {
                "photo": os.path.basename(photo),
                "ssimulacra2_jpeg": round(target, 1),
                "ssimulacra2_avif": round(avif_score, 1),
                "avif_quality": quality,
                "jpeg_bytes": jpeg_bytes,
                "avif_bytes": avif_bytes,
                "bytes_ratio": round(avif_bytes / jpeg_bytes, 3),
                "jpeg_s": round(jpeg_seconds, 3),
                "avif_s": round(avif_seconds, 3),
            }
            row["time_ratio"] = round(avif_seconds / jpeg_seconds, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if rows:
        print("| photo | SSIMULACRA2 JPEG q%d / AVIF | AVIF quality | JPEG bytes | AVIF bytes | AVIF ÷ JPEG bytes | process s JPEG / AVIF |" % args.jpeg_quality)
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['photo']} | {r['ssimulacra2_jpeg']} / {r['ssimulacra2_avif']} | {r['avif_quality']} | {r['jpeg_bytes']} | {r['avif_bytes']} | {r['bytes_ratio']:.2f} | {r['jpeg_s']} / {r['avif_s']} |"
            )
        print(f"\nmedian AVIF ÷ JPEG bytes: {statistics.median(r['bytes_ratio'] for r in rows):.2f}; "
              f"median time ratio (whole photo): {statistics.median(r['time_ratio'] for r in rows):.1f}×")


if __name__ == "__main__":
    main()
