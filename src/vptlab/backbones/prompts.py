"""Visual prompts on timm's VisionTransformer, inserted at one hook: the input of each transformer block.

Following the reference VPT code (KMnP/vpt, shared by VPT-or-FT), generalised to timm's prefix tokens:

- prompt tokens go right after *all* prefix tokens (the class token and any register tokens),
  ``[CLS, REG_1..REG_r, P_1..P_n, patches]``, with no position embedding (they are inserted after timm's
  ``_pos_embed``, i.e. at the input of block 0); on a class-token ViT this is the reference's ``[CLS, P, patches]``;
- while prompts are attached, the model's ``num_prefix_tokens`` counts them too (restored by
  :func:`detach_prompts`), so timm's own pooling (``token``; ``avg`` over patches only; ``map``), ``forward_head``
  and ``forward_intermediates`` see prompts as prefix tokens, never as patches;
- shallow: one prompt set ``(n, D)`` inserted before block 0 and carried through all layers;
- deep: before every later block ``i`` the prompt slice of the hidden states is *replaced* by a fresh ``P_i``
  (the previous block's prompt outputs are discarded); ``L * n * D`` parameters;
- init uniform in ``[-v, v]`` with ``v = sqrt(6 / (3 * patch_h * patch_w + D))`` (0.0625 for ViT-B/16);
- prompt dropout where prompts are inserted (a fresh mask per sample).

timm's ``forward`` is untouched: a forward pre-hook on each block rewrites that block's input.  The head is the
backbone's own (``global_pool``, ``fc_norm``) unless the run asks for another (:mod:`vptlab.backbones.create`).
Swin's prompts live in :mod:`vptlab.backbones.swin_prompts`; :func:`attach_prompts` picks by model type.
"""

from __future__ import annotations

import math

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vptlab.errors import UserError

ATTR = "vpt"


class VisualPrompts(nn.Module):
    """The prompt parameters ``(layers, n, D)`` and the hooks that put them into the token sequence."""

    def __init__(
        self,
        num_tokens: int,
        embed_dim: int,
        depth: int,
        patch_size: tuple[int, int],
        deep: bool,
        dropout: float = 0.0,
        num_prefix: int = 1,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.num_prefix = (
            num_prefix  # the backbone's own prefix tokens (CLS + registers), prompts not counted
        )
        self.deep = deep
        bound = math.sqrt(6.0 / float(3 * patch_size[0] * patch_size[1] + embed_dim))
        self.init_bound = bound
        self.prompts = nn.Parameter(torch.empty(depth if deep else 1, num_tokens, embed_dim))
        nn.init.uniform_(self.prompts, -bound, bound)
        self.dropout = nn.Dropout(dropout)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def tokens(self, layer: int, batch: int) -> torch.Tensor:
        """The prompts fed to block ``layer``, expanded to the batch, after prompt dropout."""
        return self.dropout(self.prompts[layer].unsqueeze(0).expand(batch, -1, -1))

    def insert(self, x: torch.Tensor) -> torch.Tensor:
        """Block 0's input: ``[prefix, patches]`` -> ``[prefix, P_0, patches]``."""
        k = self.num_prefix
        return torch.cat([x[:, :k], self.tokens(0, x.shape[0]).to(x.dtype), x[:, k:]], dim=1)

    def replace(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Block ``layer``'s input (deep): the previous prompt outputs are replaced by ``P_layer``."""
        k, n = self.num_prefix, self.num_tokens
        return torch.cat([x[:, :k], self.tokens(layer, x.shape[0]).to(x.dtype), x[:, k + n :]], dim=1)

    def register(self, blocks: nn.Sequential) -> None:
        self.remove_hooks()
        layers = range(len(blocks)) if self.deep else range(1)
        for i in layers:
            self._handles.append(blocks[i].register_forward_pre_hook(self._hook(i), with_kwargs=True))

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, layer: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            x, *rest = args
            x = self.insert(x) if layer == 0 else self.replace(x, layer)
            return (x, *rest), kwargs

        return hook


def attach_prompts(model: nn.Module, num_tokens: int, deep: bool, dropout: float = 0.0) -> nn.Module:
    """Add prompts to ``model`` (as ``model.vpt``, so they are in its state dict) and register the hooks.

    A timm ``VisionTransformer`` (with or without class token, with register tokens) gets token prompts after
    its prefix tokens; a timm ``SwinTransformer`` gets the reference's prompted Swin
    (:mod:`vptlab.backbones.swin_prompts`).  Anything else is refused with one line.
    """
    from timm.models.swin_transformer import SwinTransformer

    if get_prompts(model) is not None:
        raise ValueError("this model already has prompts")
    if num_tokens < 1:
        raise UserError(f"prompt_length must be >= 1, got {num_tokens}")
    if isinstance(model, SwinTransformer):
        from vptlab.backbones.swin_prompts import attach_swin_prompts

        return attach_swin_prompts(model, num_tokens, deep=deep, dropout=dropout)
    if not isinstance(model, VisionTransformer):
        raise UserError(
            f"visual prompts need a timm VisionTransformer or SwinTransformer, got {type(model).__name__}"
        )
    if getattr(model.patch_embed, "dynamic_img_size", False) or getattr(model, "dynamic_img_size", False):
        raise UserError(
            "visual prompts need a fixed image size; build the backbone with dynamic_img_size=False"
        )
    prompts = VisualPrompts(
        num_tokens,
        model.embed_dim,
        len(model.blocks),
        tuple(model.patch_embed.patch_size),
        deep=deep,
        dropout=dropout,
        num_prefix=int(model.num_prefix_tokens),
    )
    prompts.to(model.patch_embed.proj.weight.device)
    setattr(model, ATTR, prompts)
    model.num_prefix_tokens = prompts.num_prefix + num_tokens
    prompts.register(model.blocks)
    return prompts


def detach_prompts(model: nn.Module) -> None:
    """Remove the prompts and their hooks; ``num_prefix_tokens`` (ViT) and the forward (Swin) are restored."""
    prompts = getattr(model, ATTR, None)
    if prompts is None:
        return
    prompts.remove_hooks()
    if isinstance(prompts, VisualPrompts):
        model.num_prefix_tokens = prompts.num_prefix
    else:
        from vptlab.backbones.swin_prompts import detach_swin_prompts

        detach_swin_prompts(model)
    delattr(model, ATTR)


def get_prompts(model: nn.Module) -> VisualPrompts | None:
    """The model's prompts, or None for a model without them."""
    prompts = getattr(model, ATTR, None)
    return prompts if isinstance(prompts, nn.Module) and hasattr(prompts, "num_tokens") else None
