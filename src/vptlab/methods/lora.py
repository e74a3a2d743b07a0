"""LoRA (Hu et al. 2022): low-rank updates ``W + (alpha/r) B A`` on the attention projections (qkv and proj).

A small module rather than peft: peft's LoRA needs transformers and accelerate installed, and timm's fused
``qkv`` Linear is all we wrap.  ``B`` starts at zero, so a fresh LoRA model computes exactly the backbone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vptlab.methods.base import FT_GRID, Method, freeze, register, unfreeze_head


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * x A^T B^T`` with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    @property
    def weight(self) -> torch.Tensor:  # code that reads attn.qkv.weight (e.g. attention maps) sees W + dW
        return self.base.weight + self.scale * (self.lora_b @ self.lora_a)

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def prepare(model: nn.Module, cfg: object) -> None:
    freeze(model)
    for block in model.blocks:
        block.attn.qkv = LoRALinear(block.attn.qkv, cfg.lora_rank, cfg.lora_alpha)
        block.attn.proj = LoRALinear(block.attn.proj, cfg.lora_rank, cfg.lora_alpha)
    unfreeze_head(model)


LORA = register(
    Method(
        name="lora",
        summary="LoRA: rank-r updates on attention qkv and output projections",
        trainable="LoRA A, B on qkv and proj (L x r x 6D) + head",
        optimizer="adamw",
        grid=FT_GRID,
        default_batch_size=64,
        default_lr=0.001,
        default_wd=0.0001,
        prepare=prepare,
        uses=frozenset({"lora_rank", "lora_alpha"}),
    )
)
