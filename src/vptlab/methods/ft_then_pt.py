"""FT-then-PT (the paper's section 5.2): full fine-tuning first, then VPT-deep on that frozen fine-tuned backbone.

One run, two stages.  Stage 1 is an ordinary ``full`` run (its own run identity, hyper-parameters ``ft_lr``,
``ft_wd``, ``ft_batch_size``); its tuned weights are the backbone of stage 2, which trains deep prompts and the
head with the VPT optimiser and grid (``lr``, ``wd``).  The stage-2 head starts from the fine-tuned head.
A study reuses the matching ``full`` run as stage 1 instead of training it again.
"""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import PROMPT_GRID, Method, freeze, register, unfreeze_head
from vptlab.methods.vpt import PROMPT_FIELDS, add_prompts


def prepare(model: nn.Module, cfg: object) -> None:
    """Stage 2 only: ``model`` already carries the stage-1 weights (the trainer loads them)."""
    freeze(model)
    add_prompts(model, cfg, deep=True)
    unfreeze_head(model)


FT_THEN_PT = register(
    Method(
        name="ft-then-pt",
        summary="FT-then-PT: full fine-tuning, then VPT-deep on the frozen fine-tuned backbone",
        trainable="stage 1: everything; stage 2: prompts (L x n x D) + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=prepare,
        uses=PROMPT_FIELDS | {"ft_lr", "ft_wd", "ft_batch_size", "backbone_dropout"},
        stages=2,
    )
)
