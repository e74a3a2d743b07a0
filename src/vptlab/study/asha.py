"""Early stopping of hopeless grid points: successive halving over one method/task's tune grid.

A halving plan is a list of rungs ``(epoch, eta)`` and the full schedule.  Every config trains to the first rung
(``train_run(..., until_epoch=r)`` pauses it with status ``partial`` and a checkpoint); the best ``1/eta`` by
validation top-1 at that epoch continue to the next rung, the others end as ``pruned`` and are never selected.
Survivors of the last rung finish the whole schedule and the usual selection picks among them.

Two plans: :func:`early_rungs` (the default: a third kept at 10% of the schedule, a half at 20%) and
:func:`rungs` (the textbook geometric plan: rungs at ``min_epochs * eta^k``, a third kept at each).  Measured on
the synthetic benchmark (BENCHMARKS.md), the geometric plan's late, hard cuts on short schedules discard the
larger learning rates that win in the end; the early plan trains about the same compute and agrees with the
full grid far more often.

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


Rungs = tuple[tuple[int, int], ...]  # (epoch, eta): at that epoch the best ceil(n / eta) continue


def rungs(epochs: int, min_epochs: int, eta: int) -> tuple[int, ...]:
    """Rung epochs: ``min_epochs * eta^k`` while at least half the schedule remains after it, then ``epochs``."""
    out, r = [], min_epochs
    while 2 * r <= epochs:
        out.append(r)
        r *= eta
    return (*out, epochs)


def geometric_rungs(epochs: int, min_epochs: int, eta: int) -> Rungs:
    """The geometric plan as ``(epoch, eta)`` rungs (the full schedule is not a rung)."""
    return tuple((r, eta) for r in rungs(epochs, min_epochs, eta)[:-1])


def early_rungs(epochs: int, eta: int = 3) -> Rungs:
    """The default plan: keep ``1/eta`` at 10% of the schedule and half of those at 20% (about 30% of the grid's
    epochs for eta 3); schedules under 4 epochs get one rung at epoch 1."""
    first = max(1, epochs // 10)
    return ((first, eta), (2 * first, 2)) if 4 * first <= epochs else ((first, eta),)


def keep_count(n: int, eta: int) -> int:
    return max(1, math.ceil(n / eta))


def halving_epochs(n: int, plan: Rungs, epochs: int) -> int:
    """Total epochs successive halving trains for ``n`` configs (paused runs continue, never restart)."""
    total, previous = 0, 0
    for r, eta in plan:
        total += n * (r - previous)
        previous, n = r, keep_count(n, eta)
    return total + n * (epochs - previous)


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
    plan: Rungs,
    epochs: int,
) -> HalvingStep:
    """Walk the rungs over the current run folders and return the next thing to do (a pure function)."""
    step = HalvingStep()
    alive = list(configs)
    etas = [eta for _, eta in plan]
    for i, r in enumerate((*(r for r, _ in plan), epochs)):
        last = i == len(plan)
        waiting = [c for c in alive if not _reached(result_of(run_id_of(c)), r, last)]
        if waiting:
            until = None if last else r
            for c in waiting:
                result = result_of(run_id_of(c))
                (step.restart if result and result["status"] == "pruned" else step.train).append((c, until))
            return step
        if last:
            break
        eta = etas[i]
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
