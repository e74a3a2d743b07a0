"""DoRA (Liu et al. 2024): weight-decomposed low-rank adaptation on the query and value projections.

Each adapted weight is split into a magnitude and a direction, ``W' = m * (W0 + dW) / ||W0 + dW||``, where the
norm is taken per output unit (a row of timm's Linear weight), ``dW = (alpha / r) B A`` is a LoRA update of the
direction and ``m`` (one value per output unit) trains too.  ``m`` starts at ``||W0||`` and ``B`` at zero, so a
fresh model is the backbone.  As the paper recommends, the norm is treated as a constant in the backward pass
(its gradient is dropped, which saves memory and barely changes the result).  Placement: the query and value
thirds of every block's fused qkv projection, the LoRA placement the ViT PETL benchmarks use.  ``merge`` writes
``W'`` into the weights (no inference cost).

Trainable: ``L x 2 x (2 r D + D)`` + head: 313,344 on ViT-B/16 with r = 8 (LoRA-8 on q, v: 294,912 + the
magnitudes, 2 x 12 x 768).  The DoRA paper reports no ViT VTAB-1k count.
"""

from __future__ import annotations

import math
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
    positive,
    register,
    unfreeze_head,
)

ATTR = "dora"


@dataclass(frozen=True)
class DoRAConfig(MethodConfig):
    rank: int = option(8, help="rank r of the direction update", check=at_least(1))
    alpha: float = option(8.0, help="scale alpha (the update is alpha/r B A)", check=positive)


PARTS = {"q": 0, "v": 2}  # thirds of timm's fused qkv output


class DoRAQV(nn.Module):
    """Magnitudes and low-rank direction updates for the q and v thirds of a fused qkv Linear."""

    def __init__(self, qkv: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        dim = qkv.in_features
        self.dim, self.scaling = dim, alpha / rank
        for part, i in PARTS.items():
            a = nn.Parameter(torch.empty(rank, dim))
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            setattr(self, f"a_{part}", a)
            setattr(self, f"b_{part}", nn.Parameter(torch.zeros(dim, rank)))
            w0 = qkv.weight.detach()[i * dim : (i + 1) * dim].float()
            setattr(self, f"m_{part}", nn.Parameter(torch.linalg.vector_norm(w0, dim=1)))

    def direction_update(self, part: str) -> torch.Tensor:
        return self.scaling * getattr(self, f"b_{part}") @ getattr(self, f"a_{part}")

    def factor(self, qkv: nn.Linear, part: str) -> torch.Tensor:
        """``m / ||W0 + dW||`` per output unit, the norm detached (the paper's gradient simplification)."""
        i = PARTS[part]
        w = qkv.weight[i * self.dim : (i + 1) * self.dim] + self.direction_update(part)
        return getattr(self, f"m_{part}") / torch.linalg.vector_norm(w, dim=1).detach()

    def adapted(self, qkv: nn.Linear, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The qkv output with the q and v thirds recomputed from the decomposed weights."""
        thirds = list(out.split(self.dim, dim=-1))
        for part, i in PARTS.items():
            bias = qkv.bias[i * self.dim : (i + 1) * self.dim] if qkv.bias is not None else 0
            lora = (x @ getattr(self, f"a_{part}").t()) @ getattr(self, f"b_{part}").t() * self.scaling
            thirds[i] = self.factor(qkv, part) * (thirds[i] - bias + lora) + bias
        return torch.cat(thirds, dim=-1)


def _decomposed(qkv: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return getattr(qkv, ATTR).adapted(qkv, args[0], out)


def attach_dora(model: nn.Module, rank: int, alpha: float) -> None:
    model = _hooks.require_vit(model, "dora")
    for block in model.blocks:
        _hooks.attach(block.attn.qkv, ATTR, DoRAQV(block.attn.qkv, rank, alpha), _decomposed)


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Write ``m * (W0 + dW) / ||W0 + dW||`` into the q and v rows and remove the DoRA modules."""
    for block in model.blocks:
        qkv = block.attn.qkv
        if not hasattr(qkv, ATTR):
            continue
        dora = getattr(qkv, ATTR)
        rows = {}
        for part, i in PARTS.items():
            w = qkv.weight[i * dora.dim : (i + 1) * dora.dim] + dora.direction_update(part)
            rows[i] = dora.factor(qkv, part)[:, None] * w
        _hooks.detach(qkv, ATTR)
        for i, w in rows.items():
            qkv.weight[i * dora.dim : (i + 1) * dora.dim] = w


def prepare(model: nn.Module, options: DoRAConfig) -> None:
    freeze(model)
    attach_dora(model, options.rank, options.alpha)
    unfreeze_head(model)


DORA = register(
    Method(
        name="dora",
        summary="DoRA: magnitude + low-rank direction updates of the query and value weights; mergeable",
        trainable="A, B (2 r D) and magnitudes (D) on q and v, L x 2 x (2 r D + D) + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=DoRAConfig,
        order=16,
        label="DoRA",
        color="#b15928",
        merge=merge,
    )
)
