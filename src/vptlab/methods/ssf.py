"""SSF (Lian et al. 2022): a learned per-channel scale and shift after every operation of the frozen ViT.

``y = s * op(x) + t`` after the patch embedding, after each block's norm1, qkv, attention projection, norm2, fc1
(before the activation) and fc2, and after the final norm: the places of the paper's released ViT code.  ``s``
starts at N(1, 0.02) and ``t`` at N(0, 0.02), as in the paper.  Every ``op`` is linear per channel in its output,
so :func:`merge` folds ``s`` and ``t`` into its weight and bias and the tuned model is the plain backbone again
(the paper's re-parameterisation: no inference cost).

Trainable: ``2 D (2 + 11 L)`` + head: 205,824 on ViT-B/16, 0.21M; the paper's 0.24M average over VTAB-1k includes
the task heads (about 38k each on average).
"""

from __future__ import annotations

import torch
from torch import nn

from vptlab.errors import UserError
from vptlab.methods import _hooks
from vptlab.methods.base import PETL_RECIPE, Method, NoOptions, freeze, register, unfreeze_head

ATTR = "ssf"


class ScaleShift(nn.Module):
    """``x * scale + shift`` over the last dimension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim))
        self.shift = nn.Parameter(torch.empty(dim))
        nn.init.normal_(self.scale, mean=1.0, std=0.02)
        nn.init.normal_(self.shift, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def _scale_shift(host: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return getattr(host, ATTR)(out)


def ssf_hosts(model: nn.Module) -> list[tuple[nn.Module, int]]:
    """The modules whose outputs SSF scales and shifts, with their output width."""
    hosts: list[tuple[nn.Module, int]] = [(model.patch_embed, model.embed_dim)]
    for b in model.blocks:
        for m in (b.norm1, b.attn.qkv, b.attn.proj, b.norm2, b.mlp.fc1, b.mlp.fc2):
            hosts.append((m, m.out_features if isinstance(m, nn.Linear) else model.embed_dim))
    hosts.append((_final_norm(model), model.embed_dim))
    return hosts


def _final_norm(model: nn.Module) -> nn.Module:
    """The last LayerNorm: ``norm``, or ``fc_norm`` on a ViT that pools first (average pooling, MAE-style)."""
    return model.norm if not isinstance(model.norm, nn.Identity) else model.fc_norm


def attach_ssf(model: nn.Module) -> None:
    model = _hooks.require_vit(model, "ssf")
    if not isinstance(model.patch_embed.norm, nn.Identity) or not isinstance(
        _final_norm(model), nn.LayerNorm
    ):
        raise UserError("ssf needs a ViT without a patch-embedding norm and with a final LayerNorm")
    for host, dim in ssf_hosts(model):
        _hooks.attach(host, ATTR, ScaleShift(dim), _scale_shift)


@torch.no_grad()
def merge(model: nn.Module) -> None:
    """Fold every scale and shift into the weights they follow and remove them (outputs unchanged)."""
    for host, _ in ssf_hosts(model):
        if not hasattr(host, ATTR):
            continue
        ss = _hooks.detach(host, ATTR)
        target = host.proj if host is model.patch_embed else host
        _fold(target, ss.scale, ss.shift)


def _fold(op: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """``op`` then ``x * scale + shift`` as one ``op``: its weight rows scaled, its bias scaled and shifted."""
    shape = (-1,) + (1,) * (op.weight.dim() - 1)
    op.weight.mul_(scale.view(shape))
    if op.bias is None:
        op.bias = nn.Parameter(shift.clone(), requires_grad=False)
    else:
        op.bias.mul_(scale).add_(shift)


def prepare(model: nn.Module, options: NoOptions) -> None:
    freeze(model)
    attach_ssf(model)
    unfreeze_head(model)


SSF = register(
    Method(
        name="ssf",
        summary="SSF: per-channel scale and shift after every operation, frozen backbone; mergeable",
        trainable="scales + shifts 2 D (2 + 11 L) + head",
        **PETL_RECIPE,
        prepare=prepare,
        order=12,
        label="SSF",
        color="#33a02c",
        merge=merge,
    )
)
