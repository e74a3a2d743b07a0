"""Mixed (the paper's section 5.2): deep prompts inserted as in VPT, and the whole backbone trained too.

As in the reference code, it uses the VPT optimiser and grid (SGD) and keeps the backbone in eval mode.
"""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import PROMPT_GRID, Method, register
from vptlab.methods.vpt import PROMPT_FIELDS, add_prompts


def prepare(model: nn.Module, cfg: object) -> None:
    add_prompts(model, cfg, deep=True)
    for p in model.parameters():
        p.requires_grad_(True)


MIXED = register(
    Method(
        name="mixed",
        summary="Mixed: deep prompts and all backbone parameters trained together",
        trainable="prompts (L x n x D) + all backbone parameters + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.05,
        default_wd=0.0001,
        prepare=prepare,
        uses=PROMPT_FIELDS,
    )
)
