"""Visual prompts on timm's SwinTransformer, as the reference VPT code defines prompted Swin.

The reference (KMnP/vpt ``src/models/vit_prompt/swin_transformer.py``, location ``prepend``):

- **prepended**: ``n`` prompt tokens go before the patch tokens, ``[P, patches]`` (Swin has no class token and
  no absolute position embedding), at the input of the first block;
- **in every block** the normalised prompts are split off, the patches are (shifted and) partitioned into
  windows, and the same prompts are prepended to *every* window: each window attends over ``n + M*M`` tokens.
  The relative position bias and the shifted-window mask get zero rows and columns for the prompts.  After the
  attention, the prompt outputs are averaged over the windows and put back before the patches; the residual
  and the MLP then run over all ``n + H*W`` tokens;
- **patch merging** carries the prompts by channel concatenation: a prompt ``p`` (width ``C``) becomes
  ``[p, p, p, p]`` (width ``4C``) beside the merged 2x2 patch groups, and both go through the merging's norm
  and linear reduction (``4C -> 2C``);
- **deep**: before every block but the very first, the prompt slice is *replaced* by fresh prompts of that
  stage's width (stage ``s`` has ``depth_s`` prompt sets of width ``C * 2**s``; stage 0 has ``depth_0 - 1``
  plus the first one);
- **head**: the final norm over all tokens, then the average of *all* tokens (prompts included) -> linear;
- init uniform in ``[-v, v]``, ``v = sqrt(6 / (3 * patch_h * patch_w + C))`` with the stage-0 width ``C`` for
  every stage (as the reference does); prompt dropout where prompts are inserted.

One departure, on purpose: the reference lays the prompts out over the windows of a batch window-major while
timm (and the reference) partition images batch-major, so for a batch of more than one image a window is given
another image's prompts and the averaged prompt outputs mix images.  Here each image's prompts go to that
image's own windows, so a prediction does not depend on the rest of its batch; for one image the two agree.

The prompted forward replaces the model's ``forward_features`` (removed again by
:func:`vptlab.backbones.prompts.detach_prompts`); it returns the normalised tokens as a ``(B, 1, n + H*W, C)``
NHWC map so timm's own head (average pooling over the map) pools over all tokens as the reference does.
"""

from __future__ import annotations

import math
import types

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer, window_partition, window_reverse
from torch import nn

ATTR = "vpt"


class SwinPrompts(nn.Module):
    """Per stage a prompt tensor ``(sets, n, C_s)``: stage 0's first set is the prepended prompts."""

    def __init__(
        self,
        num_tokens: int,
        dims: list[int],
        depths: list[int],
        patch_size: tuple[int, int],
        deep: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.num_prefix = 0  # Swin has no class token
        self.deep = deep
        self.init_bound = math.sqrt(6.0 / float(3 * patch_size[0] * patch_size[1] + dims[0]))
        sets = depths if deep else [1]
        self.stages = nn.ParameterList(
            nn.Parameter(torch.empty(k, num_tokens, d).uniform_(-self.init_bound, self.init_bound))
            for k, d in zip(sets, dims)
        )
        self.dropout = nn.Dropout(dropout)

    def tokens(self, stage: int, block: int, batch: int) -> torch.Tensor:
        """The prompts fed to ``block`` of ``stage``, expanded to the batch, after prompt dropout."""
        return self.dropout(self.stages[stage][block].unsqueeze(0).expand(batch, -1, -1))

    def remove_hooks(self) -> None:
        """Nothing to remove: the forward is restored by :func:`vptlab.backbones.prompts.detach_prompts`."""


def attach_swin_prompts(
    model: SwinTransformer, num_tokens: int, deep: bool, dropout: float = 0.0
) -> SwinPrompts:
    """Add prompts to a timm Swin (as ``model.vpt``) and route its ``forward_features`` through them."""
    dims = [int(stage.blocks[0].dim) for stage in model.layers]  # each stage's width after its merging
    depths = [len(stage.blocks) for stage in model.layers]
    prompts = SwinPrompts(
        num_tokens, dims, depths, tuple(model.patch_embed.patch_size), deep=deep, dropout=dropout
    )
    prompts.to(model.patch_embed.proj.weight.device)
    setattr(model, ATTR, prompts)
    model.forward_features = types.MethodType(prompted_forward_features, model)
    return prompts


def detach_swin_prompts(model: SwinTransformer) -> None:
    if "forward_features" in model.__dict__:
        del model.__dict__["forward_features"]


def prompted_forward_features(model: SwinTransformer, x: torch.Tensor) -> torch.Tensor:
    prompts: SwinPrompts = getattr(model, ATTR)
    n = prompts.num_tokens
    x = model.patch_embed(x)  # (B, H, W, C)
    b, h, w, c = x.shape
    t = torch.cat([prompts.tokens(0, 0, b).to(x.dtype), x.reshape(b, h * w, c)], dim=1)
    for s, stage in enumerate(model.layers):
        if not isinstance(stage.downsample, nn.Identity):
            t, h, w = _merge(stage.downsample, t, h, w, n)
        for j, block in enumerate(stage.blocks):
            if prompts.deep and (s, j) != (0, 0):
                t = torch.cat([prompts.tokens(s, j, b).to(t.dtype), t[:, n:]], dim=1)
            t = _block(block, t, h, w, n)
    t = model.norm(t)
    return t.unsqueeze(1)  # (B, 1, n + H*W, C): timm's NHWC head averages over every token


def _merge(merging: nn.Module, t: torch.Tensor, h: int, w: int, n: int) -> tuple[torch.Tensor, int, int]:
    """Patch merging with prompts: ``[p, p, p, p]`` beside the merged patches, then norm and reduction."""
    b, _, c = t.shape
    p, x = t[:, :n], t[:, n:].reshape(b, h, w, c)
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    h2, w2 = x.shape[1] // 2, x.shape[2] // 2
    x = x.reshape(b, h2, 2, w2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)  # timm's 2x2 channel order
    t = torch.cat([p.repeat(1, 1, 4), x.reshape(b, h2 * w2, 4 * c)], dim=1)
    return merging.reduction(merging.norm(t)), h2, w2


def _block(block: nn.Module, t: torch.Tensor, h: int, w: int, n: int) -> torch.Tensor:
    """One Swin block over ``[prompts, patches]``: the prompts join every window's attention."""
    b, _, c = t.shape
    z = block.norm1(t)
    p, x = z[:, :n], z[:, n:].reshape(b, h, w, c)
    wh, ww = block.window_size
    sh, sw = block.shift_size
    shifted = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2)) if (sh or sw) else x
    shifted = F.pad(shifted, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
    hp, wp = shifted.shape[1], shifted.shape[2]
    windows = window_partition(shifted, (wh, ww)).reshape(-1, wh * ww, c)  # (B * nW, A, C), image-major
    nw = windows.shape[0] // b
    mask = block.get_attn_mask(shifted) if getattr(block, "dynamic_mask", False) else block.attn_mask
    seq = torch.cat([p.unsqueeze(1).expand(b, nw, n, c).reshape(b * nw, n, c), windows], dim=1)
    out = _window_attention(block.attn, seq, mask, n)
    p_out = out[:, :n].reshape(b, nw, n, c).mean(1)  # each image's prompt outputs averaged over its windows
    x = window_reverse(out[:, n:].reshape(-1, wh, ww, c), (wh, ww), hp, wp)[:, :h, :w]
    x = torch.roll(x, shifts=(sh, sw), dims=(1, 2)) if (sh or sw) else x
    t = t + block.drop_path1(torch.cat([p_out, x.reshape(b, h * w, c)], dim=1))
    return t + block.drop_path2(block.mlp(block.norm2(t)))


def _window_attention(attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None, n: int) -> torch.Tensor:
    """timm's window attention with ``n`` prompt tokens first: zero bias and zero mask rows/columns for them."""
    bw, length, c = x.shape
    heads = attn.num_heads
    q, k, v = attn.qkv(x).reshape(bw, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    bias = F.pad(attn._get_rel_pos_bias(), (n, 0, n, 0))  # (1, heads, N, N)
    if mask is not None:
        nw = mask.shape[0]
        bias = (
            (bias.unsqueeze(1) + F.pad(mask, (n, 0, n, 0)).view(1, nw, 1, length, length))
            .view(-1, heads, length, length)
            .repeat(bw // nw, 1, 1, 1)
        )
    scores = (q * attn.scale) @ k.transpose(-2, -1) + bias
    out = attn.attn_drop(scores.softmax(dim=-1)) @ v
    return attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(bw, length, -1)))
