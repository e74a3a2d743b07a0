"""``vptlab methods``: the registered tuning methods, what trains, their optimiser and default grid."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list the tuning methods", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vptlab.methods import list_methods

    for m in list_methods():
        lrs = ", ".join(f"{v:g}" for v in m.grid["lr"])
        wds = ", ".join(f"{v:g}" for v in m.grid["wd"])
        print(
            f"{m.name}\n  {m.summary}\n  trains:    {m.trainable}\n"
            f"  optimiser: {'SGD momentum 0.9' if m.optimizer == 'sgd' else 'AdamW'}, batch {m.default_batch_size}"
            f", backbone in {'eval' if m.backbone_eval else 'train'} mode\n"
            f"  grid:      lr {{{lrs}}} x wd {{{wds}}} = {m.grid_size} (lr scaled by batch/256)\n"
            f"  default:   lr {m.default_lr:g}, wd {m.default_wd:g}"
        )
        for opt in m.options:
            print(f"  option:    {opt.name} = {opt.default:g} ({opt.help})")
        if m.merge is not None:
            print("  merge:     folds into the backbone weights for inference (no extra cost)")
    return 0
