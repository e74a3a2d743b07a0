"""A tidy one-row-per-run table of a study, for pandas (``pd.read_csv``) and spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from vptlab._io import atomic_write_text

COLUMNS = (
    "run_id",
    "status",
    "stage",
    "method",
    "task",
    "group",
    "objective",
    "regime",
    "seed",
    "split_seed",
    "lr",
    "wd",
    "batch_size",
    "prompt_length",
    "ft_lr",
    "ft_wd",
    "options",
    "head_init",
    "epochs",
    "epochs_done",
    "train_size",
    "val_size",
    "test_size",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "test_loss",
    "test_top1",
    "seconds",
    "trainable_params",
    "total_params",
    "backbone",
    "data",
    "diverged_at_epoch",
    "error",
    "run_dir",
)


def tidy_row(result: dict[str, Any]) -> dict[str, Any]:
    """One run as flat columns; a diverged or failed run has empty accuracies, never a number."""
    cfg = result.get("config") or {}
    task = result.get("task") or {}
    metrics = (result.get("metrics") or {}) if result.get("status") == "ok" else {}
    params = result.get("params") or {}
    sizes = _sizes(result.get("data") or {})
    row = {
        "run_id": result.get("run_id"),
        "status": result.get("status"),
        "group": task.get("group"),
        "objective": task.get("objective"),
        "epochs_done": result.get("epochs_done"),
        "seconds": result.get("seconds"),
        "trainable_params": params.get("trainable"),
        "total_params": params.get("total"),
        "diverged_at_epoch": (result.get("diverged_at") or {}).get("epoch"),
        "error": result.get("error"),
        "run_dir": result.get("run_dir"),
        **sizes,
    }
    for key in (
        "stage",
        "method",
        "task",
        "regime",
        "seed",
        "split_seed",
        "lr",
        "wd",
        "batch_size",
        "prompt_length",
        "ft_lr",
        "ft_wd",
        "head_init",
        "epochs",
        "backbone",
        "data",
    ):
        row[key] = cfg.get(key)
    row["options"] = _options(cfg)
    for key in ("train_loss", "train_top1", "val_loss", "val_top1", "test_loss", "test_top1"):
        row[key] = metrics.get(key)
    return {name: row.get(name) for name in COLUMNS}


def _options(cfg: dict[str, Any]) -> str | None:
    """The method's own options (bottleneck, rank, prompt length, ...) as one cell ``name=value;...``, sorted by
    name (no commas, so a naive split of a CSV line still works)."""
    from vptlab.train.config import general_field_names

    general = set(general_field_names()) | {"extra"}
    options = {k: v for k, v in cfg.items() if k not in general and v is not None}
    return ";".join(f"{k}={json.dumps(v)}" for k, v in sorted(options.items())) or None


def _sizes(record: dict[str, Any]) -> dict[str, Any]:
    """Split sizes from the data record, whichever way the loader names them."""
    sizes = record.get("sizes") if isinstance(record.get("sizes"), dict) else record
    return {
        f"{split}_size": sizes.get(split, sizes.get(f"{split}_size")) for split in ("train", "val", "test")
    }


def tidy_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [tidy_row(r) for r in results]
    return sorted(
        rows, key=lambda r: tuple(str(r[k]) for k in ("stage", "method", "task", "regime", "seed", "lr"))
    )


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    atomic_write_text(path, to_csv(rows))
