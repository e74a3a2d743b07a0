"""A study folder as the runner sees it: run results in memory, the index kept in step, writes in one place.

``<out>/runs/<run_id>/`` (the truth), ``<out>/index.sqlite`` (rebuilt from the runs when opened),
``<out>/study.json`` (the resolved spec), ``<out>/summary.json`` (written when a study run ends).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vptlab._io import atomic_write_json, read_jsonl
from vptlab.store.index import RunIndex
from vptlab.store.runs import (
    discard_result,
    load_result,
    mark_pruned,
    run_path,
    study_results,
    write_run_files,
)

SPEC_FILE = "study.json"
SUMMARY_FILE = "summary.json"


class StudyStore:
    """Read and write one study folder; ``writable`` only for the process holding the study lock."""

    def __init__(self, out: str | Path, writable: bool = False) -> None:
        self.out = Path(out)
        self.writable = writable
        self.results: dict[str, dict[str, Any]] = study_results(self.out)
        self._val_cache: dict[tuple[str, int, Any], float | None] = {}
        self.index: RunIndex | None = None
        if writable:
            self.index = RunIndex(self.out)
            self.index.rebuild()

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None

    def run_dir(self, run_id: str) -> Path:
        return run_path(self.out, run_id)

    def result_of(self, run_id: str) -> dict[str, Any] | None:
        return self.results.get(run_id)

    def val_at(self, run_id: str, epoch: int) -> float | None:
        """Validation top-1 after ``epoch`` epochs (from ``metrics.jsonl``), None if the run has not got there."""
        result = self.results.get(run_id) or {}
        key = (run_id, epoch, result.get("epochs_done"))
        if key not in self._val_cache:
            path = self.run_dir(run_id) / "metrics.jsonl"
            rows = read_jsonl(path) if path.is_file() else []
            row = next((r for r in rows if r.get("epoch") == epoch - 1), None)
            self._val_cache[key] = row.get("val_top1") if row else None
        return self._val_cache[key]

    # --- writes (the driver only) ---------------------------------------------------------------------------

    def record(self, run_id: str, files: dict[str, bytes] | None = None) -> dict[str, Any] | None:
        """Take in a run that just returned: write its files if a remote worker sent them, re-read, index."""
        self._check_writable()
        run_dir = self.run_dir(run_id)
        if files is not None:
            write_run_files(run_dir, files)
        result = load_result(run_dir)
        if result is not None and result.get("run_id") == run_id:
            self.results[run_id] = result
            self.index.upsert(result)
        return result

    def prune(self, run_id: str, reason: str) -> None:
        self._check_writable()
        self.results[run_id] = mark_pruned(self.run_dir(run_id), reason)
        self.index.upsert(self.results[run_id])

    def discard(self, run_id: str) -> None:
        """Forget a run's outcome (a failed run to retry, a pruned one promoted later)."""
        self._check_writable()
        discard_result(self.run_dir(run_id))
        self.results.pop(run_id, None)
        self.index.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        self.index.db.commit()

    def write_json(self, name: str, obj: Any) -> None:
        self._check_writable()
        atomic_write_json(self.out / name, obj)

    def read_json(self, name: str) -> dict[str, Any] | None:
        """``study.json`` or ``summary.json``; None if absent or damaged (both are rewritten by the next run)."""
        path = self.out / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _check_writable(self) -> None:
        if not self.writable or self.index is None:
            raise RuntimeError(
                "this StudyStore is read-only (open it with writable=True under the study lock)"
            )
