"""Attaching a method's module to a frozen timm module through one forward hook, and taking it off again.

The added module becomes a child of the module it modifies (``blocks.3.mlp.adapter``), so it is in the state dict
and in ``tuned.safetensors`` under a stable name, and timm's ``forward`` code stays untouched (as the prompts in
``vptlab.backbones.prompts``).  The hook is a plain function ``hook(host, args, output) -> output`` that finds the
added module on ``host`` by name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vptlab.errors import UserError
from vptlab.methods.base import TRAINS_ATTR

Hook = Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor]


def attach(host: nn.Module, name: str, module: nn.Module, hook: Callable, pre: bool = False) -> nn.Module:
    """Make ``module`` the child ``name`` of ``host`` and call ``hook`` on every output of ``host``
    (``pre``: on every positional input, ``hook(host, args) -> args``)."""
    if hasattr(host, name):
        raise ValueError(f"{type(host).__name__} already has {name!r}")
    ref = next(host.parameters(), None)
    if ref is not None:
        module.to(device=ref.device, dtype=ref.dtype)
    setattr(module, TRAINS_ATTR, True)
    host.add_module(name, module)
    register = host.register_forward_pre_hook if pre else host.register_forward_hook
    module._vptlab_hook = register(hook)
    return module


def detach(host: nn.Module, name: str) -> nn.Module:
    """Remove the child ``name`` and its hook; ``host`` computes what it computed before ``attach``."""
    module = getattr(host, name)
    module._vptlab_hook.remove()
    delattr(host, name)
    return module


def require_vit(model: nn.Module, method: str) -> VisionTransformer:
    """The model as a timm VisionTransformer with blocks of (norm1, attn.qkv/proj, norm2, mlp.fc1/fc2)."""
    ok = isinstance(model, VisionTransformer) and all(
        hasattr(b, "attn") and hasattr(b.attn, "qkv") and hasattr(b, "mlp") and hasattr(b.mlp, "fc1")
        for b in model.blocks
    )
    if not ok:
        raise UserError(f"{method} needs a timm VisionTransformer backbone, got {type(model).__name__}")
    return model
