"""FacT-TT (Jie & Deng 2023, factor-tuning): the weight increments of all layers as one tensor-train.

The increments of every block's q, k, v, attention-output, fc1 and fc2 weights (each D x D matrix; fc1 and fc2
as four D x D slices) are stacked into a 3-way tensor and factorised as ``dW = s * V T U``: ``U`` (r x D) and
``V`` (D x r) are shared by all layers, each block owns small cores ``T``: r x r for q, k, v and the output
projection, 4r x r for fc1, r x 4r for fc2.  Dropout 0.1 on the core's output while training (as the release).
``U`` has PyTorch's default Linear init, the cores too, ``V`` is zero, so a fresh model is the backbone; the
increments are linear in the input, so :func:`merge` adds ``dW`` to the weights (no inference cost).

Trainable: ``2 D r + 12 L r^2`` + head: 21,504 on ViT-B/16 with r = 8 and 61,440 with r = 16; the paper reports
0.04M, the average of its per-task ranks (8, 16, 32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vptlab.methods import _hooks
from vptlab.methods.base import (
    PETL_RECIPE,
    TRAINS_ATTR,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    positive,
    register,
    unfreeze_head,
)

ATTR = "fact"  # the per-layer cores on each weight's Linear, and the shared factors on the model


@dataclass(frozen=True)
class FacTConfig(MethodConfig):
    rank: int = option(8, help="tensor-train rank r", check=at_least(1))
    scale: float = option(1.0, help="scale s of the increments", check=positive)


class Factors(nn.Module):
    """The shared ``U`` (``u``: r x D) and ``V`` (``v``: D x r), plus the dropout on the cores' outputs."""

    def __init__(self, dim: int, rank: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.u = nn.Parameter(torch.empty(rank, dim))
        self.v = nn.Parameter(torch.zeros(dim, rank))
        nn.init.kaiming_uniform_(self.u, a=math.sqrt(5))
        self.dropout = nn.Dropout(0.1)


class Core(nn.Module):
    """One layer's cores and how its increment acts on the layer input.

    ``kind``: ``qkv`` (three r x r cores, output q|k|v), ``proj`` (r x r), ``fc1`` (4r x r: four D-wide output
    slices), ``fc2`` (r x 4r: four D-wide input slices).
    """

    SHAPES = {"qkv": (3, 1), "proj": (1, 1), "fc1": (4, 1), "fc2": (1, 4)}

    def __init__(self, kind: str, rank: int, factors: Factors) -> None:
        super().__init__()
        out_mult, in_mult = self.SHAPES[kind]
        self.kind = kind
        self.t = nn.Parameter(torch.empty(out_mult * rank, in_mult * rank))
        nn.init.kaiming_uniform_(self.t, a=math.sqrt(5))
        object.__setattr__(self, "_factors", factors)  # shared, registered once (on the model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self._factors
        z = x.unflatten(-1, (-1, f.u.shape[1])) @ f.u.t() if self.kind == "fc2" else x @ f.u.t()
        z = f.dropout(z.flatten(-2) @ self.t.t() if self.kind == "fc2" else z @ self.t.t())
        if self.kind in ("qkv", "fc1"):
            z = z.unflatten(-1, (-1, f.u.shape[0]))  # per output slice
            return (z @ f.v.t()).flatten(-2) * f.scale
        return z @ f.v.t() * f.scale


def _increment(host: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out + getattr(host, ATTR)(args[0])


def _hosts(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    out = []
    for b in model.blocks:
        out += [("qkv", b.attn.qkv), ("proj", b.attn.proj), ("fc1", b.mlp.fc1), ("fc2", b.mlp.fc2)]
    return out


def attach_fact(model: nn.Module, rank: int, scale: float) -> None:
    model = _hooks.require_vit(model, "fact")
    factors = Factors(model.embed_dim, rank, scale).to(next(model.parameters()).device)
    setattr(factors, TRAINS_ATTR, True)
    model.add_module(ATTR, factors)
    for kind, host in _hosts(model):
        _hooks.attach(host, ATTR, Core(kind, rank, factors), _increment)


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Add each layer's ``dW`` to its weight and remove the factors (outputs unchanged in eval mode)."""
    factors = getattr(model, ATTR)
    was_training = factors.training
    factors.eval()
    for _, host in _hosts(model):
        core = _hooks.detach(host, ATTR)
        eye = torch.eye(host.in_features, device=host.weight.device, dtype=host.weight.dtype)
        host.weight.add_(core(eye).t())  # core(I) = I dW^T
    factors.train(was_training)
    delattr(model, ATTR)


def prepare(model: nn.Module, options: FacTConfig) -> None:
    freeze(model)
    attach_fact(model, options.rank, options.scale)
    unfreeze_head(model)


FACT = register(
    Method(
        name="fact",
        summary="FacT-TT: all weight increments as one tensor-train (shared U, V; per-layer cores); mergeable",
        trainable="U, V 2 D r + cores 12 L r^2 + head",
        **PETL_RECIPE,
        prepare=prepare,
        config=FacTConfig,
        order=13,
        label="FacT-TT",
        color="#6a3d9a",
        merge=merge,
    )
)
