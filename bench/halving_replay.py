"""Replays other successive-halving rules over the full grid that ``bench_halving.py`` trained (no training).

Every tune run of the full grid has its per-epoch history in ``metrics.jsonl``, so any rule of the form "at epoch
r keep the best 1/eta by some signal" can be replayed: which config it would select (best last-epoch val top-1
among its survivors) and what fraction of the full grid's image-steps it would train.  Without final runs for
the configs it would pick, the replay judges a rule by a proxy: whether its pick's last-epoch val top-1 is within
``--tolerance`` points of the full grid's pick.

    .venv/bin/python bench/halving_replay.py /tmp/bench/halving     # the folder bench_halving.py --out wrote
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from vptlab.store.study import StudyStore
from vptlab.study.plan import run_id_of
from vptlab.study.spec import spec_from_dict
from vptlab.study.state import StudyView, study_state

# (rung epoch, eta) pairs for a 10-epoch study
RULES = {
    "1/3 at 1, 1/3 at 3 (geometric)": [(1, 3), (3, 3)],
    "1/4 at 2": [(2, 4)],
    "1/3 at 1, 1/2 at 2 (vptlab's default)": [(1, 3), (2, 2)],
    "1/3 at 2, 1/2 at 4": [(2, 3), (4, 2)],
}
SIGNALS = ("val_top1", "val_loss", "train_loss")


def histories(out: Path) -> list[tuple[str, str, dict]]:
    """(method, task, {(lr, wd): {epoch: metrics row}}) for every tune grid of the study in ``out``."""
    spec = spec_from_dict(json.loads((out / "study.json").read_text()), name="replay")
    store = StudyStore(out)
    try:
        states = study_state(spec, StudyView(store.result_of, store.val_at))
    finally:
        store.close()
    groups = []
    for state in states:
        grid = {}
        for cfg in state.tune:
            lines = (out / "runs" / run_id_of(cfg) / "metrics.jsonl").read_text().splitlines()
            grid[(cfg.lr, cfg.wd)] = {row["epoch"] + 1: row for row in map(json.loads, lines)}
        groups.append((state.group.method, state.group.task, grid))
    return groups


def score(history: dict, epoch: int, signal: str) -> float:
    """Higher is better; a run that ended before ``epoch`` (diverged) or has no value scores lowest."""
    value = (history.get(epoch) or {}).get(signal)
    if value is None or not math.isfinite(value):
        return -math.inf
    return -value if signal.endswith("loss") else value


def replay(grid: dict, rule: list[tuple[int, int]], signal: str, epochs: int) -> tuple[tuple, float]:
    """The config a rule selects, and its image-steps as a fraction of the full grid's."""
    alive, spent, previous = sorted(grid), 0, 0
    for rung, eta in rule:
        spent += len(alive) * (rung - previous)
        previous = rung
        keep = max(1, math.ceil(len(alive) / eta))
        alive = sorted(alive, key=lambda c: -score(grid[c], rung, signal))[:keep]  # stable: smaller lr first
    spent += len(alive) * (epochs - previous)
    return best(grid, alive, epochs), spent / (len(grid) * epochs)


def best(grid: dict, configs: list, epochs: int) -> tuple:
    return max(configs, key=lambda c: (score(grid[c], epochs, "val_top1"), -c[0], -c[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the study folder bench_halving.py trained")
    parser.add_argument("--tolerance", type=float, default=1.0, help="val top-1 points")
    args = parser.parse_args()
    groups = histories(args.out)
    epochs = max(max(h) for _, _, grid in groups for h in grid.values())
    print(
        f"{len(groups)} method/task grids, {epochs} epochs; pick within {args.tolerance} val points of the full grid's"
    )
    print("| rule | signal | picks within tolerance | most compute | misses |\n|---|---|---:|---:|---|")
    for name, rule in RULES.items():
        for signal in SIGNALS:
            hits, costs, misses = 0, [], []
            for method, task, grid in groups:
                pick, cost = replay(grid, rule, signal, epochs)
                full = best(grid, sorted(grid), epochs)
                ok = (
                    score(grid[pick], epochs, "val_top1")
                    >= score(grid[full], epochs, "val_top1") - args.tolerance
                )
                hits += ok
                costs.append(cost)
                misses += [] if ok else [f"{method}/{task}"]
            print(f"| {name} | {signal} | {hits}/{len(groups)} | {max(costs):.0%} | {', '.join(misses)} |")


if __name__ == "__main__":
    main()
