"""``load_task`` and ``list_tasks``: one entry point for every kind of data.

A source is ``"synthetic"`` (the built-in procedural tasks), ``"vtab1k:ROOT"`` (the VTAB-1k image-folder release),
``"folder:PATH"`` (a user's own images, optionally ``folder:PATH?group=specialized&seed=1``, see
:class:`vptlab.data.folders.FolderOptions`), or a bare existing path: a VTAB-1k root if it holds task folders
with split files (or is itself such a task folder), else an image folder.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vptlab.data import cache, notices
from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD, ImageSet, TaskData, TaskInfo
from vptlab.data.folders import parse_options, read_folder, saved_split_dir
from vptlab.data.images import ImageList, check_interpolation
from vptlab.data.splits import EXTRA, TRAIN, VAL, Pools, Selection, check_stage, origins, parse_regime, select
from vptlab.data.tasks import vtab1k_tasks
from vptlab.data.vtab1k import (
    LoadOptions,
    find_tasks,
    has_split_files,
    has_vtab_split_files,
    is_vtab_root,
    vtab_pools,
)
from vptlab.errors import UserError

SOURCE_FORMS = "'synthetic', 'vtab1k:ROOT', 'fgvc:ROOT', 'fewshot:ROOT', 'folder:PATH' or an existing path"
# Benchmark layouts with their own loader module (vptlab.data.<module>): source kind -> module name.
BENCHMARK_SOURCES = {"fgvc": "fgvc", "fewshot": "fewshot"}
# The synthetic tasks are a fixed dataset: split_seed changes the regime's draws, never the images.
SYNTHETIC_DATA_SEED = 0
MAX_SKIPPED_LISTED = 20


@dataclass(frozen=True)
class Source:
    """A parsed data source: ``kind`` is synthetic, vtab1k or folder; ``options`` only for folders."""

    kind: str
    path: Path | None = None
    options: str = ""

    def __str__(self) -> str:
        if self.kind == "synthetic":
            return "synthetic"
        return f"{self.kind}:{self.path}" + (f"?{self.options}" if self.options else "")


def parse_source(source: str | os.PathLike) -> Source:
    """Parse a source string, auto-detecting a bare path; a :class:`UserError` lists the valid forms."""
    text = str(source).strip()
    if text == "synthetic":
        return Source("synthetic")
    kind, sep, rest = text.partition(":")
    if sep and kind == "vtab1k":
        return Source("vtab1k", Path(rest).expanduser())
    if sep and kind in BENCHMARK_SOURCES:
        path, _, options = rest.rpartition("?") if "?" in rest else (rest, "", "")
        return Source(kind, Path(path).expanduser(), options)
    if sep and kind == "folder":
        path, _, options = rest.rpartition("?") if "?" in rest else (rest, "", "")
        return Source("folder", Path(path).expanduser(), options)
    path = Path(text).expanduser()
    if not text or not path.exists():
        raise UserError(f"data source {text!r} not found; expected {SOURCE_FORMS}")
    if is_vtab_root(path):
        return Source("vtab1k", path)
    if path.is_dir() and (
        has_vtab_split_files(path) or (path.name in vtab1k_tasks() and has_split_files(path))
    ):
        return Source("vtab1k", path.parent)  # one task folder of a root
    return Source("folder", path)


def resolve_task_source(data: str | os.PathLike, task: str | None = None) -> tuple[str, str]:
    """One syntax for every command: ``(source, task)`` from ``ROOT`` + ``task``, or ``ROOT/TASK`` alone.

    Accepted: ``synthetic`` + task or ``synthetic:TASK``; ``vtab1k:ROOT`` + task or ``vtab1k:ROOT/TASK`` (a folder
    with split files); ``folder:PATH`` (its task is its name); a bare path (detected as in :func:`parse_source`).
    A task given both ways must agree.  The returned source is canonical (``vtab1k:ROOT``), so both spellings
    name the same run.
    """
    text = str(data).strip()
    task = task or None
    if text.startswith("synthetic:"):
        return "synthetic", _agree(text, text.partition(":")[2], task)
    if text == "synthetic":
        if not task:
            raise UserError(
                "synthetic data needs a task: --task TASK or synthetic:TASK (see 'vptlab data list')"
            )
        return "synthetic", task
    src = parse_source(text)
    if src.kind == "vtab1k":
        path = Path(text.partition(":")[2] if text.startswith("vtab1k:") else text).expanduser()
        if path.is_dir() and has_split_files(path) and not is_vtab_root(path):  # ROOT/TASK
            return f"vtab1k:{path.parent}", _agree(text, path.name, task)
        if task is None:
            names = ", ".join(t.name for t in list_tasks(str(src))) or "none"
            raise UserError(f"{text} is a VTAB-1k root (tasks: {names}); pass --task TASK or use ROOT/TASK")
        return str(src), task
    if src.kind == "folder":
        return str(src), task or ""
    return str(src), task or ""


def _agree(text: str, named: str, task: str | None) -> str:
    if task is not None and task != named:
        raise UserError(f"{text} names task {named!r} but --task is {task!r}; give one or make them agree")
    return named


def list_tasks(source: str | os.PathLike) -> list[TaskInfo]:
    """The tasks a source offers: all synthetic tasks, the VTAB-1k tasks present under ROOT, or the folder's one."""
    src = parse_source(source)
    if src.kind == "synthetic":
        return list(_synthetic().SYNTHETIC_TASKS.values())
    if src.kind == "vtab1k":
        if not src.path.is_dir():
            raise UserError(
                f"VTAB-1k root {src.path} not found (expected a folder holding <task>/train800.txt, ...)"
            )
        return find_tasks(src.path)
    if src.kind in BENCHMARK_SOURCES:
        return _benchmark(src.kind).list_tasks(src.path)
    return [read_folder(src.path, parse_options(src.options)).info]


def load_task(
    source: str | os.PathLike,
    task: str,
    *,
    stage: str = "tune",
    regime: str = "standard",
    split_seed: int = 0,
    image_size: int = 32,
    interpolation: str = "bilinear",
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
) -> TaskData:
    """One task of a source under a split regime and stage, its images decoded at ``image_size`` (cached).

    ``stage="tune"`` gives train/val/test; ``"final"`` gives train = train+val, val ``None``, test.  ``regime``
    is ``"standard"``, ``"kshot:K"`` or ``"size:N"`` (see :mod:`vptlab.data.splits`); every draw is seeded by
    ``split_seed``.  The returned record says exactly which images were used and how they were made.
    """
    src = parse_source(source)
    parsed_regime = parse_regime(regime)
    check_stage(stage)
    check_interpolation(interpolation)
    if not isinstance(image_size, int) or image_size < 1:
        raise UserError(f"image_size must be a positive integer, got {image_size!r}")
    options = LoadOptions(image_size, interpolation, cache_dir, skip_bad_images)
    if src.kind == "synthetic":
        info, pools, extra = _synthetic_pools(task, image_size, cache_dir)
    elif src.kind == "vtab1k":
        info, pools = vtab_pools(src.path, task, options)
        extra = {"root": str(src.path.resolve()), "notes": options.notes}
    elif src.kind in BENCHMARK_SOURCES:
        info, pools, extra = _benchmark(src.kind).pools(src.path, task, options, src.options, parsed_regime)
    else:
        info, pools, extra = _folder_pools(src, task, options)
    take = functools.partial(_take, cache_dir=cache_dir)
    # a benchmark with released splits per regime (NOAH's few-shot files) hands over its selection itself
    sel = (
        pools(stage, split_seed)
        if callable(pools)
        else select(parsed_regime, stage, pools, info, split_seed, take)
    )
    record = _record(src, info, stage, split_seed, options, sel, extra)
    if src.kind == "synthetic":
        record["interpolation"] = None  # generated at image_size: nothing was resized
    announce_record(record, cache_dir)
    return TaskData(info, sel.train, sel.val, sel.test, IMAGENET_MEAN, IMAGENET_STD, record)


def with_normalization(data: TaskData, mean: tuple[float, ...], std: tuple[float, ...]) -> TaskData:
    """``data`` normalised with another mean/std (e.g. the backbone's), the record updated to say so."""
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise UserError(f"normalisation needs 3 means and 3 positive stds, got mean={mean} std={std}")
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    return dataclasses.replace(
        data, mean=mean, std=std, record={**data.record, "mean": list(mean), "std": list(std)}
    )


def _take(imageset: ImageSet, indices: np.ndarray, description: str, *, cache_dir: Any) -> ImageSet:
    return cache.take(imageset, indices, description, cache_dir=cache_dir)


def _record(
    src: Source,
    info: TaskInfo,
    stage: str,
    split_seed: int,
    options: LoadOptions,
    sel: Selection,
    extra: dict[str, Any],
) -> dict[str, Any]:
    skipped = [s for items in options.skipped.values() for s in items]
    parts = {"train": sel.train, "val": sel.val, "test": sel.test}
    return {
        "source": str(src),
        "source_kind": src.kind,
        "task": info.name,
        "stage": stage,
        "split_seed": int(split_seed),
        "image_size": options.image_size,
        "interpolation": options.interpolation,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "sizes": {k: (len(v) if v is not None else None) for k, v in parts.items()},
        "manifests": {k: (v.manifest if v is not None else None) for k, v in parts.items()},
        "skipped_images": len(skipped),
        "skipped": skipped[:MAX_SKIPPED_LISTED],
        **sel.record,
        **extra,
        # every file not used: unreadable images skipped (first: they are images lost), then files not images
        "dropped_files": skipped + list(extra.get("not_images", [])),
    }


def announce_record(record: dict[str, Any], cache_dir: Any = None) -> None:
    """Name on the console the files a load left out, and the notes about its split (once per process)."""
    where = record.get("root") or record.get("source")
    notices.announce(f"files in {where} not used", record.get("dropped_files", []), cache_dir=cache_dir)
    notices.announce(f"{record.get('task')}: split notes", record.get("notes", []), cache_dir=cache_dir)


def _benchmark(kind: str) -> Any:
    """A benchmark layout's loader module (imported on use)."""
    import importlib

    return importlib.import_module(f"vptlab.data.{BENCHMARK_SOURCES[kind]}")


# --- synthetic ---------------------------------------------------------------------------------------------


def _synthetic():
    """The synthetic module, imported on use (it is large, and being absent must not break real data)."""
    from vptlab.data import synthetic

    return synthetic


def _synthetic_pools(task: str, image_size: int, cache_dir: Any) -> tuple[TaskInfo, Pools, dict[str, Any]]:
    """The synthetic task's splits, generated once per size and cached; the size pool is train800val200 + pool
    (the same images, in the same order, as an exported folder with pool.txt, so both give the same draws)."""
    syn = _synthetic()
    if task not in syn.SYNTHETIC_TASKS:
        raise UserError(f"unknown synthetic task {task!r}; known tasks: {', '.join(syn.SYNTHETIC_TASKS)}")

    @functools.cache
    def gen(split: str) -> ImageSet:
        key = {
            "generator": "vptlab.synthetic",
            "code": _synthetic_code_digest(syn),
            "task": task,
            "split": split,
            "image_size": image_size,
            "seed": SYNTHETIC_DATA_SEED,
        }
        make = functools.partial(syn.generate, task, split, image_size=image_size, seed=SYNTHETIC_DATA_SEED)
        return cache.cached_imageset(key, make, cache_dir=cache_dir)

    def trainval_origin() -> np.ndarray:
        return np.repeat([TRAIN, VAL], [len(gen("train800")), len(gen("val200"))])

    pools = Pools(
        train=lambda: gen("train800"),
        val=lambda: gen("val200"),
        trainval=lambda: gen("train800val200"),
        test=lambda: gen("test"),
        trainval_origin=trainval_origin,
        pool=lambda: ImageSet.concat([gen("train800val200"), gen("pool")], "train800val200+pool"),
        pool_origin=lambda: np.concatenate([trainval_origin(), np.full(len(gen("pool")), EXTRA)]),
        pool_name="train800val200 + pool",
        has_extra=True,
    )
    return syn.SYNTHETIC_TASKS[task], pools, {"data_seed": SYNTHETIC_DATA_SEED}


def _synthetic_code_digest(syn: Any) -> str:
    """The generator's version and a hash of its source files: a changed generator never reads stale images."""
    return _digest_folder(Path(syn.__file__).parent, str(getattr(syn, "GENERATOR_VERSION", "")))


@functools.cache
def _digest_folder(folder: Path, version: str) -> str:
    h = hashlib.sha256(version.encode())
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


# --- a user's folder ---------------------------------------------------------------------------------------


def _folder_pools(src: Source, task: str, options: LoadOptions) -> tuple[TaskInfo, Pools, dict[str, Any]]:
    folder = read_folder(src.path, parse_options(src.options))
    if task not in (None, "", folder.info.name):
        raise UserError(f"folder source {src.path} holds one task, {folder.info.name!r}; got task {task!r}")
    lists = folder.splits
    trainval = ImageList.concat([lists["train"], lists["val"]], "train+val")
    decoded_trainval = functools.cache(lambda: options.decode(trainval))

    def trainval_origin() -> np.ndarray:
        tags = origins(trainval.members, lists["train"].members, lists["val"].members)
        return tags[decoded_trainval().kept]

    pools = Pools(
        train=functools.cache(lambda: options.load(lists["train"])),
        val=functools.cache(lambda: options.load(lists["val"])),
        trainval=lambda: decoded_trainval().imageset,
        test=functools.cache(lambda: options.load(lists["test"])),
        trainval_origin=trainval_origin,
        pool=lambda: decoded_trainval().imageset,
        pool_origin=trainval_origin,
        pool_name="train+val",
        names={"train": "train", "val": "val"},
    )
    split_dir = (
        saved_split_dir(folder, cache.cache_root(options.cache_dir)) if folder.generated else folder.root
    )
    extra = {
        "root": str(folder.root.resolve()),
        "classes": list(folder.classes),
        "not_images": list(folder.dropped),
        "notes": list(folder.notes),
        "split_files": str(split_dir),
        "partition": {
            "generated": folder.generated,
            "seed": folder.options.seed,
            "test_fraction": folder.options.test_fraction,
            "val_fraction": folder.options.val_fraction,
        },
    }
    return folder.info, pools, extra
