"""Helpers the tests import by name (a conftest.py cannot be imported reliably: there are several)."""

from __future__ import annotations

TINY_ARGS = (("depth", 2), ("embed_dim", 32), ("num_heads", 2))  # a 2-layer, 32-wide ViT for tests


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


# A study's backbone section: a 1-layer, 32-wide ViT at 16x16 from random init (a run takes well under a second).
TINY_BACKBONE = """
[backbone]
name = "vptlab-tiny"
image_size = 16
pretrained = false
[backbone.kwargs]
depth = 1
embed_dim = 32
num_heads = 2
patch_size = 8
"""

# full and vpt-deep with 2-point lr grids, ft-then-pt with one point: 4 tune + 3 x seeds final runs
TINY_METHODS = """
[methods.full]
lr = [0.001, 0.0001]
wd = [0.0]
batch_size = 16
[methods.vpt-deep]
lr = [1.0, 0.1]
wd = [0.0]
prompt_length = 2
batch_size = 16
[methods.ft-then-pt]
lr = [1.0]
wd = [0.0]
prompt_length = 2
batch_size = 16
"""


def tiny_spec(source: str, task: str, *, epochs: int = 2, seeds: str = "[1, 2]", methods: str | None = None,
              extra: str = "") -> str:  # fmt: skip
    """A study spec over one folder task with the tiny backbone (``TINY_METHODS`` unless ``methods`` is given)."""
    return f"""name = "tiny"
{TINY_BACKBONE}
[data]
source = "{source}"
tasks = ["{task}"]
[training]
epochs = {epochs}
warmup_epochs = 0
seeds = {seeds}
{methods or TINY_METHODS}
{extra}
"""


def make_photo_folder(
    root, classes=("cat", "dog", "owl"), per_class: int = 12, size: int = 20, seed: int = 0
):
    """A real-photo style folder task: ``root/<class>/`` of small JPEG and PNG files (odd size, so they are
    resized), each class a colour the tiny ViT learns in a few epochs."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = (rng.random((size, size + 4, 3)) * 50).astype(np.int16) + colours[c % 4]
            pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
            if i % 2:
                pic.save(root / name / f"{i:03d}.jpg", quality=95)
            else:
                pic.save(root / name / f"{i:03d}.png")
    return root
