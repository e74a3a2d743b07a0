"""LoRA (Hu et al. 2022): low-rank updates ``W + (alpha/r) B A`` on attention projections.

Two forms (``lora_targets``):

- ``"qv"`` (default, the PETL literature's LoRA on ViT): separate A, B on the query and the value projection
  of each block; rank 8 on ViT-B/16 trains 12 x 2 x (768 x 8 + 8 x 768) = 294,912 parameters.
- ``"qkv+proj"``: one A, B shared over timm's fused ``qkv`` projection, and one on the output ``proj``
  (vptlab's form before the option existed).

A small module rather than peft: peft's LoRA needs transformers and accelerate installed, and timm's fused
``qkv`` Linear is all we wrap.  ``B`` starts at zero, so a fresh LoRA model computes exactly the backbone.
LoRA is reparameterisable: :func:`merge` folds the updates into the backbone's weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vptlab.methods.base import (
    FT_GRID,
    TRANSFORMER_FAMILIES,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    positive,
    register,
    unfreeze_head,
)

TARGETS = ("qv", "qkv+proj")


@dataclass(frozen=True)
class LoRAConfig(MethodConfig):
    lora_rank: int = option(8, help="rank r of each update", check=at_least(1))
    lora_alpha: float = option(8.0, help="scale alpha (the update is alpha/r B A)", check=positive)
    lora_targets: str = option(
        "qv",
        help="qv: separate updates on query and value; qkv+proj: one on the fused qkv and one on proj",
        choices=TARGETS,
        legacy="qkv+proj",
    )


def _low_rank(rank: int, n_in: int, n_out: int, device: torch.device) -> tuple[nn.Parameter, nn.Parameter]:
    a = nn.Parameter(torch.empty(rank, n_in, device=device))
    nn.init.kaiming_uniform_(a, a=math.sqrt(5))
    return a, nn.Parameter(torch.zeros(n_out, rank, device=device))


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x A^T B^T`` with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a, self.lora_b = _low_rank(rank, base.in_features, base.out_features, base.weight.device)

    def delta(self) -> torch.Tensor:
        return self.scale * (self.lora_b @ self.lora_a)

    @property
    def weight(self) -> torch.Tensor:  # code that reads attn.qkv.weight (e.g. attention maps) sees W + dW
        return self.base.weight + self.delta()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


class LoRAQV(nn.Module):
    """timm's fused ``qkv`` projection with separate low-rank updates on its query and value thirds."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        dim, dev = base.in_features, base.weight.device
        if base.out_features != 3 * dim:
            raise ValueError(
                f"expected a fused qkv projection ({dim} -> {3 * dim}), got -> {base.out_features}"
            )
        self.lora_a_q, self.lora_b_q = _low_rank(rank, dim, dim, dev)
        self.lora_a_v, self.lora_b_v = _low_rank(rank, dim, dim, dev)

    def delta(self) -> torch.Tensor:
        zeros = torch.zeros_like(self.base.weight[: self.base.in_features])
        q = self.lora_b_q @ self.lora_a_q
        v = self.lora_b_v @ self.lora_a_v
        return self.scale * torch.cat([q, zeros, v])

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight + self.delta()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        q = (x @ self.lora_a_q.t() @ self.lora_b_q.t()) * self.scale
        v = (x @ self.lora_a_v.t() @ self.lora_b_v.t()) * self.scale
        return out + torch.cat([q, torch.zeros_like(q), v], dim=-1)


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Every attention module with a fused ``qkv`` and an output ``proj``: ViT blocks' and Swin windows'."""
    return [
        m for m in model.modules() if hasattr(m, "qkv") and hasattr(m, "proj") and hasattr(m, "num_heads")
    ]


def prepare(model: nn.Module, options: LoRAConfig) -> None:
    freeze(model)
    r, alpha = options.lora_rank, options.lora_alpha
    for attn in attention_modules(model):
        if options.lora_targets == "qv":
            attn.qkv = LoRAQV(attn.qkv, r, alpha)
        else:
            attn.qkv = LoRALinear(attn.qkv, r, alpha)
            attn.proj = LoRALinear(attn.proj, r, alpha)
    unfreeze_head(model)


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Fold every LoRA update into its frozen projection (``W += alpha/r B A``) and drop the LoRA modules."""
    for attn in attention_modules(model):
        for name in ("qkv", "proj"):
            layer = getattr(attn, name)
            if isinstance(layer, (LoRALinear, LoRAQV)):
                layer.base.weight += layer.delta()
                setattr(attn, name, layer.base)


LORA = register(
    Method(
        name="lora",
        summary="LoRA: rank-r updates on attention query and value (or fused qkv and output) projections",
        trainable="LoRA A, B on q and v (L x 2 x 2rD) + head; qkv+proj: L x 6rD + head",
        prepare=prepare,
        config=LoRAConfig,
        optimizer="adamw",
        grid=FT_GRID,
        default_lr=0.001,
        label="LoRA",
        color="#e6ab02",
        order=7,
        merge=merge,
        tie_axes=("batch_size", "lora_rank", "lora_alpha"),
        families=TRANSFORMER_FAMILIES,
    )
)
