"""The Ray executor: each run is a Ray task; the driver alone writes the study folder; lost runs are retried.

``RayExecutor`` joins the cluster at ``address`` (or ``RAY_ADDRESS``), else starts a local Ray instance of its
own (:mod:`._ray_connect`), submits every job as a task that asks for ``gpus_per_run`` GPUs when CUDA runs are
wanted and the cluster has GPUs, else ``cpus_per_run`` CPUs, and streams results back with ``ray.wait``.  A task
trains into a temporary folder on its node and returns the run folder's files as bytes; the driver writes them
atomically (``result.json`` last).  What a task needs from the study folder travels with it: the files of a
paused run it continues (checkpoint included) and the stage-1 run FT-then-PT reuses (put in the object store
once).

Failures (see ``docs/study.md``):

* a worker or node lost mid-run (killed, out of memory, preempted, the node gone): the driver prints one line
  and submits the run again (Ray places it on any live node), continuing from the newest checkpoint that reached
  the driver (:mod:`._ray_ship`), up to ``max_retries`` times; then the run is recorded ``failed`` with the
  reason and the study goes on with the others.  Tasks are submitted with Ray's own ``max_retries=0`` because
  Ray would rerun a task with its original arguments, from its first checkpoint;
* SIGTERM to the driver: it keeps every checkpoint shipped so far, cancels the tasks in flight and stops like
  Ctrl-C (exit 130); ``study run`` again continues.

Ray is an optional extra: ``pip install 'vptlab[ray]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vptlab.errors import UserError
from vptlab.store.runs import read_run_files
from vptlab.store.study import StudyStore
from vptlab.study.executors._ray_connect import connect
from vptlab.study.executors._ray_ship import Inbox, ShipCheckpoints, ray_task, take_checkpoint
from vptlab.study.executors.base import Outcome
from vptlab.study.spec import ExecutorSpec
from vptlab.study.state import Job
from vptlab.study.worker import RunFn, WorkerOptions

STAGE1_FILES = ("result.json", "tuned.safetensors")
QUEUE_FACTOR = 2  # tasks in flight per slot of the cluster: keeps every slot busy while the driver decides
POLL_SECONDS = 1.0  # how often the driver collects shipped checkpoints while it waits for results


class Preempted(KeyboardInterrupt):
    """SIGTERM reached the driver: stop like Ctrl-C (the CLI says so and exits 130); the work is kept."""


def import_ray() -> Any:
    """``ray``, or a :class:`UserError` that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'vptlab[ray]'") from None
    return ray


@dataclasses.dataclass
class _Flight:
    """A job in flight: which attempt it is and the serial of its submission (checkpoints carry it)."""

    job: Job
    attempt: int
    serial: int
    shipped: int = 0  # the last of its checkpoints written into the run folder (their ``seq``)


class RayExecutor:
    """Ray tasks on a local instance or an existing cluster, retried when their worker or node is lost."""

    def __init__(self, store: StudyStore, options: WorkerOptions, run_fn: RunFn, spec: ExecutorSpec,
                 echo: Callable[[str], None] = print) -> None:  # fmt: skip
        ray = self.ray = import_ray()
        self.store, self.options, self.run_fn, self.echo = store, options, run_fn, echo
        self.max_retries, self.storage = spec.max_retries, spec.checkpoint_storage
        if self.storage and not Path(self.storage).is_dir():
            raise UserError(f"executor.checkpoint_storage: {self.storage} is not a folder here (it must be a "
                            "shared folder that every node and this driver see at the same path)")  # fmt: skip
        self.started_here = not ray.is_initialized()
        joined = connect(ray, spec) if self.started_here else "the Ray instance this process had joined"
        self._set_resources(spec, options)
        self.remote = ray.remote(max_retries=0)(ray_task)
        # the inbox lives on the head: losing any other node never loses a shipped checkpoint
        head = {"resources": {"node:__internal_head__": 0.001}} if self._has_head_resource() else {}
        self.inbox = ray.remote(num_cpus=0, max_restarts=0)(Inbox).options(**head).remote()
        self.pending: dict[Any, _Flight] = {}
        self.stage1_refs: dict[str, Any] = {}
        self.serial = 0
        self._sheltered, self._stop_signal = False, None
        self._previous_sigterm = _on_sigterm(self._preempted)
        retries = f"a lost run is retried up to {self.max_retries} time(s)"
        self.description = f"ray on {joined}: {self.slots} slots, each task {self.task_options}; {retries}"

    def _set_resources(self, spec: ExecutorSpec, options: WorkerOptions) -> None:
        resources = self.ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        use_gpu = options.device in (None, "cuda") and gpus > 0
        if options.device == "cuda" and gpus == 0:
            self.close()
            raise UserError("executor.device is 'cuda' but the Ray cluster has no GPUs")
        self.task_options = {"num_gpus": spec.gpus_per_run, "num_cpus": 1} if use_gpu else {
            "num_cpus": spec.cpus_per_run}  # fmt: skip
        slots = (
            int(gpus // spec.gpus_per_run) if use_gpu else int(resources.get("CPU", 1) // spec.cpus_per_run)
        )
        self.slots = max(1, slots)
        self.capacity = self.slots * QUEUE_FACTOR
        self.worker_options = WorkerOptions(
            device="cuda" if use_gpu else "cpu", checkpoint_seconds=options.checkpoint_seconds,
            save_weights=options.save_weights, threads=None if use_gpu else spec.cpus_per_run,
            events=options.events)  # fmt: skip

    def _has_head_resource(self) -> bool:
        return "node:__internal_head__" in self.ray.cluster_resources()

    # 1. submitting, and submitting again
    def submit(self, job: Job) -> None:
        self._launch(job, attempt=1)

    def _launch(self, job: Job, attempt: int) -> None:
        run_dir = self.store.run_dir(job.run_id)
        # a restarted run starts from nothing, but its retries continue from what it shipped
        files = read_run_files(run_dir) if attempt > 1 or not job.restart else {}
        stage1 = self._stage1_ref(job.stage1_id) if job.stage1_id else None
        self.serial += 1
        ship = ShipCheckpoints(self.inbox, job.run_id, self.serial, self.storage)
        ref = self.remote.options(**self.task_options).remote(
            self.run_fn, job, files, stage1, self.worker_options, ship
        )
        self.pending[ref] = _Flight(job, attempt, self.serial)

    def _stage1_ref(self, run_id: str) -> Any:
        """The stage-1 run's files in the object store, put there once for all runs that reuse it."""
        if run_id not in self.stage1_refs:
            files = read_run_files(self.store.run_dir(run_id), STAGE1_FILES)
            self.stage1_refs[run_id] = self.ray.put(files) if files else None
        return self.stage1_refs[run_id]

    # 2. waiting: results, shipped checkpoints, lost attempts
    def wait(self) -> list[Outcome]:
        while True:
            self._collect_checkpoints()
            ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=POLL_SECONDS)
            outcomes = [o for ref in ready if (o := self._finished(ref)) is not None]
            if outcomes or not self.pending:
                return outcomes

    def _finished(self, ref: Any) -> Outcome | None:
        flight = self.pending.pop(ref)
        try:
            kind, value = self.ray.get(ref)
        except self.ray.exceptions.RayError as err:  # the worker, its node or the task itself failed
            return self._lost(flight, err)
        self._forget_storage(flight.job.run_id)
        if kind == "user_error":
            return Outcome(flight.job, user_error=value)
        return Outcome(flight.job, result=value["result"], files=value["files"])

    def _forget_storage(self, run_id: str) -> None:
        """The run returned with all its files: its folder in the shared checkpoint storage has served."""
        if self.storage:
            shutil.rmtree(Path(self.storage) / run_id, ignore_errors=True)

    def _lost(self, flight: _Flight, err: BaseException) -> Outcome | None:
        """One line per lost attempt; submit again from the newest shipped checkpoint, or record ``failed``."""
        self._collect_checkpoints(also=flight)
        job, reason = flight.job, _reason(err)
        label = (
            f"ray: run {job.run_id} ({_describe(job)}) attempt {flight.attempt}/{self.max_retries + 1} lost"
        )
        if flight.attempt <= self.max_retries:
            epochs = _epochs_in(
                read_run_files(self.store.run_dir(job.run_id), ("metrics.jsonl", "checkpoint.pt"))
            )
            start = f"its newest checkpoint ({epochs} epoch(s) done)" if epochs else "the start"
            self.echo(f"{label}: {reason}; retrying from {start}")
            self._launch(job, flight.attempt + 1)
            return None
        self.echo(f"{label}: {reason}; no retries left, recorded as failed")
        result = _failed_result(job, f"lost {flight.attempt} time(s) on Ray; last: {reason}")
        files = read_run_files(self.store.run_dir(job.run_id), ("metrics.jsonl", "checkpoint.pt"))
        self._forget_storage(job.run_id)
        files["result.json"] = json.dumps(result, indent=1).encode()
        return Outcome(job, result=result, files=files)

    def _collect_checkpoints(self, also: _Flight | None = None) -> None:
        """Write the checkpoints workers shipped since the last look into their runs' folders."""
        flights = {f.job.run_id: f for f in (*self.pending.values(), *([also] if also else []))}
        if not flights:
            return
        self._sheltered = True  # SIGTERM waits: what was taken from the inbox must reach the disk
        try:
            for run_id, (serial, seq, _, files) in self.ray.get(self.inbox.take.remote()).items():
                flight = flights.get(run_id)
                if flight is None or flight.serial != serial or seq <= flight.shipped:
                    continue  # a finished run, or an attempt given up on: never overwrite newer work
                take_checkpoint(self.store.run_dir(run_id), run_id, files, self.storage)
                flight.shipped = seq
        finally:
            self._sheltered = False
        if self._stop_signal is not None:
            raise Preempted(f"signal {self._stop_signal}")

    # 3. stopping
    def _preempted(self, signum: int, frame: Any) -> None:
        if self._sheltered:
            self._stop_signal = signum
            return
        raise Preempted(f"signal {signum}")

    def close(self) -> None:
        """Keep every shipped checkpoint, cancel what is still in flight, leave a cluster we only joined."""
        _on_sigterm(getattr(self, "_previous_sigterm", None))
        self._stop_signal = None
        try:
            if getattr(self, "pending", None):
                self._collect_checkpoints()
        finally:
            for ref in getattr(self, "pending", {}):
                with contextlib.suppress(Exception):  # its worker or node may be gone already
                    self.ray.cancel(ref, force=True)
            self.pending = {}
            self.stage1_refs = {}
            if self.started_here:
                self.ray.shutdown()


def _on_sigterm(handler: Any) -> Any:
    """Install ``handler`` for SIGTERM (main thread only; ``None`` leaves it); returns the one it replaced."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _epochs_in(files: dict[str, bytes]) -> int:
    """Epochs a run folder's files hold (the metrics lines of a run that has a checkpoint)."""
    if "checkpoint.pt" not in files:
        return 0
    return sum(1 for line in files.get("metrics.jsonl", b"").splitlines() if line.strip())


def _describe(job: Job) -> str:
    c = job.cfg
    return f"{c.method} {c.task} {c.regime} {c.stage} lr={c.lr:g} seed={c.seed}"


def _reason(err: BaseException) -> str:
    """``WorkerCrashedError: the worker died unexpectedly ...`` in one short line."""
    text = " ".join(str(err).split())
    cause = getattr(err, "cause", None)  # a RayTaskError: the remote exception
    if cause is not None:
        text = f"{type(cause).__name__}: {' '.join(str(cause).split())}"
    name = type(err).__name__
    return (text if text.startswith(name) or cause is not None else f"{name}: {text}")[:240]


def _failed_result(job: Job, error: str) -> dict:
    """What ``train_run`` records for a run that failed, for a run whose every attempt was lost."""
    cfg = job.cfg
    return {
        "status": "failed",
        "run_id": cfg.run_id,
        "config": cfg.to_dict(),
        "task": None,
        "data": None,
        "metrics": {},
        "epochs_done": 0,
        "params": None,
        "seconds": 0.0,
        "environment": {},
        "error": error,
    }
