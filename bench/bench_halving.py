"""Per study: the tune stage with successive halving against the full grid, on the synthetic benchmark.

1. The full grid: a study (vptlab-tiny, the synthetic tasks, vpt-deep over the 10-lr VPT grid and full over the
   FT grid) with ``early_stopping = "none"``: every grid point trains the whole schedule, the best last-epoch val
   top-1 is selected, its final runs train with every seed.
2. Successive halving: the same spec with ``early_stopping = "sha"``, run into the *same* folder.  Every grid
   point it would train already exists there, and a run paused at a rung continues exactly as if it had not
   stopped, so the halving decisions (val top-1 at each rung, read from the full runs' histories) are exactly
   what a halving study would decide; only the final runs of configs the full grid did not select are trained.
3. Per method and task: the tune compute halving uses (image-steps, and image-steps + eval images) as a
   fraction of the full grid's, replayed from the same histories with :mod:`vptlab.study.asha`; and whether the
   config it selects reaches a final test top-1 within one seed-std of the full grid's choice.

    .venv/bin/python bench/bench_halving.py --out /tmp/halving            # all 11 tasks (about 40 min here)
    .venv/bin/python bench/bench_halving.py --out /tmp/h --tasks shapes cells --epochs 6

Rerunning with the same ``--out`` trains nothing that is already there (the study runner resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from vptlab.methods import FT_GRID, PROMPT_GRID
from vptlab.store.study import StudyStore
from vptlab.study.asha import _best, keep_count
from vptlab.study.estimate import Cost, split_sizes
from vptlab.study.plan import run_id_of
from vptlab.study.runner import run_study
from vptlab.study.spec import spec_from_dict
from vptlab.study.state import StudyView, study_state
from vptlab.study.worker import WorkerOptions


def spec_dict(args: argparse.Namespace, early_stopping: str) -> dict:
    """The benchmark study; the two runs differ only in ``[tune]``."""
    return {
        "name": "bench-halving",
        "description": "successive halving vs full grid, synthetic benchmark, vptlab-tiny",
        "backbone": {"name": "vptlab-tiny", "image_size": 32},
        "data": {"source": "synthetic", "tasks": list(args.tasks)},
        "training": {
            "epochs": args.epochs,
            "warmup_epochs": args.warmup,
            "eval_test_every": 0,
            "seeds": list(args.seeds),
        },  # fmt: skip
        "methods": {
            "vpt-deep": {"lr": list(PROMPT_GRID["lr"]), "wd": list(args.vpt_wd), "prompt_length": 10},
            "full": {"lr": list(FT_GRID["lr"]), "wd": list(FT_GRID["wd"])},
        },
        "tune": {"early_stopping": early_stopping, **_plan(args)},
        "executor": {"workers": args.workers},
    }


def _plan(args: argparse.Namespace) -> dict:
    """``[tune]`` keys of the halving plan: vptlab's default (early) or the geometric one."""
    if args.plan == "geometric":
        return {"eta": args.eta, "min_epochs": args.min_epochs}
    return {"eta": args.eta}


def replay_halving(
    state, store: StudyStore, plan: tuple[tuple[int, int], ...], epochs: int
) -> tuple[Cost, tuple, list]:
    """Halving's tune cost, the full grid's (nominal: every point to the end, as ``summary.json`` counts it;
    spent: as it ran, diverged points stopping early), and the survivors, from the full grid's histories."""
    done = {
        run_id_of(c): int((store.result_of(run_id_of(c)) or {}).get("epochs_done") or 0) for c in state.tune
    }
    alive, used = list(state.tune), {}
    for r, eta in (*plan, (epochs, None)):
        for c in alive:
            used[run_id_of(c)] = min(done[run_id_of(c)], r)
        if eta is not None:
            alive = _best(alive, store.val_at, r, keep_count(len(alive), eta))
    halving = sum((_tune_cost(c, used[run_id_of(c)]) for c in state.tune), Cost())
    spent = sum((_tune_cost(c, done[run_id_of(c)]) for c in state.tune), Cost())
    nominal = sum((_tune_cost(c, c.epochs) for c in state.tune), Cost())
    return halving, (nominal, spent), alive


def _tune_cost(cfg, epochs: int) -> Cost:
    """Image-steps and val images of a tune run trained ``epochs`` epochs (tune runs never evaluate test)."""
    train, val = split_sizes(cfg, None)
    return Cost(train * epochs, (val or 0) * epochs)


def compare(args: argparse.Namespace, out: Path) -> dict:
    options = WorkerOptions(device="cpu", threads=1)
    timings = {}
    specs = {k: spec_from_dict(spec_dict(args, k), name=f"halving-{k}") for k in ("none", "sha")}
    summaries = {}
    for kind, spec in specs.items():
        start = time.perf_counter()
        summaries[kind] = run_study(spec, out, options=options, echo=lambda s: None).summary
        timings[kind] = round(time.perf_counter() - start, 1)
    store = StudyStore(out)
    try:
        states = study_state(specs["sha"], StudyView(store.result_of, store.val_at))
        plan = specs["sha"].tune.rungs
        rows = [_row(s, store, plan, args.epochs, summaries) for s in states]
    finally:
        store.close()
    return {
        "rungs": plan,
        "seconds": timings,
        "groups": rows,
        "totals": _totals(rows),
    }


def _row(state, store: StudyStore, plan, epochs: int, summaries: dict) -> dict:
    g = state.group
    halving, (full, spent), survivors = replay_halving(state, store, plan, epochs)
    picks = {k: _group(summaries[k], g.method, g.task) for k in ("none", "sha")}
    full_pick, sha_pick = picks["none"], picks["sha"]
    same = full_pick.get("selected") == sha_pick.get("selected")
    std = full_pick.get("test_top1_std")
    gap = (sha_pick["test_top1_mean"] - full_pick["test_top1_mean"]) if "test_top1_mean" in sha_pick and (
        "test_top1_mean" in full_pick) else None  # fmt: skip
    return {
        "method": g.method,
        "task": g.task,
        "grid": len(state.tune),
        "image_steps_fraction": round(halving.train / full.train, 3),
        "total_compute_fraction": round(halving.total / full.total, 3),
        "fraction_of_spent": round(halving.train / spent.train, 3),
        "full_grid_pick": full_pick.get("selected"),
        "halving_pick": sha_pick.get("selected"),
        "same_pick": same,
        "full_grid_test": _fmt(full_pick),
        "halving_test": _fmt(sha_pick),
        "gap": None if gap is None else round(gap, 2),
        "within_one_std": same or (gap is not None and std is not None and abs(gap) <= std),
        "not_worse_by_one_std": same or (gap is not None and std is not None and gap >= -std),
        "replay_agrees": _selected_id(state) in {run_id_of(c) for c in survivors},
    }


def _selected_id(state) -> str | None:
    """The run id halving selected (the runner's decision), to check the replay agrees with it."""
    if state.selection is None or state.selection.result is None:
        return None
    return state.selection.result["run_id"]


def _group(summary: dict, method: str, task: str) -> dict:
    return next(g for g in summary["groups"] if g["method"] == method and g["task"] == task)


def _fmt(group: dict) -> str | None:
    if "test_top1_mean" not in group:
        return group.get("phase")
    return f"{group['test_top1_mean']:.2f} ± {group['test_top1_std']:.2f}"


def _totals(rows: list[dict]) -> dict:
    return {
        "groups": len(rows),
        "within_one_std": sum(r["within_one_std"] for r in rows),
        "not_worse_by_one_std": sum(r["not_worse_by_one_std"] for r in rows),
        "same_pick": sum(r["same_pick"] for r in rows),
        "median_image_steps_fraction": statistics.median(r["image_steps_fraction"] for r in rows),
        "max_image_steps_fraction": max(r["image_steps_fraction"] for r in rows),
        "median_total_compute_fraction": statistics.median(r["total_compute_fraction"] for r in rows),
        "median_fraction_of_spent": statistics.median(r["fraction_of_spent"] for r in rows),
    }


def markdown(result: dict) -> str:
    lines = [
        "| method | task | grid | image-steps vs full grid | vs full grid as run | full-grid pick (lr, wd) | test top-1 | "
        "halving pick | test top-1 | gap | within 1 std | not worse by > 1 std |",
        "|---|---|---:|---:|---:|---|---|---|---|---:|---|---|",
    ]
    for r in result["groups"]:
        yes = {True: "yes", False: "no"}
        lines.append(
            f"| {r['method']} | {r['task']} | {r['grid']} | {100 * r['image_steps_fraction']:.0f}% | "
            f"{100 * r['fraction_of_spent']:.0f}% | {_pick(r['full_grid_pick'])} | {r['full_grid_test']} | "
            f"{'same' if r['same_pick'] else _pick(r['halving_pick'])} | "
            f"{'' if r['same_pick'] else r['halving_test']} | {r['gap'] if r['gap'] is not None else ''} | "
            f"{yes[r['within_one_std']]} | {yes[r['not_worse_by_one_std']]} |"
        )
    return "\n".join(lines)


def _pick(selected: dict | None) -> str:
    return "-" if not selected else f"{selected.get('lr'):g}, {selected.get('wd'):g}"


def main() -> None:
    from vptlab.data.synthetic import SYNTHETIC_TASKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="study folder (kept; rerun to continue)")
    parser.add_argument("--tasks", nargs="+", default=list(SYNTHETIC_TASKS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--plan", choices=["early", "geometric"], default="early",
                        help="halving plan: vptlab's default, or rungs at min_epochs * eta^k")  # fmt: skip
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--vpt-wd", nargs="+", type=float, default=[0.0001])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 44, 82])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
    result = compare(args, Path(args.out))
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {args.workers} workers x 1 thread"
    print(json.dumps(result, indent=2))
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
