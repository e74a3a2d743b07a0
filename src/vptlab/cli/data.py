"""``vptlab data``: list tasks, check a VTAB-1k folder, split a folder, fill or clear the cache, export synthetic."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vptlab._io import stable_hash, to_jsonable
from vptlab.data import cache, folders, list_tasks, load_task, notices, vtab1k
from vptlab.data.checks import check_source
from vptlab.data.images import INTERPOLATIONS
from vptlab.data.sources import SYNTHETIC_DATA_SEED
from vptlab.errors import UserError

PROBLEMS_SHOWN_PER_TASK = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="inspect, check and prepare data (VTAB-1k, your folders, synthetic)"
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(parser))
    parser.set_defaults(func=lambda args: _help(parser))
    _register_list(sub)
    _register_check(sub)
    _register_split(sub)
    _register_prepare(sub)
    _register_cache(sub)
    _register_export(sub)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# --- list --------------------------------------------------------------------------------------------------


def _register_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the tasks a source offers (name, group, objective, classes)")
    p.add_argument(
        "source", nargs="?", default="synthetic", help="synthetic | vtab1k:ROOT | folder:PATH | PATH"
    )
    p.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace) -> int:
    tasks = list_tasks(args.source)
    if not tasks:
        raise UserError(f"{args.source}: no tasks found")
    print(f"{'task':<22} {'group':<12} {'objective':<15} classes")
    for t in tasks:
        print(f"{t.name:<22} {t.group:<12} {t.objective:<15} {t.num_classes}")
    return 0


# --- check -------------------------------------------------------------------------------------------------


def _register_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a data source (VTAB-1k, FGVC, few-shot root or task, your own folder): every problem at once",
        description=(
            "Check a data source and list every problem at once (exit 2 if any): a VTAB-1k root "
            "(vtab1k:ROOT, ROOT, or ROOT/TASK), fgvc:ROOT, fewshot:ROOT, imagenet-variants:ROOT, or your own "
            "images (folder:PATH or a plain path). Notes name every file that is not used and every class too "
            "small to appear in val or test."
        ),
    )
    p.add_argument(
        "source",
        help="vtab1k:ROOT | vtab1k:ROOT/TASK | fgvc:ROOT | fewshot:ROOT | imagenet-variants:ROOT | folder:PATH | PATH",
    )
    p.add_argument("--task", help="check only this task")
    p.add_argument(
        "--no-images", action="store_true", help="check the split files only, do not decode images"
    )
    _add_skip_flag(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_check)


def _add_skip_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave unreadable images out (each named on the console and recorded) instead of stopping",
    )


def _cmd_check(args: argparse.Namespace) -> int:
    report = _check(args)
    problems = report.all_problems()
    if args.json:
        print(json.dumps(to_jsonable(report) | {"problem_count": len(problems)}, indent=2))
    else:
        _print_check(report)
    if problems:
        sys.stderr.write(f"vptlab: error: {len(problems)} problems found in {args.source}\n")
        return 2
    return 0


def _check(args: argparse.Namespace) -> vtab1k.CheckReport:
    from vptlab.data.folder_check import check_folder
    from vptlab.data.sources import parse_source

    text = str(args.source)
    images = not args.no_images
    if text.startswith(("fgvc:", "fewshot:", "imagenet-variants:")):
        return _skipping(check_source(text, args.task, images=images), args.skip_bad_images)
    if ":" not in text and not Path(text).exists():
        return vtab1k.check_root(text, args.task)  # the error a missing root gets
    src = parse_source(text)
    if src.kind == "synthetic":
        raise UserError("the synthetic tasks are generated, there is nothing to check; give a folder or root")
    if src.kind == "folder":
        report = check_folder(
            src.path, folders.parse_options(src.options), images=images, skip_bad_images=args.skip_bad_images
        )
        report.title = "image folder"
        return report
    if src.kind != "vtab1k":
        return _skipping(check_source(text, args.task, images=images), args.skip_bad_images)
    root, task = src.path, args.task
    if task is None and vtab1k.has_split_files(root) and not vtab1k.is_vtab_root(root):
        root, task = root.parent, root.name  # vtab1k:ROOT/TASK
    return _skipping(vtab1k.check_root(root, task, images=images), args.skip_bad_images)


def _skipping(report: vtab1k.CheckReport, skip_bad_images: bool) -> vtab1k.CheckReport:
    """Under --skip-bad-images an unreadable image is a note (training would skip it), not a problem."""
    if skip_bad_images:
        for t in report.tasks:
            bad = [p for p in t.problems if ": cannot decode image " in p]
            t.problems = [p for p in t.problems if p not in bad]
            t.notes += [f"{p} (skipped under --skip-bad-images)" for p in bad]
    return report


def _print_check(report: vtab1k.CheckReport) -> None:
    print(f"{report.title} {report.root}")
    for note in report.notes:
        print(f"  note: {note}")
    for line in report.problems:
        print(f"  problem: {line}")
    for task in report.tasks:
        info = task.info
        print(f"\n{info.name} ({info.group}, {info.objective}, {info.num_classes} classes)")
        for s in task.splits:
            count = "missing" if s.count is None else f"{s.count:>6} images"
            classes = "" if s.count is None else f"  {s.classes_seen}/{info.num_classes} classes seen"
            name = s.name if ("." in s.name or " " in s.name) else f"{s.name}.txt"  # a made split has no file
            print(f"  {name:<20} {count}{classes}")
        problems = task.all_problems()
        for line in problems[:PROBLEMS_SHOWN_PER_TASK]:
            print(f"  problem: {line}")
        if len(problems) > PROBLEMS_SHOWN_PER_TASK:
            print(f"  ... and {len(problems) - PROBLEMS_SHOWN_PER_TASK} more problems (see --json)")
        for note in task.notes[:PROBLEMS_SHOWN_PER_TASK]:
            print(f"  note: {note}")
        if len(task.notes) > PROBLEMS_SHOWN_PER_TASK:
            listing = notices.list_file(task.notes, stable_hash(task.notes, 16))
            print(f"  ... and {len(task.notes) - PROBLEMS_SHOWN_PER_TASK} more notes, listed in {listing}")
        print(f"  {len(problems)} problems" if problems else "  ok")


# --- split -------------------------------------------------------------------------------------------------


def _register_split(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "split",
        help="make a seeded, stratified train/val/test split of your image folder and save it (with labels.json)",
    )
    p.add_argument("path", help="class sub-folders (PATH/<class>/*.jpg) or a list file ('path label' lines)")
    p.add_argument("--out", help="where to write train.txt, val.txt, test.txt, labels.json (default: PATH)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out test part (default 0.2)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="val part of the rest (default 0.2: 4:1)")
    p.add_argument("--name", help="task name (default: the folder's name)")
    p.add_argument("--group", default="natural", help="VTAB group: natural, specialized, structured")
    p.add_argument("--objective", default="classification", help="classification or structured")
    p.set_defaults(func=_cmd_split)


def _cmd_split(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.is_dir() and (path / "train.txt").is_file():
        raise UserError(f"{path} already holds a split (train.txt); load it with folder:{path}")
    options = folders.FolderOptions(
        args.name, args.group, args.objective, args.seed, args.test_fraction, args.val_fraction
    )
    folder = folders.read_folder(path, options)
    notices.announce(f"files in {path} not used", list(folder.dropped), once=False)
    notices.announce(f"{folder.info.name}: split notes", list(folder.notes), once=False)
    out = args.out or (path if path.is_dir() else path.parent)
    folders.write_split_files(out, folder)
    sizes = ", ".join(f"{name} {len(lst)}" for name, lst in folder.splits.items())
    print(
        f"{folder.info.name}: {folder.info.num_classes} classes; {sizes}; wrote {Path(out) / 'train.txt'}, ..."
    )
    return 0


# --- prepare -----------------------------------------------------------------------------------------------


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="decode a source's images into the cache once, ahead of the runs")
    p.add_argument("source", help="synthetic | vtab1k:ROOT | folder:PATH | PATH")
    p.add_argument("--task", action="append", help="a task to prepare (repeatable; default: all)")
    p.add_argument(
        "--from-tfds",
        metavar="DATA_DIR",
        help="first build the VTAB-1k release at vtab1k:ROOT from this local TFDS data directory "
        "(needs pip install 'vptlab[tfds]'; see docs/data.md)",
    )
    _add_image_args(p)
    p.set_defaults(func=_cmd_prepare)


def _add_image_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=int, default=32, help="model input size in pixels (default 32)")
    p.add_argument("--interpolation", default="bilinear", choices=list(INTERPOLATIONS))
    p.add_argument("--cache-dir", help="cache folder (default: $VPTLAB_CACHE or ~/.cache/vptlab)")
    _add_skip_flag(p)


def _cmd_prepare(args: argparse.Namespace) -> int:
    if args.from_tfds:
        _from_tfds(args)
    source, tasks = _source_tasks(args.source, args.task)
    for task in tasks:
        for stage, regime, split_seed in _prepared_splits(source, task):
            data = load_task(
                source,
                task,
                stage=stage,
                regime=regime,
                split_seed=split_seed,
                image_size=args.image_size,
                interpolation=args.interpolation,
                cache_dir=args.cache_dir,
                skip_bad_images=args.skip_bad_images,
            )
        sizes = data.record["sizes"]
        skipped = data.record["skipped_images"]
        print(
            f"{task}: train {sizes['train']}, test {sizes['test']} at {args.image_size}px; {skipped} skipped"
        )
    return 0


def _source_tasks(text: str, tasks: list[str] | None) -> tuple[str, list[str]]:
    """``ROOT`` + ``--task`` (default: every task of ROOT), or ``ROOT/TASK``: the source and the tasks to read."""
    from vptlab.data.sources import resolve_task_source

    if tasks:
        return text, tasks
    path = Path(text.removeprefix("vtab1k:")).expanduser()
    one_task = path.is_dir() and vtab1k.has_split_files(path) and not vtab1k.is_vtab_root(path)
    if one_task and not text.startswith(("synthetic", "folder:")):  # ROOT/TASK
        source, task = resolve_task_source(text)
        return source, [task]
    return text, [t.name for t in list_tasks(text)]


def _prepared_splits(source: str, task: str) -> list[tuple[str, str, int]]:
    """(stage, regime, split seed) to decode: the standard splits, or each released K-shot file (fewshot:)."""
    if not str(source).startswith("fewshot:"):
        return [("tune", "standard", 0), ("final", "standard", 0)]
    from vptlab.data.fewshot import ANNOTATIONS, train_files

    folder = Path(str(source).partition(":")[2]).expanduser()
    folder = folder if (folder / ANNOTATIONS).is_dir() else folder / task
    return [("tune", f"kshot:{k}", seed) for k, seed in sorted(train_files(folder))]


def _from_tfds(args: argparse.Namespace) -> None:
    from vptlab.data.tfds_prepare import CHECKSUMS, TfdsReader, prepare_vtab1k

    kind, sep, root = args.source.partition(":")
    if not sep or kind != "vtab1k":
        raise UserError(
            f"--from-tfds writes a VTAB-1k release: give the source as vtab1k:ROOT, got {args.source!r}"
        )
    if not Path(args.from_tfds).is_dir():
        raise UserError(f"--from-tfds {args.from_tfds}: no such TFDS data directory")
    sums = prepare_vtab1k(root, lambda builder: TfdsReader(builder, args.from_tfds), args.task)
    print(f"wrote {len(sums)} task(s) under {root}; split-file checksums in {Path(root) / CHECKSUMS}")


# --- cache -------------------------------------------------------------------------------------------------


def _register_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="show (or --clear) the decoded-image cache")
    p.add_argument("--cache-dir", help="cache folder (default: $VPTLAB_CACHE or ~/.cache/vptlab)")
    p.add_argument("--clear", action="store_true", help="delete every cached entry")
    p.set_defaults(func=_cmd_cache)


def _cmd_cache(args: argparse.Namespace) -> int:
    root = cache.cache_root(args.cache_dir)
    if args.clear:
        print(f"cleared {root}: freed {cache.clear_cache(root) / 2**20:.1f} MiB")
        return 0
    print(f"cache {root}")
    for kind, u in cache.cache_usage(root).items():
        print(f"  {kind:<8} {u['entries']:>5} entries  {u['bytes'] / 2**20:>9.1f} MiB")
    return 0


# --- export-synthetic --------------------------------------------------------------------------------------


def _register_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-synthetic",
        help="write a synthetic task as a VTAB-1k-format folder (PNG images + split files)",
    )
    p.add_argument("task", help="a synthetic task (see 'vptlab data list')")
    p.add_argument("dir", help="the VTAB-1k root to write into (DIR/TASK/...)")
    p.add_argument("--image-size", type=int, default=32, help="image size in pixels (default 32)")
    p.add_argument("--pool", action="store_true", help="also write pool.txt (25,000 images, for size:N)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from vptlab.data.synthetic import export_synthetic

    folder = export_synthetic(
        args.task, args.dir, image_size=args.image_size, seed=SYNTHETIC_DATA_SEED, include_pool=args.pool
    )
    print(f"wrote {folder} (load it with vtab1k:{args.dir})")
    return 0
