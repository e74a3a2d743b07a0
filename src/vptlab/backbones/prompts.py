"""Visual prompts on timm's VisionTransformer, inserted at one hook: the input of each transformer block.

Following the reference VPT code (KMnP/vpt, shared by VPT-or-FT):

- prompt tokens go right after the class token, ``[CLS, P_1..P_n, patches]``, with no position embedding
  (they are inserted after timm's ``_pos_embed``, i.e. at the input of block 0);
- shallow: one prompt set ``(n, D)`` inserted before block 0 and carried through all layers;
- deep: before every later block ``i`` the prompt slice of the hidden states is *replaced* by a fresh ``P_i``
  (the previous block's prompt outputs are discarded); ``L * n * D`` parameters;
- init uniform in ``[-v, v]`` with ``v = sqrt(6 / (3 * patch_h * patch_w + D))`` (0.0625 for ViT-B/16);
- prompt dropout where prompts are inserted (a fresh mask per sample).

timm's ``forward`` is untouched: a forward pre-hook on each block rewrites that block's input.  Pooling stays on
the CLS token (``global_pool="token"``), so the head is final norm -> CLS -> linear.
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
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
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
        """Block 0's input: ``[CLS, patches]`` -> ``[CLS, P_0, patches]``."""
        return torch.cat([x[:, :1], self.tokens(0, x.shape[0]).to(x.dtype), x[:, 1:]], dim=1)

    def replace(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Block ``layer``'s input (deep): the previous prompt outputs are replaced by ``P_layer``."""
        n = self.num_tokens
        return torch.cat([x[:, :1], self.tokens(layer, x.shape[0]).to(x.dtype), x[:, 1 + n :]], dim=1)

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


def attach_prompts(
    model: VisionTransformer, num_tokens: int, deep: bool, dropout: float = 0.0
) -> VisualPrompts:
    """Add prompts to ``model`` (as ``model.vpt``, so they are in its state dict) and register the hooks."""
    if not isinstance(model, VisionTransformer) or getattr(model, "cls_token", None) is None:
        raise UserError(
            f"visual prompts need a timm VisionTransformer with a class token, got {type(model).__name__}"
        )
    if get_prompts(model) is not None:
        raise ValueError("this model already has prompts")
    if num_tokens < 1:
        raise UserError(f"prompt_length must be >= 1, got {num_tokens}")
    prompts = VisualPrompts(
        num_tokens,
        model.embed_dim,
        len(model.blocks),
        tuple(model.patch_embed.patch_size),
        deep=deep,
        dropout=dropout,
    )
    prompts.to(model.cls_token.device)
    setattr(model, ATTR, prompts)
    prompts.register(model.blocks)
    return prompts


def get_prompts(model: nn.Module) -> VisualPrompts | None:
    """The model's prompts, or None for a model without them."""
    prompts = getattr(model, ATTR, None)
    return prompts if isinstance(prompts, VisualPrompts) else None
