"""``vptlab fid``, ``vptlab advise`` and ``vptlab report``: the analyses of a study and of your own data."""

from __future__ import annotations

import argparse
import json
import sys

from vptlab._device import check_device
from vptlab.errors import UserError

SET_FORMS = (
    "a folder of images (folder:PATH or PATH), vtab1k:ROOT/TASK (or ROOT with --task), synthetic:TASK, "
    "synthetic:upstream, or a .npz statistics file"
)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="the task, when a set is given as a VTAB-1k ROOT (same as ROOT/TASK)")
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave unreadable images out (each named on the console) instead of stopping",
    )


def _with_task(spec: str | None, task: str | None) -> str | None:
    """``ROOT`` + ``--task`` as the ``vtab1k:ROOT/TASK`` form every set parser reads."""
    if spec is None or not task:
        return spec
    from vptlab.data.sources import resolve_task_source

    if spec.startswith("synthetic"):
        return f"synthetic:{resolve_task_source(spec, task)[1]}"
    source, name = resolve_task_source(spec, task)
    return f"{source}/{name}" if source.startswith("vtab1k:") else source


def register(sub: argparse._SubParsersAction) -> None:
    _register_fid(sub)
    _register_advise(sub)
    _register_report(sub)


def _feature_args(p: argparse.ArgumentParser, default: str = "backbone") -> None:
    p.add_argument(
        "--features",
        default=default,
        help=f"inception (the standard FID network) or backbone (default {default})",
    )
    p.add_argument(
        "--backbone", default="vptlab-tiny", help="backbone for --features backbone (default vptlab-tiny)"
    )
    p.add_argument("--checkpoint", help="local weights file for --backbone")
    p.add_argument(
        "--inception-weights", metavar="PATH", help="local pt_inception-2015-12-05-6726825d.pth (offline)"
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def _register_fid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fid", help="FID between two image sets", description=f"FID between two image sets: {SET_FORMS}."
    )
    p.add_argument("a", help="first image set")
    p.add_argument(
        "b", nargs="?", help="second image set (omit with --save-stats to only save A's statistics)"
    )
    _feature_args(p)
    _data_args(p)
    p.add_argument(
        "--save-stats",
        metavar="PATH.npz",
        help="also save A's statistics (mu, sigma) in pytorch-fid's layout",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_fid)


def run_fid(args: argparse.Namespace) -> int:
    """Print FID(A, B), and/or save A's statistics."""
    check_device(args.device)
    from vptlab.analysis.fid import fid_from_stats, save_stats, set_stats
    from vptlab.analysis.fid_features import make_extractor
    from vptlab.analysis.imagesets import check_spec

    if args.b is None and not args.save_stats:
        raise UserError("give two image sets (A B), or one with --save-stats PATH.npz")
    args.a = _with_task(args.a, args.task)
    for spec in (args.a, args.b):
        if spec is not None:
            check_spec(spec)
    extractor = make_extractor(
        args.features,
        backbone=args.backbone,
        checkpoint=args.checkpoint,
        inception_weights=args.inception_weights,
        device=args.device,
    )
    stats_a = set_stats(args.a, extractor, skip_bad_images=args.skip_bad_images)
    if args.save_stats:
        save_stats(args.save_stats, stats_a)
        print(
            f"saved statistics of {args.a} ({stats_a.count} images, {extractor.key}) to {args.save_stats}",
            file=sys.stderr,
        )
    if args.b is None:
        return 0
    stats_b = set_stats(args.b, extractor, skip_bad_images=args.skip_bad_images)
    value = fid_from_stats(stats_a, stats_b)
    features = stats_a.features or stats_b.features or extractor.key
    counts = {"a_images": stats_a.count, "b_images": stats_b.count}
    describe = getattr(extractor, "describe", None)  # backbone features: which backbone, which pooling
    backbone = describe() if callable(describe) else None
    if args.json:
        extra = {"backbone": backbone} if backbone else {}
        print(json.dumps({"fid": value, "features": features, "a": args.a, "b": args.b, **counts, **extra}))
    else:
        shown = 0.0 if abs(value) < 5e-5 else value  # the formula can give -1e-9 for identical sets
        print(f"FID {shown:.4f}  ({features}; A {stats_a.count} images, B {stats_b.count} images)")
        if backbone:
            print(f"features of backbone {backbone}")
    return 0


def _register_advise(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "advise",
        help="should this data use VPT or FT?",
        description=(
            "Recommend VPT or full fine-tuning for DATA (a folder with class sub-folders, vtab1k:ROOT/TASK or "
            "synthetic:TASK) from its FID to the pretraining data, its objective and its size."
        ),
    )
    p.add_argument(
        "data",
        nargs="?",
        help="the data: an image folder (folder:PATH or PATH), vtab1k:ROOT/TASK (or ROOT --task), synthetic:TASK",
    )
    p.add_argument(
        "--objective",
        help="classification (like the pretraining task) or structured (counting, distance, orientation...)",
    )
    p.add_argument(
        "--evaluate",
        metavar="STUDY",
        help="instead: the leave-one-task-out accuracy of every advisor signal on a finished study folder (or "
        "a comparisons .csv it wrote; 'prior' for the bundled demo study)",
    )
    p.add_argument(
        "--fit-on",
        metavar="STUDY",
        help="with --evaluate: fit every signal on this other study (folder, .csv or 'prior') and test it on "
        "all of STUDY's comparisons, instead of leave-one-task-out",
    )
    p.add_argument("--study", help="a finished study folder: fit a model on its FT-vs-VPT results")
    p.add_argument(
        "--quick", action="store_true", help="also train FT and VPT briefly on the data and report both"
    )
    p.add_argument("--quick-epochs", type=int, default=10, help="epochs of each --quick run (default 10)")
    p.add_argument("--quick-dir", help="where the --quick runs go (default: a temporary folder)")
    p.add_argument(
        "--pretrain-stats", metavar="PATH.npz", help="statistics of the pretraining data (same features)"
    )
    p.add_argument(
        "--fid-threshold", type=float, help="FID above which data counts as far from the pretraining data"
    )
    _feature_args(p)
    _data_args(p)
    p.add_argument("--json", action="store_true", help="print the advice as JSON")
    p.set_defaults(func=run_advise)


def run_advise(args: argparse.Namespace) -> int:
    """Print the recommendation and its evidence (text or JSON)."""
    check_device(args.device)
    if args.evaluate:
        return _run_evaluate(args)
    if not args.data or not args.objective:
        raise UserError("give DATA and --objective (or --evaluate STUDY)")
    from vptlab.analysis.advisor import advise

    advice = advise(
        _with_task(args.data, args.task),
        args.objective,
        features=args.features,
        backbone=args.backbone,
        checkpoint=args.checkpoint,
        inception_weights=args.inception_weights,
        pretrain_stats=args.pretrain_stats,
        study=args.study,
        fid_threshold=args.fid_threshold,
        quick=args.quick,
        quick_epochs=args.quick_epochs,
        quick_dir=args.quick_dir,
        device=args.device,
        skip_bad_images=args.skip_bad_images,
    )
    print(json.dumps(advice.to_dict(), indent=2) if args.json else advice.to_markdown())
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from vptlab.analysis.signals import evaluate, evaluation_dict, signal_rows

    rows, source = signal_rows(args.evaluate, device=args.device)
    fit_rows = signal_rows(args.fit_on, device=args.device) if args.fit_on else None
    ev = evaluate(rows, source, fit_rows=fit_rows[0] if fit_rows else None)
    if fit_rows:
        ev.fitted_on = fit_rows[1]
    print(json.dumps(evaluation_dict(ev), indent=2) if args.json else ev.to_markdown())
    return 0


def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write report.md and report.html for a study",
        description=(
            "Every table and figure a study's runs support, as report.md and a self-contained report.html "
            "(figures also as PNG files)."
        ),
    )
    p.add_argument("dir", help="the study folder (or any folder of run folders)")
    p.add_argument("--out", help="output folder (default DIR/report)")
    p.add_argument("--fid-features", default="backbone", help="inception, backbone (default) or none")
    p.add_argument("--fid-backbone", help="backbone for backbone features (default: the study's)")
    p.add_argument(
        "--pretrain-stats", metavar="PATH.npz", help="statistics of the pretraining data (same features)"
    )
    p.add_argument("--inception-weights", metavar="PATH", help="local FID Inception weights (offline)")
    p.add_argument(
        "--fid-csv", metavar="PATH", help="precomputed FIDs (columns task,fid) instead of computing them"
    )
    p.add_argument(
        "--fid-threshold",
        type=float,
        help="FID threshold between low and high (default: the shared rule, see docs)",
    )
    p.add_argument("--no-attention", action="store_true", help="skip the attention maps")
    p.add_argument("--attention-images", type=int, default=4, help="images per attention figure (default 4)")
    p.add_argument("--device", default="cpu", help="torch device for FID features and attention maps")
    p.add_argument(
        "--ddof",
        type=int,
        choices=(0, 1),
        default=1,
        help="std over seeds in the tables: 1 sample std (default); 0 np.std, as the seed paper reports",
    )
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Write the study's report files and say where they are."""
    check_device(args.device)
    from vptlab.report import ReportOptions, build_report

    if args.fid_features not in ("inception", "backbone", "none"):
        raise UserError(f"--fid-features must be inception, backbone or none, got {args.fid_features!r}")
    if args.attention_images < 1:
        raise UserError(f"--attention-images must be >= 1, got {args.attention_images}")
    opts = ReportOptions(
        fid_features=args.fid_features,
        fid_backbone=args.fid_backbone,
        pretrain_stats=args.pretrain_stats,
        inception_weights=args.inception_weights,
        fid_csv=args.fid_csv,
        fid_threshold=args.fid_threshold,
        attention=not args.no_attention,
        attention_images=args.attention_images,
        device=args.device,
        ddof=args.ddof,
    )
    files = build_report(args.dir, args.out, opts)
    print(f"wrote {files.markdown} and {files.html} ({len(files.figures)} figures)")
    return 0
