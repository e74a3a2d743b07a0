"""AdaptFormer (Chen et al. 2022): a bottleneck MLP parallel to each block's MLP, its output scaled by ``s``.

As the paper's equations define it, the branch reads the same layer-normed input as the MLP::

    h = norm2(x);   x = x + mlp(h) + s * up(dropout(relu(down(h))))

with ``s = 0.1``, dropout 0.1, ``down`` in PyTorch's default Linear init (the release's "lora" init) and ``up``
and the biases zero, so a fresh branch adds nothing.  Trainable: ``L x (D r + r + r D + D)`` + head: 156,768 on
ViT-B/16 with r = 8 (V-PETL Bench's and NOAH's AdaptFormer, 0.16M); the paper's own r = 64 gives 1,189,632.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vptlab.methods import _hooks
from vptlab.methods.adapter import Bottleneck
from vptlab.methods.base import (
    PETL_RECIPE,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    positive,
    register,
    unfreeze_head,
)

ATTR = "adaptformer"


@dataclass(frozen=True)
class AdaptFormerConfig(MethodConfig):
    bottleneck: int = option(8, help="bottleneck width r", check=at_least(1))
    scale: float = option(0.1, help="scale s of the branch's output", check=positive)


class ScaledBottleneck(Bottleneck):
    def __init__(self, dim: int, bottleneck: int, scale: float) -> None:
        super().__init__(dim, bottleneck)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


def _parallel_mlp(mlp: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out + getattr(mlp, ATTR)(args[0])


def attach_adaptformer(model: nn.Module, bottleneck: int, scale: float) -> None:
    """One scaled bottleneck beside each block's MLP (``blocks.i.mlp.adaptformer``)."""
    model = _hooks.require_vit(model, "adaptformer")
    for block in model.blocks:
        branch = ScaledBottleneck(model.embed_dim, bottleneck, scale)
        _hooks.attach(block.mlp, ATTR, branch, _parallel_mlp)


def prepare(model: nn.Module, options: AdaptFormerConfig) -> None:
    freeze(model)
    attach_adaptformer(model, options.bottleneck, options.scale)
    unfreeze_head(model)


ADAPTFORMER = register(
    Method(
        name="adaptformer",
        summary="AdaptFormer: a scaled bottleneck MLP parallel to each block's MLP, frozen backbone",
        trainable="AdaptMLP branches L x (2 D r + r + D) + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=AdaptFormerConfig,
        order=11,
        label="AdaptFormer",
        color="#a6cee3",
    )
)
