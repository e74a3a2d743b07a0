"""Full fine-tuning: every backbone parameter and the head train (AdamW, the FT grid)."""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import FT_GRID, Method, register


def prepare(model: nn.Module, cfg: object) -> None:
    for p in model.parameters():
        p.requires_grad_(True)


FULL = register(
    Method(
        name="full",
        summary="full fine-tuning (FT): all backbone parameters and a new head",
        trainable="all backbone parameters + head",
        optimizer="adamw",
        grid=FT_GRID,
        default_batch_size=128,
        default_lr=0.0005,
        default_wd=0.0001,
        prepare=prepare,
        backbone_eval=False,
        uses=frozenset({"backbone_dropout"}),
    )
)
