#!/usr/bin/env python3
"""A Python user who knows Pillow's draft(): the reference the fast mode of `thumbnails` is held to.

For each photo, `Image.draft('RGB', (2w, 2w))` with w the largest width (so libjpeg decodes at the
smallest DCT scale that still leaves twice the largest thumbnail in both directions), then
LANCZOS from the drafted image to each width (200, 64, 32), height `int(h * w_new / w_old)` of
the full image, saved as `STEM_WIDTH.jpg` at quality 75. One process per CPU
(`multiprocessing.Pool`), local files (no download).

Usage:
    pillow_draft.py PHOTO_DIR OUT_DIR

Prints one JSON object: {"images": N, "seconds": S}, the seconds from the pool's start to the
last thumbnail written (the interpreter and Pillow loaded before). Needs Pillow.
"""

import json
import multiprocessing
import os
import sys
import time

from PIL import Image

SIZES = [200, 64, 32]
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")


def make(job):
    path, out_dir = job
    stem = os.path.splitext(os.path.basename(path))[0]
    with Image.open(path) as image:
        full_w, full_h = image.size
        largest = max(SIZES)
        image.draft("RGB", (2 * largest, 2 * largest))
        image = image.convert("RGB")
        for width in SIZES:
            height = max(1, int(full_h * width / full_w))
            image.resize((width, height), Image.LANCZOS).save(
                os.path.join(out_dir, f"{stem}_{width}.jpg"), quality=75
            )
    return 1


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    photos = sorted(
        os.path.join(argv[1], name)
        for name in os.listdir(argv[1])
        if name.lower().endswith(EXTENSIONS)
    )
    os.makedirs(argv[2], exist_ok=True)
    with multiprocessing.Pool(os.cpu_count()) as pool:
        start = time.perf_counter()
        done = sum(pool.map(make, [(p, argv[2]) for p in photos], chunksize=1))
        seconds = time.perf_counter() - start
    print(json.dumps({"images": done, "seconds": seconds}))
    return 0 if done == len(photos) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
