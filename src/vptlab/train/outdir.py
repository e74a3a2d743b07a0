"""A run folder given by the user (``vptlab train --out``): never silently replaced by another run.

A folder holding a run (``result.json``, or ``checkpoint.pt`` of an unfinished one) with another run id - another
method, task, learning rate... - is refused with a line saying what is there; ``overwrite=True`` removes that run's
files first.  The same run id continues (resume) or returns the finished result, as ``train_run`` always did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vptlab.errors import UserError

RUN_FILES = ("result.json", "metrics.jsonl", "checkpoint.pt", "tuned.safetensors")
RUN_FOLDERS = ("stage1",)


def existing_run(out: Path) -> dict | None:
    """``{"run_id", "method", "task", "status"}`` of the run in ``out``, if any (``None``: no run there)."""
    result = out / "result.json"
    if result.is_file():
        try:
            data = json.loads(result.read_text(encoding="utf-8"))
            cfg = data.get("config") or {}
            return {"run_id": data.get("run_id"), "method": cfg.get("method"), "task": cfg.get("task"),
                    "status": data.get("status")}  # fmt: skip
        except (ValueError, AttributeError):
            return {"run_id": None, "method": None, "task": None, "status": "unreadable result.json"}
    checkpoint = out / "checkpoint.pt"
    if checkpoint.is_file():
        return {
            "run_id": _checkpoint_run_id(checkpoint),
            "method": None,
            "task": None,
            "status": "unfinished",
        }
    return None


def _checkpoint_run_id(path: Path) -> str | None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # torn or foreign: train_run would discard it, but it is still another run's file
        return None
    return state.get("run_id") if isinstance(state, dict) else None


def claim_out_dir(out: str | Path, run_id: str, *, overwrite: bool = False) -> None:
    """Make sure ``out`` may hold run ``run_id``: refuse another run there unless ``overwrite``."""
    out = Path(out)
    there = existing_run(out) if out.is_dir() else None
    if there is None or there["run_id"] == run_id:
        return
    if not overwrite:
        what = " ".join(str(there[k]) for k in ("method", "task") if there[k]) or "a run"
        raise UserError(
            f"--out {out} already holds another run ({what}, {there['status']}, run id {there['run_id']}); "
            "choose another --out, or pass --overwrite to replace it"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
