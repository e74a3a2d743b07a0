"""Reading finished runs.

A run folder holds ``result.json`` (written last, atomically), ``metrics.jsonl`` and the tuned weights.  A folder
without ``result.json``, or with one that does not parse as a record, is unfinished and never read as a result.
"""

from __future__ import annotations

import json
from pathlib import Path


def load_result(run_dir: str | Path) -> dict | None:
    """The run's ``result.json`` with ``run_dir`` added, or ``None`` if the run has not finished."""
    path = Path(run_dir) / "result.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: not JSON, not UTF-8
        return None
    if not isinstance(result, dict) or not isinstance(result.get("status"), str):
        return None  # not a record vptlab wrote: the run is unfinished and trains again
    result["run_dir"] = str(Path(run_dir))
    return result


def load_results(root: str | Path) -> list[dict]:
    """Every finished run under ``root``: a study folder (``runs/*/``), a folder of runs, or one run folder."""
    root = Path(root)
    single = load_result(root)
    if single is not None:
        return [single]
    if (root / RUNS_DIR).is_dir():  # a study: its own runs only (not an ft-then-pt run's private stage1/)
        return [r for r in study_results(root).values() if r.get("status") != "partial"]
    results = []
    for result_file in sorted(root.rglob("result.json")):
        result = load_result(result_file.parent)
        if result is not None:
            results.append(result)
    return results


# --- a study folder: <out>/runs/<run_id>/ ------------------------------------------------------------------------

RUNS_DIR = "runs"
RESULT_FILE = "result.json"
# Files that make up a run's record; a worker on another node sends these back (checkpoint.pt only while paused).
RUN_FILES = ("metrics.jsonl", "tuned.safetensors", "checkpoint.pt", "README.md", "labels.json", RESULT_FILE)


def run_path(out: str | Path, run_id: str) -> Path:
    """The folder of run ``run_id`` in study folder ``out``."""
    return Path(out) / RUNS_DIR / run_id


def study_results(out: str | Path) -> dict[str, dict]:
    """run_id -> result for every run folder of a study that has a readable ``result.json`` (any status)."""
    results = {}
    runs = Path(out) / RUNS_DIR
    for run_dir in sorted(runs.iterdir()) if runs.is_dir() else []:
        result = load_result(run_dir)
        if result is not None and result.get("run_id") == run_dir.name:
            results[run_dir.name] = result
    return results


def write_run_files(run_dir: str | Path, files: dict[str, bytes]) -> None:
    """Write a run's files (each atomically), ``result.json`` last, so a kill never leaves a readable half run.

    A file the new record lacks is removed (a finished run drops the checkpoint it was paused with)."""
    from vptlab._io import atomic_write_bytes

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == RESULT_FILE):
        if name not in RUN_FILES:
            raise ValueError(f"not a run file: {name!r}")
        atomic_write_bytes(run_dir / name, files[name])
    for name in RUN_FILES:
        if name not in files and name != RESULT_FILE:
            (run_dir / name).unlink(missing_ok=True)


def read_run_files(run_dir: str | Path, names: tuple[str, ...] = RUN_FILES) -> dict[str, bytes]:
    """The run files present in ``run_dir`` as bytes (what a remote worker needs to continue or reuse a run)."""
    run_dir = Path(run_dir)
    return {name: (run_dir / name).read_bytes() for name in names if (run_dir / name).is_file()}


def mark_pruned(run_dir: str | Path, reason: str) -> dict:
    """End a paused run as ``pruned`` (early stopping decided it is hopeless); its checkpoint is dropped."""
    from vptlab._io import atomic_write_json

    run_dir = Path(run_dir)
    result = load_result(run_dir)
    if result is None:
        raise FileNotFoundError(f"{run_dir}: no result to mark as pruned")
    result.pop("run_dir", None)
    result.update(status="pruned", pruned=reason)
    atomic_write_json(run_dir / RESULT_FILE, result)
    from vptlab.train.card import write_run_card

    write_run_card(run_dir, result)  # the card says pruned too
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    result["run_dir"] = str(run_dir)
    return result


def discard_result(run_dir: str | Path) -> None:
    """Forget a run's outcome so it trains again from scratch (its metrics and checkpoint go too)."""
    run_dir = Path(run_dir)
    for name in (RESULT_FILE, "metrics.jsonl", "checkpoint.pt"):
        (run_dir / name).unlink(missing_ok=True)
