"""Selecting a tune config: the paper's protocol, on finished tune results.

The best **last-epoch validation top-1** wins; ties go to the smaller lr, then the smaller wd, then the smaller
values of the method's other grid axes (prompt length, ...; ``Method.selection_axes``).  Diverged, failed and pruned runs are never selected; if
no tune run of a method/task finished ``ok``, the method/task is reported as ``diverged`` (every run that was not
pruned diverged) or ``failed``, and gets no final runs.  Test accuracy is never looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Selection:
    """The outcome of selection for one method/task/regime."""

    status: str  # "selected" | "diverged" (every run diverged) | "failed" (no run ended ok)
    result: dict[str, Any] | None = None  # the selected tune run's result
    candidates: int = 0
    counts: tuple[tuple[str, int], ...] = ()  # status -> number of tune runs

    @property
    def config(self) -> dict[str, Any]:
        if self.result is None:
            raise ValueError(f"nothing was selected (status {self.status})")
        return self.result["config"]


def selectable(result: dict[str, Any]) -> bool:
    """An ``ok`` run with a finite last-epoch validation accuracy."""
    val = (result.get("metrics") or {}).get("val_top1")
    return result.get("status") == "ok" and isinstance(val, (int, float)) and math.isfinite(val)


def rank_key(result: dict[str, Any], value: float) -> tuple:
    """Sort key: higher ``value`` first, then smaller lr, wd and other axes, then run id (total order)."""
    cfg = result.get("config") or {}
    axes = tuple(_num(cfg.get(axis)) for axis in tie_axes(cfg.get("method")))
    return (-value, *axes, str(result.get("run_id")))


def select_best(results: list[dict[str, Any]]) -> Selection:
    """Apply the protocol to the finished tune results of one method/task/regime."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    pool = [r for r in results if selectable(r)]
    count_items = tuple(sorted(counts.items()))
    if not pool:
        statuses = [r.get("status") for r in results]
        everything_diverged = "diverged" in statuses and set(statuses) <= {"diverged", "pruned"}
        return Selection("diverged" if everything_diverged else "failed", None, 0, count_items)
    best = min(pool, key=lambda r: rank_key(r, float(r["metrics"]["val_top1"])))
    return Selection("selected", best, len(pool), count_items)


def tie_axes(method: str | None) -> tuple[str, ...]:
    """The grid axes compared after the accuracy, smaller first: lr, wd, then the method's own
    (``Method.selection_axes``)."""
    from vptlab.errors import UserError
    from vptlab.methods import get_method

    try:
        return get_method(str(method)).selection_axes
    except UserError:  # a result of a method this installation does not have
        return ("lr", "wd", "batch_size")


def _num(value: Any) -> float:
    """Axis values compare numerically; a blank axis (not used by the method) sorts first."""
    if value is None:
        return -math.inf
    return float(value)
