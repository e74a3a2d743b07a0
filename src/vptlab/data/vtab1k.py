"""VTAB-1k in its common image-folder release: ``<root>/<task>/{train800,val200,train800val200,test}.txt``.

Each split file holds lines ``relative/path label`` with paths relative to ``<root>/<task>/``; task names, groups,
objectives and class counts come from :mod:`vptlab.data.tasks`.  A folder of another task in the same format
(e.g. an exported synthetic task) describes itself in ``<root>/<task>/task.json``; without one, its metadata is
inferred (classes from the labels, natural, classification) and a note says so.  A task folder may also hold ``pool.txt`` (same
format): extra labelled images for the data-size study, which must not overlap ``test.txt``; the size regime
draws from ``train800val200.txt`` plus ``pool.txt``.

Parsing is strict: a malformed line, a label outside ``[0, num_classes)``, a path leaving the task folder (``..``,
absolute, or a symlink resolving outside), a missing image, or a class with no image in any split is a
:class:`UserError` naming ``file:line``.  :func:`check_root` collects every problem instead of stopping at the
first (``vptlab data check``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vptlab._io import atomic_write_text
from vptlab._progress import progress
from vptlab.data import cache
from vptlab.data.base import ImageSet, TaskInfo
from vptlab.data.images import ImageList, raise_problems, read_list_file
from vptlab.data.splits import Pools, origins
from vptlab.data.tasks import vtab1k_tasks
from vptlab.errors import UserError

SPLITS = ("train800", "val200", "train800val200", "test")
TASK_FILE = "task.json"
TASK_JSON_FORM = (
    '{"group": "natural|specialized|structured", "objective": "classification|structured", "num_classes": N}'
)
POOL = "pool"
CHECK_HINT = "; run 'vptlab data check' to list them all"


def has_split_files(folder: Path) -> bool:
    return any((folder / f"{s}.txt").is_file() for s in SPLITS)


def has_vtab_split_files(folder: Path) -> bool:
    """VTAB-1k's own split names (train800, val200, train800val200): what marks a folder as a VTAB-layout task
    (``test.txt`` alone could be a user's own ``train/val/test.txt`` split)."""
    return any((folder / f"{s}.txt").is_file() for s in SPLITS if s != "test")


def find_tasks(root: str | os.PathLike) -> list[TaskInfo]:
    """The tasks present under ``root`` (folders with split files): VTAB-1k tasks in the paper's order, then
    other tasks by name (described by their ``task.json``, or inferred: see :func:`infer_task_info`)."""
    root = Path(root)
    found = [info for name, info in vtab1k_tasks().items() if has_split_files(root / name)]
    if root.is_dir():
        custom = sorted(
            p
            for p in root.iterdir()
            if p.name not in vtab1k_tasks() and p.is_dir() and has_vtab_split_files(p)
        )
        found += [task_info(root, p.name) for p in custom]
    return found


def task_info(root: str | os.PathLike, name: str) -> TaskInfo:
    """A task's metadata: the VTAB-1k table for its 19 tasks, else ``<root>/<name>/task.json``, else inferred."""
    if name in vtab1k_tasks():
        return vtab1k_tasks()[name]
    path = Path(root) / name / TASK_FILE
    if path.is_file():
        return read_task_json(path)
    if has_vtab_split_files(path.parent):
        return infer_task_info(path.parent)
    known = ", ".join(vtab1k_tasks())
    raise UserError(
        f"unknown VTAB-1k task {name!r} (and no split files in {path.parent}, nor {path} describing it); "
        f"known tasks: {known}"
    )


def infer_task_info(folder: Path) -> TaskInfo:
    """A task folder without ``task.json``: classes = 1 + the largest label in its split files; group natural,
    objective classification (write ``task.json`` to say otherwise; see :func:`inferred_note`)."""
    top = -1
    for split in (*SPLITS, POOL):
        path = folder / f"{split}.txt"
        if path.is_file():
            lst, _ = read_list_file(path, folder, num_classes=None, check_files=False)
            if len(lst):
                top = max(top, int(lst.labels.max()))
    if top < 0:
        raise UserError(f"{folder}: split files hold no 'path label' lines; cannot infer the task's classes")
    return TaskInfo(folder.name, "natural", "classification", top + 1)


def inferred_note(folder: Path, info: TaskInfo) -> str | None:
    """The note shown when a task's metadata was inferred rather than read."""
    if info.name in vtab1k_tasks() or (folder / TASK_FILE).is_file():
        return None
    return (
        f"{folder}: no {TASK_FILE}; inferred {info.num_classes} classes (largest label + 1), group natural, "
        f"objective classification; write {folder / TASK_FILE} as {TASK_JSON_FORM} to set them"
    )


def read_task_json(path: Path) -> TaskInfo:
    """``task.json``: ``{"group": ..., "objective": ..., "num_classes": ...}`` for a task outside the table."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        info = TaskInfo(path.parent.name, meta["group"], meta["objective"], int(meta["num_classes"]))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: expected {TASK_JSON_FORM}") from None
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    return info


def is_vtab_root(path: Path) -> bool:
    """Whether ``path`` holds VTAB-1k task folders (used to auto-detect a bare path source)."""
    return path.is_dir() and bool(find_tasks(path))


def task_folder(root: str | os.PathLike, task: str) -> tuple[TaskInfo, Path]:
    """A task's metadata and folder; a :class:`UserError` for an unknown task or a missing folder."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"VTAB-1k root {root} not found (expected a folder holding <task>/train800.txt, ...)")
    info = task_info(root, task)
    folder = root / task
    if not folder.is_dir():
        present = ", ".join(t.name for t in find_tasks(root)) or "none"
        raise UserError(f"task folder {folder} not found; tasks present in {root}: {present}")
    return info, folder


def read_split(
    folder: Path, info: TaskInfo, split: str, *, check_files: bool = True
) -> tuple[ImageList, list[str]]:
    """Parse ``<folder>/<split>.txt``, collecting problems (see :func:`vptlab.data.images.read_list_file`)."""
    path = folder / f"{split}.txt"
    if not path.is_file():
        listed = ", ".join(f"{s}.txt" for s in SPLITS)
        raise UserError(f"{path}: split file not found; a VTAB-1k task folder holds {listed}")
    return read_list_file(path, folder, num_classes=info.num_classes, confine=True, check_files=check_files)


def load_split_list(folder: Path, info: TaskInfo, split: str) -> ImageList:
    """``<folder>/<split>.txt`` parsed strictly: the first problem is a :class:`UserError`."""
    lst, problems = read_split(folder, info, split)
    raise_problems(problems, CHECK_HINT)
    return lst


def class_coverage_problems(folder: Path, info: TaskInfo, lists: Iterable[ImageList]) -> list[str]:
    """A class with no image in any of the task's splits means the labels do not match the task."""
    seen = np.zeros(info.num_classes, bool)
    names = []
    for lst in lists:
        seen[lst.labels] = True
        names.append(f"{lst.description}.txt")
    empty = np.flatnonzero(~seen).tolist()
    if not empty:
        return []
    shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
    return [
        f"{folder}: {len(empty)} of {info.num_classes} classes have no image in {' + '.join(names)} "
        f"(empty: {shown}); {info.name} labels must cover 0..{info.num_classes - 1}"
    ]


def overlap_problems(pool: ImageList, test: ImageList) -> list[str]:
    """Images of ``pool`` that are also in ``test``: a leak, the pool must be disjoint from the test set."""
    test_files = set(test.files)
    return [
        f"{origin}: image {member!r} is also in test.txt; {pool.description}.txt must not hold test images"
        for file, member, origin in zip(pool.files, pool.members, pool.origins)
        if file in test_files
    ]


# --- loading -----------------------------------------------------------------------------------------------


@dataclass
class LoadOptions:
    """How images are turned into arrays, shared by every split of one load; ``skipped`` accumulates."""

    image_size: int
    interpolation: str = "bilinear"
    cache_dir: str | os.PathLike | None = None
    skip_bad_images: bool = False
    skipped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def decode(self, lst: ImageList) -> cache.Decoded:
        decoded = cache.load_image_list(
            lst,
            self.image_size,
            self.interpolation,
            cache_dir=self.cache_dir,
            skip_bad_images=self.skip_bad_images,
        )
        self.skipped[lst.description] = decoded.skipped
        return decoded

    def load(self, lst: ImageList) -> ImageSet:
        return self.decode(lst).imageset


def vtab_pools(root: str | os.PathLike, task: str, options: LoadOptions) -> tuple[TaskInfo, Pools]:
    """A VTAB-1k task's splits as :class:`Pools`; each list is parsed and decoded only when a regime asks."""
    info, folder = task_folder(root, task)
    note = inferred_note(folder, info)
    if note:
        options.notes.append(note)
    has_pool = (folder / f"{POOL}.txt").is_file()

    @functools.cache
    def lists(split: str) -> ImageList:
        if split == "size-pool":
            return _size_pool_list(folder, lists)
        return load_split_list(folder, info, split)

    @functools.cache
    def decoded(split: str) -> cache.Decoded:
        if split != "test":
            raise_problems(class_coverage_problems(folder, info, [lists(split), lists("test")]), CHECK_HINT)
        return options.decode(lists(split))

    def origin(split: str) -> np.ndarray:
        tags = origins(lists(split).members, lists("train800").members, lists("val200").members)
        return tags[decoded(split).kept]

    pools = Pools(
        train=lambda: decoded("train800").imageset,
        val=lambda: decoded("val200").imageset,
        trainval=lambda: decoded("train800val200").imageset,
        test=lambda: decoded("test").imageset,
        trainval_origin=lambda: origin("train800val200"),
        pool=lambda: decoded("size-pool").imageset,
        pool_origin=lambda: origin("size-pool"),
        pool_name="train800val200 + pool.txt" if has_pool else "train800val200 (no pool.txt)",
        has_extra=has_pool,
    )
    return info, pools


def _size_pool_list(folder: Path, lists: Callable[[str], ImageList]) -> ImageList:
    """train800val200 plus pool.txt (if present), each image once, checked disjoint from test."""
    parts = [lists("train800val200")]
    if (folder / f"{POOL}.txt").is_file():
        pool = lists(POOL)
        raise_problems(overlap_problems(pool, lists("test")), CHECK_HINT)
        parts.append(pool)
    return ImageList.concat(parts, "+".join(p.description for p in parts))


# --- check -------------------------------------------------------------------------------------------------


@dataclass
class SplitReport:
    name: str
    count: int | None  # None: the file is absent
    classes_seen: int
    problems: list[str] = field(default_factory=list)


@dataclass
class TaskReport:
    info: TaskInfo
    folder: Path
    splits: list[SplitReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # task-level: coverage, overlaps, unreadable images
    notes: list[str] = field(default_factory=list)

    def all_problems(self) -> list[str]:
        return [p for s in self.splits for p in s.problems] + self.problems


@dataclass
class CheckReport:
    root: Path
    tasks: list[TaskReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # root-level
    notes: list[str] = field(default_factory=list)
    title: str = "VTAB-1k root"  # what kind of root (the FGVC and few-shot checks share this report)

    def all_problems(self) -> list[str]:
        return self.problems + [p for t in self.tasks for p in t.all_problems()]


def check_root(root: str | os.PathLike, task: str | None = None, *, images: bool = True) -> CheckReport:
    """Check a VTAB-1k root (or one task of it) and collect every problem; ``images`` also decodes each image."""
    root = Path(root)
    report = CheckReport(root)
    if not root.is_dir():
        raise UserError(f"VTAB-1k root {root} not found (expected a folder holding <task>/train800.txt, ...)")
    if task is not None:
        infos = [task_info(root, task)]  # unknown name: UserError listing the known ones
    else:
        infos = find_tasks(root)
        known = {t.name for t in infos}
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if sub.name not in known:
                report.notes.append(
                    f"{sub}: ignored, not a VTAB-1k task folder (no train800.txt, val200.txt, ...)"
                )
        if not infos:
            report.problems.append(
                f"{root}: no VTAB-1k task folders (expected <root>/<task>/train800.txt, ...)"
            )
    report.tasks = [check_task(root / info.name, info, images=images) for info in infos]
    return report


def check_task(folder: Path, info: TaskInfo, *, images: bool = True) -> TaskReport:
    """Every problem of one task folder: each split file, class coverage, overlaps, unreadable images."""
    report = TaskReport(info, folder)
    if not folder.is_dir():
        report.problems.append(f"{folder}: task folder not found")
        return report
    note = inferred_note(folder, info)
    if note:
        report.notes.append(note)
    lists: dict[str, ImageList] = {}
    for split in (*SPLITS, POOL):
        if split == POOL and not (folder / f"{POOL}.txt").is_file():
            continue
        try:
            lst, problems = read_split(folder, info, split)
        except UserError as err:
            report.splits.append(SplitReport(split, None, 0, [str(err)]))
            continue
        lists[split] = lst
        report.splits.append(SplitReport(split, len(lst), len(lst.classes_seen()), problems))
    report.problems += class_coverage_problems(folder, info, [lists[s] for s in SPLITS if s in lists])
    report.problems += _leak_problems(lists)
    report.notes += _union_notes(lists)
    if images:
        report.problems += unreadable_images(lists.values())
    return report


def _leak_problems(lists: dict[str, ImageList]) -> list[str]:
    test = lists.get("test")
    if test is None:
        return []
    problems = []
    for split in ("train800val200", "train800", "val200", POOL):
        if split in lists:
            problems += overlap_problems(lists[split], test)
            if split == "train800val200":
                break  # its union already covers train800 and val200; one report per image is enough
    return problems


def _union_notes(lists: dict[str, ImageList]) -> list[str]:
    if not all(s in lists for s in ("train800", "val200", "train800val200")):
        return []
    union = set(lists["train800"].members) | set(lists["val200"].members)
    both = set(lists["train800val200"].members)
    if union == both:
        return []
    return [f"train800val200.txt differs from train800.txt + val200.txt ({len(union ^ both)} images differ)"]


def unreadable_images(lists: Iterable[ImageList]) -> list[str]:
    """Decode every distinct image once (small, in worker threads); a problem per file that fails."""
    merged = ImageList.concat(list(lists), "images")
    problems = []
    files = merged.files
    with progress(total=len(files), desc="check images", unit="img") as bar:
        for i, result in cache.iter_decoded(files, 8, "nearest"):
            bar.update(1)
            if not isinstance(result, np.ndarray):
                problems.append(f"{merged.origins[i]}: cannot decode image {files[i]}: {result}")
    return problems


# --- writing a task folder ---------------------------------------------------------------------------------


def write_task_folder(
    root: str | os.PathLike,
    task: str,
    get: Callable[[str], ImageSet | None],
    *,
    info: TaskInfo | None = None,
    ext: str = "png",
) -> Path:
    """Write image sets as a VTAB-1k task folder ``<root>/<task>/`` (image files + split files).

    ``get(split)`` returns the set for train800, val200, test and pool (``None``: skip pool);
    ``train800val200.txt`` is written as train800 + val200, as in the release.  A task outside the VTAB-1k table
    also gets a ``task.json`` from ``info`` (default: the synthetic task of that name).  PNG (the default) is
    lossless, so loading the folder back at the same size gives the same pixels.
    """
    folder = Path(root) / task
    if task not in vtab1k_tasks():
        info = info or _synthetic_info(task)
        fields = {"group": info.group, "objective": info.objective, "num_classes": info.num_classes}
        atomic_write_text(folder / TASK_FILE, json.dumps(fields, indent=2) + "\n")
    lines: dict[str, list[str]] = {}
    for split in ("train800", "val200", "test", POOL):
        imageset = get(split)
        if imageset is not None:
            lines[split] = _write_images(folder, split, imageset, ext)
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, split_lines in lines.items():
        atomic_write_text(folder / f"{split}.txt", "".join(split_lines))
    return folder


def _synthetic_info(task: str) -> TaskInfo:
    from vptlab.data.synthetic import SYNTHETIC_TASKS

    if task not in SYNTHETIC_TASKS:
        raise UserError(
            f"task {task!r} is neither a VTAB-1k nor a synthetic task; pass its TaskInfo as info="
        )
    return SYNTHETIC_TASKS[task]


def _write_images(folder: Path, split: str, imageset: ImageSet, ext: str) -> list[str]:
    (folder / "images" / split).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in progress(range(len(imageset)), desc=f"write {split}", unit="img"):
        rel = f"images/{split}/{i:06d}.{ext}"
        Image.fromarray(np.asarray(imageset.images[i])).save(folder / rel)
        lines.append(f"{rel} {int(imageset.labels[i])}\n")
    return lines
