"""FID between each task's training images and the backbone's pretraining data (the x axis of Figure 3).

The task side is what a final run trains on (``train800val200`` for VTAB-1k, as in the paper).  The pretraining
side is either a ``.npz`` statistics file (e.g. ImageNet-21k statistics under the same features) or, for the
bundled ``vptlab-tiny`` backbone, its synthetic upstream set, computed here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from vptlab.analysis.fid import FIDStats, fid_from_stats, image_set_stats, load_stats, set_stats
from vptlab.analysis.fid_features import BackboneFeatures, InceptionFeatures, extractor_image_size
from vptlab.data.base import ImageSet
from vptlab.errors import UserError

log = logging.getLogger(__name__)
TINY = "vptlab-tiny"
UPSTREAM = "synthetic:upstream"


def pretraining_stats(
    backbone: str, extractor: InceptionFeatures | BackboneFeatures, stats_file: str | Path | None = None
) -> FIDStats:
    """The pretraining side: ``stats_file`` if given, else the upstream set of a backbone we ship."""
    check_pretraining(backbone, stats_file)
    if stats_file is not None:
        return load_stats(stats_file)
    stats = set_stats(UPSTREAM, extractor)
    return FIDStats(
        stats.mu, stats.sigma, stats.count, stats.features, f"{UPSTREAM} ({TINY}'s pretraining set)"
    )


def check_pretraining(backbone: str, stats_file: str | Path | None) -> None:
    """Fail before any heavy work when the pretraining side cannot be had."""
    if stats_file is not None:
        if not Path(stats_file).is_file():
            raise UserError(f"--pretrain-stats {stats_file}: no such file")
        return
    if backbone != TINY:
        raise UserError(
            f"the pretraining data of backbone {backbone!r} is not available here; pass --pretrain-stats "
            "PATH.npz (mu/sigma of the pretraining set, e.g. ImageNet-21k, computed with the same --features)"
        )


def task_train_images(source: str, task: str, image_size: int, skip_bad_images: bool = False) -> ImageSet:
    """The images a final run of ``task`` trains on, decoded at ``image_size``."""
    from vptlab.data import load_task

    data = load_task(source, task, stage="final", image_size=image_size, skip_bad_images=skip_bad_images)
    return data.train


@dataclass(frozen=True)
class TaskFID:
    task: str
    fid: float
    images: int


def study_task_fids(
    results: list[dict], extractor: InceptionFeatures | BackboneFeatures, pretrain: FIDStats
) -> tuple[dict[str, TaskFID], dict[str, str]]:
    """FID of every task with final runs to the pretraining statistics; also the tasks skipped, with why."""
    sources = {}
    for row in results:
        cfg = row.get("config") or {}
        if cfg.get("stage") == "final" and cfg.get("task"):
            sources.setdefault(cfg["task"], cfg.get("data", "synthetic"))
    size = extractor_image_size(extractor)
    fids, skipped = {}, {}
    for task, source in sources.items():
        try:
            images = task_train_images(source, task, size)
        except UserError as err:
            skipped[task] = str(err)
            continue
        stats = image_set_stats(images, extractor)
        fids[task] = TaskFID(task, fid_from_stats(stats, pretrain), len(images))
    return fids, skipped
