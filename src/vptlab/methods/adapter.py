"""Adapter (Houlsby et al. 2019), in the form the ViT PETL benchmarks run: one sequential bottleneck per block.

Placement: after the MLP of every transformer block, on the MLP's output and before the residual add, with its
own skip connection (NOAH's and V-PETL Bench's "Adapter", PETL_Vision's ``sequential_after`` MLP adapter)::

    h = mlp(norm2(x));   x = x + h + up(dropout(relu(down(h))))

Houlsby's paper puts a second adapter after attention; the benchmarks' Adapter-8 (0.16M parameters on ViT-B/16)
has the one after the MLP, which is what this module does.  ``down`` starts as PyTorch's default Linear init,
``up`` and both biases at zero, so a fresh adapter computes exactly the backbone (Houlsby's near-identity
start).  Trainable: ``L x (D r + r + r D + D)`` + head (ViT-B/16, r = 8: 156,768, the benchmarks' 0.16M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vptlab.methods import _hooks
from vptlab.methods.base import (
    PETL_RECIPE,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    register,
    unfreeze_head,
)

ATTR = "adapter"


@dataclass(frozen=True)
class AdapterConfig(MethodConfig):
    bottleneck: int = option(8, help="bottleneck width r", check=at_least(1))


class Bottleneck(nn.Module):
    """``up(dropout(act(down(x))))``, ``up`` zero-initialised: it adds nothing until it trains."""

    def __init__(
        self, dim: int, bottleneck: int, act: type[nn.Module] = nn.ReLU, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = act()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.act(self.down(x))))


def _after_mlp(mlp: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out + getattr(mlp, ATTR)(out)


def attach_adapters(model: nn.Module, bottleneck: int) -> None:
    """One sequential adapter after each block's MLP (``blocks.i.mlp.adapter``)."""
    model = _hooks.require_vit(model, "adapter")
    for block in model.blocks:
        _hooks.attach(block.mlp, ATTR, Bottleneck(model.embed_dim, bottleneck), _after_mlp)


def prepare(model: nn.Module, options: AdapterConfig) -> None:
    freeze(model)
    attach_adapters(model, options.bottleneck)
    unfreeze_head(model)


ADAPTER = register(
    Method(
        name="adapter",
        summary="Adapter (Houlsby): a sequential bottleneck after each block's MLP, frozen backbone",
        trainable="adapters L x (2 D r + r + D) + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=AdapterConfig,
        order=10,
        label="Adapter",
        color="#1f78b4",
    )
)
