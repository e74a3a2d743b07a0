"""Stopping a run without losing its work: SIGINT (Ctrl-C) and SIGTERM (a scheduler's warning) ask, not kill.

Inside :func:`graceful_stop` the first SIGINT or SIGTERM only sets a flag; the training loop reads it after every
optimiser step (``train_run(..., should_interrupt=requested)``), writes a checkpoint at that step and ends the
run ``partial``; :func:`stop_if_requested` then raises :class:`RunInterrupted`, so the command (or a study's
in-process run) stops, and the same command continues from that step with the results an uninterrupted run
would have given (the data order is a function of (seed, epoch) and the RNG state travels in the checkpoint).  A second signal stops at once (the
checkpoint then is the last one written).  The previous handlers are restored on exit, and outside the main thread
(where Python cannot install handlers) the block is a no-op.  ``requested`` has the ``should_interrupt:
Callable[[], bool]`` shape a training loop takes.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []  # the signals received by the innermost active block (empty: none)
_depth = 0


class RunInterrupted(KeyboardInterrupt):
    """A run stopped on request with ``epochs_done`` whole epochs done, its checkpoint in ``run_dir``."""

    def __init__(self, run_dir: str | Path, epochs_done: int, epochs: int) -> None:
        super().__init__(f"{run_dir}: stopped in epoch {epochs_done + 1} of {epochs}")
        self.run_dir, self.epochs_done, self.epochs = Path(run_dir), epochs_done, epochs
        self.signum = _received[0] if _received else signal.SIGINT


def stop_if_requested(result: dict | None = None, run_dir: str | Path | None = None) -> None:
    """Raise :class:`RunInterrupted` when a stop was asked for (after a run ended ``partial`` on it, or before one
    starts): the caller stops instead of going on to its next run."""
    if not requested():
        return
    if result is None:
        raise RunInterrupted(run_dir or ".", 0, 0)
    if result.get("status") == "partial":
        cfg = result.get("config") or {}
        raise RunInterrupted(result.get("run_dir", run_dir or "."), int(result.get("epochs_done") or 0),
                             int(cfg.get("epochs") or 0))  # fmt: skip


def requested() -> bool:
    """Whether a stop was asked for (a SIGINT or SIGTERM inside :func:`graceful_stop`)."""
    return bool(_received)


def request(signum: int = signal.SIGTERM) -> None:
    """Ask the running loop to stop at its next stopping point, as a signal would (for tests and embedders)."""
    _received.append(signum)


@contextmanager
def graceful_stop(signals: tuple[int, ...] = SIGNALS) -> Iterator[None]:
    """Turn ``signals`` into a stop request while the block runs; restore the old handlers after."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        if _received:  # the second signal: stop now
            raise KeyboardInterrupt
        _received.append(signum)
        name = signal.Signals(signum).name
        sys.stderr.write(
            f"\nvptlab: {name} received: finishing the current step, then saving a checkpoint "
            "(send it again to stop at once)\n"
        )

    for s in signals:
        signal.signal(s, handler)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for s, h in old.items():
            signal.signal(s, h)
        if _depth == 0:
            _received.clear()


def exit_message(err: KeyboardInterrupt) -> tuple[str, int]:
    """The CLI's last line and exit status for an interrupt (128 + the signal number, as a shell reports it)."""
    if isinstance(err, RunInterrupted):
        where = (
            f"in epoch {err.epochs_done + 1} of {err.epochs}; checkpoint saved in {err.run_dir}"
            if err.epochs
            else "before the next run started"
        )
        return (
            f"vptlab: stopped {where}; rerun the same command to continue from there\n",
            128 + int(err.signum),
        )
    return "vptlab: interrupted; finished runs are kept, rerun the command to continue\n", 130
