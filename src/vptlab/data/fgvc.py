"""FGVC (CUB-200-2011, NABirds, Oxford Flowers, Stanford Dogs, Stanford Cars) as the VPT release lays it out.

Source ``fgvc:ROOT``.  Each dataset is a folder (``ROOT/<task>``, or one of the release's own folder names, or
ROOT itself when it holds ``train.json``) with the split files of the VPT release:

    train.json, val.json, test.json     {"relative/image/path.jpg": class_id, ...}
    train_<fraction>.json               optional smaller train sets (source option ?fraction=0.1)

Image paths are relative to the dataset's image folder, which differs per dataset as in the reference:
CUB and NABirds ``images/``, Stanford Dogs ``Images/``, Stanford Cars and Oxford Flowers the dataset folder
itself.  Class ids (any JSON numbers or strings) map to labels 0..K-1 in sorted order over the three splits
(the reference maps each split on its own, which is the same map when each split holds every class).

Images follow the reference's transforms (:mod:`vptlab.data.augment`): training images are cached whole at
shorter side ``image_size * 8 // 7`` and cropped at random (with a flip) each epoch; val and test images are
cached after the eval transform (resize, centre crop).  The final stage trains on train + val.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vptlab.data import augment, cache
from vptlab.data.base import ImageSet, TaskInfo
from vptlab.data.images import ImageList, _Resolver
from vptlab.data.ragged import load_ragged
from vptlab.data.splits import Pools, origins
from vptlab.data.vtab1k import CheckReport, LoadOptions, SplitReport, TaskReport, unreadable_images
from vptlab.errors import UserError

SPLITS = ("train", "val", "test")
FORM = '{"relative/path.jpg": class_id, ...}'


@dataclass(frozen=True)
class FgvcTask:
    """One FGVC dataset: its class count in the release, its image folder, and its usual folder names."""

    name: str
    num_classes: int
    image_dir: str  # relative to the dataset folder ("" = the folder itself)
    folders: tuple[str, ...]
    title: str


FGVC_TASKS: dict[str, FgvcTask] = {
    t.name: t
    for t in (
        FgvcTask("cub", 200, "images", ("cub", "CUB_200_2011", "CUB", "cub200"), "CUB-200-2011"),
        FgvcTask("nabirds", 555, "images", ("nabirds", "NABirds"), "NABirds"),
        FgvcTask(
            "oxford_flowers",
            102,
            "",
            ("oxford_flowers", "OxfordFlower", "OxfordFlowers", "flowers"),
            "Flowers",
        ),
        FgvcTask(
            "stanford_dogs", 120, "Images", ("stanford_dogs", "Stanford-dogs", "StanfordDogs", "dogs"), "Dogs"
        ),
        FgvcTask(
            "stanford_cars", 196, "", ("stanford_cars", "Stanford-cars", "StanfordCars", "cars"), "Cars"
        ),
    )
}


def fgvc_task(name: str) -> FgvcTask:
    if name not in FGVC_TASKS:
        raise UserError(f"unknown FGVC task {name!r}; known tasks: {', '.join(FGVC_TASKS)}")
    return FGVC_TASKS[name]


def dataset_folder(root: str | os.PathLike, task: str) -> Path | None:
    """The folder holding ``task``'s split files: ``ROOT/<one of its folder names>``, else ROOT itself when it
    holds train.json (a single dataset's folder given as the root)."""
    root, spec = Path(root), fgvc_task(task)
    for name in spec.folders:
        if (root / name / "train.json").is_file():
            return root / name
    return root if (root / "train.json").is_file() else None


def find_tasks(root: str | os.PathLike) -> list[str]:
    """The FGVC tasks present under ``root``, in the paper's order (a single dataset's folder: by its name)."""
    root = Path(root)
    if (root / "train.json").is_file():
        return [n for n, t in FGVC_TASKS.items() if root.name in t.folders]
    return [n for n, t in FGVC_TASKS.items() if any((root / f / "train.json").is_file() for f in t.folders)]


def _require_folder(root: Path, task: str) -> Path:
    if not root.is_dir():
        raise UserError(f"FGVC root {root} not found (expected <root>/<task>/train.json, ...)")
    folder = dataset_folder(root, task)
    if folder is None:
        names = ", ".join(fgvc_task(task).folders)
        present = ", ".join(find_tasks(root)) or "none"
        raise UserError(
            f"{root}: no {task} dataset folder with train.json (looked for {names}); FGVC tasks present: {present}"
        )
    return folder


# --- split files -------------------------------------------------------------------------------------------


def read_json_split(path: Path) -> tuple[list[tuple[str, Any]], list[str]]:
    """A split file's ``(relative path, class id)`` entries and the problems found, each naming the file."""
    if not path.is_file():
        return [], [
            f"{path}: split file not found; an FGVC dataset folder holds train.json, val.json, test.json"
        ]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return [], [f"{path}: not valid JSON ({err.msg}, line {err.lineno}); expected {FORM}"]
    except (OSError, UnicodeDecodeError) as err:
        return [], [f"{path}: cannot read ({err})"]
    if not isinstance(data, dict) or not data:
        return [], [f"{path}: expected a non-empty object {FORM}, got {type(data).__name__}"]
    entries, problems = [], []
    for rel, cls in data.items():
        if (
            isinstance(cls, bool)
            or not isinstance(cls, (int, str))
            or (isinstance(cls, float) and not cls.is_integer())
        ):
            problems.append(f"{path}: entry {rel!r}: class id must be an integer or a string, got {cls!r}")
            continue
        entries.append((rel, cls))
    return entries, problems


def class_map(entries: list[list[tuple[str, Any]]]) -> dict[Any, int]:
    """Class ids of every split, sorted, to contiguous labels (ids of one type: ints, or strings)."""
    ids = {cls for split in entries for _, cls in split}
    kinds = {type(c) for c in ids}
    if len(kinds) > 1:
        ids = {str(c) for c in ids}
    return {c: i for i, c in enumerate(sorted(ids))}


def _label(cls: Any, cmap: dict[Any, int]) -> int:
    return cmap[cls] if cls in cmap else cmap[str(cls)]


def to_image_list(
    path: Path, entries: list[tuple[str, Any]], image_dir: Path, cmap: dict, *, check_files: bool = True
) -> tuple[ImageList, list[str]]:
    """Split entries as an :class:`ImageList` (paths confined to the image folder), with their problems."""
    resolver = _Resolver(str(image_dir), True, check_files)
    files, members, labels, origins_, problems = [], [], [], [], []
    for n, (rel, cls) in enumerate(entries, 1):
        origin = f"{path}:entry {n}"
        file = resolver.resolve(rel)
        if file.startswith("!"):
            problems.append(f"{origin}: {file[1:]}")
            continue
        files.append(file)
        members.append(rel)
        labels.append(_label(cls, cmap))
        origins_.append(origin)
    lst = ImageList(tuple(files), tuple(members), np.asarray(labels, np.int64), tuple(origins_), path.stem)
    return lst, problems


@dataclass
class FgvcSplits:
    info: TaskInfo
    folder: Path
    image_dir: Path
    lists: dict[str, ImageList]
    classes: list
    problems: list[str]
    train_file: str


def read_dataset(
    root: str | os.PathLike, task: str, *, fraction: str = "", check_files: bool = True
) -> FgvcSplits:
    """Parse a dataset folder's split files (train.json or train_<fraction>.json, val.json, test.json)."""
    spec = fgvc_task(task)
    folder = _require_folder(Path(root), task)
    image_dir = folder / spec.image_dir if spec.image_dir else folder
    train_file = f"train_{fraction}.json" if fraction else "train.json"
    names = {"train": train_file, "val": "val.json", "test": "test.json"}
    raw, problems = {}, []
    if not image_dir.is_dir():
        problems.append(
            f"{image_dir}: image folder not found ({spec.title} images live in <dataset>/{spec.image_dir})"
        )
    for split, name in names.items():
        raw[split], found = read_json_split(folder / name)
        problems += found
    cmap = class_map(list(raw.values()))
    lists = {}
    for split, name in names.items():
        lists[split], found = to_image_list(
            folder / name, raw[split], image_dir, cmap, check_files=check_files
        )
        problems += found
    if len(cmap) < 2:
        problems.append(f"{folder}: {len(cmap)} class(es) over the three splits; a task needs at least 2")
    info = TaskInfo(task, "natural", "classification", max(2, len(cmap)))
    return FgvcSplits(info, folder, image_dir, lists, sorted(cmap, key=cmap.get), problems, train_file)


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = (
            f" (and {len(problems) - 1} more; run 'vptlab data check fgvc:ROOT')" if len(problems) > 1 else ""
        )
        raise UserError(problems[0] + more)


# --- loading -----------------------------------------------------------------------------------------------


def parse_fraction(options: str) -> str:
    """Source option ``fraction=F`` (``fgvc:ROOT?fraction=0.1``): train on ``train_F.json``."""
    if not options:
        return ""
    key, _, value = options.partition("=")
    if key != "fraction" or not value:
        raise UserError(f"fgvc source options: expected ?fraction=F (train_F.json), got ?{options}")
    try:
        f = float(value)
    except ValueError:
        f = math.nan
    if not 0.0 < f <= 1.0:
        raise UserError(f"fgvc source option fraction must be a number in (0, 1], got {value!r}")
    return value


def fgvc_pools(
    root: Path, task: str, options: LoadOptions, source_options: str = ""
) -> tuple[TaskInfo, Pools, dict[str, Any]]:
    """A FGVC dataset's splits as :class:`Pools`: train (and train + val) whole for the random crops, val and
    test after the eval transform."""
    ds = read_dataset(root, task, fraction=parse_fraction(source_options))
    _raise_first(ds.problems)
    lists = ds.lists
    trainval = ImageList.concat([lists["train"], lists["val"]], "train+val")

    def ragged(lst: ImageList) -> cache.Decoded:
        decoded = load_ragged(
            lst,
            options.image_size,
            options.interpolation,
            cache_dir=options.cache_dir,
            skip_bad_images=options.skip_bad_images,
        )
        options.skipped[lst.description] = decoded.skipped
        return decoded

    def evaluated(lst: ImageList) -> ImageSet:
        decoded = cache.load_image_list(
            lst,
            options.image_size,
            options.interpolation,
            cache_dir=options.cache_dir,
            skip_bad_images=options.skip_bad_images,
            resize="reference-eval",
        )
        options.skipped[lst.description] = decoded.skipped
        return decoded.imageset

    memo: dict[str, Any] = {}

    def once(name: str, make: Any) -> Any:
        if name not in memo:
            memo[name] = make()
        return memo[name]

    def trainval_origin() -> np.ndarray:
        tags = origins(trainval.members, lists["train"].members, lists["val"].members)
        return tags[once("trainval", lambda: ragged(trainval)).kept]

    pools = Pools(
        train=lambda: once("train", lambda: ragged(lists["train"])).imageset,
        val=lambda: once("val", lambda: evaluated(lists["val"])),
        trainval=lambda: once("trainval", lambda: ragged(trainval)).imageset,
        test=lambda: once("test", lambda: evaluated(lists["test"])),
        trainval_origin=trainval_origin,
        pool=lambda: once("trainval", lambda: ragged(trainval)).imageset,
        pool_origin=trainval_origin,
        pool_name="train + val",
        names={"train": ds.train_file, "val": "val.json"},
    )
    extra = {
        "root": str(ds.folder.resolve()),
        "image_dir": str(ds.image_dir.resolve()),
        "train_file": ds.train_file,
        "classes": [c if isinstance(c, (int, str)) else str(c) for c in ds.classes],
        "transform": {
            "name": augment.TRANSFORM_NAME,
            "resize_shorter": augment.resize_dim(options.image_size),
            "crop": options.image_size,
            "train": "random crop + horizontal flip (p=0.5)",
            "eval": "centre crop",
        },
    }
    return ds.info, pools, extra


# --- the source interface (vptlab.data.sources) -----------------------------------------------------------


def list_tasks(root: Path) -> list[TaskInfo]:
    if not Path(root).is_dir():
        raise UserError(f"FGVC root {root} not found (expected <root>/<task>/train.json, ...)")
    return [read_dataset(root, name, check_files=False).info for name in find_tasks(root)]


def pools(root: Path, task: str, options: LoadOptions, source_options: str, regime: Any) -> tuple:
    return fgvc_pools(root, task, options, source_options)


# --- check -------------------------------------------------------------------------------------------------


def check_root(root: str | os.PathLike, task: str | None = None, *, images: bool = True) -> CheckReport:
    """Every problem of a FGVC root (or one dataset of it): split files, image paths, overlaps, unreadable images."""
    root = Path(root)
    report = CheckReport(root, title="FGVC root")
    if not root.is_dir():
        raise UserError(f"FGVC root {root} not found (expected <root>/<task>/train.json, ...)")
    tasks = [task] if task else find_tasks(root)
    if task:
        fgvc_task(task)
    if not tasks:
        known = ", ".join(f"{t.name} ({'/'.join(t.folders[1:3])})" for t in FGVC_TASKS.values())
        report.problems.append(f"{root}: no FGVC dataset folders with train.json; expected one of {known}")
    for name in tasks:
        report.tasks.append(_check_task(root, name, images))
    return report


def _check_task(root: Path, task: str, images: bool) -> TaskReport:
    try:
        ds = read_dataset(root, task)
    except UserError as err:
        info = TaskInfo(task, "natural", "classification", fgvc_task(task).num_classes)
        return TaskReport(info, root, problems=[str(err)])
    report = TaskReport(ds.info, ds.folder, problems=list(ds.problems))
    for split in SPLITS:
        lst = ds.lists[split]
        report.splits.append(SplitReport(f"{split}.json", len(lst), len(lst.classes_seen())))
    expected = fgvc_task(task).num_classes
    if ds.info.num_classes != expected:
        report.notes.append(
            f"{ds.info.num_classes} classes over the splits; the {fgvc_task(task).title} release has {expected}"
        )
    test = set(ds.lists["test"].files)
    for split in ("train", "val"):
        leaked = [m for f, m in zip(ds.lists[split].files, ds.lists[split].members) if f in test]
        report.problems += [
            f"{ds.folder / (split + '.json')}: image {m!r} is also in test.json" for m in leaked
        ]
    if images:
        report.problems += unreadable_images(ds.lists.values())
    return report
