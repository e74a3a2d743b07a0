"""A user's own images as a task: class sub-folders, a list file, or a folder with its own split files.

Three layouts are read, in this order of precedence:

* ``PATH/{train,val,test}.txt`` (+ optional ``PATH/labels.json``): the user's split, lines ``path label`` with
  paths relative to ``PATH`` (they may point outside it: it is the user's own layout).  Every class must appear
  in ``train.txt``.  ``vptlab data split`` writes exactly this.
* ``PATH`` is a list file (``.txt``): lines ``path label``, paths relative to the file's folder.
* ``PATH/<class>/**/<image>``: one sub-folder per class, labels in sorted folder-name order; images are the
  files with an extension of :data:`vptlab.data.images.IMAGE_EXTENSIONS` (any case); every other file is named
  in ``FolderTask.dropped`` (see :mod:`vptlab.data.scan`).

The last two have no split of their own: a stratified partition seeded by ``seed`` (default 0, kept fixed so
every run of a study sees the same test set) holds out ``test_fraction`` (20%) of each class and splits the rest
4:1 into train and val.  The split files and the label map are saved (see :func:`write_split_files`) so a run can
be repeated exactly.  The task is named after the folder, in group ``natural`` with objective
``classification`` unless ``labels.json`` (keys ``name``, ``group``, ``objective``) or the source options say
otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vptlab._io import atomic_write_json, atomic_write_text, stable_hash
from vptlab.data.base import TaskInfo
from vptlab.data.images import IMAGE_EXTENSIONS, ImageList, raise_problems, read_list_file
from vptlab.data.scan import loose_files, walk_images
from vptlab.data.splits import stratified_partition
from vptlab.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class FolderOptions:
    """How a folder becomes a task; every field can be given in the source string (``folder:PATH?seed=1``)."""

    name: str | None = None
    group: str = "natural"
    objective: str = "classification"
    seed: int = 0
    test_fraction: float = 0.2
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        for key in ("test_fraction", "val_fraction"):
            value = getattr(self, key)
            if not 0.0 < value < 1.0:
                raise UserError(f"folder option {key} must be between 0 and 1 (exclusive), got {value}")


def parse_options(text: str) -> FolderOptions:
    """``"group=specialized&seed=1"`` -> :class:`FolderOptions`; a :class:`UserError` names a bad key or value."""
    fields = {f: type(v) for f, v in FolderOptions().__dict__.items()}
    fields["name"] = str
    values: dict[str, Any] = {}
    for item in filter(None, text.split("&")):
        key, sep, value = item.partition("=")
        if key not in fields or not sep:
            raise UserError(f"folder option {item!r}: expected key=value with key one of {', '.join(fields)}")
        try:
            values[key] = fields[key](value)
        except ValueError:
            raise UserError(
                f"folder option {key}: expected a {fields[key].__name__}, got {value!r}"
            ) from None
    return FolderOptions(**values)


@dataclass(frozen=True)
class FolderTask:
    """A folder read as a task: its info, class names, its three splits, and whether the split was made here."""

    info: TaskInfo
    classes: tuple[str, ...]
    splits: dict[str, ImageList]
    generated: bool
    root: Path
    options: FolderOptions
    dropped: tuple[str, ...] = ()  # files found but not used, "path: reason"
    notes: tuple[str, ...] = ()  # e.g. classes too small to appear in val or test


def read_folder(path: str | os.PathLike, options: FolderOptions = FolderOptions()) -> FolderTask:
    """Read any of the three layouts into a :class:`FolderTask` (making the stratified split if needed)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"image folder {path} not found")
    if path.is_dir() and (path / "train.txt").is_file():
        return _read_split_files(path, options)
    dropped: list[str] = []
    if path.is_file():
        everything, classes = _read_list_file(path)
        root = path.parent
    else:
        everything, classes, dropped = scan_class_folders(path)
        root = path
    meta = _labels_meta(root, path)
    options = _apply_meta(options, meta)
    splits = partition(everything, options)
    info = _task_info(path, options, classes)
    notes = small_class_notes(splits, classes)
    return FolderTask(info, classes, splits, True, root, options, tuple(dropped), tuple(notes))


def scan_class_folders(root: Path) -> tuple[ImageList, tuple[str, ...], list[str]]:
    """Every image under ``root/<class>/`` (recursively), labelled by sorted class-folder name.

    Also returns every file found but not used, as ``path: reason`` (see :mod:`vptlab.data.scan`).
    """
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    class_dirs = [p for p in subdirs if not p.name.startswith(".")]
    dropped = [f"{p}{os.sep}: hidden folder, not read" for p in subdirs if p.name.startswith(".")]
    dropped += loose_files(root)
    if not class_dirs:
        exts = ", ".join(IMAGE_EXTENSIONS)
        raise UserError(
            f"{root}: no class sub-folders; expected {root}/<class>/<image> with {exts}, or a list file"
        )
    files, members, labels = [], [], []
    root_real = os.path.realpath(root)
    for label, class_dir in enumerate(class_dirs):
        rels, not_images = walk_images(class_dir, root)
        dropped += not_images
        if not rels:
            raise UserError(
                f"{class_dir}: class folder holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "every class needs at least one" + (f" ({len(not_images)} other files)" if not_images else "")
            )
        files += [os.path.join(root_real, rel) for rel in rels]
        members += rels
        labels += [label] * len(rels)
    origins = tuple(files)
    lst = ImageList(tuple(files), tuple(members), np.asarray(labels, np.int64), origins, root.name)
    return lst, tuple(p.name for p in class_dirs), dropped


def _read_list_file(path: Path) -> tuple[ImageList, tuple[str, ...]]:
    lst, problems = read_list_file(path, path.parent, num_classes=None, confine=False)
    raise_problems(problems)
    meta = _labels_meta(path.parent, path)
    classes = _class_names(meta, path, int(lst.labels.max()) + 1)
    raise_problems(_empty_class_problems(lst, len(classes), str(path)))
    return lst, classes


def _read_split_files(root: Path, options: FolderOptions) -> FolderTask:
    """The user's own split: ``train.txt``, ``val.txt``, ``test.txt`` (all three) beside ``labels.json``."""
    missing = [f"{s}.txt" for s in SPLIT_NAMES if not (root / f"{s}.txt").is_file()]
    if missing:
        raise UserError(
            f"{root}: has train.txt but not {', '.join(missing)}; a split needs train, val and test"
        )
    meta = _labels_meta(root, root)
    num = len(meta["classes"]) if "classes" in meta else None
    splits = {}
    for split in SPLIT_NAMES:
        lst, problems = read_list_file(root / f"{split}.txt", root, num_classes=num, confine=False)
        raise_problems(problems)
        splits[split] = lst
    classes = _class_names(meta, root / LABELS_FILE, max(int(s.labels.max()) + 1 for s in splits.values()))
    raise_problems(_empty_class_problems(splits["train"], len(classes), str(root / "train.txt")))
    options = _apply_meta(options, meta)
    notes = small_class_notes(splits, classes)
    return FolderTask(
        _task_info(root, options, classes), classes, splits, False, root, options, (), tuple(notes)
    )


def partition(everything: ImageList, options: FolderOptions) -> dict[str, ImageList]:
    """The seeded stratified split of a folder's images into train, val and test lists."""
    parts = stratified_partition(
        everything.labels,
        options.seed,
        test_fraction=options.test_fraction,
        val_fraction=options.val_fraction,
    )
    splits = {}
    for name, idx in zip(SPLIT_NAMES, parts):
        members = set(idx.tolist())
        splits[name] = everything.select(members.__contains__, name)
    return splits


def small_class_notes(splits: dict[str, ImageList], classes: tuple[str, ...]) -> list[str]:
    """A class absent from val or test: its accuracy is never measured (the stratified split needs 3 images)."""
    notes = []
    for c, name in enumerate(classes):
        counts = {s: int((lst.labels == c).sum()) for s, lst in splits.items()}
        missing = [s for s in ("val", "test") if counts.get(s, 0) == 0]
        if missing:
            total = sum(counts.values())
            notes.append(
                f"class {name!r} has {total} image{'s' * (total != 1)}: none in {' or '.join(missing)}, so it is "
                "never evaluated (a generated split needs >= 3 images per class to put one in each split)"
            )
    return notes


def _empty_class_problems(lst: ImageList, num_classes: int, where: str) -> list[str]:
    counts = np.bincount(lst.labels, minlength=num_classes)
    return [
        f"{where}: class {c} has no images; labels must be 0..{num_classes - 1} with every class used"
        for c in np.flatnonzero(counts == 0).tolist()
    ]


def _labels_meta(root: Path, where: Path) -> dict[str, Any]:
    """``labels.json`` beside the data, if any: ``classes`` (names by label) and optional task metadata."""
    path = root / LABELS_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes", []), list):
        raise UserError(f"{path}: expected an object with 'classes': [name of label 0, name of label 1, ...]")
    return meta


def _class_names(meta: dict[str, Any], where: Path, num_labels: int) -> tuple[str, ...]:
    classes = meta.get("classes")
    if classes is None:
        return tuple(str(i) for i in range(num_labels))
    if len(classes) < num_labels:
        raise UserError(
            f"{where}: labels go up to {num_labels - 1} but labels.json names {len(classes)} classes"
        )
    return tuple(str(c) for c in classes)


def _apply_meta(options: FolderOptions, meta: dict[str, Any]) -> FolderOptions:
    """labels.json's name/group/objective fill in what the source options leave at their defaults."""
    defaults = FolderOptions()
    updates = {
        key: meta[key]
        for key in ("name", "group", "objective")
        if key in meta and getattr(options, key) == getattr(defaults, key)
    }
    return replace(options, **updates) if updates else options


def _task_info(path: Path, options: FolderOptions, classes: tuple[str, ...]) -> TaskInfo:
    name = options.name or (path.parent if path.is_file() else path).resolve().name
    return TaskInfo(name, options.group, options.objective, len(classes))


def write_split_files(out_dir: str | os.PathLike, folder: FolderTask) -> Path:
    """Write ``train.txt``, ``val.txt``, ``test.txt`` and ``labels.json`` into ``out_dir``.

    Paths are relative to ``out_dir`` so the folder reads back as a split-file folder source (``folder:OUT``)
    giving exactly the same images and labels.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    out_real = out.resolve()
    for name, lst in folder.splits.items():
        lines = [
            f"{Path(os.path.relpath(f, out_real)).as_posix()} {int(y)}\n"
            for f, y in zip(lst.files, lst.labels)
        ]
        atomic_write_text(out / f"{name}.txt", "".join(lines))
    atomic_write_json(out / LABELS_FILE, labels_json(folder))
    return out


def labels_json(folder: FolderTask) -> dict[str, Any]:
    """The label map and how the split was made: enough to repeat it."""
    opts = folder.options
    return {
        "classes": list(folder.classes),
        "name": folder.info.name,
        "group": folder.info.group,
        "objective": folder.info.objective,
        "source": str(folder.root.resolve()),
        "split": {
            "generated": folder.generated,
            "seed": opts.seed,
            "test_fraction": opts.test_fraction,
            "val_fraction": opts.val_fraction,
        },
        "sizes": {name: len(lst) for name, lst in folder.splits.items()},
    }


def saved_split_dir(folder: FolderTask, cache_root: Path) -> Path:
    """Where a generated split is kept for the record: ``<cache>/splits/<hash of the split>/`` (written once)."""
    key = stable_hash(
        {name: lst.manifest for name, lst in folder.splits.items()} | {"root": str(folder.root)}
    )
    out = cache_root / "splits" / key
    if not (out / LABELS_FILE).is_file():
        write_split_files(out, folder)
    return out
