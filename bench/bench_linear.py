"""Linear probing: the whole lr x wd grid from features computed once, against ordinary linear runs.

Three ways to train ``linear`` on one synthetic task (tune stage, vptlab-tiny), repeated and interleaved:

* **ordinary run**: ``train_run(..., linear_features=False)``: the frozen backbone runs on every batch of every
  epoch, as any other method does;
* **features run**: ``train_run`` (the default for ``linear``): features computed once (cold cache) and the head
  trained on them;
* **grid pass**: :func:`vptlab.train.linear_grid.train_linear_grid` over the 40-point VPT grid (10 lr x 4 wd)
  with a cold feature cache: one feature pass, 40 heads side by side.

Target (issue 7): the whole grid in at most the time of two ordinary linear runs.  The grid's per-config val
top-1 is checked against separate features runs (largest difference printed).

    .venv/bin/python bench/bench_linear.py                 # satellite, 20 epochs, 3 repetitions
    .venv/bin/python bench/bench_linear.py --epochs 100 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vptlab.data import load_task
from vptlab.methods import PROMPT_GRID
from vptlab.train import RunConfig, train_run
from vptlab.train.linear_grid import train_linear_grid


def grid_configs(task: str, epochs: int) -> list[RunConfig]:
    return [
        RunConfig(
            method="linear",
            task=task,
            epochs=epochs,
            warmup_epochs=min(max(1, epochs // 10), epochs - 1),
            lr=lr,
            wd=wd,
            eval_test_every=0,
        )  # fmt: skip
        for lr in PROMPT_GRID["lr"]
        for wd in PROMPT_GRID["wd"]
    ]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def one_round(cfgs: list[RunConfig], data, work: Path, i: int) -> dict:
    """Ordinary run, features run and grid pass, each with a cold feature cache of its own."""
    cfg = cfgs[len(cfgs) // 2]
    os.environ["VPTLAB_CACHE"] = str(work / f"features-{i}-a")
    ordinary, r0 = timed(lambda: train_run(cfg, work / f"ord-{i}", task_data=data, linear_features=False))
    os.environ["VPTLAB_CACHE"] = str(work / f"features-{i}-b")
    features, r1 = timed(lambda: train_run(cfg, work / f"feat-{i}", task_data=data))
    os.environ["VPTLAB_CACHE"] = str(work / f"features-{i}-c")
    dirs = [work / f"grid-{i}" / str(k) for k in range(len(cfgs))]
    grid, results = timed(lambda: train_linear_grid(cfgs, dirs, task_data=data))
    assert r0["metrics"]["val_top1"] == r1["metrics"]["val_top1"]
    return {"ordinary_s": ordinary, "features_s": features, "grid_s": grid, "grid": results,
            "features_extract_s": r1["linear_features"]["seconds"]}  # fmt: skip


def check_grid(cfgs: list[RunConfig], grid: list[dict], data, work: Path, every: int) -> float:
    """Largest |val top-1 difference| between the grid and separate features runs (every ``every``-th config)."""
    worst = 0.0
    for k in range(0, len(cfgs), every):
        alone = train_run(cfgs[k], work / f"check-{k}", task_data=data)
        if alone["status"] != grid[k]["status"]:
            return float("inf")
        if alone["status"] == "ok":
            worst = max(worst, abs(alone["metrics"]["val_top1"] - grid[k]["metrics"]["val_top1"]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="satellite")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_task("synthetic", args.task, stage="tune")
    cfgs = grid_configs(args.task, args.epochs)
    with tempfile.TemporaryDirectory(prefix="vptlab-bench-linear-") as tmp:
        work = Path(tmp)
        rounds = [one_round(cfgs, data, work, i) for i in range(args.repeats)]
        worst = check_grid(cfgs, rounds[-1]["grid"], data, work, every=3)
    med = {k: statistics.median(r[k] for r in rounds) for k in ("ordinary_s", "features_s", "grid_s")}
    statuses = [r["status"] for r in rounds[-1]["grid"]]
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}",
        "task": args.task,
        "epochs": args.epochs,
        "grid_points": len(cfgs),
        "grid_statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "rounds": [{k: round(v, 2) for k, v in r.items() if k != "grid"} for r in rounds],
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "grid_in_ordinary_runs": round(med["grid_s"] / med["ordinary_s"], 2),
        "grid_vs_40_ordinary_runs": round(len(cfgs) * med["ordinary_s"] / med["grid_s"], 1),
        "grid_vs_40_features_runs": round(len(cfgs) * med["features_s"] / med["grid_s"], 1),
        "features_run_speedup": round(med["ordinary_s"] / med["features_s"], 1),
        "max_val_top1_diff_grid_vs_separate": worst,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
