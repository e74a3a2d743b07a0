"""Partial-k (VPT's Partial-1 baseline; Yosinski et al. 2014): the last k blocks, the final norm and the head train.

VPT's "partial" baselines fine-tune the last k transformer layers and keep the rest frozen; vptlab trains them
with the linear probe's optimiser and grid (SGD, the VPT grid), as VPT does for its linear-family baselines.
Trainable for k = 1 on ViT-B/16: one block (7,087,872) + final norm (1,536) = 7,089,408 + head.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vptlab.errors import UserError
from vptlab.methods.base import (
    ALL_FAMILIES,
    PROMPT_GRID,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    register,
    unfreeze_head,
)


@dataclass(frozen=True)
class PartialKConfig(MethodConfig):
    k: int = option(1, help="number of last blocks that train", check=at_least(1))


def residual_blocks(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    """The backbone's blocks in order, and the norms after the last one (ViT, Swin, ConvNeXt, ResNet)."""
    if hasattr(model, "blocks"):  # ViT
        return list(model.blocks), [model.norm, getattr(model, "fc_norm", nn.Identity())]
    if hasattr(model, "layers"):  # Swin: stages of blocks
        return [b for stage in model.layers for b in stage.blocks], [model.norm]
    if hasattr(model, "stages"):  # ConvNeXt: its final norm sits in the head
        return [b for stage in model.stages for b in stage.blocks], [
            getattr(model.head, "norm", nn.Identity())
        ]
    layers = [getattr(model, f"layer{i}", None) for i in range(1, 5)]  # ResNet
    if all(isinstance(layer, nn.Sequential) for layer in layers):
        return [b for layer in layers for b in layer], []
    raise UserError(f"partial-k: cannot find the blocks of a {type(model).__name__}")


def unfreeze_last_blocks(model: nn.Module, k: int) -> None:
    blocks, norms = residual_blocks(model)
    depth = len(blocks)
    if k > depth:
        raise UserError(f"partial-k: k={k} is more than the backbone's {depth} blocks")
    for module in [*blocks[depth - k :], *norms]:
        for p in module.parameters():
            p.requires_grad_(True)


def prepare(model: nn.Module, options: PartialKConfig) -> None:
    freeze(model)
    unfreeze_last_blocks(model, options.k)
    unfreeze_head(model)


PARTIAL_K = register(
    Method(
        name="partial-k",
        summary="Partial-k: the last k blocks + final norm + head train, the rest frozen",
        trainable="last k blocks + final norm + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=prepare,
        config=PartialKConfig,
        order=18,
        label="Partial-k",
        color="#fb9a99",
        families=ALL_FAMILIES,
    )
)
