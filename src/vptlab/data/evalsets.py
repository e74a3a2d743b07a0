"""Evaluation sets under distribution shift: a trained run scored on other image sets of the same classes.

An evaluation set is a folder, in one of the layouts the shifted ImageNet sets are released in:

* class folders named like the training classes: ImageNet-Sketch, -A and -R (``<wnid>/*.JPEG``), or any folder
  dataset whose class names are the training set's;
* class folders named by class *index*: ImageNet-V2 (``imagenetv2-matched-frequency-format-val/<0..999>/``);
* a list file ``annotations/val_meta.list`` of ``path label`` lines (NOAH's domain-generalisation lists, labels
  already in the training label space), paths relative to the folder.

Class names are matched against the training data's (``record["classes"]``: a folder source's class folders in
sorted order, which for ImageNet is the wnid order of its 1000 labels), or against a names file given as
``PATH?classes=FILE`` (one name per line, in label order).  A set holding only some of the classes (ImageNet-A and
-R: 200 of 1000) is scored with the logits masked to its classes, as their authors do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vptlab.data import cache
from vptlab.data.base import ImageSet, TaskData, TaskInfo
from vptlab.data.images import ImageList, is_image_file, read_list_file
from vptlab.data.vtab1k import CheckReport, SplitReport, TaskReport, unreadable_images
from vptlab.errors import UserError

NOAH_LIST = Path("annotations") / "val_meta.list"


@dataclass
class EvalSet:
    """An evaluation set in the training label space; ``mask`` (bool, num_classes) when it holds a subset."""

    name: str
    images: ImageSet
    mask: np.ndarray | None
    record: dict[str, Any] = field(default_factory=dict)


def parse_eval_source(text: str) -> tuple[Path, Path | None]:
    """``PATH`` or ``PATH?classes=FILE`` -> (folder, names file)."""
    path, sep, options = str(text).partition("?")
    names = None
    if sep:
        key, _, value = options.partition("=")
        if key != "classes" or not value:
            raise UserError(f"evaluation set {text!r}: the only option is ?classes=FILE, got ?{options}")
        names = Path(value).expanduser()
    return Path(path).expanduser(), names


def read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"class names file {path} not found (one class name per line, in label order)")
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def eval_image_list(folder: Path, train_classes: list[str] | None, num_classes: int) -> ImageList:
    """The set's images with labels in the training label space; a :class:`UserError` if they cannot be mapped."""
    if not folder.is_dir():
        raise UserError(f"evaluation set {folder} not found (class folders, or {NOAH_LIST})")
    if (folder / NOAH_LIST).is_file():
        lst, problems = read_list_file(folder / NOAH_LIST, folder, num_classes=num_classes, confine=True)
        if problems:
            raise UserError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        return lst
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"evaluation set {folder}: no class folders (and no {NOAH_LIST})")
    label_of = _class_labels(folder, classes, train_classes, num_classes)
    files, members, labels, origins = [], [], [], []
    for name in classes:
        for p in sorted((folder / name).rglob("*")):
            if p.is_file() and is_image_file(p):
                rel = str(p.relative_to(folder))
                files.append(str(p.resolve()))
                members.append(rel)
                labels.append(label_of[name])
                origins.append(str(p))
    if not files:
        raise UserError(f"evaluation set {folder}: no images in its class folders")
    return ImageList(tuple(files), tuple(members), np.asarray(labels, np.int64), tuple(origins), folder.name)


def _class_labels(
    folder: Path, classes: list[str], train: list[str] | None, num_classes: int
) -> dict[str, int]:
    if train is not None and all(c in train for c in classes):
        index = {c: i for i, c in enumerate(train)}
        return {c: index[c] for c in classes}
    if all(c.isdigit() and int(c) < num_classes for c in classes):  # ImageNet-V2: folders named by index
        return {c: int(c) for c in classes}
    known = "the training classes" if train is not None else "class indices 0..N-1 (no class names known)"
    unknown = [c for c in classes if train is None or c not in train][:5]
    raise UserError(
        f"evaluation set {folder}: class folders {unknown} match neither {known}; give the names in label "
        "order with PATH?classes=FILE"
    )


def load_eval_set(
    name: str,
    source: str,
    data: TaskData,
    *,
    image_size: int,
    interpolation: str = "bilinear",
    cache_dir: str | os.PathLike | None = None,
) -> EvalSet:
    """Evaluation set ``name`` from ``source`` in ``data``'s label space, decoded as ``data``'s test set is."""
    folder, names_file = parse_eval_source(source)
    train_classes = read_names(names_file) if names_file else data.record.get("classes")
    num_classes = data.info.num_classes
    if train_classes is not None and len(train_classes) != num_classes:
        raise UserError(
            f"{names_file or 'training classes'}: {len(train_classes)} names for {num_classes} classes"
        )
    lst = eval_image_list(folder, [str(c) for c in train_classes] if train_classes else None, num_classes)
    resize = "reference-eval" if data.record.get("transform") else "square"
    decoded = cache.load_image_list(lst, image_size, interpolation, cache_dir=cache_dir, resize=resize)
    present = np.unique(lst.labels)
    mask = None
    if len(present) < num_classes:
        mask = np.zeros(num_classes, bool)
        mask[present] = True
    record = {
        "source": str(source),
        "images": len(lst),
        "classes": int(len(present)),
        "masked_to_classes": mask is not None,
        "manifest": decoded.imageset.manifest,
    }
    return EvalSet(name, decoded.imageset, mask, record)


# --- check -------------------------------------------------------------------------------------------------


def check_root(root: str | os.PathLike, task: str | None = None, *, images: bool = True) -> CheckReport:
    """Check a folder of evaluation sets (one sub-folder per set): images and classes per set, unreadable images."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"evaluation-set root {root} not found (one folder per set, class folders inside)")
    report = CheckReport(root, title="evaluation sets")
    sets = (
        [root / task]
        if task
        else sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    for folder in sets:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        info = TaskInfo(folder.name, "natural", "classification", max(2, len(names)))
        t = TaskReport(info, folder)
        try:
            lst = eval_image_list(
                folder, names or None, 10**6
            )  # any class names: only the images are checked
        except UserError as err:
            t.problems.append(str(err))
        else:
            t.splits.append(SplitReport("images", len(lst), len(lst.classes_seen())))
            if images:
                t.problems += unreadable_images([lst])
        report.tasks.append(t)
    return report
