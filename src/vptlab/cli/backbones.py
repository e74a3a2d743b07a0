"""``vptlab backbones``: the backbone families vptlab supports and which tuning methods apply to each."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backbones", help="which methods apply to which backbone families", description=__doc__
    )
    p.add_argument("name", nargs="?", help="a backbone name (timm or vptlab-tiny): show its family's methods")
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="with NAME: load this weights file into the backbone and report its layout, missing and dropped tensors",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vptlab.backbones.create import FAMILIES, FAMILY_HELP, family_of_name
    from vptlab.errors import UserError
    from vptlab.methods.base import list_methods, methods_for_family

    families = FAMILIES
    if args.name:
        family = family_of_name(args.name)
        if family is None:
            raise UserError(
                f"unknown or unsupported backbone {args.name!r} (timm ViT, Swin, ResNet, ConvNeXt)"
            )
        print(f"{args.name}: family {family}")
        families = (family,)
        if args.checkpoint:
            from vptlab.backbones import create_backbone
            from vptlab.backbones.checkpoints import load_checkpoint

            model = create_backbone(args.name, num_classes=2, pretrained=False)
            print(load_checkpoint(model, args.checkpoint).summary())
    elif args.checkpoint:
        raise UserError("--checkpoint needs a backbone NAME to load it into")
    for family in families:
        print(f"{family}: {FAMILY_HELP[family]}")
        print(f"  methods: {', '.join(methods_for_family(family)) or 'none'}")
    if not args.name:
        names = [m.name for m in list_methods()]
        width = max(map(len, names))
        print("\n" + "method".ljust(width) + "  " + "  ".join(FAMILIES))
        for m in list_methods():
            marks = "  ".join(("yes" if f in m.families else "-").ljust(len(f)) for f in FAMILIES)
            print((m.name.ljust(width) + "  " + marks).rstrip())
    return 0
