#!/usr/bin/env python3
"""Peak memory and CPU of `darkroom process` on big JPEGs, baseline and progressive.

    python3 bench/big_jpegs.py SOURCE.jpg OUT_DIR DARKROOM[,DARKROOM...] [REPEATS]

Makes 24, 33, 50 and 120 MP JPEGs (quality 90, 4:2:0, baseline and progressive) from one
photo, upscaled with some noise so that they compress like camera photos (5-26 MB), then
runs each darkroom binary on each, alternating, under GNU time: the largest peak RSS (%M)
and the median CPU seconds (user + sys) over the repeats. Two recipes: a 2048 px
thumbnail, and the issue's retouch (redeye, whiten_teeth, crop 4:3, thumbnail 1024).
Needs numpy and Pillow; results in bench/RESULTS.md.
"""
import os
import statistics
import subprocess
import sys

import numpy as np
from PIL import Image

SIZES = {24: (6000, 4000), 33: (7008, 4672), 50: (8660, 5773), 120: (13416, 8944)}
RECIPES = {
    "thumb2048": '{"ops":[{"op":"thumbnail","size":2048}]}',
    "retouch1024": '{"ops":[{"op":"redeye"},{"op":"whiten_teeth"},{"op":"crop","aspect":"4:3"},'
    '{"op":"thumbnail","size":1024}]}',
}


def make_photos(source, folder):
    Image.MAX_IMAGE_PIXELS = None
    os.makedirs(folder, exist_ok=True)
    original = Image.open(source).convert("RGB")
    noise = np.random.default_rng(1)
    for mp, (width, height) in SIZES.items():
        names = [os.path.join(folder, f"{mp}mp-{kind}.jpg") for kind in ("baseline", "progressive")]
        if all(os.path.exists(name) for name in names):
            continue
        pixels = np.asarray(original.resize((width, height), Image.BICUBIC)).astype(np.int16)
        pixels += noise.normal(0, 6, size=pixels.shape).astype(np.int16)
        photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        photo.save(names[0], quality=90)
        photo.save(names[1], quality=90, progressive=True)


def measure(binary, recipe, photo, out):
    subprocess.run(["rm", "-rf", out], check=True)
    run = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", binary, "process", "--recipe", recipe, "--out", out, photo],
        capture_output=True, text=True,
    )
    if run.returncode != 0:
        sys.exit(f"{binary} failed on {photo}: {run.stdout}{run.stderr}")
    kilobytes, user, system = run.stderr.strip().splitlines()[-1].split()
    return int(kilobytes) / 1024, float(user) + float(system)


def main():
    source, folder, binaries = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    make_photos(source, folder)
    print("| photo | MB | recipe | " + " | ".join(f"{os.path.basename(b)} peak MiB / CPU s" for b in binaries) + " |")
    print("|---|---|---|" + "---|" * len(binaries))
    for mp in SIZES:
        for kind in ("baseline", "progressive"):
            photo = os.path.join(folder, f"{mp}mp-{kind}.jpg")
            megabytes = os.path.getsize(photo) / 1e6
            for name, recipe in RECIPES.items():
                runs = {binary: [] for binary in binaries}
                for _ in range(repeats):
                    for binary in binaries:
                        runs[binary].append(measure(binary, recipe, photo, os.path.join(folder, "out")))
                cells = [
                    f"{max(r[0] for r in runs[b]):.0f} / {statistics.median(r[1] for r in runs[b]):.2f}"
                    for b in binaries
                ]
                print(f"| {mp} MP {kind} | {megabytes:.1f} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
