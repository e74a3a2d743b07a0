"""Mixed (the paper's section 5.2): deep prompts inserted as in VPT, and the whole backbone trained too.

As in the reference code, it uses the VPT optimiser and grid (SGD) and keeps the backbone in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vptlab.methods.base import TRANSFORMER_FAMILIES, Method, register
from vptlab.methods.vpt import PROMPT_TIES, VPTDeepConfig, add_prompts


@dataclass(frozen=True)
class MixedConfig(VPTDeepConfig):
    """Deep prompts' options (prompt_length, prompt_dropout)."""


def prepare(model: nn.Module, options: MixedConfig) -> None:
    add_prompts(model, options, deep=True)
    for p in model.parameters():
        p.requires_grad_(True)


MIXED = register(
    Method(
        name="mixed",
        summary="Mixed: deep prompts and all backbone parameters trained together",
        trainable="prompts (L x n x D) + all backbone parameters + head",
        prepare=prepare,
        config=MixedConfig,
        default_lr=0.05,
        label="Mixed",
        color="#7570b3",
        order=3,
        cost="full",
        tie_axes=PROMPT_TIES,
        families=TRANSFORMER_FAMILIES,
    )
)
