"""Image sets named on the command line, for FID and the advisor.

Forms of ``spec``:

- ``synthetic:upstream``: the synthetic pretraining (upstream) set of the bundled tiny backbone (a 10,000-image
  sample of it);
- ``synthetic:TASK``: a built-in synthetic task's training data (train800 + val200);
- ``vtab1k:ROOT/TASK``: a VTAB-1k task's training data (``train800val200``), as the paper's Figure 3 uses;
- ``PATH`` (a folder): every image under it, recursively (class sub-folders or flat, labels ignored);
- ``PATH.npz`` is not an image set but precomputed statistics: see :func:`is_stats_file`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vptlab.data.base import ImageSet, manifest_of
from vptlab.errors import UserError

SPEC_FORMS = (
    "a folder of images, vtab1k:ROOT/TASK, synthetic:TASK, synthetic:upstream or a .npz statistics file"
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_stats_file(spec: str | Path) -> bool:
    """Whether ``spec`` names precomputed FID statistics (``.npz``) rather than images."""
    return str(spec).endswith(".npz")


def check_spec(spec: str | Path) -> None:
    """Fail early, before any model is built, on a set that cannot exist (a missing folder or file)."""
    text = str(spec)
    if text.startswith(("synthetic:", "vtab1k:")):
        return
    path = Path(text.partition(":")[2] if text.startswith("folder:") else text)
    if is_stats_file(text) and not path.is_file():
        raise UserError(f"{text}: no such FID statistics file")
    if not path.exists():
        raise UserError(f"{text}: no such folder; expected {SPEC_FORMS}")
    if not path.is_dir() and not is_stats_file(text):
        raise UserError(f"{text}: not a folder of images; expected {SPEC_FORMS}")


def load_image_set(spec: str | Path, image_size: int, *, seed: int = 0) -> ImageSet:
    """The images ``spec`` names (see the module docstring), decoded at ``image_size``."""
    text = str(spec)
    if text.startswith("synthetic:"):
        return _synthetic(text.partition(":")[2], image_size, seed)
    if text.startswith("vtab1k:"):
        root, _, task = text.partition(":")[2].rstrip("/").rpartition("/")
        if not root or not task:
            raise UserError(f"{text!r}: expected vtab1k:ROOT/TASK, e.g. vtab1k:/data/vtab-1k/cifar")
        return _task_train(f"vtab1k:{root}", task, image_size)
    if text.startswith("folder:"):
        text = text.partition(":")[2]
    check_spec(text)
    path = Path(text)
    return read_image_folder(path, image_size)


# FID's sample of the upstream set: 100 per class x 100 classes = 10,000 images, the usual FID sample size,
# drawn from the same distribution as the 40,000 images vptlab-tiny is pretrained on (a quarter of the cost).
UPSTREAM_PER_CLASS = 100


def spec_cache_key(spec: str | Path, image_size: int, seed: int = 0) -> str | None:
    """A cache key for a generated set, known without generating it (None for sets read from disk)."""
    text = str(spec)
    if not text.startswith("synthetic:"):
        return None
    from vptlab.data.synthetic.version import GENERATOR_VERSION

    extra = f":{UPSTREAM_PER_CLASS}" if text == "synthetic:upstream" else ""
    return f"{text}{extra}:{image_size}:{seed}:v{GENERATOR_VERSION}"


def _synthetic(name: str, image_size: int, seed: int) -> ImageSet:
    from vptlab.data import synthetic

    if name == "upstream":
        return synthetic.upstream(per_class=UPSTREAM_PER_CLASS, image_size=image_size, seed=seed)
    if name not in synthetic.SYNTHETIC_TASKS:
        known = ", ".join(["upstream", *synthetic.SYNTHETIC_TASKS])
        raise UserError(f"unknown synthetic set {name!r}; known: {known}")
    return synthetic.generate(name, "train800val200", image_size=image_size, seed=seed)


def _task_train(source: str, task: str, image_size: int) -> ImageSet:
    """The images a final run trains on (train800val200): what the paper measures FID on."""
    from vptlab.data.sources import load_task

    data = load_task(source, task, stage="final", image_size=image_size)
    return data.train


def _image_files(root: Path) -> list[Path]:
    files = [
        Path(dirpath) / name
        for dirpath, _, names in os.walk(root, followlinks=True)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
    ]
    return sorted(files)


def read_image_folder(root: Path, image_size: int) -> ImageSet:
    """Every image under ``root`` as RGB, resized to ``image_size`` squared (bilinear), in sorted path order.

    The manifest covers relative paths, sizes and modification times, so cached statistics follow the files.
    """
    files = _image_files(root)
    if len(files) < 2:
        raise UserError(
            f"{root}: found {len(files)} images ({', '.join(IMAGE_EXTENSIONS)}); FID needs at least 2"
        )
    images = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    members = []
    for i, path in enumerate(files):
        images[i] = _decode(path, image_size)
        stat = path.stat()
        members.append(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}|{image_size}")
    labels = np.zeros(len(files), dtype=np.int64)
    return ImageSet(images, labels, manifest_of(members, labels), f"{root} ({len(files)} images)")


def _decode(path: Path, image_size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"{path}: not a readable image ({err})") from err
