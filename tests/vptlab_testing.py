"""Helpers the tests import by name (a conftest.py cannot be imported reliably: there are several)."""

from __future__ import annotations


def make_imageset(n: int, seed: int, num_classes: int = 4, size: int = 16):
    """Images whose class is a bright quadrant: learnable in a few epochs, deterministic by seed."""
    import numpy as np

    from vptlab.data.base import ImageSet, manifest_of

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    images = (rng.random((n, size, size, 3)) * 60).astype(np.uint8)
    half = size // 2
    for c in range(num_classes):
        i, j = divmod(c % 4, 2)
        images[labels == c, i * half : (i + 1) * half, j * half : (j + 1) * half, :] += 120
    return ImageSet(images, labels, manifest_of([f"toy:{seed}:{k}" for k in range(n)], labels), f"toy {seed}")
