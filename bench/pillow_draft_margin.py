#!/usr/bin/env python3
"""Pillow's pipe1024 with draft() keeping the same 2x resampling margin darkroom keeps.

usage: pillow_draft_margin.py OUTDIR FILE...

The shared baseline `pil-pipe-draft` asks draft() for just enough pixels to cover the
1024 px result (and then lets reducing_gap=3.0 box-filter part of the rest); darkroom asks
its DCT-scaled decode for twice that and leaves the last 2x (or more) to Lanczos3, as
Pillow's own thumbnail() does with draft(). This is that: auto-orient, crop the centre
80 %, fit the long side to 1024 with LANCZOS from a draft of at least 2x the result, q85.
"""
import math, os, sys
from PIL import Image, ImageOps


def fit(w, h, box):
    if w >= h:
        return min(box, w), max(1, min(h, round(h * box / w)))
    return max(1, min(w, round(w * box / h))), min(box, h)


outdir, files = sys.argv[1], sys.argv[2:]
for f in files:
    with Image.open(f) as im:
        w, h = im.size
        need = math.ceil(2 * 1024 / 0.8)  # the crop keeps 80 %; 2x margin for Lanczos
        s = need / max(w, h)
        if s < 1:
            im.draft("RGB", (math.ceil(w * s), math.ceil(h * s)))
        im = ImageOps.exif_transpose(im)
        w, h = im.size
        cw, ch = round(w * 0.8), round(h * 0.8)
        left, top = (w - cw) // 2, (h - ch) // 2
        im = im.crop((left, top, left + cw, top + ch))
        im = im.resize(fit(cw, ch, 1024), Image.LANCZOS)
        im.convert("RGB").save(os.path.join(outdir, os.path.splitext(os.path.basename(f))[0] + ".jpg"), quality=85)
