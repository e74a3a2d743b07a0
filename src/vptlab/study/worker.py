"""What an executor runs for one job: ``train_run`` into a run folder, with FT-then-PT's stage 1 handed over.

Every executor calls a *run function* ``fn(job, run_dir, stage1_dir, options) -> result`` (this module's
:func:`run_job` by default; tests inject fakes).  It must leave the run's files in ``run_dir`` with
``result.json`` written last, as ``train_run`` does.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vptlab.study.state import Job


@dataclass(frozen=True)
class RunOptions:
    """Execution settings that do not change what a run computes (not part of its identity)."""

    device: str | None = None  # None: CUDA if available, else CPU
    checkpoint_seconds: float = 300.0
    save_weights: bool = True
    threads: int | None = None  # torch intra-op threads for this worker


RunFn = Callable[[Job, Path, "Path | None", RunOptions], dict]

_DATA_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_DATA_CACHE_SIZE = 2  # consecutive runs of a grid share their data; two entries cover tune + final


def run_job(job: Job, run_dir: Path, stage1_dir: Path | None, options: RunOptions) -> dict:
    """Train (or continue) one run; FT-then-PT's stage 1 is ``stage1_dir`` when that is the run it needs."""
    from vptlab.train import train_run

    def stage1_lookup(stage1_cfg: Any) -> Path | None:
        return stage1_dir if stage1_dir is not None and stage1_cfg.run_id == job.stage1_id else None

    return train_run(
        job.cfg,
        run_dir,
        task_data=_task_data(job.cfg),
        device=options.device,
        progress=False,
        until_epoch=job.until_epoch,
        stage1_lookup=stage1_lookup,
        checkpoint_seconds=options.checkpoint_seconds,
        save_weights=options.save_weights,
    )


def _task_data(cfg: Any) -> Any:
    """The run's data, kept for the next run of the same task/stage/regime (a grid reuses it many times)."""
    from vptlab.data.sources import load_task

    key = (cfg.data, cfg.task, cfg.stage, cfg.regime, cfg.split_seed, cfg.image_size, cfg.interpolation,
           cfg.skip_bad_images)  # fmt: skip
    if key in _DATA_CACHE:
        _DATA_CACHE.move_to_end(key)
        return _DATA_CACHE[key]
    data = load_task(cfg.data, cfg.task, stage=cfg.stage, regime=cfg.regime, split_seed=cfg.split_seed,
                     image_size=cfg.image_size, interpolation=cfg.interpolation,
                     skip_bad_images=cfg.skip_bad_images)  # fmt: skip
    _DATA_CACHE[key] = data
    while len(_DATA_CACHE) > _DATA_CACHE_SIZE:
        _DATA_CACHE.popitem(last=False)
    return data


def set_threads(threads: int | None) -> None:
    """Limit torch's intra-op threads (several workers on one machine must not oversubscribe its cores)."""
    if threads:
        import torch

        torch.set_num_threads(max(1, threads))
        os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
