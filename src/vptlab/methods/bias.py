"""BitFit (Zaken et al. 2022): only the bias terms (attention, MLP, norms, patch embedding) and the head train."""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import PROMPT_GRID, Method, freeze, register, unfreeze_head


def prepare(model: nn.Module, cfg: object) -> None:
    freeze(model)
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            p.requires_grad_(True)
    unfreeze_head(model)


BIAS = register(
    Method(
        name="bias",
        summary="BitFit: bias terms only, frozen weights",
        trainable="every bias term + head",
        optimizer="sgd",
        grid=PROMPT_GRID,
        default_batch_size=64,
        default_lr=0.25,
        default_wd=0.0001,
        prepare=prepare,
    )
)
