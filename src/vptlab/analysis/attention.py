"""Where the CLS token looks: last-layer CLS attention and attention rollout, for models with or without prompts.

Attention weights are recomputed, not copied out of timm's ``forward``: a forward hook on each block's ``attn``
module receives that module's input (the normed tokens) and recomputes ``softmax(q k^T / sqrt(d))`` per head from
the module's own ``qkv``, ``q_norm`` and ``k_norm`` layers, so fused attention kernels stay in use.

Prompts are handled explicitly.  With prompts the token layout is ``[CLS, P_1..P_n, other prefix, patches]``
(:mod:`vptlab.backbones.prompts`).  The spatial maps keep only patch keys and are renormalised over patches; what
the CLS token gives to the prompts is reported as ``prompt_share`` (and to itself as ``cls_share``), so
``cls_share + prompt_share + other_share + patch_share == 1``.

Rollout (Abnar & Zuidema 2020): per layer, head-averaged attention plus the identity for the residual,
rows renormalised, multiplied through the layers.  Deep prompts are fresh parameters at every layer (the previous
layer's prompt outputs are discarded), so their rows carry no flow from earlier tokens: at each later layer they
are re-seeded from one extra "later prompts" source, and the flow that ends there is part of ``prompt_share``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from vptlab.analysis._plot import new_figure
from vptlab.data.base import TaskData
from vptlab.errors import UserError


@dataclass(frozen=True)
class TokenLayout:
    """Where each kind of token sits in a block's input sequence."""

    num_prompts: int
    num_prefix: int  # timm's prefix tokens (CLS and any register tokens), prompts not counted
    grid: tuple[int, int]
    deep: bool

    # prompts sit after all prefix tokens: [CLS, registers, prompts, patches] (vptlab.backbones.prompts)
    @property
    def prompt_slice(self) -> slice:
        return slice(self.num_prefix, self.num_prefix + self.num_prompts)

    @property
    def other_prefix_slice(self) -> slice:
        return slice(1, self.num_prefix)

    @property
    def patch_slice(self) -> slice:
        return slice(self.num_prompts + self.num_prefix, None)


def token_layout(model: nn.Module) -> TokenLayout:
    """The token layout of a timm ViT, with the prompts of :func:`vptlab.backbones.get_prompts` if any."""
    from timm.models.vision_transformer import VisionTransformer

    from vptlab.backbones.prompts import get_prompts

    if not isinstance(model, VisionTransformer) or getattr(model, "cls_token", None) is None:
        raise UserError(
            f"CLS attention maps need a ViT with a class token; this backbone is a {type(model).__name__}"
            + ("" if isinstance(model, VisionTransformer) else " (no global token attention to map)")
        )
    prompts = get_prompts(model)
    grid = tuple(int(g) for g in model.patch_embed.grid_size)
    n = prompts.num_tokens if prompts is not None else 0
    prefix = prompts.num_prefix if prompts is not None else int(getattr(model, "num_prefix_tokens", 1))
    return TokenLayout(n, prefix, grid, bool(prompts and prompts.deep))


def _attention_probs(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T * scale)`` of a timm ``Attention`` module on its input ``x``: ``(B, heads, N, N)``."""
    b, n, _ = x.shape
    heads = attn.num_heads
    head_dim = getattr(attn, "head_dim", attn.qkv.out_features // 3 // heads)
    qkv = attn.qkv(x).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
    scale = getattr(attn, "scale", head_dim**-0.5)
    return ((q * scale) @ k.transpose(-2, -1)).float().softmax(dim=-1)


@torch.no_grad()
def attention_weights(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per block, the attention probabilities ``(B, heads, N, N)`` of ``model`` on the batch ``x`` (eval mode)."""
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
        captured.append(_attention_probs(module, args[0] if args else kwargs["x"]))

    handles = [blk.attn.register_forward_hook(hook, with_kwargs=True) for blk in model.blocks]
    was_training = model.training
    try:
        model.eval()
        model.forward_features(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return captured


@dataclass(frozen=True)
class AttentionMaps:
    """Spatial maps ``(B, gh, gw)`` over patches (each sums to 1) and the CLS token's attention budget."""

    last: np.ndarray
    rollout: np.ndarray
    cls_share: np.ndarray  # last layer, CLS -> CLS, per image
    prompt_share: np.ndarray  # last layer, CLS -> prompts
    other_share: np.ndarray  # last layer, CLS -> other prefix tokens (register tokens), usually 0
    patch_share: np.ndarray  # last layer, CLS -> patches
    rollout_prompt_share: np.ndarray  # rollout, CLS flow ending at prompts (first layer's or later layers')
    num_prompts: int


def cls_attention_maps(model: nn.Module, x: torch.Tensor) -> AttentionMaps:
    """Last-layer CLS attention and attention rollout of ``model`` on ``x``, prompts left out of the maps."""
    layout = token_layout(model)
    probs = [p.mean(dim=1) for p in attention_weights(model, x)]  # head-averaged (B, N, N)
    cls_row = probs[-1][:, 0, :]
    patches = cls_row[:, layout.patch_slice]
    flow = attention_rollout(probs, layout)
    rollout_patches = flow[:, :-1][:, layout.patch_slice]  # last column: later prompts
    prompt_flow = flow[:, layout.prompt_slice].sum(-1) + flow[:, -1]
    return AttentionMaps(
        last=_spatial(patches, layout.grid),
        rollout=_spatial(rollout_patches, layout.grid),
        cls_share=cls_row[:, 0].cpu().numpy(),
        prompt_share=cls_row[:, layout.prompt_slice].sum(-1).cpu().numpy(),
        other_share=cls_row[:, layout.other_prefix_slice].sum(-1).cpu().numpy(),
        patch_share=patches.sum(-1).cpu().numpy(),
        rollout_prompt_share=prompt_flow.cpu().numpy(),
        num_prompts=layout.num_prompts,
    )


def attention_rollout(probs: list[torch.Tensor], layout: TokenLayout) -> torch.Tensor:
    """CLS row of the rollout over the first layer's tokens plus one "later prompts" source: ``(B, N + 1)``."""
    b, n, _ = probs[0].shape
    eye = torch.eye(n, dtype=probs[0].dtype, device=probs[0].device)
    flow = torch.cat([eye, torch.zeros(n, 1, dtype=eye.dtype, device=eye.device)], dim=1).expand(b, n, n + 1)
    for i, a in enumerate(probs):
        if i > 0 and layout.deep and layout.num_prompts:
            flow = flow.clone()
            flow[:, layout.prompt_slice, :] = 0.0
            flow[:, layout.prompt_slice, -1] = 1.0  # fresh prompts: their own source
        mixed = 0.5 * a + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        flow = mixed @ flow
    return flow[:, 0, :]


def _spatial(patch_weights: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """Renormalise over patches and reshape to the patch grid."""
    w = patch_weights / patch_weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return w.reshape(-1, *grid).cpu().numpy()


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """Patch-grid maps ``(B, gh, gw)`` at image resolution ``(B, size, size)``, each patch a flat block.

    Values are relative to uniform attention (1.0 = every patch equal), so maps can share one colour scale.
    """
    patches = maps.shape[1] * maps.shape[2]
    t = F.interpolate(torch.from_numpy(maps * patches)[:, None].float(), size=(size, size), mode="nearest")
    return t[:, 0].numpy()


def attention_grid(
    images: np.ndarray, columns: list[tuple[str, AttentionMaps, str]], title: str = ""
) -> Figure:
    """Rows: images; columns: the image, then one overlaid map per (label, maps, kind ``last`` | ``rollout``).

    All maps share one colour scale in units of uniform attention, centred on 1 (every patch equal): a
    near-uniform map looks pale instead of being stretched to full contrast.
    """
    n, ncols, size = len(images), 1 + len(columns), images.shape[1]
    heats = [
        [upsample(getattr(maps, kind)[r : r + 1], size)[0] for _, maps, kind in columns] for r in range(n)
    ]
    vmax = max(float(h.max()) for row in heats for h in row) if columns else 1.0
    fig = new_figure(1.9 * ncols, 1.9 * n + 0.6)
    for r in range(n):
        _show(fig.add_subplot(n, ncols, r * ncols + 1), images[r], None, "image" if r == 0 else "", vmax)
        for c, (name, maps, kind) in enumerate(columns):
            label = _column_label(f"{name} {KIND_LABELS[kind]}", maps, kind, r)
            _show(fig.add_subplot(n, ncols, r * ncols + c + 2), images[r], heats[r][c], label, vmax)
    scale = (
        f"attention per patch relative to uniform: blue below, grey = uniform, red above (up to {vmax:.1f}x)"
    )
    fig.suptitle(f"{title}\n{scale}" if title else scale, fontsize=8)
    return fig


KIND_LABELS = {"last": "CLS attn", "rollout": "rollout"}


def _column_label(name: str, maps: AttentionMaps, kind: str, row: int) -> str:
    if not maps.num_prompts:
        return name
    share = maps.prompt_share if kind == "last" else maps.rollout_prompt_share
    return f"{name}\nto prompts: {100 * share[row]:.0f}%"


def _show(ax, image: np.ndarray, heat: np.ndarray | None, label: str, vmax: float) -> None:
    ax.imshow(image, interpolation="nearest")
    if heat is not None:
        from matplotlib.colors import TwoSlopeNorm

        norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(vmax, 1.0 + 1e-6))
        ax.imshow(heat, cmap="coolwarm", norm=norm, alpha=0.6, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if label:
        ax.set_title(label, fontsize=7)


def share_summary(maps: AttentionMaps) -> dict[str, float]:
    """Means over images of the CLS token's last-layer attention budget and the rollout's prompt share."""
    return {
        "cls_share": float(np.mean(maps.cls_share)),
        "prompt_share": float(np.mean(maps.prompt_share)),
        "patch_share": float(np.mean(maps.patch_share)),
        "other_share": float(np.mean(maps.other_share)),
        "rollout_prompt_share": float(np.mean(maps.rollout_prompt_share)),
        "num_prompts": float(maps.num_prompts),
        "map_entropy_bits": float(np.mean([_entropy(m) for m in maps.last])) if len(maps.last) else math.nan,
    }


def _entropy(m: np.ndarray) -> float:
    """How spread out a map is (bits): log2(patches) for uniform, 0 for a single patch."""
    p = m.ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _test_images(run_dir: str | Path, count: int) -> tuple[np.ndarray, TaskData]:
    """``count`` test images of a run's task, evenly spaced through its test set (deterministic)."""
    from vptlab.data import load_task
    from vptlab.store import load_result

    cfg = (load_result(run_dir) or {}).get("config") or {}
    data = load_task(
        cfg["data"],
        cfg["task"],
        stage=cfg.get("stage", "final"),
        regime=cfg.get("regime", "standard"),
        split_seed=cfg.get("split_seed", 0),
        image_size=cfg["image_size"],
        interpolation=cfg.get("interpolation", "bilinear"),
    )
    idx = np.linspace(0, len(data.test) - 1, num=min(count, len(data.test))).round().astype(int)
    return np.asarray(data.test.images[idx]), data


def attention_for_runs(
    runs: dict[str, str | Path], count: int = 4, device: str = "cpu"
) -> tuple[Figure, dict[str, dict[str, float]]]:
    """Attention maps of finished runs (label -> run folder) on the same test images of the first run's task.

    Returns the grid figure (image, then last-layer and rollout maps per run) and per run the mean attention
    budget of the CLS token (:func:`share_summary`).
    """
    from vptlab.data import to_tensor
    from vptlab.train import load_run_model

    first = next(iter(runs.values()))
    images, data = _test_images(first, count)
    x = to_tensor(images, data.mean, data.std, device)
    columns, shares = [], {}
    for label, run_dir in runs.items():
        model, _ = load_run_model(run_dir, device=device)
        maps = cls_attention_maps(model, x)
        columns += [(label, maps, "last"), (label, maps, "rollout")]
        shares[label] = share_summary(maps)
    return attention_grid(images, columns, title=f"{data.info.name}: CLS attention over patches"), shares
