"""``vptlab study plan|run|results``: the paper's protocol as one command, resumable, local or on Ray."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from vptlab._device import check_device
from vptlab.cli.train import add_log_flags
from vptlab.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="plan, run and collect a study (tune -> select -> final seeds)",
                       description=__doc__)  # fmt: skip
    study_sub = p.add_subparsers(dest="study_command", metavar="STUDY_COMMAND", parser_class=type(p))
    _register_plan(study_sub)
    _register_run(study_sub)
    _register_results(study_sub)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _register_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="list a study's runs by stage, method and task, and estimate its compute")
    p.add_argument("spec", type=Path, help=SPEC_HELP)
    _override_args(p)
    p.add_argument("--out", type=Path, help="study folder: count the runs already done there")
    p.add_argument("--by-task", action="store_true", help="one row per method, task and regime")
    p.add_argument(
        "--runs", action="store_true", help="list every run known so far (id, stage, config, status)"
    )
    p.add_argument(
        "--hardware", metavar="NAME", help="price the study with the measured figures for this device"
    )
    p.add_argument(
        "--throughput", type=float, metavar="IMG_PER_S", help="price it at this training throughput"
    )
    p.set_defaults(func=_plan)


def _register_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run (or continue) a study: tune, select, final seeds")
    p.add_argument("spec", type=Path, help=SPEC_HELP)
    _override_args(p)
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        default=None,
        help="leave unreadable images out (named on the console, recorded in each run) instead of stopping",
    )
    p.add_argument("--out", type=Path, required=True, help="study folder (runs/, index.sqlite, study.json)")
    p.add_argument(
        "--executor", choices=("local", "ray"), help="where runs train (default: the spec's, else local)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="local: N runs at once in worker processes")
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="ray: join the cluster at ADDR: HOST:PORT (the head's GCS address), auto, or "
        "ray://HOST:PORT (default: RAY_ADDRESS if set, else a local instance of its own)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="ray: submit a run lost with its worker or node again up to N times, from its newest "
        "checkpoint, before recording it failed (default: the spec's, else 3)",
    )
    p.add_argument(
        "--checkpoint-storage",
        metavar="DIR",
        help="ray: a folder every node and the driver see at the same path; runs ship their "
        "checkpoints there instead of through the driver",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the spec's, else cuda if available)")
    p.add_argument("--checkpoint-seconds", type=float, default=300.0, metavar="S",
                   help="save a resumable checkpoint of a long run every S seconds (default 300); on Ray "
                        "each one is also sent to the driver (or --checkpoint-storage)")  # fmt: skip
    p.add_argument("--no-retry-failed", action="store_true", help="keep failed runs as they are")
    add_log_flags(p)
    p.set_defaults(func=_run)


SPEC_HELP = "study spec (.toml or .yaml) or a packaged preset name (paper, one-shot, data-size, demo, fgvc, few-shot, petl, ...)"


def _override_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", metavar="SOURCE", help="replace the spec's [data] source (e.g. vtab1k:/data/vtab-1k)"
    )
    p.add_argument(
        "--checkpoint", metavar="PATH", help="replace the spec's [backbone] checkpoint (weights file)"
    )


def _register_results(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="a study's runs as a tidy table (one row per run)")
    p.add_argument("out", type=Path, help="study folder")
    p.add_argument("--csv", metavar="FILE", help="write the tidy table as CSV ('-' for stdout)")
    p.add_argument("--rebuild-index", action="store_true", help="rebuild index.sqlite from the run folders")
    p.set_defaults(func=_results)


def _plan(args: argparse.Namespace) -> int:
    from vptlab.store.study import StudyStore
    from vptlab.study.planview import plan_report
    from vptlab.study.presets import load_study

    spec = load_study(args.spec, data=args.data, checkpoint=args.checkpoint, check=False)
    _check_positive(args.throughput, "--throughput")
    store = StudyStore(args.out) if args.out else None
    text = plan_report(spec, store, by_task=args.by_task, list_runs=args.runs, hardware=args.hardware,
                       throughput=args.throughput, source=str(args.spec))  # fmt: skip
    print(text)
    return 0


def _run(args: argparse.Namespace) -> int:
    from vptlab.study.presets import load_study
    from vptlab.study.runner import check_backbone, check_data, run_study
    from vptlab.study.worker import WorkerOptions
    from vptlab.train.interrupt import graceful_stop

    spec = load_study(
        args.spec, data=args.data, checkpoint=args.checkpoint, skip_bad_images=args.skip_bad_images
    )
    executor = _executor_overrides(spec.executor, args)
    spec = dataclasses.replace(spec, executor=executor)
    if executor.kind == "ray":
        from vptlab.study.executors.ray import import_ray

        import_ray()
    _check_positive(args.checkpoint_seconds, "--checkpoint-seconds", allow_zero=True)
    check_data(spec)
    check_backbone(spec)
    device = None if executor.device == "auto" else executor.device
    from vptlab.track import LogOptions

    log = LogOptions(tuple(args.log), args.tracking_uri) if args.log else None  # None: the spec's [log]
    options = WorkerOptions(device=device, checkpoint_seconds=args.checkpoint_seconds, log=log)
    echo = lambda text: print(text, file=sys.stderr)  # noqa: E731
    with graceful_stop():  # SIGINT/SIGTERM: an in-process run checkpoints and stops; rerun to continue
        record = run_study(spec, args.out, options=options, retry_failed=not args.no_retry_failed, echo=echo)
    print(record.table)
    print(f"trained {len(record.trained)} run(s) this time; study folder {args.out}")
    return 0


def _executor_overrides(spec, args: argparse.Namespace):
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.max_retries is not None and args.max_retries < 0:
        raise UserError(f"--max-retries must be >= 0, got {args.max_retries}")
    changes = {"kind": args.executor, "workers": args.workers, "address": args.address, "device": args.device,
               "max_retries": args.max_retries, "checkpoint_storage": args.checkpoint_storage}  # fmt: skip
    changes = {k: v for k, v in changes.items() if v is not None}
    for flag, value in (("--address", args.address), ("--max-retries", args.max_retries),
                        ("--checkpoint-storage", args.checkpoint_storage)):  # fmt: skip
        if value is not None and changes.get("kind", spec.kind) != "ray":
            raise UserError(f"{flag} is for the ray executor; add --executor ray")
    # the driver's machine trains local runs; Ray runs train on the cluster's nodes
    flag = "--device" if args.device else "executor.device"
    check_device(changes.get("device", spec.device), flag, here=changes.get("kind", spec.kind) == "local")
    return dataclasses.replace(spec, **changes)


def _results(args: argparse.Namespace) -> int:
    from vptlab.study.results import results_report

    if not args.out.is_dir():
        raise UserError(f"{args.out}: no such study folder")
    print(results_report(args.out, csv=args.csv, rebuild=args.rebuild_index), end="")
    return 0


def _check_positive(value: float | None, flag: str, allow_zero: bool = False) -> None:
    if value is not None and not (value > 0 or (allow_zero and value == 0)):
        raise UserError(f"{flag} must be > 0, got {value}")
