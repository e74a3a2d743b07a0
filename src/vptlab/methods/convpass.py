"""Convpass (Jie & Deng 2022): a convolutional bypass beside each block's attention and MLP.

As the paper and its release define it, each bypass reads the sublayer's layer-normed input ``h``::

    x = x + attn(norm1(x)) + s * convpass_attn(norm1(x));   x = x + mlp(norm2(x)) + s * convpass_mlp(norm2(x))
    convpass(h) = up(dropout(qgelu(conv3x3(qgelu(down(h))))))

The 3x3 convolution runs over the patch tokens laid out on their grid; each prefix token (CLS) goes through it as
a 1x1 image (only the kernel's centre).  ``down``, ``conv`` Xavier-uniform, ``up`` and biases zero (the
release's ``xavier_init``); QuickGELU; dropout 0.1; ``s`` is a per-task hyper-parameter in the paper (searched
over 0.01..100; default here 0.1).  Trainable: ``2 L (D r + r + 9 r^2 + r + r D + D)`` + head: 327,552 on
ViT-B/16 with r = 8 (the paper's 0.33M).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

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

ATTR = "convpass"


@dataclass(frozen=True)
class ConvpassConfig(MethodConfig):
    bottleneck: int = option(8, help="bottleneck channels r", check=at_least(1))
    scale: float = option(
        0.1, help="scale s of the bypass output (the paper tunes it per task)", check=positive
    )


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class Convpass(nn.Module):
    """The bypass: 1x1 down, 3x3 conv over the patch grid, 1x1 up, times ``scale``."""

    def __init__(self, dim: int, bottleneck: int, grid: tuple[int, int], prefix: int, scale: float) -> None:
        super().__init__()
        self.grid, self.prefix, self.scale = grid, prefix, scale
        self.down = nn.Linear(dim, bottleneck)
        self.conv = nn.Conv2d(bottleneck, bottleneck, 3, padding=1)
        self.up = nn.Linear(bottleneck, dim)
        self.dropout = nn.Dropout(0.1)
        nn.init.xavier_uniform_(self.down.weight)
        nn.init.xavier_uniform_(self.conv.weight)
        for t in (self.down.bias, self.conv.bias, self.up.weight, self.up.bias):
            nn.init.zeros_(t)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, n, _ = h.shape
        gh, gw = self.grid
        if n != self.prefix + gh * gw:
            raise UserError(
                f"convpass: expected {self.prefix} prefix + {gh}x{gw} patch tokens, got {n} tokens"
            )
        z = quick_gelu(self.down(h))
        r = z.shape[-1]
        patches = z[:, self.prefix :].transpose(1, 2).reshape(b, r, gh, gw)
        patches = self.conv(patches).flatten(2).transpose(1, 2)
        prefix = F.conv2d(
            z[:, : self.prefix].reshape(-1, r, 1, 1), self.conv.weight[:, :, 1:2, 1:2], self.conv.bias
        )
        z = torch.cat([prefix.reshape(b, self.prefix, r), patches], dim=1)
        return self.up(self.dropout(quick_gelu(z))) * self.scale


def _bypass(host: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out + getattr(host, ATTR)(args[0])


def attach_convpass(model: nn.Module, bottleneck: int, scale: float) -> None:
    """A bypass beside every block's attention and MLP (``blocks.i.attn.convpass``, ``blocks.i.mlp.convpass``)."""
    model = _hooks.require_vit(model, "convpass")
    grid = tuple(int(g) for g in model.patch_embed.grid_size)
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    for block in model.blocks:
        for host in (block.attn, block.mlp):
            _hooks.attach(host, ATTR, Convpass(model.embed_dim, bottleneck, grid, prefix, scale), _bypass)


def prepare(model: nn.Module, options: ConvpassConfig) -> None:
    freeze(model)
    attach_convpass(model, options.bottleneck, options.scale)
    unfreeze_head(model)


CONVPASS = register(
    Method(
        name="convpass",
        summary="Convpass: convolutional bypasses beside each block's attention and MLP, frozen backbone",
        trainable="bypasses 2 L (2 D r + 9 r^2 + 2 r + D) + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=ConvpassConfig,
        order=14,
        label="Convpass",
        color="#ff7f00",
    )
)
