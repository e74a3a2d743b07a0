"""What tools outside the training loop may observe of a run: loggers, cluster executors, run cards.

A ``RunEvents`` subclass overrides the methods it cares about; ``train_run(..., events=[...])`` (and every
pass of the one training loop, K runs included) calls them in order.  They observe and never change what a run
computes, so they are not part of the run id.  An exception in an observer is a bug of that observer and
propagates.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class RunEvents:
    """No-op observer; subclass and override."""

    def run_start(self, run_dir: Path, config: dict[str, Any], start_epoch: int) -> None:
        """Training is about to start (``start_epoch`` > 0 when resuming from a checkpoint: the epoch it resumes,
        possibly part-way through when the run was stopped mid-epoch)."""

    def epoch_end(self, run_dir: Path, row: dict[str, Any]) -> None:
        """An epoch ended; ``row`` is the line just appended to ``metrics.jsonl``."""

    def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
        """``path`` (the run's checkpoint) was just written atomically, ``epochs_done`` whole epochs in (a stop
        request writes one part-way through the next epoch)."""

    def run_end(self, run_dir: Path, result: dict[str, Any]) -> None:
        """``result.json`` was just written with ``result``."""


class _Fanout(RunEvents):
    def __init__(self, observers: Iterable[RunEvents]) -> None:
        self.observers = list(observers)

    def run_start(self, run_dir: Path, config: dict[str, Any], start_epoch: int) -> None:
        for o in self.observers:
            o.run_start(run_dir, config, start_epoch)

    def epoch_end(self, run_dir: Path, row: dict[str, Any]) -> None:
        for o in self.observers:
            o.epoch_end(run_dir, row)

    def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
        for o in self.observers:
            o.checkpoint_saved(run_dir, path, epochs_done)

    def run_end(self, run_dir: Path, result: dict[str, Any]) -> None:
        for o in self.observers:
            o.run_end(run_dir, result)


def fanout(events: RunEvents | Iterable[RunEvents] | None) -> RunEvents:
    """One observer that calls each of ``events`` in order."""
    if events is None:
        return RunEvents()
    if isinstance(events, RunEvents):
        return events
    return _Fanout(events)
