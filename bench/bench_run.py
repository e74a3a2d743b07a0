"""Per run: vptlab's ``train_run`` against a loop that does what the reference code (KMnP/vpt) does.

The baseline is the reference trainer's shape, written here: a torchvision ``Dataset`` that opens, converts,
resizes and normalises every image from its file on every access, behind a ``DataLoader`` (one worker per
core, no persistent workers), fp32, and after every epoch an evaluation of val (tune stage) and of the test
set.  Both sides train the same model (``vptlab.train.build_model``: same backbone, method, seed-determined
init), with the same optimiser and lr schedule (``build_optimizer``, ``Schedule``), batch size and epochs, on
the same images: a synthetic task exported as a VTAB-1k folder of PNGs (vptlab reads it through
``vtab1k:ROOT``, i.e. through its decoded-image cache).  Only the shuffling differs (a DataLoader generator
vs vptlab's seeded order), so accuracies agree within seed noise, not bit for bit.

vptlab does what the protocol needs and no more: tune runs evaluate val every epoch and never test (test is
never used to select), final runs evaluate test after the last epoch (``eval_test_every = 0``, the study
default; ``--final-test-every 1`` for the per-epoch loss curves the paper plots).

    .venv/bin/python bench/bench_run.py                        # vpt-deep, tune + final, 2 seeds, 10 epochs
    .venv/bin/python bench/bench_run.py --methods linear full --seeds 42 --epochs 5

Runs are interleaved (baseline, vptlab, baseline, ...) so load from other processes hits both alike; the
summary reports per-run wall times, the median ratio, and a breakdown (data, forward/backward, evaluation).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import vptlab.train.loop as loop_mod
import vptlab.train.run as run_mod
from reference_data import ReferenceDataset  # bench/, on sys.path when a script here runs
from vptlab.data import load_task
from vptlab.data.synthetic import export_synthetic
from vptlab.train import RunConfig, build_model, train_run
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr

# split files each stage reads: (train, [evaluated every epoch])
REF_SPLITS = {"tune": ("train800", ["val200", "test"]), "final": ("train800val200", ["test"])}


class Clock:
    """Accumulates seconds per named phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}


def _loader(folder: Path, split: str, size: int, batch: int, workers: int, seed: int | None) -> DataLoader:
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        ReferenceDataset(folder, split, size),
        batch_size=batch,
        shuffle=seed is not None,
        num_workers=workers,
        generator=gen,
        drop_last=False,
    )


def _timed_batches(
    loader: DataLoader, clock: Clock, phase: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    it = iter(loader)
    while True:
        with clock(phase):
            item = next(it, None)
        if item is None:
            return
        yield item


def ref_run(cfg: RunConfig, folder: Path, workers: int) -> dict:
    """One run the reference way; returns last-epoch metrics, wall seconds and the breakdown."""
    cfg = cfg.resolved()
    start, clock = time.perf_counter(), Clock()
    info = json.loads((folder / "task.json").read_text())
    model, method = build_model(cfg, info["num_classes"])
    peak = scaled_lr(cfg.lr, cfg.batch_size)
    optimizer, _ = build_optimizer(model, method.optimizer, peak, cfg.wd, cfg.reference_optimizer)
    train_split, eval_splits = REF_SPLITS[cfg.stage]
    size = cfg.image_size
    steps = len(_loader(folder, train_split, size, cfg.batch_size, 0, None))
    schedule = Schedule(optimizer, peak, cfg.schedule, cfg.warmup_epochs, cfg.epochs, steps)
    metrics: dict[str, float] = {}
    for epoch in range(cfg.epochs):
        loader = _loader(folder, train_split, size, cfg.batch_size, workers, cfg.seed * 1000 + epoch)
        method.train_mode(model)
        for step, (x, y) in enumerate(_timed_batches(loader, clock, "data")):
            with clock("forward_backward"):
                schedule.apply(epoch, step)
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with clock("evaluation"):
            for split in eval_splits:
                ev = _loader(folder, split, size, cfg.batch_size, workers, None)
                metrics[f"{split}_top1"] = _ref_evaluate(model, ev)
    return {"seconds": time.perf_counter() - start, "metrics": metrics, "breakdown": clock.rounded()}


@torch.no_grad()
def _ref_evaluate(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct, seen = 0, 0
    for x, y in loader:
        correct += int((model(x).argmax(1) == y).sum())
        seen += len(y)
    return 100.0 * correct / seen


@contextlib.contextmanager
def _instrumented(clock: Clock) -> Iterator[None]:
    """Time vptlab's data (batch reads + normalisation) and evaluation by wrapping its two inner functions."""
    orig_batches, orig_evaluate = loop_mod.batches, run_mod.evaluate
    state = {"eval": False}

    def batches(*args, **kwargs):
        it = orig_batches(*args, **kwargs)
        while True:
            with clock("evaluation_data" if state["eval"] else "data"):
                item = next(it, None)
            if item is None:
                return
            yield item

    def evaluate(*args, **kwargs):
        state["eval"] = True
        try:
            with clock("evaluation"):
                return orig_evaluate(*args, **kwargs)
        finally:
            state["eval"] = False

    loop_mod.batches, run_mod.evaluate = batches, evaluate
    try:
        yield
    finally:
        loop_mod.batches, run_mod.evaluate = orig_batches, orig_evaluate


def vptlab_run(cfg: RunConfig, root: Path, out: Path) -> dict:
    """One ``train_run`` reading the exported folder (warm decoded-image cache), timed from ``load_task`` on."""
    clock = Clock()
    start = time.perf_counter()
    with clock("load_task"):
        data = load_task(f"vtab1k:{root}", cfg.task, stage=cfg.stage, image_size=cfg.resolved().image_size)
    with _instrumented(clock):
        result = train_run(cfg, out, task_data=data, progress=False, save_weights=False)
    seconds = time.perf_counter() - start
    total_data = clock.seconds.get("data", 0.0)
    evaluation = clock.seconds.get("evaluation", 0.0)
    breakdown = clock.rounded()
    breakdown["forward_backward"] = round(result["seconds"] - total_data - evaluation, 2)
    breakdown.pop("evaluation_data", None)
    metrics = {k: v for k, v in result["metrics"].items() if k.endswith("_top1")}
    extra = {k: result[k] for k in ("linear_features",) if k in result}
    return {"seconds": seconds, "metrics": metrics, "breakdown": breakdown, **extra}


def export(root: Path, task: str, size: int) -> Path:
    folder = root / task
    if not (folder / "test.txt").is_file():
        export_synthetic(task, root, image_size=size)
    return folder


def compare(args: argparse.Namespace, root: Path, work: Path) -> list[dict]:
    rows = []
    for method in args.methods:
        for stage in args.stages:
            every = args.final_test_every if stage == "final" else 0
            for seed in args.seeds:
                cfg = RunConfig(method=method, task=args.task, data=f"vtab1k:{root}", stage=stage, image_size=args.size,
                                epochs=args.epochs, warmup_epochs=min(max(1, args.epochs // 10), args.epochs - 1), seed=seed,
                                eval_test_every=every)  # fmt: skip
                ref = ref_run(cfg, root / args.task, args.workers)
                ours = vptlab_run(cfg, root, work / f"{method}-{stage}-{seed}-{time.time_ns()}")
                rows.append({"method": method, "stage": stage, "seed": seed, "baseline": ref, "vptlab": ours,
                             "ratio": ref["seconds"] / ours["seconds"]})  # fmt: skip
                print(json.dumps(_short(rows[-1])), flush=True)
    return rows


def _short(row: dict) -> dict:
    acc = {k: round(v, 2) for k, v in row["vptlab"]["metrics"].items()}
    ref_acc = {
        k.replace("200", "").replace("800", ""): round(v, 2) for k, v in row["baseline"]["metrics"].items()
    }
    return {
        "method": row["method"],
        "stage": row["stage"],
        "seed": row["seed"],
        "baseline_s": round(row["baseline"]["seconds"], 2),
        "vptlab_s": round(row["vptlab"]["seconds"], 2),
        "ratio": round(row["ratio"], 2),
        "baseline_acc": ref_acc,
        "vptlab_acc": acc,
        "baseline_breakdown": row["baseline"]["breakdown"],
        "vptlab_breakdown": row["vptlab"]["breakdown"],
    }


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for key in dict.fromkeys((r["method"], r["stage"]) for r in rows):
        group = [r for r in rows if (r["method"], r["stage"]) == key]
        ref_test = [r["baseline"]["metrics"]["test_top1"] for r in group]
        our_test = [r["vptlab"]["metrics"].get("test_top1") for r in group]
        our_test = [v for v in our_test if v is not None]
        out.append({
            "method": key[0],
            "stage": key[1],
            "runs": len(group),
            "median_ratio": round(statistics.median(r["ratio"] for r in group), 2),
            "baseline_s_median": round(statistics.median(r["baseline"]["seconds"] for r in group), 2),
            "vptlab_s_median": round(statistics.median(r["vptlab"]["seconds"] for r in group), 2),
            "baseline_test_top1": _mean_std(ref_test),
            "vptlab_test_top1": _mean_std(our_test),
            "vptlab_val_top1": _mean_std([r["vptlab"]["metrics"].get("val_top1") for r in group]),
            "baseline_val_top1": _mean_std([r["baseline"]["metrics"].get("val200_top1") for r in group]),
        })  # fmt: skip
    return out


def _mean_std(values: list) -> str | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f} (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="satellite", help="a synthetic task (vptlab data list synthetic)")
    parser.add_argument("--methods", nargs="+", default=["vpt-deep"])
    parser.add_argument("--stages", nargs="+", default=["tune", "final"], choices=["tune", "final"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 44])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=32, help="model input size (vptlab-tiny takes 32)")
    parser.add_argument("--source-size", type=int, default=32,
                        help="size of the exported PNGs; both pipelines resize them to --size")  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="baseline DataLoader workers"
    )
    parser.add_argument(
        "--final-test-every", type=int, default=0, help="vptlab final runs: test every N epochs"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, both sides (0: torch's default)"
    )
    parser.add_argument("--dir", help="keep the exported folder and cache here (default: a temporary folder)")
    parser.add_argument("--json", help="also write every row to this file")
    args = parser.parse_args()
    os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vptlab-bench-run-") as tmp:
        base = Path(args.dir or tmp)
        os.environ.setdefault("VPTLAB_CACHE", str(base / "cache"))
        root = base / f"vtab{args.source_size}"
        export(root, args.task, args.source_size)
        t0 = time.perf_counter()
        for stage in args.stages:  # build the cache once (reported, not part of the per-run times)
            load_task(f"vtab1k:{root}", args.task, stage=stage, image_size=args.size)
        build = time.perf_counter() - t0
        rows = compare(args, root, base / "runs")
    summary = {
        "machine": _machine(),
        "task": args.task,
        "epochs": args.epochs,
        "image_size": args.size,
        "source_png_size": args.source_size,
        "cache_build_s": round(build, 2),
        "groups": summarize(rows),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "rows": [_short(r) for r in rows]}, indent=2)
        )


def _machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
