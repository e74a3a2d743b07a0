"""The study index: one SQLite row per run, for quick queries over thousands of runs.

The run folders are the truth; the index is a cache of them that can always be rebuilt (:meth:`RunIndex.rebuild`).
Only the process that holds the study lock writes it; readers may open it at any time (WAL mode).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from vptlab.store.runs import study_results

INDEX_FILE = "index.sqlite"
COLUMNS = {
    "run_id": "TEXT PRIMARY KEY",
    "status": "TEXT NOT NULL",
    "stage": "TEXT",
    "method": "TEXT",
    "task": "TEXT",
    "regime": "TEXT",
    "seed": "INTEGER",
    "lr": "REAL",
    "wd": "REAL",
    "prompt_length": "INTEGER",
    "epochs": "INTEGER",
    "epochs_done": "INTEGER",
    "val_top1": "REAL",
    "test_top1": "REAL",
    "test_loss": "REAL",
    "seconds": "REAL",
    "trainable_params": "INTEGER",
    "config_hash": "TEXT",
    "config_json": "TEXT",
    "run_dir": "TEXT",
    "created": "REAL",
    "updated": "REAL",
}


class RunIndex:
    """``<out>/index.sqlite``: upsert a run's result, list rows, rebuild from the run folders."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.path = self.out / INDEX_FILE
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError:  # damaged, or not a database: the index is a cache, start it afresh
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
            db.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upsert(self, result: dict[str, Any]) -> None:
        """Record (or update) one run from its ``result.json`` content."""
        self._upsert(result)
        self.db.commit()

    def _upsert(self, result: dict[str, Any]) -> None:
        row = index_row(result)
        old = self.db.execute("SELECT created FROM runs WHERE run_id = ?", (row["run_id"],)).fetchone()
        row["created"] = old[0] if old else row["updated"]
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})", tuple(row.values()))

    def rebuild(self) -> int:
        """Replace the index with what the run folders say; returns the number of runs."""
        results = study_results(self.out)
        with self.db:
            self.db.execute("DELETE FROM runs")
            for result in results.values():
                self._upsert(result)
        return len(results)

    def rows(self, where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        """Index rows as dicts, e.g. ``rows("status = ?", ("ok",))``."""
        sql = (
            "SELECT * FROM runs"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY stage, method, task, seed"
        )
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor.fetchall()]

    def counts(self) -> dict[str, int]:
        """status -> number of runs."""
        return dict(self.db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())


def index_row(result: dict[str, Any]) -> dict[str, Any]:
    """The index columns of one result (missing values are NULL)."""
    cfg = result.get("config") or {}
    metrics = result.get("metrics") or {}
    params = result.get("params") or {}
    return {
        "run_id": result["run_id"],
        "status": result["status"],
        "stage": cfg.get("stage"),
        "method": cfg.get("method"),
        "task": cfg.get("task"),
        "regime": cfg.get("regime"),
        "seed": cfg.get("seed"),
        "lr": cfg.get("lr"),
        "wd": cfg.get("wd"),
        "prompt_length": cfg.get("prompt_length"),
        "epochs": cfg.get("epochs"),
        "epochs_done": result.get("epochs_done"),
        "val_top1": metrics.get("val_top1"),
        "test_top1": metrics.get("test_top1"),
        "test_loss": metrics.get("test_loss"),
        "seconds": result.get("seconds"),
        "trainable_params": params.get("trainable"),
        "config_hash": result["run_id"],
        "config_json": json.dumps(cfg, sort_keys=True),
        "run_dir": result.get("run_dir"),
        "updated": time.time(),
    }
