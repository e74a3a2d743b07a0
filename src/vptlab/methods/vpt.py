"""Visual prompt tuning (Jia et al. 2022): prompts and the head train; the backbone is frozen, in eval mode."""

from __future__ import annotations

from torch import nn

from vptlab.backbones.prompts import attach_prompts
from vptlab.methods.base import PROMPT_GRID, Method, freeze, register, unfreeze_head

PROMPT_FIELDS = frozenset({"prompt_length", "prompt_dropout"})


def add_prompts(model: nn.Module, cfg: object, deep: bool) -> None:
    """Attach prompts with the run's length and dropout (the prompts are created trainable)."""
    attach_prompts(model, cfg.prompt_length, deep=deep, dropout=cfg.prompt_dropout)


def _prepare(deep: bool):
    def prepare(model: nn.Module, cfg: object) -> None:
        freeze(model)
        add_prompts(model, cfg, deep=deep)
        unfreeze_head(model)

    return prepare


VPT_SHALLOW = register(
    Method(
        name="vpt-shallow",
        summary="VPT-shallow: n prompt tokens at the first layer, frozen backbone",
        trainable="prompts (n x D) + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=_prepare(deep=False),
        uses=PROMPT_FIELDS,
    )
)

VPT_DEEP = register(
    Method(
        name="vpt-deep",
        summary="VPT-deep: fresh prompt tokens before every layer, frozen backbone",
        trainable="prompts (L x n x D) + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=_prepare(deep=True),
        uses=PROMPT_FIELDS,
    )
)
