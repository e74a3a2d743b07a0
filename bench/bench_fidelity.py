"""What a fidelity setting changes: the same final runs under two values of one run-config field, several seeds.

The runs: vptlab-tiny, a few synthetic tasks exported as VTAB-1k folders of PNGs at ``--render-size`` (64 px by
default, so loading them at the backbone's 32 px really resizes: a 2x shrink, where PIL's antialiasing and TF's
plain bilinear differ), each method at its registry default lr/wd, final stage (train800val200 -> test),
``--epochs`` epochs, every seed.  Both settings run on the same images, seeds and configs; only the compared
field differs.  The summary gives per task and method the mean and sample std (ddof 1) of the last-epoch test
top-1 over seeds for each setting, the difference of the means, and whether it exceeds the two stds summed.

    nice .venv/bin/python bench/bench_fidelity.py                                  # interpolation: bilinear vs tf-bilinear
    nice .venv/bin/python bench/bench_fidelity.py --field head_init --values default reference   # core's option
    nice .venv/bin/python bench/bench_fidelity.py --tasks count ori --methods full --seeds 42 44 --epochs 5

``--field`` is any RunConfig field (``interpolation``, ``head_init``, ``precision``, ...) or a method option; one
the installed vptlab does not have ends with a one-line message naming it.  ``--json PATH`` writes every run's
numbers.  Finished runs in ``--dir`` are reused, so an interrupted measurement resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vptlab.data.synthetic import export_synthetic
from vptlab.train import RunConfig, train_run

DEFAULT_VALUES = {"interpolation": ["bilinear", "tf-bilinear"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--field", default="interpolation", help="the RunConfig field (or method option) compared")
    p.add_argument(
        "--values", nargs=2, help="its two values (default for interpolation: bilinear tf-bilinear)"
    )
    p.add_argument("--tasks", nargs="+", default=["count", "satellite", "textures"])
    p.add_argument("--methods", nargs="+", default=["full", "vpt-deep"])
    p.add_argument("--seeds", nargs="+", type=int, default=[42, 44, 82])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--render-size", type=int, default=64, help="size the PNGs are written at")
    p.add_argument("--image-size", type=int, default=32, help="size the runs load them at")
    p.add_argument("--dir", help="keep the exported tasks and runs here (default: a temporary folder)")
    p.add_argument("--json", help="write every run's numbers here")
    args = p.parse_args(argv)
    args.values = args.values or DEFAULT_VALUES.get(args.field)
    if not args.values:
        p.error(f"--values is required for --field {args.field}")
    return args


def make_config(fields: dict, field: str, value: str) -> RunConfig:
    """A RunConfig with ``field`` set to ``value``: a RunConfig field, else a method option (``options``)."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    if field in names:
        return RunConfig(**fields, **{field: _typed(value)})
    for holder in ("options", "method_options"):
        if holder in names:
            return RunConfig(**fields, **{holder: {field: _typed(value)}})
    raise SystemExit(f"bench_fidelity: this vptlab has no run-config field or method option {field!r}")


def _typed(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def run_all(args: argparse.Namespace, root: Path) -> list[dict]:
    data = root / "data"
    for task in args.tasks:
        if not (data / task / "test.txt").is_file():
            export_synthetic(task, data, image_size=args.render_size)
    rows = []
    for task in args.tasks:
        for method in args.methods:
            for seed in args.seeds:
                for value in args.values:  # interleaved, so machine load hits both settings alike
                    fields = {
                        "method": method,
                        "task": task,
                        "data": f"vtab1k:{data}",
                        "stage": "final",
                        "seed": seed,
                        "image_size": args.image_size,
                        "epochs": args.epochs,
                        "warmup_epochs": max(1, args.epochs // 10),
                        "eval_test_every": 0,
                    }
                    cfg = make_config(fields, args.field, value)
                    start = time.perf_counter()
                    result = train_run(cfg, root / "runs" / cfg.run_id, device="cpu", progress=False)
                    rows.append(
                        {
                            "task": task,
                            "method": method,
                            "seed": seed,
                            "value": value,
                            "status": result["status"],
                            "test_top1": (result.get("metrics") or {}).get("test_top1"),
                            "seconds": round(time.perf_counter() - start, 1),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict], values: list[str]) -> str:
    """One markdown row per task and method: mean ± std per setting, the difference, and if it is clear."""
    a, b = values
    lines = [
        f"| task | method | {a} | {b} | {b} - {a} | beyond std_a + std_b |",
        "|---|---|---:|---:|---:|---|",
    ]
    diffs = []
    for task, method in dict.fromkeys((r["task"], r["method"]) for r in rows):
        acc = {v: [r["test_top1"] for r in rows if (r["task"], r["method"], r["value"]) == (task, method, v)
                   and r["status"] == "ok" and r["test_top1"] is not None] for v in values}  # fmt: skip
        if not acc[a] or not acc[b]:
            lines.append(f"| {task} | {method} | – | – | – | a run did not finish ok |")
            continue
        (ma, sa), (mb, sb) = (_mean_std(acc[a]), _mean_std(acc[b]))
        diffs.append(mb - ma)
        clear = "yes" if abs(mb - ma) > sa + sb else "no"
        lines.append(
            f"| {task} | {method} | {ma:.1f} ± {sa:.1f} | {mb:.1f} ± {sb:.1f} | {mb - ma:+.1f} | {clear} |"
        )
    if diffs:
        lines.append(
            f"\nMean difference over {len(diffs)} task/method pairs: {statistics.mean(diffs):+.2f} points."
        )
    return "\n".join(lines)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir) if args.dir else Path(tmp)
        rows = run_all(args, root)
    print(
        f"\n{args.field}: {args.values[0]} vs {args.values[1]}; tasks {' '.join(args.tasks)}; methods "
        f"{' '.join(args.methods)}; seeds {' '.join(map(str, args.seeds))}; {args.epochs} epochs; PNGs at "
        f"{args.render_size} px loaded at {args.image_size} px; {platform.machine()}, torch threads 1; "
        f"{time.perf_counter() - start:.0f} s\n"
    )
    print(summary(rows, args.values))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
