"""FGVC train batches: random crops from the ragged cache against decoding every epoch (the reference's pipeline).

The VPT reference reads each FGVC training image with PIL every epoch, resizes its shorter side to 256, takes a
random 224 crop and flips it (torchvision ``Resize(256)``, ``RandomCrop(224)``, ``RandomHorizontalFlip``).
vptlab decodes and resizes each image once into a ragged cache entry (whole resized images in one flat buffer)
and crops on the cached pixels every epoch (:mod:`vptlab.data.ragged`).  A third column reads a plain square
cache of the same number of 224 x 224 images (what a VTAB-1k task reads): the cost of cropping at random.

    .venv/bin/python bench/bench_fgvc_crops.py                  # 1,000 JPEGs of 500x375, batch 64, 2 epochs
    .venv/bin/python bench/bench_fgvc_crops.py --images 300     # quicker

Prints a JSON summary: seconds per epoch of each, and the ratios against the reference-style pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vptlab.data.images import ImageList
from vptlab.data.ragged import load_ragged, random_crop_reader


def _write_images(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        w, h = (500, 375) if i % 3 else (375, 500)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, quality=90)
        files.append(path)
    return files


def _reference_epoch(files: list[Path], batch: int, seed: int) -> float:
    """PIL decode + Resize(256) + RandomCrop(224) + flip per image, every epoch (torchvision's transforms)."""
    import torch
    import torchvision.transforms as T

    tf = T.Compose([T.Resize(256), T.RandomCrop(224), T.RandomHorizontalFlip()])
    torch.manual_seed(seed)
    start = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(files))
    for s in range(0, len(order), batch):
        np.stack([np.asarray(tf(Image.open(files[i]).convert("RGB"))) for i in order[s : s + batch]])
    return time.perf_counter() - start


def _cached_epoch(images, read, batch: int, seed: int) -> float:
    start = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(images))
    for s in range(0, len(order), batch):
        idx = np.sort(order[s : s + batch])
        np.ascontiguousarray(read(idx) if read else images[idx])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dir", help="keep images and cache here")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="vptlab-fgvc-bench-"))
    try:
        files = _write_images(root / "images", args.images)
        lst = ImageList(tuple(str(f) for f in files), tuple(f.name for f in files), np.zeros(len(files), np.int64),
                        tuple(str(f) for f in files), "bench")  # fmt: skip
        t0 = time.perf_counter()
        train = load_ragged(lst, 224, cache_dir=root / "cache").imageset
        build = time.perf_counter() - t0
        square = np.lib.format.open_memmap(
            root / "square.npy", mode="w+", dtype=np.uint8, shape=(len(files), 224, 224, 3)
        )
        square[:] = np.asarray(train.images)
        square.flush()
        ref, crops, plain = [], [], []
        for epoch in range(args.epochs):
            ref.append(_reference_epoch(files, args.batch, epoch))
            crops.append(_cached_epoch(train.images, random_crop_reader(train, 0, epoch), args.batch, epoch))
            plain.append(_cached_epoch(square, None, args.batch, epoch))
        r, c, p = float(np.median(ref)), float(np.median(crops)), float(np.median(plain))
        print(json.dumps({
            "images": args.images, "batch": args.batch, "epochs": args.epochs,
            "ragged_cache_build_s": round(build, 2), "ragged_cache_mb": round(train.images.pixels.nbytes / 2**20, 1),
            "reference_epoch_s": round(r, 3), "ragged_crops_epoch_s": round(c, 3), "square_cache_epoch_s": round(p, 3),
            "reference_over_ragged": round(r / c, 1), "ragged_over_square": round(c / p, 2),
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        }, indent=2))  # fmt: skip
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
