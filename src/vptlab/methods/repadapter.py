"""RepAdapter (Luo et al. 2023): a linear adapter before each block's attention and MLP, merged away for inference.

As the paper and its release place it, on the layer-normed input of each sublayer::

    h = norm1(x);  x = x + attn(h + s * B(dropout(A h)))      (and the same before the MLP with norm2)

``A`` (D -> r, dense) and ``B`` (r -> D, grouped: ``groups`` blocks, 2 by default) have biases and no activation
in between, so the adapter is an affine map ``h -> M h + c`` and :func:`merge` folds it into the qkv and fc1
weights that read ``h`` (the paper's structural re-parameterisation: no inference cost).  ``A`` Xavier-uniform,
``B`` and the biases zero (a fresh adapter is the identity); dropout 0.1 while training; ``s`` 1 by default (the
paper searches it per task).  Trainable: ``2 L (D r + r + D r / g + D)`` + head: 239,808 on ViT-B/16 with r = 8,
g = 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vptlab.errors import UserError
from vptlab.methods import _hooks
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

ATTR = "repadapter"


@dataclass(frozen=True)
class RepAdapterConfig(MethodConfig):
    bottleneck: int = option(8, help="bottleneck width r", check=at_least(1))
    groups: int = option(2, help="groups g of the up-projection", check=at_least(1))
    scale: float = option(1.0, help="scale s of the adapter", check=positive)


class RepAdapter(nn.Module):
    """``h + scale * B(dropout(A h))`` with ``B`` block-diagonal over ``groups``."""

    def __init__(self, dim: int, bottleneck: int, groups: int, scale: float) -> None:
        super().__init__()
        if bottleneck % groups or dim % groups:
            raise UserError(
                f"repadapter: groups={groups} must divide bottleneck={bottleneck} and width {dim}"
            )
        self.groups, self.scale = groups, scale
        self.a = nn.Linear(dim, bottleneck)
        self.b_weight = nn.Parameter(torch.zeros(groups, dim // groups, bottleneck // groups))
        self.b_bias = nn.Parameter(torch.zeros(dim))
        self.dropout = nn.Dropout(0.1)
        nn.init.xavier_uniform_(self.a.weight)
        nn.init.zeros_(self.a.bias)

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        z = self.dropout(self.a(h)).unflatten(-1, (self.groups, -1))
        return torch.einsum("...gk,gdk->...gd", z, self.b_weight).flatten(-2) + self.b_bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.scale * self.delta(h)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M, c)`` with ``forward(h) = h M^T + c`` in eval mode."""
        b = torch.block_diag(*self.b_weight)  # (D, r)
        m = torch.eye(b.shape[0], dtype=b.dtype, device=b.device) + self.scale * b @ self.a.weight
        return m, self.scale * (b @ self.a.bias + self.b_bias)


def _before(host: nn.Module, args: tuple) -> tuple:
    return (getattr(host, ATTR)(args[0]), *args[1:])


def attach_repadapter(model: nn.Module, bottleneck: int, groups: int, scale: float) -> None:
    """An adapter on the input of every block's attention and MLP (``blocks.i.attn.repadapter``, ...)."""
    model = _hooks.require_vit(model, "repadapter")
    for block in model.blocks:
        for host in (block.attn, block.mlp):
            adapter = RepAdapter(model.embed_dim, bottleneck, groups, scale)
            _hooks.attach(host, ATTR, adapter, _before, pre=True)


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Fold each adapter into the layer that reads its output (qkv, fc1); outputs unchanged in eval mode."""
    for block in model.blocks:
        for host, linear in ((block.attn, block.attn.qkv), (block.mlp, block.mlp.fc1)):
            if not hasattr(host, ATTR):
                continue
            m, c = _hooks.detach(host, ATTR).affine()
            bias = linear.weight @ c + (linear.bias if linear.bias is not None else 0)
            linear.weight.copy_(linear.weight @ m)
            if linear.bias is None:
                linear.bias = nn.Parameter(bias, requires_grad=False)
            else:
                linear.bias.copy_(bias)


def prepare(model: nn.Module, options: RepAdapterConfig) -> None:
    freeze(model)
    attach_repadapter(model, options.bottleneck, options.groups, options.scale)
    unfreeze_head(model)


REPADAPTER = register(
    Method(
        name="repadapter",
        summary="RepAdapter: linear adapters before attention and MLP, frozen backbone; mergeable",
        trainable="adapters 2 L (D r + r + D r / g + D) + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=RepAdapterConfig,
        order=15,
        label="RepAdapter",
        color="#e31a1c",
        merge=merge,
    )
)
