"""Linear probing: only the classification head trains on the frozen backbone's CLS features."""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import PROMPT_GRID, Method, freeze, register, unfreeze_head


def prepare(model: nn.Module, cfg: object) -> None:
    freeze(model)
    unfreeze_head(model)


LINEAR = register(
    Method(
        name="linear",
        summary="linear probe: a new head on frozen CLS features",
        trainable="head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.5,
        default_wd=0.0,
        prepare=prepare,
    )
)
