"""``vptlab predict`` and ``vptlab export``: use a tuned run on new images, or hand it to another program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vptlab._device import check_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k classes of new images with a tuned run (CSV)",
        description="Classify image files or folders (recursively) with a finished run; one CSV row per image.",
    )
    p.add_argument("run_dir", type=Path, help="a finished run folder (result.json, tuned.safetensors)")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("--out", type=Path, default=None, help="CSV file to write (default: stdout)")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_predict)

    e = sub.add_parser(
        "export",
        help="export a tuned run as one model file (safetensors, TorchScript, ONNX)",
        description="Backbone + tuned parameters + head in one file (mergeable methods merged and checked "
        "equal), with <file>.json beside it: preprocessing, class names, config.",
    )
    e.add_argument("run_dir", type=Path, help="a finished run folder")
    e.add_argument("--format", required=True, choices=("safetensors", "torchscript", "onnx"))
    e.add_argument("--out", type=Path, default=None, help="model file (default: RUN_DIR/export/model.<ext>)")
    e.set_defaults(func=run_export)


def run_predict(args: argparse.Namespace) -> int:
    check_device(args.device)
    from vptlab.deploy.predict import predict_to_csv
    from vptlab.deploy.tuned import load_tuned

    tuned = load_tuned(args.run_dir, args.device)
    progress = False if args.no_progress else None
    if args.out is None:
        done, skipped = predict_to_csv(tuned, args.paths, sys.stdout, top_k=args.top_k,
                                       batch_size=args.batch_size, show_progress=progress)  # fmt: skip
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            done, skipped = predict_to_csv(tuned, args.paths, f, top_k=args.top_k,
                                           batch_size=args.batch_size, show_progress=progress)  # fmt: skip
    for p in skipped:
        sys.stderr.write(f"vptlab: skipped {p.path}: {p.error}\n")
    where = f" -> {args.out}" if args.out else ""
    sys.stderr.write(f"predicted {done} image(s), skipped {len(skipped)} unreadable{where}\n")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from vptlab.deploy.export import export_run

    path, meta = export_run(args.run_dir, args.format, args.out)
    check = meta["check"][args.format]
    merged = "merged into the backbone and checked equal, " if meta["merged"] else ""
    print(
        f"{path} ({args.format}, {merged}loaded back: same top-1, max |logit diff| {check['max_abs_diff']:.2g})"
    )
    print(f"{path}.json (preprocessing, {len(meta['classes'])} class names, config)")
    return 0
