#!/usr/bin/env python3
"""The Python concurrency course's thumbnail maker, as the baseline for `thumbnails`.

The course's design, kept as it is: 4 download threads draining a `queue.Queue` of URLs with
`urllib.request.urlretrieve`; `multiprocessing.cpu_count()` resize processes fed through a
`multiprocessing.JoinableQueue` as downloads land; Pillow's LANCZOS from the full image to each
width (200, 64, 32), height `int(h * w_new / w_old)`, saved as `STEM_WIDTH.EXT` at Pillow's
default JPEG quality of 75. Two fixes only, so that it can be timed and compared: output names are
the URL's last segment (as in the course) but written into the output directory given here, and
every image is accounted for.

Usage:
    course.py URLS_FILE OUT_DIR    # URLS_FILE: one URL a line (`thumbnails serve DIR` prints one)

Prints one JSON object: {"images": N, "seconds": S, "thumbnails": T, "failed": F}.
Needs Pillow (`pip install Pillow`).
"""

import json
import multiprocessing
import os
import queue
import sys
import tempfile
import threading
import time
from urllib.parse import urlparse
from urllib.request import urlretrieve

from PIL import Image

SIZES = [200, 64, 32]
DOWNLOAD_THREADS = 4


def download(urls, incoming, img_queue, counts, lock):
    while True:
        try:
            url = urls.get(block=False)
        except queue.Empty:
            return
        name = urlparse(url).path.split("/")[-1]
        path = os.path.join(incoming, name)
        try:
            urlretrieve(url, path)
            img_queue.put(path)
        except Exception as err:  # the course had no error handling; count and go on
            print(f"download failed: {url}: {err}", file=sys.stderr)
            with lock:
                counts["failed"] += 1
        finally:
            urls.task_done()


def resize(img_queue, out_dir, done):
    while True:
        path = img_queue.get()
        if path is None:
            img_queue.task_done()
            return
        try:
            name = os.path.basename(path)
            stem, ext = os.path.splitext(name)
            original = Image.open(path)
            for width in SIZES:
                height = int(original.size[1] * (width / float(original.size[0])))
                img = original.resize((width, height), Image.LANCZOS)
                img.save(os.path.join(out_dir, f"{stem}_{width}{ext}"))
            with done.get_lock():
                done.value += 1
        except Exception as err:
            print(f"resize failed: {path}: {err}", file=sys.stderr)
        finally:
            img_queue.task_done()


def make_thumbnails(urls, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-incoming-", dir=out_dir) as incoming:
        start = time.perf_counter()
        url_queue = queue.Queue()
        for url in urls:
            url_queue.put(url)
        img_queue = multiprocessing.JoinableQueue()
        done = multiprocessing.Value("i", 0)
        counts = {"failed": 0}
        lock = threading.Lock()

        processes = [
            multiprocessing.Process(target=resize, args=(img_queue, out_dir, done))
            for _ in range(multiprocessing.cpu_count())
        ]
        for p in processes:
            p.start()
        threads = [
            threading.Thread(
                target=download, args=(url_queue, incoming, img_queue, counts, lock)
            )
            for _ in range(DOWNLOAD_THREADS)
        ]
        for t in threads:
            t.start()
        url_queue.join()
        for _ in processes:
            img_queue.put(None)
        img_queue.join()
        for p in processes:
            p.join()
        seconds = time.perf_counter() - start
    return {
        "images": done.value,
        "seconds": seconds,
        "thumbnails": done.value * len(SIZES),
        "failed": len(urls) - done.value,
    }


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        urls = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    result = make_thumbnails(urls, argv[2])
    print(json.dumps(result))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
