"""The Ray executor: each run is a Ray task; the driver alone writes the study folder.

``RayExecutor`` joins the cluster at ``address`` (or starts a local Ray instance), submits every job as a task
that asks for one GPU (``gpus_per_run``) when CUDA runs are wanted and the cluster has GPUs, else
``cpus_per_run`` CPUs, and streams results back with ``ray.wait`` as they finish.  A task trains into a
temporary folder on its node and returns the run folder's files as bytes; the driver writes them atomically
(``result.json`` last).  What a task needs from the study folder travels with it: the files of a paused run it
continues (checkpoint included) and the stage-1 run FT-then-PT reuses (put in the object store once).

Ray is an optional extra: ``pip install 'vptlab[ray]'``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from vptlab.errors import UserError
from vptlab.store.runs import read_run_files, write_run_files
from vptlab.store.study import StudyStore
from vptlab.study.executors.base import Outcome
from vptlab.study.spec import ExecutorSpec
from vptlab.study.state import Job
from vptlab.study.worker import RunFn, RunOptions

STAGE1_FILES = ("result.json", "tuned.safetensors")
QUEUE_FACTOR = 2  # tasks in flight per slot of the cluster: keeps every slot busy while the driver decides


def import_ray() -> Any:
    """``ray``, or a :class:`UserError` that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'vptlab[ray]'") from None
    return ray


class RayExecutor:
    """Ray tasks on a local instance or an existing cluster."""

    def __init__(self, store: StudyStore, options: RunOptions, run_fn: RunFn, spec: ExecutorSpec) -> None:
        ray = self.ray = import_ray()
        self.store, self.options, self.run_fn = store, options, run_fn
        self.started_here = not ray.is_initialized()
        if self.started_here:
            _init_ray(ray, spec)
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        use_gpu = options.device in (None, "cuda") and gpus > 0
        if options.device == "cuda" and gpus == 0:
            raise UserError("executor.device is 'cuda' but the Ray cluster has no GPUs")
        self.task_options = {"num_gpus": spec.gpus_per_run, "num_cpus": 1} if use_gpu else {
            "num_cpus": spec.cpus_per_run}  # fmt: skip
        slots = (
            int(gpus // spec.gpus_per_run) if use_gpu else int(resources.get("CPU", 1) // spec.cpus_per_run)
        )
        self.capacity = max(1, slots) * QUEUE_FACTOR
        self.remote = ray.remote(max_retries=0)(_ray_task)
        self.worker_options = RunOptions(
            device="cuda" if use_gpu else "cpu", checkpoint_seconds=options.checkpoint_seconds,
            save_weights=options.save_weights, threads=None if use_gpu else spec.cpus_per_run)  # fmt: skip
        self.pending: dict[Any, Job] = {}
        self.stage1_refs: dict[str, Any] = {}
        where = spec.address or "a local Ray instance"
        self.description = f"ray on {where}: {max(1, slots)} slots, each task {self.task_options}"

    def submit(self, job: Job) -> None:
        files = read_run_files(self.store.run_dir(job.run_id)) if not job.restart else {}
        stage1 = self._stage1_ref(job.stage1_id) if job.stage1_id else None
        ref = self.remote.options(**self.task_options).remote(
            self.run_fn, job, files, stage1, self.worker_options
        )
        self.pending[ref] = job

    def _stage1_ref(self, run_id: str) -> Any:
        """The stage-1 run's files in the object store, put there once for all runs that reuse it."""
        if run_id not in self.stage1_refs:
            files = read_run_files(self.store.run_dir(run_id), STAGE1_FILES)
            self.stage1_refs[run_id] = self.ray.put(files) if files else None
        return self.stage1_refs[run_id]

    def wait(self) -> list[Outcome]:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        outcomes = []
        for ref in ready:
            job = self.pending.pop(ref)
            kind, value = self.ray.get(ref)
            if kind == "user_error":
                outcomes.append(Outcome(job, user_error=value))
            else:
                outcomes.append(Outcome(job, result=value["result"], files=value["files"]))
        return outcomes

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        self.stage1_refs.clear()
        if self.started_here:
            self.ray.shutdown()


def _init_ray(ray: Any, spec: ExecutorSpec) -> None:
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if spec.address:
        kwargs["address"] = spec.address
    elif spec.workers > 1:
        kwargs["num_cpus"] = spec.workers * spec.cpus_per_run
    try:
        ray.init(**kwargs)
    except ConnectionError as err:
        raise UserError(f"cannot join the Ray cluster at {spec.address}: {err}") from None


def _ray_task(run_fn: RunFn, job: Job, files: dict[str, bytes], stage1: dict[str, bytes] | None,
              options: RunOptions) -> tuple[str, Any]:  # fmt: skip
    """On a Ray worker: rebuild the run folder (and stage 1) in a temporary folder, train, send the files back."""
    from vptlab.study.worker import set_threads

    set_threads(options.threads)
    with tempfile.TemporaryDirectory(prefix="vptlab-ray-") as tmp:
        run_dir = Path(tmp) / job.run_id
        run_dir.mkdir(parents=True)
        write_run_files(run_dir, files)
        stage1_dir = None
        if stage1:
            stage1_dir = Path(tmp) / "stage1" / job.stage1_id
            stage1_dir.mkdir(parents=True)
            for name, data in stage1.items():
                (stage1_dir / name).write_bytes(data)
        try:
            result = run_fn(job, run_dir, stage1_dir, options)
        except UserError as err:
            return "user_error", str(err)
        return "result", {"result": result, "files": read_run_files(run_dir)}
