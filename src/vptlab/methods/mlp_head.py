"""Mlp-k (VPT's baseline): a k-layer MLP head on the frozen backbone's CLS feature; nothing else trains.

VPT's paper: "a multilayer perceptron with k layers, instead of a linear layer, as classification head".  As its
code builds it: ``k - 1`` hidden layers of width D, each Linear -> ReLU -> Dropout(0.1), then the output Linear;
weights Kaiming-normal (fan out), the output bias at ``-log(99)`` (prior 0.01).  VPT's code also puts a
BatchNorm1d after each ReLU; vptlab leaves it out, because its running statistics are state outside the trained
parameters that a run saves and resumes from.  k = 1 is a linear head.
Trainable: ``(k - 1) (D^2 + D) + D C + C``: 1,181,184 + head on ViT-B/16 for k = 3 (Mlp-3).
Trained with the linear probe's optimiser and grid (SGD, the VPT grid), as VPT does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from vptlab.methods.base import (
    PROMPT_GRID,
    TRAINS_ATTR,
    Method,
    MethodConfig,
    at_least,
    freeze,
    option,
    register,
)


@dataclass(frozen=True)
class MlpHeadConfig(MethodConfig):
    layers: int = option(3, help="k, the number of linear layers of the head", check=at_least(1))


def mlp_head(dim: int, num_classes: int, layers: int, dropout: float = 0.1) -> nn.Sequential:
    """VPT's MLP head: ``layers - 1`` hidden blocks and the output layer."""
    modules: list[nn.Module] = []
    for _ in range(layers - 1):
        fc = nn.Linear(dim, dim)
        nn.init.kaiming_normal_(fc.weight, a=0, mode="fan_out")
        modules += [fc, nn.ReLU(), nn.Dropout(dropout)]
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


def prepare(model: nn.Module, options: MlpHeadConfig) -> None:
    freeze(model)
    attach_mlp_head(model, options.layers)
    for p in model.head.parameters():
        p.requires_grad_(True)


MLP_HEAD = register(
    Method(
        name="mlp-head",
        summary="Mlp-k: a k-layer MLP head on frozen CLS features",
        trainable="MLP head (k - 1) (D^2 + D) + D C + C",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=prepare,
        config=MlpHeadConfig,
        order=19,
        label="Mlp-k",
        color="#cab2d6",
    )
)
