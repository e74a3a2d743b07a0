"""The executor interface and the factory that picks one from the spec (and the command line)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vptlab.store.study import StudyStore
from vptlab.study.spec import ExecutorSpec
from vptlab.study.state import Job
from vptlab.study.worker import RunFn, WorkerOptions


@dataclass
class Outcome:
    """A job that came back: its result, the run files when a remote worker sent them, or a user error."""

    job: Job
    result: dict | None = None
    files: dict[str, bytes] | None = None
    user_error: str | None = None


class Executor(Protocol):
    """Runs jobs; ``capacity`` is how many may be in flight at once."""

    capacity: int
    description: str

    def submit(self, job: Job) -> None: ...

    def wait(self) -> list[Outcome]:
        """Block until at least one submitted job has finished; return the finished ones."""
        ...

    def close(self) -> None: ...


def make_executor(spec: ExecutorSpec, store: StudyStore, options: WorkerOptions, run_fn: RunFn | None = None,
                  echo: Callable[[str], None] = print) -> Executor:  # fmt: skip
    """The executor the spec names: ``local`` (sequential, or ``workers`` processes) or ``ray``.

    ``echo`` gets the executor's one-line notes (the Ray executor's lost run attempts)."""
    from vptlab.study.worker import run_job

    run_fn = run_fn or run_job
    if spec.kind == "ray":
        from vptlab.study.executors.ray import RayExecutor

        return RayExecutor(store, options, run_fn, spec, echo)
    from vptlab.study.executors.local import PoolExecutor, SequentialExecutor

    if spec.workers > 1:
        return PoolExecutor(store, options, run_fn, spec.workers)
    return SequentialExecutor(store, options, run_fn)
