"""The splits of a synthetic task: the VTAB-1k sizes plus a large pool for the data-size study.

Every split has its own random stream (task, split, seed), so splits never share images; ``train800val200`` is
exactly ``train800`` followed by ``val200``.  Labels are balanced within one image per class.
"""

from __future__ import annotations

import numpy as np

from vptlab.data.base import ImageSet, manifest_of
from vptlab.data.synthetic.spec import balanced_labels, render_images, seed_sequence
from vptlab.data.synthetic.tasks import get_task
from vptlab.data.synthetic.version import GENERATOR_VERSION
from vptlab.errors import UserError, require

# The pool serves data-size runs up to 20,000 train + 5,000 val (train:val = 4:1), as in the paper.
SPLIT_SIZES: dict[str, int] = {"train800": 800, "val200": 200, "test": 2000, "pool": 25000}
SPLITS = ("train800", "val200", "train800val200", "test", "pool")


def generate(task: str, split: str, image_size: int = 32, seed: int = 0) -> ImageSet:
    """The images and labels of ``split`` of synthetic ``task``, rendered at ``image_size`` pixels.

    Deterministic by (task, split, seed, image_size); a scene's content does not depend on the size, only its
    rendering.  Splits: train800, val200, train800val200 (their concatenation), test (2,000), pool (25,000).
    """
    spec = get_task(task)
    require(image_size >= 8, f"image_size must be >= 8, got {image_size}")
    require(seed >= 0, f"seed must be >= 0, got {seed}")
    if split == "train800val200":
        return _train_val(task, image_size, seed)
    if split not in SPLIT_SIZES:
        raise UserError(f"unknown split {split!r} of synthetic task {task!r}; splits: {', '.join(SPLITS)}")
    n = SPLIT_SIZES[split]
    label_rng = np.random.default_rng(seed_sequence(seed, "labels", task, split))
    labels = balanced_labels(label_rng, n, spec.info.num_classes)
    images = render_images(
        spec, labels, seed_sequence(seed, "task", task, split), image_size, spec.context(seed)
    )
    members = _members(task, split, n, seed, image_size)
    return ImageSet(images, labels, manifest_of(members, labels), _describe(task, split, seed, image_size))


def _train_val(task: str, image_size: int, seed: int) -> ImageSet:
    """train800 followed by val200: the same images, so tuning and final runs see consistent data."""
    parts = [generate(task, s, image_size, seed) for s in ("train800", "val200")]
    members = [m for s in ("train800", "val200") for m in _members(task, s, SPLIT_SIZES[s], seed, image_size)]
    labels = np.concatenate([p.labels for p in parts])
    images = np.concatenate([p.images for p in parts])
    desc = _describe(task, "train800val200", seed, image_size)
    return ImageSet(images, labels, manifest_of(members, labels), desc)


def _members(task: str, split: str, n: int, seed: int, image_size: int) -> list[str]:
    """Stable member names; the generator version in them makes a changed generator a different split."""
    return [f"synthetic-{GENERATOR_VERSION}:{task}:{split}:{seed}:{image_size}:{i}" for i in range(n)]


def _describe(task: str, split: str, seed: int, image_size: int) -> str:
    return f"synthetic {task} {split} (seed {seed}, {image_size}px, generator {GENERATOR_VERSION})"
