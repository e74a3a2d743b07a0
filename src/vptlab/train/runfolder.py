"""A run's folder: the files every run writes, whichever way it was trained.

``metrics.jsonl`` (a line per epoch), ``checkpoint.pt`` while the run is unfinished (resume after a kill, pause
for successive halving, stop on request), ``tuned.safetensors`` (only the tuned parameters) and, written last and
atomically, ``result.json``.  The training loop (:mod:`vptlab.train.engine`) is the only writer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vptlab._io import append_jsonl, atomic_path, atomic_write_json, read_jsonl
from vptlab.backbones.checkpoints import load_torch_weights
from vptlab.errors import UserError
from vptlab.store.runs import load_result
from vptlab.train.config import RunConfig
from vptlab.train.model import TUNED_FILE

FINISHED = ("ok", "diverged", "pruned")  # "failed" and "partial" runs are retried / continued
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULT = "result.json"
TUNED = TUNED_FILE


def finished_result(cfg: RunConfig, out: Path) -> dict | None:
    """The result in ``out`` if it is this run's (same run id) and finished, else None."""
    done = load_result(out)
    if done is not None and done.get("run_id") == cfg.run_id and done["status"] in FINISHED:
        return done
    return None


class RunFolder:
    """One run's files; ``run_id`` guards the checkpoint against another run's."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.out, self.run_id = out, run_id
        out.mkdir(parents=True, exist_ok=True)

    # metrics.jsonl
    def rows(self) -> list[dict]:
        path = self.out / METRICS
        return read_jsonl(path) if path.is_file() else []

    def last_row(self) -> dict:
        rows = self.rows()
        return rows[-1] if rows else {}

    def append_row(self, row: dict) -> None:
        append_jsonl(self.out / METRICS, row)

    def keep_rows_before(self, epoch: int) -> None:
        """Drop the lines of epochs from ``epoch`` on (written after the checkpoint a run resumes from)."""
        rows = [r for r in self.rows() if r["epoch"] < epoch]
        with atomic_path(self.out / METRICS) as tmp:
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    # checkpoint.pt
    def read_checkpoint(self) -> dict | None:
        """This run's checkpoint, or None; a torn, foreign or code-carrying one is deleted, never run."""
        path = self.out / CHECKPOINT
        if not path.is_file():
            return None
        try:
            state = load_torch_weights(path, "run checkpoint")
        except UserError:
            state = None
        if not isinstance(state, dict) or state.get("run_id") != self.run_id:
            path.unlink()
            return None
        return state

    def write_checkpoint(self, state: dict[str, Any]) -> Path:
        path = self.out / CHECKPOINT
        with atomic_path(path) as tmp:
            torch.save({"run_id": self.run_id, **state}, tmp)
        return path

    def start_over(self) -> None:
        """No checkpoint, no history: the run trains from epoch 0."""
        (self.out / CHECKPOINT).unlink(missing_ok=True)
        (self.out / METRICS).unlink(missing_ok=True)

    # result.json
    def write_result(self, result: dict[str, Any]) -> None:
        """The result, written last and atomically; an unfinished (partial) run keeps its checkpoint."""
        if result["status"] != "partial":
            (self.out / CHECKPOINT).unlink(missing_ok=True)
        atomic_write_json(self.out / RESULT, result)
