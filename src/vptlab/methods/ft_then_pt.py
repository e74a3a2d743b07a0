"""FT-then-PT (the paper's section 5.2): full fine-tuning first, then VPT-deep on that frozen fine-tuned backbone.

One run, two stages.  Stage 1 is an ordinary ``full`` run (its own run identity, hyper-parameters ``ft_lr``,
``ft_wd``, ``ft_batch_size``, ``backbone_dropout``); its tuned weights are the backbone of stage 2, which trains
deep prompts and the head with the VPT optimiser and grid (``lr``, ``wd``).  A study reuses the matching ``full``
run as stage 1 instead of training it again.

Stage 2's head starts fresh (``stage2_head = "fresh"``), as in the reference, whose checkpoint loading drops
every ``head*`` key; ``"keep"`` starts it from the fine-tuned head instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from vptlab.methods.base import (
    TRANSFORMER_FAMILIES,
    FirstStage,
    Method,
    at_least,
    freeze,
    non_negative,
    option,
    positive,
    register,
    unfreeze_head,
    unit_interval,
)
from vptlab.methods.full import BACKBONE_DROPOUT_HELP, DROPOUT_REVISION, FULL
from vptlab.methods.vpt import PROMPT_TIES, VPTDeepConfig, add_prompts

if TYPE_CHECKING:
    from vptlab.train.config import RunConfig


@dataclass(frozen=True)
class FTThenPTConfig(VPTDeepConfig):
    ft_lr: float = option(FULL.default_lr, help="stage 1 (full FT): base learning rate", check=positive)
    ft_wd: float = option(FULL.default_wd, help="stage 1 (full FT): weight decay", check=non_negative)
    ft_batch_size: int = option(
        FULL.default_batch_size, help="stage 1 (full FT): batch size", check=at_least(1)
    )
    backbone_dropout: float = option(0.0, help="stage 1: " + BACKBONE_DROPOUT_HELP, check=unit_interval)
    ft_warmup_epochs: int = option(
        -1, help="stage 1: warm-up epochs (-1: the run's own warmup_epochs)", check=at_least(-1), legacy=-1
    )
    ft_schedule: str = option(
        "same",
        help="stage 1: schedule (same: the run's own)",
        choices=("same", "step", "epoch"),
        legacy="same",
    )
    stage2_head: str = option(
        "fresh",
        help="fresh: stage 2 starts a new head (reference); keep: it starts from the fine-tuned head",
        choices=("fresh", "keep"),
        legacy="keep",
    )

    def identity_extra(self) -> dict[str, Any]:
        return DROPOUT_REVISION if self.backbone_dropout > 0 else {}

    def resolved_for(self, run: RunConfig) -> FTThenPTConfig:
        """A stage-1 schedule equal to the run's own is written as "same" (one identity for one computation)."""
        changes: dict[str, Any] = {}
        if self.ft_warmup_epochs == run.warmup_epochs:
            changes["ft_warmup_epochs"] = -1
        if self.ft_schedule == run.schedule:
            changes["ft_schedule"] = "same"
        return dataclasses.replace(self, **changes) if changes else self


STAGE1_KEYS = ("ft_lr", "ft_wd", "ft_batch_size", "backbone_dropout", "ft_warmup_epochs", "ft_schedule")


def stage1_config(options: FTThenPTConfig) -> dict[str, Any]:
    """Stage 1's RunConfig fields: a ``full`` run with the ``ft_*`` hyper-parameters."""
    return {
        "lr": options.ft_lr,
        "wd": options.ft_wd,
        "batch_size": options.ft_batch_size,
        "options": {"backbone_dropout": options.backbone_dropout},
        **({"warmup_epochs": options.ft_warmup_epochs} if options.ft_warmup_epochs >= 0 else {}),
        **({"schedule": options.ft_schedule} if options.ft_schedule != "same" else {}),
    }


def from_selected(full_cfg: RunConfig) -> dict[str, Any]:
    """The options that make stage 1 exactly the given (selected) full run."""
    return {
        "ft_lr": full_cfg.lr,
        "ft_wd": full_cfg.wd,
        "ft_batch_size": full_cfg.batch_size,
        "backbone_dropout": full_cfg.option("backbone_dropout", 0.0),
        "ft_warmup_epochs": full_cfg.resolved().warmup_epochs,
        "ft_schedule": full_cfg.schedule,
    }


def prepare(model: nn.Module, options: FTThenPTConfig) -> None:
    """Stage 2 only: ``model`` already carries the stage-1 weights (see :func:`load_stage1`)."""
    freeze(model)
    add_prompts(model, options, deep=True)
    unfreeze_head(model)


def load_stage1(model: nn.Module, path: Path, options: FTThenPTConfig) -> None:
    """Stage 1's tuned weights onto the backbone; its head too only with ``stage2_head = "keep"``."""
    from vptlab.train.model import load_tuned

    skip = () if options.stage2_head == "keep" else ("head",)
    load_tuned(model, path, skip_prefixes=skip)


FT_THEN_PT = register(
    Method(
        name="ft-then-pt",
        summary="FT-then-PT: full fine-tuning, then VPT-deep on the frozen fine-tuned backbone",
        trainable="stage 1: everything; stage 2: prompts (L x n x D) + head",
        prepare=prepare,
        config=FTThenPTConfig,
        label="FT-then-PT",
        color="#e7298a",
        order=4,
        first_stage=FirstStage("full", stage1_config, from_selected, STAGE1_KEYS),
        load_stage1=load_stage1,
        tie_axes=PROMPT_TIES,
        families=TRANSFORMER_FAMILIES,
    )
)
