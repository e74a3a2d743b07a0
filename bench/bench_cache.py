"""One epoch over a VTAB-format folder: the decoded-image cache against decoding every epoch (ImageFolder-style).

The reference code (KMnP/vpt, and the VPT-or-FT code built on it) reads each image with PIL, resizes it to 224 and
normalises it in a torchvision ``Dataset`` behind a ``DataLoader``, every epoch.  vptlab decodes and resizes each
image once into a memory-mapped uint8 cache and normalises batches on the fly.  Both produce the same normalised
batches (checked below); this measures the time per epoch of producing them, and the one-time cost of the build.

    .venv/bin/python bench/bench_cache.py                  # 2,000 JPEGs of 500x375, resized to 224, batch 64
    .venv/bin/python bench/bench_cache.py --images 500     # quicker

Writes its images and cache under a temporary folder (``--dir`` to keep them) and prints a JSON summary.
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
import torch
from PIL import Image
from torch.utils.data import DataLoader

from reference_data import ReferenceDataset  # bench/, on sys.path when a script here runs
from vptlab.data import load_task, to_tensor

TASK = "svhn"  # any VTAB-1k task name; 10 classes
NUM_CLASSES = 10


def write_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``root/svhn/`` with ``n`` natural-ish 500x375 JPEGs (smooth colour fields plus grain) and split files."""
    rng = np.random.default_rng(seed)
    folder = root / TASK
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rel = f"images/{i:06d}.jpg"
        if not (folder / rel).is_file():
            coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((500, 375), 3)
            grain = rng.normal(0, 12, (375, 500, 3))
            pixels = np.clip(np.asarray(coarse, np.float32) + grain, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / rel, quality=90)
        lines.append(f"{rel} {i % NUM_CLASSES}\n")
    n_train = n * 4 // 5
    split_lines = {
        "train800": lines[:n_train],
        "val200": lines[n_train:],
        "train800val200": lines,
        "test": lines[:NUM_CLASSES],
    }
    for split, chunk in split_lines.items():
        (folder / f"{split}.txt").write_text("".join(chunk))
    return folder


def epoch_dataloader(folder: Path, size: int, batch: int, workers: int, seed: int) -> tuple[float, int]:
    loader = DataLoader(
        ReferenceDataset(folder, "train800val200", size),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )
    start, seen = time.perf_counter(), 0
    for x, _ in loader:
        seen += len(x)
    return time.perf_counter() - start, seen


def epoch_cache(root: Path, cache_dir: Path, size: int, batch: int, seed: int) -> tuple[float, int]:
    """Open the task from the (warm) cache and produce every shuffled, normalised batch of one epoch."""
    start = time.perf_counter()
    data = load_task(f"vtab1k:{root}", TASK, stage="final", image_size=size, cache_dir=cache_dir)
    order = np.random.default_rng(seed).permutation(len(data.train))
    seen = 0
    for i in range(0, len(order), batch):
        idx = np.sort(order[i : i + batch])
        x = to_tensor(data.train.images[idx], data.mean, data.std)
        seen += len(x)
    return time.perf_counter() - start, seen


def same_batches(folder: Path, root: Path, cache_dir: Path, size: int) -> float:
    """Max abs difference between the two pipelines' normalised tensors for a few images (0.0 expected)."""
    data = load_task(f"vtab1k:{root}", TASK, stage="final", image_size=size, cache_dir=cache_dir)
    ds = ReferenceDataset(folder, "train800val200", size)
    idx = [0, 7, len(ds) - 1]
    ref = torch.stack([ds[i][0] for i in idx])
    ours = to_tensor(data.train.images[idx], data.mean, data.std)
    return float((ref - ours).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers (baseline)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per pipeline (min reported)")
    parser.add_argument("--dir", help="keep images and cache here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory(prefix="vptlab-bench-") as tmp:
        base = Path(args.dir or tmp)
        print(json.dumps(run(base, args), indent=2))


def run(base: Path, args: argparse.Namespace) -> dict:
    root, cache_dir = base / "vtab", base / "cache"
    t0 = time.perf_counter()
    folder = write_folder(root, args.images)
    write_s = time.perf_counter() - t0
    shutil.rmtree(cache_dir, ignore_errors=True)  # the build is part of what is measured
    t0 = time.perf_counter()
    load_task(f"vtab1k:{root}", TASK, stage="final", image_size=args.size, cache_dir=cache_dir)
    build_s = time.perf_counter() - t0
    cached, decoded = [], []
    for seed in range(args.epochs):  # interleaved, so load from other processes hits both alike
        cached.append(epoch_cache(root, cache_dir, args.size, args.batch, seed)[0])
        decoded.append(epoch_dataloader(folder, args.size, args.batch, args.workers, seed)[0])
    cache_epoch, loader_epoch = min(cached), min(decoded)  # the least-disturbed epoch of each
    return {
        "images": args.images,
        "source_size": "500x375 JPEG q90",
        "size": args.size,
        "batch": args.batch,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "dataloader_workers": args.workers,
        "write_images_s": round(write_s, 2),
        "cache_build_s (one-time)": round(build_s, 2),
        "cache_epoch_s (min)": round(cache_epoch, 3),
        "decode_every_epoch_s (min)": round(loader_epoch, 3),
        "cache_epochs_s": [round(t, 3) for t in cached],
        "decode_epochs_s": [round(t, 3) for t in decoded],
        "speedup_per_epoch": round(loader_epoch / cache_epoch, 1),
        "build_cost_in_decoded_epochs": round(build_s / loader_epoch, 2),
        "max_abs_diff_between_pipelines": same_batches(folder, root, cache_dir, args.size),
        "cache_images_per_s": round(args.images / cache_epoch),
        "decode_images_per_s": round(args.images / loader_epoch),
    }


if __name__ == "__main__":
    main()
