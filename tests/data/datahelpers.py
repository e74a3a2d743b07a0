"""Helpers for the data tests: tiny data folders written by the tests: VTAB-1k task folders and class sub-folders of small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# kitti: a VTAB-1k task with only 4 classes, so a handful of images covers every class.
TASK = "kitti"
NUM_CLASSES = 4
DEFAULT_COUNTS = {"train800": 16, "val200": 8, "test": 8, "pool": 20}


def write_image(path: Path, seed: int, size: tuple[int, int] = (12, 10)) -> Path:
    """A small noise image (PNG or JPEG by suffix), different for each seed."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def make_vtab(root: Path, task: str = TASK, counts: dict[str, int] | None = None, ext: str = "png") -> Path:
    """``root/task/`` with images and the four split files (+ pool.txt when counts has 'pool').

    Labels cycle through the classes, so every split with at least NUM_CLASSES images covers them all.
    """
    counts = DEFAULT_COUNTS if counts is None else counts
    folder = root / task
    lines: dict[str, list[str]] = {}
    seed = 0
    for split, n in counts.items():
        lines[split] = []
        for i in range(n):
            rel = f"images/{split}/{i:04d}.{ext}"
            write_image(folder / rel, seed)
            seed += 1
            lines[split].append(f"{rel} {i % NUM_CLASSES}\n")
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, split_lines in lines.items():
        (folder / f"{split}.txt").write_text("".join(split_lines))
    return folder


def make_class_folders(root: Path, counts: dict[str, int], ext: str = "png") -> Path:
    """``root/<class>/<i>.<ext>`` for each class and count."""
    seed = 1000
    for name, n in counts.items():
        for i in range(n):
            write_image(root / name / f"{i:03d}.{ext}", seed)
            seed += 1
    return root


def append_line(path: Path, line: str) -> int:
    """Append ``line`` to a split file; returns its line number."""
    text = path.read_text()
    path.write_text(text + line + "\n")
    return len(text.splitlines()) + 1
