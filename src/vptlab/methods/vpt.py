"""Visual prompt tuning (Jia et al. 2022): prompts and the head train; the backbone is frozen, in eval mode."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vptlab.backbones.prompts import attach_prompts
from vptlab.methods.base import (
    TRANSFORMER_FAMILIES,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    register,
    unfreeze_head,
    unit_interval,
)

PROMPT_LENGTH_HELP = "prompt tokens per layer (the VPT release tunes it per task)"


@dataclass(frozen=True)
class VPTShallowConfig(MethodConfig):
    prompt_length: int = option(10, help=PROMPT_LENGTH_HELP, check=at_least(1))
    prompt_dropout: float = option(0.0, help="dropout on the prompt tokens", check=unit_interval)


@dataclass(frozen=True)
class VPTDeepConfig(MethodConfig):
    prompt_length: int = option(10, help=PROMPT_LENGTH_HELP, check=at_least(1))
    prompt_dropout: float = option(0.1, help="dropout on the prompt tokens", check=unit_interval)


def add_prompts(model: nn.Module, options: VPTShallowConfig | VPTDeepConfig, deep: bool) -> None:
    """Attach prompts with the run's length and dropout (the prompts are created trainable)."""
    attach_prompts(model, options.prompt_length, deep=deep, dropout=options.prompt_dropout)


def prepare_shallow(model: nn.Module, options: VPTShallowConfig) -> None:
    freeze(model)
    add_prompts(model, options, deep=False)
    unfreeze_head(model)


def prepare_deep(model: nn.Module, options: VPTDeepConfig) -> None:
    freeze(model)
    add_prompts(model, options, deep=True)
    unfreeze_head(model)


# selection ties: lr, wd, prompt length, batch size, prompt dropout (the order before method-owned configs)
PROMPT_TIES = ("prompt_length", "batch_size", "prompt_dropout")

VPT_SHALLOW = register(
    Method(
        name="vpt-shallow",
        summary="VPT-shallow: n prompt tokens at the first layer, frozen backbone",
        trainable="prompts (n x D) + head",
        prepare=prepare_shallow,
        config=VPTShallowConfig,
        label="VPT-shallow",
        color="#66a61e",
        order=2,
        tie_axes=PROMPT_TIES,
        families=TRANSFORMER_FAMILIES,
    )
)

VPT_DEEP = register(
    Method(
        name="vpt-deep",
        summary="VPT-deep: fresh prompt tokens before every layer, frozen backbone",
        trainable="prompts (L x n x D) + head",
        prepare=prepare_deep,
        config=VPTDeepConfig,
        label="VPT-deep",
        color="#1b9e77",
        order=1,
        tie_axes=PROMPT_TIES,
        families=TRANSFORMER_FAMILIES,
    )
)
