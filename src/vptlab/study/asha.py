"""Early stopping of hopeless grid points: successive halving over one method/task's tune grid.

Rungs sit at epochs ``r, r*eta, r*eta^2, ...`` and the last at the full schedule.  Every config trains to the
first rung (``train_run(..., until_epoch=r)`` pauses it with status ``partial`` and a checkpoint); the best
``1/eta`` by validation top-1 at that epoch continue to the next rung, the others end as ``pruned`` and are never
selected.  Survivors of the last rung finish the whole schedule and the usual selection picks among them.

The decision is *synchronous* within a method/task (a rung is decided once all its configs reached it), which
makes it a pure function of the run folders: a killed study decides exactly the same way when rerun.  Different
methods and tasks still proceed independently, so executors stay busy.  The halving is over runs that share the
same schedule, so a run paused at a rung continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vptlab.study.plan import run_id_of
from vptlab.study.select import rank_key

ENDED_BADLY = ("diverged", "failed")


def rungs(epochs: int, min_epochs: int, eta: int) -> tuple[int, ...]:
    """Rung epochs: ``min_epochs * eta^k`` while at least half the schedule remains after it, then ``epochs``."""
    out, r = [], min_epochs
    while 2 * r <= epochs:
        out.append(r)
        r *= eta
    return (*out, epochs)


def keep_count(n: int, eta: int) -> int:
    return max(1, math.ceil(n / eta))


def halving_epochs(n: int, rung_epochs: tuple[int, ...], eta: int) -> int:
    """Total epochs successive halving trains for ``n`` configs (paused runs continue, never restart)."""
    total, previous = 0, 0
    for r in rung_epochs:
        total += n * (r - previous)
        previous, n = r, keep_count(n, eta)
    return total


@dataclass
class HalvingStep:
    """What to do next for one grid: runs to train (to an epoch), paused runs to prune, or done."""

    train: list[tuple[Any, int | None]] = field(
        default_factory=list
    )  # (config, until_epoch or None = to the end)
    restart: list[tuple[Any, int | None]] = field(
        default_factory=list
    )  # promoted after a prune: from scratch
    prune: list[tuple[str, str]] = field(default_factory=list)  # (run_id, reason)
    survivors: list[Any] = field(default_factory=list)
    done: bool = False


def halving_step(
    configs: list[Any],
    result_of: Callable[[str], dict | None],
    val_at: Callable[[str, int], float | None],
    rung_epochs: tuple[int, ...],
    eta: int,
) -> HalvingStep:
    """Walk the rungs over the current run folders and return the next thing to do (a pure function)."""
    step = HalvingStep()
    alive = list(configs)
    for i, r in enumerate(rung_epochs):
        last = i == len(rung_epochs) - 1
        waiting = [c for c in alive if not _reached(result_of(run_id_of(c)), r, last)]
        if waiting:
            until = None if last else r
            for c in waiting:
                result = result_of(run_id_of(c))
                (step.restart if result and result["status"] == "pruned" else step.train).append((c, until))
            return step
        if last:
            break
        kept = _best(alive, val_at, r, keep_count(len(alive), eta))
        for c in alive:
            result = result_of(run_id_of(c))
            if c not in kept and result and result["status"] == "partial":
                step.prune.append(
                    (
                        run_id_of(c),
                        f"successive halving: not in the best {len(kept)} of "
                        f"{len(alive)} at epoch {r} (eta {eta})",
                    )
                )
        alive = [c for c in alive if c in kept]
    step.survivors, step.done = alive, True
    return step


def _reached(result: dict | None, r: int, last: bool) -> bool:
    """Has this run got as far as rung epoch ``r`` (or ended for good)?"""
    if result is None:
        return False
    status = result["status"]
    if status in ENDED_BADLY or status == "ok":
        return True
    if last:
        return False  # partial or pruned runs have not finished the schedule
    return int(result.get("epochs_done") or 0) >= r


def _best(alive: list[Any], val_at, r: int, k: int) -> list[Any]:
    """The ``k`` best configs by validation top-1 after ``r`` epochs.

    Only what was known at epoch ``r`` counts: a run that diverged later is ranked by its accuracy at ``r`` (so
    a decision never changes after the fact); one that diverged before ``r`` has no accuracy there and never
    continues."""
    scored = []
    for c in alive:
        value = val_at(run_id_of(c), r)
        if value is not None and math.isfinite(value):
            scored.append((rank_key({"config": _cfg_dict(c), "run_id": run_id_of(c)}, value), c))
    scored.sort(key=lambda item: item[0])
    return [c for _, c in scored[:k]]


def _cfg_dict(cfg: Any) -> dict:
    return cfg.identity() if hasattr(cfg, "identity") else dict(cfg)
