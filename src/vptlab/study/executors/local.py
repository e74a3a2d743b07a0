"""Local executors: one run at a time in this process, or N at once in spawned worker processes.

Runs train in place, in their own folder under ``<out>/runs/`` (``train_run`` writes ``result.json`` last and
atomically, and resumes from the folder's checkpoint after a kill).  Because they do, a linear tune grid can
train in one pass into its runs' folders (``shares_linear_grids``, see :mod:`vptlab.study.worker`).
With ``workers > 1`` each worker gets ``cores // workers`` torch threads and, on a machine with several GPUs, one
GPU of its own.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections import deque
from pathlib import Path

from vptlab.errors import UserError
from vptlab.store.study import StudyStore
from vptlab.study.executors.base import Outcome
from vptlab.study.state import Job
from vptlab.study.worker import RunFn, WorkerOptions, set_threads


class SequentialExecutor:
    """In-process, one run after another (the default; what a laptop or a single GPU wants)."""

    capacity = 1

    def __init__(self, store: StudyStore, options: WorkerOptions, run_fn: RunFn) -> None:
        self.store, self.options, self.run_fn = store, options, run_fn
        self.queue: deque[Job] = deque()
        self.description = "local, in-process, one run at a time"
        self.shares_linear_grids = getattr(run_fn, "trains_linear_grids", False)

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def wait(self) -> list[Outcome]:
        job = self.queue.popleft()
        stage1 = self.store.run_dir(job.stage1_id) if job.stage1_id else None
        try:
            result = self.run_fn(job, self.store.run_dir(job.run_id), stage1, self.options)
        except UserError as err:
            return [Outcome(job, user_error=str(err))]
        return [Outcome(job, result=result)]

    def close(self) -> None:
        self.queue.clear()


class PoolExecutor:
    """``workers`` spawned processes, each running one run at a time with its share of cores (and a GPU)."""

    def __init__(self, store: StudyStore, options: WorkerOptions, run_fn: RunFn, workers: int) -> None:
        self.store, self.options, self.run_fn = store, options, run_fn
        self.capacity = workers
        self.shares_linear_grids = getattr(run_fn, "trains_linear_grids", False)
        ctx = mp.get_context("spawn")
        gpus = _gpu_count(options.device)
        threads = options.threads or max(1, _cores() // workers)
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(i % gpus if gpus else None)
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                           initargs=(slots, threads))  # fmt: skip
        self.futures: dict[cf.Future, Job] = {}
        pinned = f", one GPU each of {gpus}" if gpus else ""
        self.description = f"local, {workers} worker processes x {threads} threads{pinned}"

    def submit(self, job: Job) -> None:
        stage1 = self.store.run_dir(job.stage1_id) if job.stage1_id else None
        future = self.pool.submit(
            _call, self.run_fn, job, self.store.run_dir(job.run_id), stage1, self.options
        )
        self.futures[future] = job

    def wait(self) -> list[Outcome]:
        done, _ = cf.wait(list(self.futures), return_when=cf.FIRST_COMPLETED)
        outcomes = []
        for future in done:
            job = self.futures.pop(future)
            try:
                kind, value = future.result()
            except cf.process.BrokenProcessPool:
                raise RuntimeError(
                    "a worker process died (out of memory, or killed); finished runs are kept: rerun to continue"
                ) from None
            outcomes.append(
                Outcome(job, user_error=value) if kind == "user_error" else Outcome(job, result=value)
            )
        return outcomes

    def close(self) -> None:
        """Stop the workers; runs still training (after an error or Ctrl-C) are killed and resume next time."""
        if self.futures:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=not self.futures, cancel_futures=True)
        self.futures.clear()


def _init_worker(slots: mp.Queue, threads: int) -> None:
    """In each worker: take a GPU slot (before CUDA starts) and a share of the cores."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    set_threads(threads)


def _call(
    run_fn: RunFn, job: Job, run_dir: Path, stage1: Path | None, options: WorkerOptions
) -> tuple[str, object]:
    try:
        return "result", run_fn(job, run_dir, stage1, options)
    except UserError as err:
        return "user_error", str(err)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _gpu_count(device: str | None) -> int:
    if device not in (None, "auto", "cuda"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
