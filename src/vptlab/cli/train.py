"""``vptlab train``: one run of one method on one task; writes result.json and metrics.jsonl to --out.

By default the run is a final one (``--stage final``: train on train+val, test numbers at the end), the run a
user reads; ``--stage tune`` trains on train and evaluates val only, as a study's hyper-parameter search does.
Ctrl-C or SIGTERM finishes the current optimiser step, saves a checkpoint and stops; the same command continues.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from vptlab._device import check_device
from vptlab.errors import UserError
from vptlab.train.config import RunConfig

_HELP = {
    "method": "tuning method (see `vptlab methods`)",
    "task": "task name (synthetic task or VTAB-1k task; not needed with ROOT/TASK or a folder)",
    "data": "synthetic | vtab1k:ROOT | vtab1k:ROOT/TASK | folder:PATH | PATH",
    "stage": "final: train on train+val, report test (what a single run wants); tune: train, report val only",
    "skip_bad_images": "leave unreadable images out (each named on the console and recorded) instead of stopping",
    "backbone": "timm model name or vptlab-tiny",
    "checkpoint": "local backbone weights: .npz (Google layout), .safetensors, .pth/.pt",
    "lr": "base learning rate (scaled by batch_size/256); default: the method's",
    "schedule": "step: warm-up + cosine per optimiser step; epoch: the reference code's per-epoch schedule",
    "reference_optimizer": "reproduce the reference code's optimiser (AdamW wd fixed at 0.01, eps 1e-6, ...)",
    "head_init": "default: the library's fresh head; reference: kaiming_normal_ fan_out, bias -log(99)",
    "warmup_epochs": "warm-up epochs (default: 10%% of --epochs)",
    "interpolation": "resize: bilinear (PIL, antialiased; default), nearest, bicubic, lanczos, or tf-bilinear "
    "(the reference's tf.image.resize: half-pixel centres, no antialias)",
    "precision": "auto (bf16 autocast on CUDA, fp32 on CPU; default), fp32 (as the reference) or bf16",
    "eval_test_every": "evaluate test loss/acc every N epochs (0: only after the final stage's last epoch)",
}
_SKIP = {"backbone_args", "extra", "options"}
# What the command line defaults to where it differs from RunConfig's (a library default kept for studies).
_CLI_DEFAULTS = {"stage": "final", "task": None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one run of one method", description=__doc__)
    for f in dataclasses.fields(RunConfig):
        if f.name not in _SKIP:
            _add_field(p, f)
    _add_method_options(p)
    p.add_argument(
        "--backbone-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="timm architecture override, e.g. depth=2 (repeatable)",
    )
    p.add_argument(
        "--eval-set",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also score the trained model on this set (domain shift; class folders or annotations/val_meta.list; "
        "repeatable): result.json metrics.eval[NAME]",
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (result.json, metrics.jsonl, weights)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace another run already in --out (refused otherwise)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_log_flags(p)
    p.set_defaults(func=run)


def add_log_flags(p: argparse.ArgumentParser) -> None:
    """``--log tensorboard|mlflow`` (repeatable) and ``--tracking-uri`` (vptlab.track)."""
    p.add_argument("--log", action="append", default=[], choices=("tensorboard", "mlflow"),
                   help="log to a tracker (repeatable): tensorboard (RUN/tensorboard/), mlflow")  # fmt: skip
    p.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite store OUT/mlflow.db)"
    )


def _add_field(p: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    flag = "--" + f.name.replace("_", "-")
    kind = _base_type(f.type)
    required = f.default is dataclasses.MISSING and f.name not in _CLI_DEFAULTS
    default = _CLI_DEFAULTS.get(f.name, None if f.default is dataclasses.MISSING else f.default)
    text = _HELP.get(f.name, f.name.replace("_", " "))
    if kind is bool:
        p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
    else:
        p.add_argument(flag, type=kind, default=default, required=required, help=text, metavar=f.name.upper())


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """One flag per method option, from the methods' config classes (an option several methods share, once)."""
    from vptlab.methods import list_methods

    group = p.add_argument_group("method options (see `vptlab methods`; default: the method's)")
    seen: dict[str, list[str]] = {}
    infos = {}
    for m in list_methods():
        for info in m.options:
            seen.setdefault(info.name, []).append(f"{m.name}: {info.default}")
            infos.setdefault(info.name, info)
    for name, info in infos.items():
        flag = "--" + name.replace("_", "-")
        kind = {"int": int, "float": float, "str": str}.get(info.kind)
        help_text = f"{info.help} [default {'; '.join(seen[name])}]".replace("%", "%%")
        if info.kind == "bool":
            group.add_argument(flag, dest=f"opt_{name}", action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)  # fmt: skip
        else:
            group.add_argument(flag, dest=f"opt_{name}", type=kind, default=None, metavar=name.upper(),
                               choices=info.choices, help=help_text)  # fmt: skip


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The method options given on the command line."""
    prefix = "opt_"
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None}


def _base_type(annotation: Any) -> type:
    hints = {"str": str, "int": int, "float": float, "bool": bool}
    if isinstance(annotation, str):
        name = annotation.split("|")[0].strip()
        return hints.get(name, str)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) and args:
        return args[0]
    return annotation


def parse_backbone_args(items: list[str]) -> tuple[tuple[str, Any], ...]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--backbone-arg: expected KEY=VALUE, got {item!r}")
        try:
            out.append((key, json.loads(value)))
        except json.JSONDecodeError:
            out.append((key, value))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    from vptlab.data.sources import resolve_task_source
    from vptlab.train import interrupt
    from vptlab.train.interrupt import graceful_stop
    from vptlab.train.outdir import claim_out_dir

    check_device(args.device)
    fields = {f.name for f in dataclasses.fields(RunConfig)} - _SKIP
    values = {name: getattr(args, name) for name in fields}
    values["data"], values["task"] = resolve_task_source(args.data, args.task)
    if not values["task"]:
        values["task"] = _folder_task(values["data"])
    cfg = config_from_flags(values, method_options(args), parse_backbone_args(args.backbone_arg))
    if args.eval_set:  # domain shift: a label of the run, not part of its identity
        cfg = dataclasses.replace(cfg, extra={**cfg.extra, **_eval_sets(args.eval_set)})
    from vptlab.track import LogOptions, make_trackers
    from vptlab.train.run import train_run

    run_id = cfg.run_id
    claim_out_dir(args.out, run_id, overwrite=args.overwrite)
    events = make_trackers(LogOptions(tuple(args.log), args.tracking_uri), default_store=args.out)
    with graceful_stop():  # SIGINT/SIGTERM: checkpoint at the current step, stop; the same command continues
        result = train_run(
            cfg,
            args.out,
            device=args.device,
            progress=False if args.no_progress else None,
            compile=args.compile,
            events=events,
            should_interrupt=interrupt.requested,
        )
        interrupt.stop_if_requested(result, args.out)
    print(format_result(result))
    return 0 if result["status"] in ("ok", "partial") else 1


def _folder_task(source: str) -> str:
    from vptlab.data import list_tasks

    return list_tasks(source)[0].name


def _eval_sets(items: list[str]) -> dict:
    sets = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--eval-set: expected NAME=PATH, got {item!r}")
        sets[name] = path
    return {"eval_sets": sets} if sets else {}


def config_from_flags(values: dict[str, Any], options: dict[str, Any], backbone_args: tuple) -> RunConfig:
    """The RunConfig; an invalid value's error names the flag (``--warmup-epochs must be ...``)."""
    try:
        return RunConfig(**values, options=options, backbone_args=backbone_args)
    except UserError as err:
        raise UserError(_flag_message(str(err), set(values) | set(options))) from None


def _flag_message(message: str, names: set[str]) -> str:
    name, _, rest = message.partition(" ")
    if name in names and rest.startswith("must "):
        return "--" + name.replace("_", "-") + message[len(name) :]
    for option in sorted(names, key=len, reverse=True):  # "method lora has no option 'x'": name the flag
        message = message.replace(repr(option), "--" + option.replace("_", "-"))
    return message


def format_result(result: dict) -> str:
    m = result.get("metrics", {})
    parts = [f"{result['config']['method']} on {result['config']['task']}: {result['status']}"]
    for key in ("val_top1", "test_top1"):
        if key in m:
            parts.append(f"{key} {m[key]:.2f}%")
    if result.get("params"):
        parts.append(f"trainable {result['params']['trainable']:,} / {result['params']['total']:,}")
    parts.append(f"{result['seconds']:.1f}s")
    if result.get("error"):
        parts.append(f"error: {result['error']}")
    return ", ".join(parts) + f"\n  -> {result['run_dir']}/result.json"
