"""Image sets named on the command line, for FID and the advisor.

Forms of ``spec``:

- ``synthetic:upstream``: the synthetic pretraining (upstream) set of the bundled tiny backbone (a 10,000-image
  sample of it);
- ``synthetic:TASK``: a built-in synthetic task's training data (train800 + val200);
- ``vtab1k:ROOT/TASK``: a VTAB-1k task's training data (``train800val200``), as the paper's Figure 3 uses;
- ``PATH`` (a folder): every image of it, as training lists them (:func:`folder_image_list`: its split files,
  its class sub-folders, or every image under it), decoded by the same reader and cache; other files are named;
- ``PATH.npz`` is not an image set but precomputed statistics: see :func:`is_stats_file`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from vptlab._io import stable_hash
from vptlab.data.base import ImageSet
from vptlab.data.images import IMAGE_EXTENSIONS, ImageList
from vptlab.errors import UserError

SPEC_FORMS = (
    "a folder of images, vtab1k:ROOT/TASK, synthetic:TASK, synthetic:upstream or a .npz statistics file"
)


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


def load_image_set(
    spec: str | Path, image_size: int, *, seed: int = 0, skip_bad_images: bool = False
) -> ImageSet:
    """The images ``spec`` names (see the module docstring), decoded at ``image_size``.

    ``skip_bad_images`` leaves unreadable files out (named on the console) instead of stopping at the first.
    """
    text = str(spec)
    if text.startswith("synthetic:"):
        return _synthetic(text.partition(":")[2], image_size, seed)
    if text.startswith("vtab1k:"):
        root, _, task = text.partition(":")[2].rstrip("/").rpartition("/")
        if not root or not task:
            raise UserError(f"{text!r}: expected vtab1k:ROOT/TASK, e.g. vtab1k:/data/vtab-1k/cifar")
        return _task_train(f"vtab1k:{root}", task, image_size, skip_bad_images)
    if text.startswith("folder:"):
        text = text.partition(":")[2]
    check_spec(text)
    path = Path(text)
    return read_image_folder(path, image_size, skip_bad_images=skip_bad_images)


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


def _task_train(source: str, task: str, image_size: int, skip_bad_images: bool = False) -> ImageSet:
    """The images a final run trains on (train800val200): what the paper measures FID on."""
    from vptlab.data.sources import load_task

    data = load_task(source, task, stage="final", image_size=image_size, skip_bad_images=skip_bad_images)
    return data.train


def folder_image_list(root: Path) -> tuple[ImageList, list[str]]:
    """The images of a folder in the order every command reads them, and the files not used (``path: reason``).

    A folder with its own split (``train.txt``...) gives its train, val and test lists; class sub-folders give
    the scan training splits from (:func:`vptlab.data.folders.scan_class_folders`); any other folder gives every
    image under it (:func:`vptlab.data.scan.walk_images`).
    """
    from vptlab.data.folders import read_folder, scan_class_folders
    from vptlab.data.scan import walk_images

    if (root / "train.txt").is_file():
        folder = read_folder(root)
        return ImageList.concat(list(folder.splits.values()), root.name), list(folder.dropped)
    if any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        lst, _, dropped = scan_class_folders(root)
        return lst, dropped
    rels, dropped = walk_images(root, root)
    files = tuple(str(root / rel) for rel in rels)
    return ImageList(files, tuple(rels), np.zeros(len(rels), np.int64), files, root.name), dropped


def read_image_folder(root: Path, image_size: int, *, skip_bad_images: bool = False) -> ImageSet:
    """Every image of ``root`` (:func:`folder_image_list`) as RGB, resized to ``image_size`` squared (bilinear).

    Decoded by the same reader and cache as training; files not used are named on the console.  The manifest
    covers the files' paths, sizes and modification times, so cached statistics follow the files.
    """
    from vptlab.data import cache, notices

    lst, dropped = folder_image_list(root)
    if len(lst) < 2:
        raise UserError(
            f"{root}: found {len(lst)} images ({', '.join(IMAGE_EXTENSIONS)}); FID needs at least 2"
            + (f"; {len(dropped)} other files, e.g. {dropped[0]}" if dropped else "")
        )
    decoded = cache.load_image_list(lst, image_size, "bilinear", skip_bad_images=skip_bad_images)
    notices.announce(f"files in {root} not used", dropped + decoded.skipped)
    identity = stable_hash([cache.file_list_key(lst, image_size, "bilinear"), decoded.imageset.manifest])
    count = len(decoded.imageset)
    return dataclasses.replace(decoded.imageset, manifest=identity, description=f"{root} ({count} images)")
