"""TensorBoard: event files in ``<run>/tensorboard/`` (per-epoch losses, top-1 and lr; the cost profile and
the run's config as text at the end).  ``tensorboard --logdir RUN_DIR`` (or a study's ``runs/``) shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vptlab.track.base import cost_scalars, missing_extra, scalars
from vptlab.train.events import RunEvents

LOG_DIR = "tensorboard"


class TensorBoardEvents(RunEvents):
    """Writes a run's curves as TensorBoard scalars, step = epoch."""

    def __init__(self) -> None:
        self.writers: dict[Path, Any] = {}

    def run_start(self, run_dir: Path, config: dict[str, Any], start_epoch: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise missing_extra("tensorboard", "tensorboard") from None
        # a resumed run drops the epochs logged after its checkpoint (they are trained again)
        writer = SummaryWriter(str(Path(run_dir) / LOG_DIR), purge_step=start_epoch or None)
        if start_epoch == 0:
            writer.add_text("config", _code(config), 0)
        self.writers[Path(run_dir)] = writer

    def epoch_end(self, run_dir: Path, row: dict[str, Any]) -> None:
        writer = self.writers[Path(run_dir)]
        for tag, value in scalars(row).items():
            writer.add_scalar(tag, value, int(row["epoch"]))
        writer.flush()

    def run_end(self, run_dir: Path, result: dict[str, Any]) -> None:
        writer = self.writers.pop(Path(run_dir), None)
        if writer is None:
            return
        step = max(int(result.get("epochs_done") or 0) - 1, 0)
        for tag, value in cost_scalars(result).items():
            writer.add_scalar(tag, value, step)
        writer.add_text("result", f"status {result['status']}\n\n" + _code(result.get("cost") or {}), step)
        writer.close()


def _code(data: dict[str, Any]) -> str:
    return "    " + json.dumps(data, indent=1, sort_keys=True, default=str).replace("\n", "\n    ")
