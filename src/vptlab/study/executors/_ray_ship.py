"""What runs on the Ray workers, and how a run's checkpoints outlive the node that trains it.

A task rebuilds the run folder in a temporary folder on its node, trains with ``train_run`` and returns the run's
files.  While it trains, every checkpoint ``train_run`` saves (every ``checkpoint_seconds``; see
:class:`ShipCheckpoints`) is sent on at once, together with ``metrics.jsonl``:

* by default to the :class:`Inbox`, a small actor on the head node that keeps the newest checkpoint of each run
  in flight until the driver, which polls it every second or so, writes it into the run's folder in the study
  folder;
* with ``executor.checkpoint_storage`` (a folder every node and the driver see at the same path), into
  ``<storage>/<run_id>/``; the inbox then carries only a notice and the driver copies the files from there.

A retried run therefore continues from the newest checkpoint that reached the driver, not from epoch 0, and a
driver stopped by SIGTERM keeps it for the next ``study run``.  SIGTERM to a worker (a scheduler preempting it)
makes its run checkpoint at the next optimiser step (``should_interrupt``), ship that checkpoint, and the worker
exit: the driver sees a lost attempt and the retry continues from that very step.  Each submission carries a serial number and the
driver takes a checkpoint only from the submission in flight, so a lost attempt that still runs somewhere can
never overwrite newer work.
"""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from vptlab._io import atomic_write_bytes
from vptlab.errors import UserError
from vptlab.store.runs import read_run_files, write_run_files
from vptlab.study.state import Job
from vptlab.study.worker import RunFn, WorkerOptions
from vptlab.train.events import RunEvents

SHIPPED = ("metrics.jsonl", "checkpoint.pt")  # in this order: the metrics never lag the checkpoint


class Inbox:
    """The newest checkpoint of each run, from its workers to the driver (a Ray actor on the head node)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[int, int, int, dict[str, bytes] | None]] = {}

    def put(
        self, run_id: str, serial: int, seq: int, epochs_done: int, files: dict[str, bytes] | None
    ) -> None:
        held = self.items.get(run_id)
        if held is None or (serial, seq) >= held[:2]:
            self.items[run_id] = (serial, seq, epochs_done, files)

    def take(self) -> dict[str, tuple[int, int, int, dict[str, bytes] | None]]:
        items, self.items = self.items, {}
        return items


class ShipCheckpoints(RunEvents):
    """On a worker: send each checkpoint the run saves to the driver (or shared storage) before going on.

    ``seq`` counts the checkpoints of this submission: one taken mid-epoch (a preempted worker's) is newer than
    the one at the end of the epoch before, though both say ``epochs_done`` is the same."""

    def __init__(self, inbox: Any, run_id: str, serial: int, storage: str | None) -> None:
        self.inbox, self.run_id, self.serial, self.storage = inbox, run_id, serial, storage
        self.seq = 0

    def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
        import ray

        files = {
            "metrics.jsonl": (run_dir / "metrics.jsonl").read_bytes(),
            "checkpoint.pt": path.read_bytes(),
        }
        if self.storage:
            for name in SHIPPED:
                atomic_write_bytes(storage_dir(self.storage, self.run_id) / name, files[name])
            files = None
        self.seq += 1
        # wait until the inbox has it: a worker lost right after this point has lost no saved work
        ray.get(self.inbox.put.remote(self.run_id, self.serial, self.seq, epochs_done, files))


_STOP: dict[str, int | None] = {"signal": None}


def stop_requested() -> bool:
    """True once SIGTERM reached this worker during a run: the run checkpoints at its next step and ends."""
    return _STOP["signal"] is not None


class _SigtermStopsTheRun:
    """While a task trains: SIGTERM (a scheduler preempting the worker) asks the run to stop at its next step."""

    def __enter__(self) -> _SigtermStopsTheRun:
        _STOP["signal"] = None
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    @staticmethod
    def _handle(signum: int, frame: Any) -> None:
        _STOP["signal"] = signum

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def storage_dir(storage: str, run_id: str) -> Path:
    path = Path(storage) / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def take_checkpoint(run_dir: Path, run_id: str, files: dict[str, bytes] | None, storage: str | None) -> None:
    """On the driver: write a shipped checkpoint into the run's folder (metrics first, each atomically)."""
    if files is None:
        source = Path(storage or "") / run_id
        files = {name: (source / name).read_bytes() for name in SHIPPED if (source / name).is_file()}
        if len(files) < len(SHIPPED):
            return  # storage was cleared under us: keep what the run folder has
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        atomic_write_bytes(run_dir / name, files[name])


def ray_task(run_fn: RunFn, job: Job, files: dict[str, bytes], stage1: dict[str, bytes] | None,
             options: WorkerOptions, ship: ShipCheckpoints | None) -> tuple[str, Any]:  # fmt: skip
    """On a Ray worker: rebuild the run folder (and stage 1) in a temporary folder, train, send the files back."""
    import dataclasses

    from vptlab.study.worker import set_threads

    set_threads(options.threads)
    if ship is not None:
        options = dataclasses.replace(
            options, events=(ship, *options.events), should_interrupt=stop_requested
        )
    with tempfile.TemporaryDirectory(prefix="vptlab-ray-") as tmp, _SigtermStopsTheRun():
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
        if stop_requested() and _stopped_early(job, result):
            # its checkpoint has been shipped: the worker goes, as asked, and the driver submits the run again
            raise SystemExit(f"preempted by signal {_STOP['signal']}; the run's checkpoint was shipped")
        return "result", {"result": result, "files": read_run_files(run_dir)}


def _stopped_early(job: Job, result: dict) -> bool:
    """The run ended ``partial`` because it was asked to stop, not at the pause its job asked for."""
    pause = job.until_epoch
    return result.get("status") == "partial" and (pause is None or result.get("epochs_done", 0) < pause)
