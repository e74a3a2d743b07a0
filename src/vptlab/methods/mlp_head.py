"""Mlp-k (VPT's baseline): a k-layer MLP head on the frozen backbone's CLS feature; nothing else trains.

As VPT's code builds it: ``k - 1`` hidden layers of width D, each Linear -> ReLU -> BatchNorm1d -> Dropout(0.1),
then the output Linear; weights Kaiming-normal (fan out), the output bias at ``-log(99)`` (prior 0.01).  k = 1 is
a linear head.  Trainable: ``(k - 1) (D^2 + 3 D) + D C + C``: 1,184,256 + head on ViT-B/16 for k = 3 (Mlp-3).
Trained with the linear probe's optimiser and grid (SGD, the VPT grid), as VPT does.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from vptlab.methods.base import PROMPT_GRID, TRAINS_ATTR, Method, freeze, register
from vptlab.methods.options import Option


class _BatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that uses its running statistics for a one-image batch (batch statistics need two)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def mlp_head(dim: int, num_classes: int, layers: int, dropout: float = 0.1) -> nn.Sequential:
    """VPT's MLP head: ``layers - 1`` hidden blocks and the output layer."""
    modules: list[nn.Module] = []
    for _ in range(layers - 1):
        fc = nn.Linear(dim, dim)
        nn.init.kaiming_normal_(fc.weight, a=0, mode="fan_out")
        modules += [fc, nn.ReLU(), _BatchNorm(dim), nn.Dropout(dropout)]
    out = nn.Linear(dim, num_classes)
    nn.init.kaiming_normal_(out.weight, a=0, mode="fan_out")
    nn.init.constant_(out.bias, -math.log((1 - 0.01) / 0.01))
    head = nn.Sequential(*modules, out)
    setattr(head, TRAINS_ATTR, True)
    return head


def attach_mlp_head(model: nn.Module, layers: int) -> None:
    """Replace ``model.head`` by the MLP head (same input width, same number of classes)."""
    old = model.get_classifier()
    num_classes = old.out_features if isinstance(old, nn.Linear) else model.num_classes
    head = mlp_head(model.num_features, num_classes, layers)
    ref = next(model.parameters())
    model.head = head.to(device=ref.device, dtype=ref.dtype)


def prepare(model: nn.Module, cfg: object) -> None:
    freeze(model)
    attach_mlp_head(model, cfg.option("layers"))
    for p in model.head.parameters():
        p.requires_grad_(True)


MLP_HEAD = register(
    Method(
        name="mlp-head",
        summary="Mlp-k: a k-layer MLP head on frozen CLS features",
        trainable="MLP head (k - 1) (D^2 + 3 D) + D C + C",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=prepare,
        options=(Option("layers", 3, "k, the number of linear layers of the head", minimum=1),),
        label="Mlp-k",
        color="#cab2d6",
    )
)
