"""Tiny copies of the released benchmark layouts (FGVC, NOAH few-shot, ImageNet variants), written by the tests.

Images carry their class as a bright quadrant (learnable in a few epochs) on noise, in varied sizes and aspect
ratios (the random-crop path must see non-square images), saved as PNG so decoding is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

# (task, dataset folder name as released, image folder inside it)
FGVC_LAYOUTS = (
    ("cub", "CUB_200_2011", "images"),
    ("nabirds", "nabirds", "images"),
    ("oxford_flowers", "OxfordFlower", ""),
    ("stanford_dogs", "Stanford-dogs", "Images"),
    ("stanford_cars", "Stanford-cars", ""),
)
SIZES = ((40, 52), (56, 40), (44, 44), (70, 41))  # (width, height)


def class_image(label: int, seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = (rng.random((h, w, 3)) * 60).astype(np.uint8)
    i, j = divmod(label % 4, 2)
    pixels[i * h // 2 : (i + 1) * h // 2, j * w // 2 : (j + 1) * w // 2] += 150
    return Image.fromarray(pixels)


def make_fgvc(
    root: Path, task: str = "cub", *, classes: int = 3, counts: tuple[int, int, int] = (6, 2, 3)
) -> Path:
    """``root/<released folder>/`` with train/val/test.json and the images where the reference expects them.

    Class ids are not contiguous (10, 20, 30, ...), as in the release's own ids, so the sorted map is exercised.
    """
    _, folder_name, image_dir = next(layout for layout in FGVC_LAYOUTS if layout[0] == task)
    folder = root / folder_name
    images = folder / image_dir if image_dir else folder
    seed = 0
    for split, per_class in zip(("train", "val", "test"), counts):
        entries = {}
        for c in range(classes):
            for k in range(per_class):
                rel = f"{c:03d}.class_{c}/{split}_{k}.png"
                (images / rel).parent.mkdir(parents=True, exist_ok=True)
                class_image(c, seed, SIZES[seed % len(SIZES)]).save(images / rel)
                entries[rel] = 10 * (c + 1)
                seed += 1
        (folder / f"{split}.json").write_text(json.dumps(entries))
    return folder


def make_noah(
    root: Path,
    dataset: str = "oxford-pets",
    *,
    classes: int = 3,
    shots=(1, 2),
    seeds=(0, 1, 2),
    images_dir: bool = True,
) -> Path:
    """NOAH's few-shot layout: ``<dataset>/annotations/{train_meta.list.num_shot_K.seed_S, val_meta.list,
    test_meta.list}`` with ``path label`` lines, images under ``<dataset>/images/`` (or the dataset folder, as
    NOAH's stanford_cars)."""
    folder = root / dataset
    images = folder / "images" if images_dir else folder
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    pool = []
    for c in range(classes):
        for k in range(max(shots) + 4):
            rel = f"class_{c}/img_{k}.png"
            (images / rel).parent.mkdir(parents=True, exist_ok=True)
            class_image(c, 100 * c + k, SIZES[k % len(SIZES)]).save(images / rel)
            pool.append((rel, c, k))
    train_pool = [(r, c) for r, c, k in pool if k < max(shots)]
    for shot in shots:
        for seed in seeds:
            rng = np.random.default_rng([shot, seed])
            lines = []
            for c in range(classes):
                mine = [r for r, cc in train_pool if cc == c]
                lines += [f"{r} {c}\n" for r in rng.choice(mine, shot, replace=False)]
            (folder / "annotations" / f"train_meta.list.num_shot_{shot}.seed_{seed}").write_text(
                "".join(lines)
            )
    val = [f"{r} {c}\n" for r, c, k in pool if k == max(shots) + 1]
    test = [f"{r} {c}\n" for r, c, k in pool if k >= max(shots) + 2]
    (folder / "annotations" / "val_meta.list").write_text("".join(val))
    (folder / "annotations" / "test_meta.list").write_text("".join(test))
    return folder


def make_variant(root: Path, name: str, wnids: list[str], *, per_class: int = 2, offset: int = 0) -> Path:
    """An ImageNet-variant folder as released: ``<name>/<wnid>/*.png`` (class folders named by WordNet id);
    the image's class is its wnid's position in ``wnids`` shifted by ``offset`` (so a subset can keep the
    labels of the full set)."""
    folder = root / name
    for c, wnid in enumerate(wnids):
        for k in range(per_class):
            path = folder / wnid / f"{name}_{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            class_image(c + offset, 1000 + 10 * c + k, SIZES[k % len(SIZES)]).save(path)
    return folder
