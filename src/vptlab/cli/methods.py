"""``vptlab methods``: the registered tuning methods (built in and plugins), what trains, optimiser, grid, options."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list the tuning methods", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vptlab.methods.base import broken_plugins, list_methods

    for m in list_methods():
        lrs = ", ".join(f"{v:g}" for v in m.grid["lr"])
        wds = ", ".join(f"{v:g}" for v in m.grid["wd"])
        lines = [
            m.name,
            f"  {m.summary} (label {m.display_label}, cost kind {m.cost})",
            f"  trains:    {m.trainable}",
            f"  optimiser: {'SGD momentum 0.9' if m.optimizer == 'sgd' else 'AdamW'}, batch "
            f"{m.default_batch_size}, backbone in {'eval' if m.backbone_eval else 'train'} mode"
            + (f", {m.stages} stages (stage 1: {m.first_stage.method})" if m.first_stage else ""),
            f"  grid:      lr {{{lrs}}} x wd {{{wds}}} = {m.grid_size} (lr scaled by batch/256)",
            f"  default:   lr {m.default_lr:g}, wd {m.default_wd:g}" + (", mergeable" if m.merge else ""),
            f"  backbones: {', '.join(m.families)}",
        ]
        for o in m.options:
            allowed = f" {{{', '.join(map(str, o.choices))}}}" if o.choices else ""
            lines.append(f"  --{o.name.replace('_', '-')} {o.default!r}{allowed}: {o.help}")
        print("\n".join(lines))
    for problem in broken_plugins().values():
        print(f"warning: {problem}")
    return 0
