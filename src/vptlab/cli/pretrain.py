"""``vptlab pretrain``: pretrain a small ViT on the synthetic upstream set (weights + model card to --out)."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from vptlab._device import check_device
from vptlab.backbones.recipe import PretrainConfig

TINY_NAME = "vptlab-tiny"  # the bundled backbone (vptlab.backbones.create.TINY_NAME, without importing timm)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="pretrain a small ViT on the synthetic upstream set", description=__doc__
    )
    for f in dataclasses.fields(PretrainConfig):
        p.add_argument(
            "--" + f.name.replace("_", "-"), type=type(f.default), default=f.default, metavar=f.name.upper()
        )
    p.add_argument("--out", type=Path, required=True, help="folder for <name>.safetensors, .json and .md")
    p.add_argument("--name", default=TINY_NAME, help="file name stem")
    p.add_argument("--device", default=None)
    p.add_argument(
        "--install",
        action="store_true",
        help=f"also copy the files into the package as the bundled {TINY_NAME} (developers)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_device(args.device)
    cfg = PretrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainConfig)})
    from vptlab.backbones.create import tiny_weights_path
    from vptlab.train.pretrain import pretrain

    card = pretrain(cfg, args.out, name=args.name, device=args.device)
    print(
        f"{args.name}: held-out upstream top-1 {card['upstream_top1_heldout']:.2f}% after {cfg.epochs} epochs "
        f"({card['seconds']:.0f} s)\n  -> {args.out / (args.name + '.safetensors')}"
    )
    if args.install:
        target = tiny_weights_path().parent
        for suffix in (".safetensors", ".json", ".md"):
            shutil.copyfile(args.out / f"{args.name}{suffix}", target / f"{TINY_NAME}{suffix}")
        print(f"  installed as the bundled {TINY_NAME} in {target}")
    return 0
