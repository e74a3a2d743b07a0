"""Prompt sweeps: K vpt-deep configurations in one pass through the frozen backbone, against K sequential runs.

:func:`prompt_sweep.train_prompt_sweep` (``bench/prompt_sweep.py``) stacks the K runs' batches into one K x B batch (each copy with
its own prompts and head); the baseline trains the same K configs one after another with ``train_run``.  Same
configs (lr, wd and seed vary, prompt length fixed), data, epochs; the two are run interleaved and repeated, the
median of each is reported with the ratio.  The per-config results are compared too (largest val top-1
difference; prompt dropout is off by default, so the two should agree to float tolerance).

    .venv/bin/python bench/bench_prompt_sweep.py                     # K = 4, 8, 16; vptlab-tiny, 2 epochs
    .venv/bin/python bench/bench_prompt_sweep.py --ks 4 --batch-size 16

Expected on a CPU: no gain (K x B images cost what K batches of B cost; there is no idle hardware to fill).
The pass pays where one run's batch leaves an accelerator underused; run this on a GPU with ``--device cuda``
to see whether it does there.
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

from prompt_sweep import train_prompt_sweep
from vptlab.data import load_task
from vptlab.methods import PROMPT_GRID
from vptlab.train import RunConfig, train_run

SEEDS = (42, 44, 82, 100)


def sweep_configs(args: argparse.Namespace, k: int) -> list[RunConfig]:
    """K configs cycling through the stable half of the VPT grid (lr <= 2.5), its wds and four seeds.

    Prompt dropout is off (``--prompt-dropout``), so each swept run should match its sequential twin to float
    tolerance and the accuracy check is meaningful; it does not change the cost."""
    lrs = [lr for lr in PROMPT_GRID["lr"] if lr <= 2.5]
    wds = PROMPT_GRID["wd"]
    points = [(lrs[i % len(lrs)], wds[(i // len(lrs)) % len(wds)], SEEDS[i % len(SEEDS)]) for i in range(k)]
    return [
        RunConfig.of(
            method="vpt-deep",
            task=args.task,
            epochs=args.epochs,
            warmup_epochs=1 if args.epochs > 1 else 0,
            lr=lr,
            wd=wd,
            seed=seed,
            batch_size=args.batch_size,
            prompt_length=args.prompt_length,
            eval_test_every=0,
            prompt_dropout=args.prompt_dropout,
        )  # fmt: skip
        for lr, wd, seed in points
    ]


def measure(cfgs: list[RunConfig], data, work: Path, device: str) -> dict:
    start = time.perf_counter()
    seq = [train_run(c, work / f"seq-{i}", task_data=data, device=device, progress=False, save_weights=False)
           for i, c in enumerate(cfgs)]  # fmt: skip
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    swept = train_prompt_sweep(cfgs, [work / f"sweep-{i}" for i in range(len(cfgs))], task_data=data,
                               device=device, save_weights=False)  # fmt: skip
    sweep = time.perf_counter() - start
    diffs = [abs(a["metrics"]["val_top1"] - b["metrics"]["val_top1"]) for a, b in zip(seq, swept)
             if a["status"] == b["status"] == "ok"]  # fmt: skip
    return {"sequential_s": sequential, "sweep_s": sweep, "max_val_top1_diff": max(diffs, default=None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="satellite")
    parser.add_argument("--ks", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prompt-length", type=int, default=10)
    parser.add_argument("--prompt-dropout", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_task("synthetic", args.task, stage="tune")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vptlab-bench-sweep-") as tmp:
        for rep in range(args.repeats):
            for k in args.ks:
                work = Path(tmp) / f"{rep}-{k}"
                rows.append({"k": k, **measure(sweep_configs(args, k), data, work, args.device)})
                print(json.dumps({key: round(v, 2) if isinstance(v, float) else v for key, v in rows[-1].items()}),
                      flush=True)  # fmt: skip
    summary = []
    for k in args.ks:
        mine = [r for r in rows if r["k"] == k]
        seq = statistics.median(r["sequential_s"] for r in mine)
        swp = statistics.median(r["sweep_s"] for r in mine)
        summary.append({"k": k, "sequential_s": round(seq, 2), "sweep_s": round(swp, 2),
                        "speedup": round(seq / swp, 2),
                        "max_val_top1_diff": max((r["max_val_top1_diff"] or 0) for r in mine)})  # fmt: skip
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, device {args.device}, load avg {os.getloadavg()[0]:.1f}",
        "task": args.task, "epochs": args.epochs, "batch_size": args.batch_size,
        "prompt_length": args.prompt_length, "summary": summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
