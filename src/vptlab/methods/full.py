"""Full fine-tuning: every backbone parameter and the head train (AdamW, the FT grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from vptlab.methods.base import ALL_FAMILIES, FT_GRID, Method, MethodConfig, option, register, unit_interval

BACKBONE_DROPOUT_HELP = (
    "dropout inside the backbone while it trains: MLP and embedding dropout, attention dropout stays 0 "
    "(reference: 0.1)"
)
# Since method-owned configs, backbone_dropout no longer drops the attention output (the reference does not):
# a run with dropout > 0 computes something else than before, so its identity says so.
DROPOUT_REVISION = {"backbone_dropout_rev": 2}


@dataclass(frozen=True)
class FullConfig(MethodConfig):
    backbone_dropout: float = option(0.0, help=BACKBONE_DROPOUT_HELP, check=unit_interval)

    def identity_extra(self) -> dict[str, Any]:
        return DROPOUT_REVISION if self.backbone_dropout > 0 else {}


def prepare(model: nn.Module, options: FullConfig) -> None:
    for p in model.parameters():
        p.requires_grad_(True)


FULL = register(
    Method(
        name="full",
        summary="full fine-tuning (FT): all backbone parameters and a new head",
        trainable="all backbone parameters + head",
        prepare=prepare,
        config=FullConfig,
        optimizer="adamw",
        grid=FT_GRID,
        default_batch_size=128,
        default_lr=0.0005,
        default_wd=0.0001,
        label="FT",
        color="#d95f02",
        order=0,
        cost="full",
        backbone_eval=False,
        families=ALL_FAMILIES,
    )
)
