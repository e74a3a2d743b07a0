"""Few-shot learning in NOAH's protocol, read from NOAH's released split files.

Source ``fewshot:ROOT``; ROOT holds one folder per dataset, as NOAH's ``data/few-shot/`` does::

    <dataset>/annotations/train_meta.list.num_shot_<K>.seed_<S>   K in {1, 2, 4, 8, 16}, S in {0, 1, 2}
    <dataset>/annotations/val_meta.list
    <dataset>/annotations/test_meta.list
    <dataset>/images/...                                          (or the dataset folder itself, as NOAH's
                                                                   stanford_cars; ImageNet: train/ and val/)

Lines are ``relative/path label`` (the path may hold spaces: the label is the last field).  The released
files repeat a line now and then (oxford-pets 1-shot); each line is an image of the training set, kept as
released.  Regime ``kshot:K`` (or ``fewshot:K``, NOAH's protocol on every other source, see
:mod:`vptlab.data.splits`) with ``split_seed = S`` reads ``train_meta.list.num_shot_K.seed_S``: train = that
file, val = ``val_meta.list`` (tune stage), and the final stage trains on the K-shot file alone (NOAH never
trains on val), tested on ``test_meta.list``.  Images are resized to the model's input size (as for VTAB-1k).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from vptlab.data.base import TaskInfo
from vptlab.data.images import ImageList, read_list_file
from vptlab.data.splits import Regime, Selection
from vptlab.data.vtab1k import CheckReport, LoadOptions, SplitReport, TaskReport, unreadable_images
from vptlab.errors import UserError

ANNOTATIONS = "annotations"
TRAIN_FILE = re.compile(r"^train_meta\.list\.num_shot_(\d+)\.seed_(\d+)$")
# Class counts of NOAH's datasets (its loader's table), by the folder names the release and its scripts use.
NOAH_CLASSES = {
    "fgvc-aircraft": 100, "fgvc_aircraft": 100,
    "food101": 101, "food-101": 101,
    "oxford-flowers102": 102, "oxford_flowers": 102,
    "oxford-pets": 37, "oxford_pets": 37,
    "standford-cars": 196, "stanford-cars": 196, "stanford_cars": 196,
    "imagenet": 1000,
}  # fmt: skip


def train_files(folder: Path) -> dict[tuple[int, int], Path]:
    """``(K, seed) -> path`` of a dataset folder's released K-shot training files."""
    ann = folder / ANNOTATIONS
    found = {}
    if ann.is_dir():
        for p in ann.iterdir():
            m = TRAIN_FILE.match(p.name)
            if m:
                found[(int(m.group(1)), int(m.group(2)))] = p
    return found


def find_datasets(root: Path) -> list[Path]:
    root = Path(root)
    if train_files(root):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and train_files(p)) if root.is_dir() else []


def _folder(root: Path, task: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"few-shot root {root} not found (expected <root>/<dataset>/annotations/train_meta.list...)"
        )
    for folder in find_datasets(root):
        if folder.name == task:
            return folder
    present = ", ".join(p.name for p in find_datasets(root)) or "none"
    raise UserError(f"{root}: no few-shot dataset {task!r} (a folder with annotations/); present: {present}")


def _image_base(folder: Path, list_path: Path, test: bool) -> Path:
    """Where a list's paths point: ``images/``, ImageNet's ``train/`` or ``val/``, or the dataset folder; the
    first candidate holding the list's first image."""
    first = ""
    for line in list_path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if line.strip():
            first = line.strip().rsplit(maxsplit=1)[0]
            break
    candidates = [folder / "images", folder / ("val" if test else "train"), folder]
    for base in candidates:
        if first and (base / first).is_file():
            return base
    return next((c for c in candidates if c.is_dir()), folder)


def _num_classes(folder: Path, labels: list[int]) -> int:
    known = NOAH_CLASSES.get(folder.name)
    return (
        known if known is not None and max(labels, default=0) < known else max(2, max(labels, default=0) + 1)
    )


def read_list(folder: Path, path: Path, num_classes: int | None, *, test: bool, check_files: bool = True):
    if not path.is_file():
        raise UserError(f"{path}: split file not found (NOAH's few-shot layout: {folder}/{ANNOTATIONS}/...)")
    base = _image_base(folder, path, test)
    return read_list_file(path, base, num_classes=num_classes, confine=True, check_files=check_files)


def _strict(result: tuple[ImageList, list[str]]) -> ImageList:
    lst, problems = result
    if problems:
        more = (
            f" (and {len(problems) - 1} more; run 'vptlab data check fewshot:ROOT')"
            if len(problems) > 1
            else ""
        )
        raise UserError(problems[0] + more)
    return lst


def task_info(folder: Path) -> TaskInfo:
    test = folder / ANNOTATIONS / "test_meta.list"
    labels = []
    if test.is_file():
        lst, _ = read_list(folder, test, None, test=True, check_files=False)
        labels = lst.labels.tolist()
    return TaskInfo(folder.name, "natural", "classification", _num_classes(folder, labels))


# --- the source interface (vptlab.data.sources) -----------------------------------------------------------


def list_tasks(root: Path) -> list[TaskInfo]:
    if not Path(root).is_dir():
        raise UserError(f"few-shot root {root} not found (expected <root>/<dataset>/annotations/...)")
    return [task_info(f) for f in find_datasets(root)]


def pools(root: Path, task: str, options: LoadOptions, source_options: str, regime: Regime) -> tuple:
    """NOAH's released split for ``regime`` (``kshot:K``) and the split seed, as a selection function."""
    if source_options:
        raise UserError(f"fewshot source takes no options, got ?{source_options}")
    folder = _folder(root, task)
    info = task_info(folder)
    files = train_files(folder)
    if regime.kind not in ("kshot", "fewshot"):
        shots = sorted({k for k, _ in files})
        raise UserError(
            f"fewshot:{root} holds NOAH's released K-shot splits: use regime kshot:K or fewshot:K (K in {shots}), "
            f"got {regime}"
        )

    def selection(stage: str, split_seed: int) -> Selection:
        key = (regime.value, int(split_seed))
        if key not in files:
            have = ", ".join(f"kshot:{k} seed {s}" for k, s in sorted(files))
            raise UserError(
                f"{folder / ANNOTATIONS}: no train_meta.list.num_shot_{key[0]}.seed_{key[1]}; released: {have}"
            )
        n = info.num_classes
        train_list = _strict(read_list(folder, files[key], n, test=False))
        train = options.load(train_list)
        val = None
        if stage == "tune":
            val = options.load(
                _strict(read_list(folder, folder / ANNOTATIONS / "val_meta.list", n, test=False))
            )
        test = options.load(_strict(read_list(folder, folder / ANNOTATIONS / "test_meta.list", n, test=True)))
        record: dict[str, Any] = {
            "regime": str(regime),
            regime.kind: {
                "k": regime.value,
                "protocol": "noah",
                "split_file": files[key].name,
                "seed": key[1],
            },
        }
        return Selection(train, val, test, record)

    return info, selection, {"root": str(folder.resolve())}


# --- check -------------------------------------------------------------------------------------------------


def check_root(root: str | os.PathLike, task: str | None = None, *, images: bool = True) -> CheckReport:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"few-shot root {root} not found (expected <root>/<dataset>/annotations/...)")
    report = CheckReport(root, title="few-shot root (NOAH layout)")
    folders = [_folder(root, task)] if task else find_datasets(root)
    if not folders:
        report.problems.append(
            f"{root}: no dataset folders with annotations/train_meta.list.num_shot_K.seed_S"
        )
    for folder in folders:
        info = task_info(folder)
        t = TaskReport(info, folder)
        lists = []
        names = [p.name for _, p in sorted(train_files(folder).items())] + ["val_meta.list", "test_meta.list"]
        for name in names:
            try:
                lst, problems = read_list(
                    folder, folder / ANNOTATIONS / name, info.num_classes, test=name.startswith("test")
                )
            except UserError as err:
                t.splits.append(SplitReport(name, None, 0, [str(err)]))
                continue
            lists.append(lst)
            t.splits.append(SplitReport(name, len(lst), len(lst.classes_seen()), problems))
        shots = sorted({k for k, _ in train_files(folder)})
        t.notes.append(f"K-shot files for K in {shots}, seeds {sorted({s for _, s in train_files(folder)})}")
        if images:
            t.problems += unreadable_images(lists)
        report.tasks.append(t)
    return report
