"""What an executor runs for one job: ``train_run`` into a run folder, with FT-then-PT's stage 1 handed over.

Every executor calls a *run function* ``fn(job, run_dir, stage1_dir, options) -> result`` (this module's
:func:`run_job` by default; tests inject fakes).  It must leave the run's files in ``run_dir`` with
``result.json`` written last, as ``train_run`` does.

A :class:`GridJob` is a ``linear`` tune grid trained in one pass over features computed once
(:func:`vptlab.train.linear_grid.train_linear_grid`); its runs' folders sit beside ``run_dir`` (local executors,
which train in place in ``<out>/runs/``).  Executors whose run function can do this say so
(``shares_linear_grids``); the runner then hands them :func:`group_linear_grids`' jobs.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vptlab._io import stable_hash
from vptlab.data.ragged import crops_at_random
from vptlab.study.plan import run_id_of
from vptlab.study.state import Job
from vptlab.train.config import RunConfig


@dataclass(frozen=True)
class WorkerOptions:
    """How an executor's workers run each job (device, checkpoint interval, weights, threads); none of it changes
    what a run computes, so none of it is in a run's identity."""

    device: str | None = None  # None: CUDA if available, else CPU
    checkpoint_seconds: float = 300.0
    save_weights: bool = True
    threads: int | None = None  # torch intra-op threads for this worker
    # --- ray executor (issue 13): observers of each run (one ships its checkpoints to the driver), and a stop
    # request asked after every step (a preempted Ray worker checkpoints at once and goes)
    events: tuple[Any, ...] = ()
    should_interrupt: Callable[[], bool] | None = None
    log: Any = None  # vptlab.track.LogOptions: trackers each run logs to (None: the spec's [log])


# The name before it said what it holds; kept so code written against it (and branches in flight) still runs.
RunOptions = WorkerOptions

RunFn = Callable[[Job, Path, "Path | None", WorkerOptions], dict]

_DATA_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_DATA_CACHE_SIZE = 2  # consecutive runs of a grid share their data; two entries cover tune + final


@dataclass(frozen=True)
class GridJob(Job):
    """Linear tune runs that differ only in lr and wd, trained in one pass; ``cfg`` is the first of ``cfgs``."""

    cfgs: tuple[RunConfig, ...] = ()

    @property
    def run_ids(self) -> list[str]:
        return [run_id_of(c) for c in self.cfgs]


def group_linear_grids(jobs: list[Job]) -> list[Job]:
    """The jobs, with each set of >= 2 linear tune runs that can share one pass replaced by one GridJob."""
    from vptlab.train.linear_grid import grid_key

    groups: dict[str, list[Job]] = {}
    for job in jobs:
        if _shareable(job):
            groups.setdefault(stable_hash(grid_key(job.cfg)), []).append(job)
    grids = {key: GridJob(members[0].cfg, cfgs=tuple(j.cfg for j in members))
             for key, members in groups.items() if len(members) > 1}  # fmt: skip
    out: list[Job] = []
    for job in jobs:
        key = stable_hash(grid_key(job.cfg)) if _shareable(job) else None
        if key in grids:
            if grids[key] not in out:
                out.append(grids[key])
        else:
            out.append(job)
    return out


def _shareable(job: Job) -> bool:
    cfg = job.cfg
    plain = job.until_epoch is None and not job.restart and job.stage1_id is None
    # an FGVC train set is cropped at random every epoch: its heads cannot share features computed once
    return plain and cfg.method == "linear" and cfg.stage == "tune" and not crops_at_random(cfg.data)


def run_job(job: Job, run_dir: Path, stage1_dir: Path | None, options: WorkerOptions) -> dict:
    """Train (or continue) one run; FT-then-PT's stage 1 is ``stage1_dir`` when that is the run it needs."""
    from vptlab.train import interrupt, train_run

    trackers = _trackers(options, run_dir)
    if isinstance(job, GridJob):
        return _run_grid(job, run_dir, options, trackers)
    events = list(options.events) + trackers

    def stage1_lookup(stage1_cfg: Any) -> Path | None:
        return stage1_dir if stage1_dir is not None and stage1_cfg.run_id == job.stage1_id else None

    interrupt.stop_if_requested(run_dir=run_dir)  # a stop asked for between runs: start no other
    result = train_run(
        job.cfg,
        run_dir,
        task_data=_task_data(job.cfg),
        device=options.device,
        progress=False,
        until_epoch=job.until_epoch,
        stage1_lookup=stage1_lookup,
        checkpoint_seconds=options.checkpoint_seconds,
        save_weights=options.save_weights,
        events=events,  # trackers, and on Ray the observer that ships checkpoints to the driver
        # a Ray worker's own stop request (SIGTERM on its node), else SIGINT/SIGTERM in this process
        should_interrupt=options.should_interrupt or interrupt.requested,
    )
    interrupt.stop_if_requested(result, run_dir)
    return result


def _trackers(options: WorkerOptions, run_dir: Path) -> list:
    """The run's tracker observers (vptlab.track); a local MLflow store lives in the study folder."""
    if options.log is None or not options.log.trackers:
        return []
    from vptlab.track import make_trackers

    return make_trackers(options.log, default_store=run_dir.parent.parent)


run_job.trains_linear_grids = True  # type: ignore[attr-defined]


def _run_grid(job: GridJob, run_dir: Path, options: WorkerOptions, events: list) -> dict:
    """Every run of the grid into its folder beside ``run_dir``; returns the first run's result."""
    from vptlab.track import replay
    from vptlab.train.linear_grid import train_linear_grid

    dirs = [run_dir.parent / run_id for run_id in job.run_ids]
    results = train_linear_grid(job.cfgs, dirs, task_data=_task_data(job.cfg), device=options.device,
                                save_weights=options.save_weights)  # fmt: skip
    for d in dirs:  # trackers hear of a shared pass's runs from their files
        replay(d, events)
    return results[0]


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
