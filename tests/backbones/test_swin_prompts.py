"""Prompted Swin equals an independent re-implementation of the reference VPT-Swin equations (shallow, deep)."""

from __future__ import annotations

import pytest
import torch

from vptlab.backbones import attach_prompts, create_backbone, detach_prompts, get_prompts

# 16x16 patch grid, windows of 4 (shifted by 2), three stages: 16x16 -> 8x8 -> 4x4 (one window, no shift there)
SWIN = dict(img_size=32, patch_size=2, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 2), window_size=4)


def small_swin(num_classes: int = 5):
    torch.manual_seed(0)
    model = create_backbone("swin_tiny_patch4_window7_224", num_classes=num_classes, pretrained=False, **SWIN)
    with torch.no_grad():  # timm starts the relative position tables near zero: make the bias matter
        for name, p in model.named_parameters():
            if name.endswith("relative_position_bias_table"):
                p.normal_()
    return model


def _mlp(blk, z):
    return blk.mlp(z)


def _region(i: int, size: int, ws: int, shift: int) -> int:
    """Which of the shifted-window regions row/column ``i`` (of the rolled grid) belongs to."""
    if not shift:
        return 0
    return 0 if i < size - ws else (1 if i < size - shift else 2)


def _window_attn(attn, seq, coords, labels, n):
    """Attention over ``[prompts, window tokens]``; relative bias and shift mask only between window tokens."""
    length, c = seq.shape
    heads = attn.num_heads
    q, k, v = attn.qkv(seq).reshape(length, 3, heads, c // heads).permute(1, 2, 0, 3)
    ws = attn.window_size[0]
    bias = torch.zeros(heads, length, length)
    for a, (ra, ca) in enumerate(coords):
        for b, (rb, cb) in enumerate(coords):
            idx = (ra - rb + ws - 1) * (2 * ws - 1) + (ca - cb + ws - 1)
            bias[:, n + a, n + b] = attn.relative_position_bias_table[idx]
            if labels[a] != labels[b]:
                bias[:, n + a, n + b] -= 100.0
    scores = q @ k.transpose(-2, -1) / (c // heads) ** 0.5 + bias
    return attn.proj((scores.softmax(-1) @ v).permute(1, 0, 2).reshape(length, c))


def _block(blk, p, x, h, w):
    """p: (n, C) prompts, x: (H*W, C) patches of one image."""
    n, c = p.shape
    zp, zx = blk.norm1(p), blk.norm1(x).reshape(h, w, c)
    ws, shift = blk.window_size[0], blk.shift_size[0]
    grid = torch.roll(zx, (-shift, -shift), (0, 1))
    out = torch.zeros_like(grid)
    prompt_outs = []
    for wi in range(h // ws):
        for wj in range(w // ws):
            cells = [(r, col) for r in range(wi * ws, wi * ws + ws) for col in range(wj * ws, wj * ws + ws)]
            coords = [(r - wi * ws, col - wj * ws) for r, col in cells]
            labels = [3 * _region(r, h, ws, shift) + _region(col, w, ws, shift) for r, col in cells]
            toks = torch.stack([grid[r, col] for r, col in cells])
            y = _window_attn(blk.attn, torch.cat([zp, toks]), coords, labels, n)
            prompt_outs.append(y[:n])
            for (r, col), v in zip(cells, y[n:]):
                out[r, col] = v
    p = p + torch.stack(prompt_outs).mean(0)  # one prompt set shared by every window, outputs averaged
    x = x + torch.roll(out, (shift, shift), (0, 1)).reshape(h * w, c)
    return p + _mlp(blk, blk.norm2(p)), x + _mlp(blk, blk.norm2(x))


def _merge(merging, p, x, h, w):
    """2x2 neighbours concatenated on channels (timm order); each prompt concatenated with itself 4 times."""
    c = x.shape[-1]
    g = x.reshape(h, w, c)
    merged = torch.stack(
        [
            torch.cat([g[2 * i, 2 * j], g[2 * i + 1, 2 * j], g[2 * i, 2 * j + 1], g[2 * i + 1, 2 * j + 1]])
            for i in range(h // 2)
            for j in range(w // 2)
        ]
    )
    red = lambda z: merging.reduction(merging.norm(z))  # noqa: E731
    return red(torch.cat([p, p, p, p], -1)), red(merged), h // 2, w // 2


def reference_swin_vpt(model, images, deep: bool):
    sets = get_prompts(model).stages
    logits = []
    for img in images:  # one image at a time: nothing can leak between images of a batch
        e = model.patch_embed(img[None])[0]
        h, w, c = e.shape
        x, p = e.reshape(h * w, c), sets[0][0]
        for s, stage in enumerate(model.layers):
            if s > 0:
                p, x, h, w = _merge(stage.downsample, p, x, h, w)
            for j, blk in enumerate(stage.blocks):
                if deep and (s, j) != (0, 0):
                    p = sets[s][j]
                p, x = _block(blk, p, x, h, w)
        feat = model.norm(torch.cat([p, x])).mean(0)  # pooled over every token, prompts included
        logits.append(model.head.fc(feat))
    return torch.stack(logits)


@pytest.mark.parametrize("deep", [False, True])
def test_prompted_swin_equals_the_reference_equations(deep):
    model = small_swin()
    attach_prompts(model, num_tokens=3, deep=deep)
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_swin_vpt(model, x, deep), atol=1e-4, rtol=1e-4)


def test_deep_prompts_are_sized_per_stage_and_every_stage_matters():
    model = small_swin()
    prompts = attach_prompts(model, num_tokens=3, deep=True)
    assert [tuple(p.shape) for p in prompts.stages] == [(2, 3, 8), (2, 3, 16), (2, 3, 32)]
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        prompts.stages[2][1].normal_()  # the last block's prompts only
        assert (model(x) - before).abs().max() > 1e-4


def test_shallow_swin_prompts_and_removal_restores_the_plain_forward():
    model = small_swin()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        prompts = attach_prompts(model, num_tokens=2, deep=False)
        assert [tuple(p.shape) for p in prompts.stages] == [(1, 2, 8)]
        assert not torch.allclose(model(x), plain)
        detach_prompts(model)
        torch.testing.assert_close(model(x), plain)


def test_a_prediction_does_not_depend_on_the_rest_of_the_batch():
    model = small_swin()
    attach_prompts(model, num_tokens=2, deep=True)
    model.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:1], model(x[:1]), atol=1e-5, rtol=1e-5)


def test_prompt_dropout_is_active_in_train_mode_only():
    model = small_swin()
    attach_prompts(model, num_tokens=8, deep=True, dropout=0.5)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.vpt.train()
        assert not torch.equal(model(x), model(x))


def test_swin_b_deep_prompt_count():
    """Swin-B (C=128, depths 2-2-18-2) with 10 deep prompts: 10 x (2x128 + 2x256 + 18x512 + 2x1024)."""
    model = create_backbone(
        "swin_base_patch4_window7_224", num_classes=2, pretrained=False, img_size=32, window_size=1
    )
    prompts = attach_prompts(model, num_tokens=10, deep=True)
    assert sum(p.numel() for p in prompts.parameters()) == 10 * (2 * 128 + 2 * 256 + 18 * 512 + 2 * 1024)
