"""Linear probing: only the classification head trains on the frozen backbone's CLS features."""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import ALL_FAMILIES, Method, NoOptions, freeze, register, unfreeze_head


def prepare(model: nn.Module, options: NoOptions) -> None:
    freeze(model)
    unfreeze_head(model)


LINEAR = register(
    Method(
        name="linear",
        summary="linear probe: a new head on frozen CLS features",
        trainable="head",
        prepare=prepare,
        default_lr=0.5,
        default_wd=0.0,
        label="Linear",
        color="#a6761d",
        order=5,
        cost="linear",
        families=ALL_FAMILIES,
    )
)
