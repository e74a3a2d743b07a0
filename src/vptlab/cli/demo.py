"""``vptlab demo``: the embedded miniature study (studies/demo.toml), offline, then its report.

Runs the synthetic benchmark with the bundled vptlab-tiny backbone through the paper's protocol (tune -> select
-> 3 seeds), one-shot and a data-size sweep, then writes report.md / report.html (FID quadrants, loss curves,
attention maps, tables).  A second call reuses every finished run and only rewrites the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from importlib import resources
from pathlib import Path

from vptlab.errors import UserError


def demo_spec_path() -> Path:
    return Path(str(resources.files("vptlab.studies").joinpath("demo.toml")))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the embedded miniature study and write its report", description=__doc__
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="study folder (default: demo-out)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once in worker processes (default: the spec's, capped at the CPU count)",
    )
    p.add_argument("--no-report", action="store_true", help="only run the study")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vptlab.report import ReportOptions, build_report
    from vptlab.study.runner import check_data, run_study
    from vptlab.study.spec import load_spec

    started = time.perf_counter()
    spec = load_spec(demo_spec_path())
    workers = args.workers if args.workers is not None else min(spec.executor.workers, os.cpu_count() or 1)
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    spec = dataclasses.replace(spec, executor=dataclasses.replace(spec.executor, workers=workers))
    check_data(spec)
    print(f"vptlab demo: {spec.description}\n  study folder {args.out}, {workers} worker(s)", file=sys.stderr)
    record = run_study(spec, args.out, echo=lambda text: print(text, file=sys.stderr))
    print(record.table)
    if not args.no_report:
        files = build_report(args.out, args.out / "report", ReportOptions())
        print(f"report: {files.html}\n        {files.markdown} ({len(files.figures)} figures)")
    print(
        f"trained {len(record.trained)} run(s) this time in {time.perf_counter() - started:.0f} s; "
        f"rerun `vptlab demo` to reuse them"
    )
    return 0
