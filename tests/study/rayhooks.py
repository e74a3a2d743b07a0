"""Exact points for killing Ray workers and nodes in the ``ray`` tests: runs that wait where a test says.

``ray_driver.py`` runs ``vptlab`` with :func:`hooked_run_job` as the run function; the Ray workers import this
module by name (the test cluster's ``PYTHONPATH`` names this folder).  Every run gets a :class:`Hook` observer,
which reads its orders from the folder ``$VPTLAB_TEST_HOOKS``:

* ``pause-<node>.<k>``: the k-th run on node ``<node>`` (``$VPTLAB_TEST_NODE``: ``head``, ``node2``; ``local``
  for an instance vptlab started) that saves its checkpoint after epoch 1, after that checkpoint has been
  shipped, claims ``paused-<node>.<k>`` (it holds ``PID RUN_ID``) and waits until ``release`` exists: the test
  kills it, its worker or its node at a known point, never in a race;
* ``die``: ``METHOD STAGE SEED``; the matching run kills its own worker with SIGKILL at its first checkpoint, and
  a retry of it as soon as it resumes;
* every run appends ``RUN_ID START_EPOCH NODE PID`` to ``starts.log`` when it starts (or resumes).

A test helper, not library code: the library has no hook for this.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from vptlab.study.executors._ray_ship import stop_requested
from vptlab.study.worker import run_job
from vptlab.train.events import RunEvents


def hooks_dir() -> Path:
    return Path(os.environ["VPTLAB_TEST_HOOKS"])


def node() -> str:
    return os.environ.get("VPTLAB_TEST_NODE", "local")


class Hook(RunEvents):
    def __init__(self, job) -> None:
        self.job = job

    def run_start(self, run_dir: Path, config: dict, start_epoch: int) -> None:
        with open(hooks_dir() / "starts.log", "a") as fh:
            fh.write(f"{self.job.run_id} {start_epoch} {node()} {os.getpid()}\n")
        if start_epoch > 0:
            self._maybe_die()

    def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
        self._maybe_die()
        if epochs_done != 1 or stop_requested():  # a preempted run's own checkpoint: let it go
            return
        root = hooks_dir()
        k = 1
        while (root / f"pause-{node()}.{k}").exists():
            if _claim(root / f"paused-{node()}.{k}", f"{os.getpid()} {self.job.run_id}"):
                while not (root / "release").exists() and not stop_requested():
                    time.sleep(0.05)  # SIGTERM (preemption) ends the wait: the run stops at its next step
                return
            k += 1

    def _maybe_die(self) -> None:
        die, cfg = hooks_dir() / "die", self.job.cfg
        if die.is_file() and die.read_text().split() == [cfg.method, cfg.stage, str(cfg.seed)]:
            os.kill(os.getpid(), signal.SIGKILL)


def _claim(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists (atomic: a reader never sees it half written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def hooked_run_job(job, run_dir, stage1_dir, options):
    """``run_job`` with a :class:`Hook` watching the run."""
    options = dataclasses.replace(options, events=(*options.events, Hook(job)))
    return run_job(job, run_dir, stage1_dir, options)
