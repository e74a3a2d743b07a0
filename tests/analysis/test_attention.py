"""Attention maps on a tiny ViT with and without prompts: shapes, prompts left out, shares that add up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from vptlab.analysis.attention import (
    attention_grid,
    attention_rollout,
    attention_weights,
    cls_attention_maps,
    token_layout,
)
from vptlab.backbones.prompts import attach_prompts

GRID = 4  # 32 / 8


def _vit(prompts: int = 0, deep: bool = False) -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, num_classes=5)
    if prompts:
        attach_prompts(model, prompts, deep=deep)
    return model.eval()


def _x() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("prompts", "deep"), [(0, False), (5, False), (5, True)])
def test_recomputed_attention_equals_timms_own(prompts, deep):
    model = _vit(prompts, deep)
    ours = attention_weights(model, _x())
    seen = []
    for blk in model.blocks:  # timm's explicit (non-fused) path exposes the probabilities at attn_drop
        blk.attn.fused_attn = False
        blk.attn.attn_drop.register_forward_hook(lambda m, i, o: seen.append(o))
    model.forward_features(_x())
    assert len(ours) == 3 and ours[0].shape == (3, 2, 1 + prompts + GRID * GRID, 1 + prompts + GRID * GRID)
    for a, b in zip(ours, seen):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("prompts", "deep"), [(0, False), (5, False), (7, True)])
def test_maps_cover_patches_only_and_shares_add_up(prompts, deep):
    model = _vit(prompts, deep)
    maps = cls_attention_maps(model, _x())
    assert maps.last.shape == (3, GRID, GRID) and maps.rollout.shape == (3, GRID, GRID)
    np.testing.assert_allclose(maps.last.sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(maps.rollout.sum(axis=(1, 2)), 1.0, atol=1e-5)
    total = maps.cls_share + maps.prompt_share + maps.other_share + maps.patch_share
    np.testing.assert_allclose(total, 1.0, atol=1e-5)
    assert maps.num_prompts == prompts
    if prompts:
        assert (maps.prompt_share > 0).all() and (maps.rollout_prompt_share > 0).all()
    else:
        assert (maps.prompt_share == 0).all() and (maps.rollout_prompt_share == 0).all()


def test_the_spatial_map_is_the_patch_part_of_the_cls_row_renormalised():
    model = _vit(4)
    probs = attention_weights(model, _x())[-1].mean(dim=1)  # (B, N, N)
    patches = probs[:, 0, 1 + 4 :]
    expected = (patches / patches.sum(-1, keepdim=True)).reshape(-1, GRID, GRID).numpy()
    np.testing.assert_allclose(cls_attention_maps(model, _x()).last, expected, atol=1e-6)


def test_token_layout_reads_the_prompt_hook():
    layout = token_layout(_vit(6, deep=True))
    assert (layout.num_prompts, layout.num_prefix, layout.grid, layout.deep) == (6, 1, (4, 4), True)
    assert layout.prompt_slice == slice(1, 7) and layout.patch_slice == slice(7, None)


def test_deep_prompts_are_reseeded_in_the_rollout():
    """With uniform attention everywhere, deep prompts' later layers take flow that shallow ones cannot."""
    model = _vit(2, deep=True)
    layout = token_layout(model)
    n = 1 + 2 + 16
    uniform = [torch.full((1, n, n), 1.0 / n) for _ in range(3)]
    deep_flow = attention_rollout(uniform, layout)
    assert deep_flow.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert deep_flow[0, -1].item() > 0  # flow ending at the later layers' fresh prompts
    shallow = token_layout(_vit(2, deep=False))
    assert attention_rollout(uniform, shallow)[0, -1].item() == 0.0


def test_grid_figure_rows_and_columns():
    ft, vpt = cls_attention_maps(_vit(0), _x()), cls_attention_maps(_vit(3, deep=True), _x())
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    fig = attention_grid(images, [("FT", ft, "last"), ("VPT", vpt, "last"), ("VPT", vpt, "rollout")])
    assert len(fig.axes) == 3 * 4
    assert "to prompts:" in fig.axes[2].get_title() and "prompts" not in fig.axes[1].get_title()


def test_attention_maps_of_a_backbone_without_class_token_are_refused_in_one_line():
    import pytest
    import torch

    from vptlab.analysis.attention import cls_attention_maps
    from vptlab.backbones import create_backbone
    from vptlab.errors import UserError

    swin = create_backbone(
        "swin_tiny_patch4_window7_224", num_classes=2, pretrained=False, img_size=32, embed_dim=8,
        depths=(1, 1), num_heads=(1, 2), window_size=4,
    )  # fmt: skip
    with pytest.raises(UserError, match="class token; this backbone is a SwinTransformer"):
        cls_attention_maps(swin, torch.zeros(1, 3, 32, 32))
