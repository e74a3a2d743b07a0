"""The prompt hook computes exactly the VPT equations (docs/protocol.md), for shallow and deep."""

from __future__ import annotations

import math

import pytest
import torch

from vptlab.backbones import attach_prompts, create_backbone, get_prompts
from vptlab.errors import UserError

ARGS = dict(depth=3, embed_dim=32, num_heads=2)


def _block(blk, z):
    """One pre-norm transformer block written out: z + MSA(LN(z)), then z + MLP(LN(z))."""
    h = blk.norm1(z)
    b, n, d = h.shape
    heads = blk.attn.num_heads
    q, k, v = blk.attn.qkv(h).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1) / math.sqrt(d // heads)).softmax(-1)
    z = z + blk.attn.proj((attn @ v).transpose(1, 2).reshape(b, n, d))
    return z + blk.mlp.fc2(torch.nn.functional.gelu(blk.mlp.fc1(blk.norm2(z))))


def explicit_vpt(model, x, deep: bool):
    """Z_0 = [CLS, P_0, E] (E with position embedding, P without); deep: Z_i = [CLS, P_i, Z_{i-1}[patches]]."""
    p = get_prompts(model).prompts
    n = p.shape[1]
    e = model.patch_embed(x)
    z = torch.cat([model.cls_token.expand(len(x), -1, -1), e], 1) + model.pos_embed
    z = torch.cat([z[:, :1], p[0].expand(len(x), -1, -1), z[:, 1:]], 1)
    for i, blk in enumerate(model.blocks):
        if deep and i > 0:
            z = torch.cat([z[:, :1], p[i].expand(len(x), -1, -1), z[:, 1 + n :]], 1)
        z = _block(blk, z)
    return model.head(model.norm(z)[:, 0])


@pytest.mark.parametrize("deep", [False, True])
def test_hook_equals_explicit_equations(deep):
    torch.manual_seed(0)
    model = create_backbone("vptlab-tiny", num_classes=5, pretrained=False, image_size=16, **ARGS)
    attach_prompts(model, num_tokens=3, deep=deep, dropout=0.0)
    model.eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), explicit_vpt(model, x, deep), atol=1e-5, rtol=1e-5)


def test_prompts_change_the_output_and_deep_prompts_reach_every_layer():
    torch.manual_seed(0)
    model = create_backbone("vptlab-tiny", num_classes=5, pretrained=False, image_size=16, **ARGS)
    prompts = attach_prompts(model, num_tokens=2, deep=True)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    seen = []
    handles = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1])) for b in model.blocks]
    with torch.no_grad():
        before = model(x)
        prompts.prompts[2].normal_()  # only the last layer's prompts (not a constant shift: LN removes it)
        after = model(x)
    for h in handles:
        h.remove()
    assert (before - after).abs().max() > 1e-3
    assert set(seen) == {1 + 2 + 4}  # CLS + 2 prompts + 2x2 patches at every block


def test_init_bound_and_shapes_follow_the_reference_formula():
    model = create_backbone("vptlab-tiny", num_classes=5, pretrained=False, image_size=16, **ARGS)
    prompts = attach_prompts(model, num_tokens=4, deep=True)
    assert prompts.prompts.shape == (3, 4, 32)
    bound = math.sqrt(6 / (3 * 8 * 8 + 32))
    assert prompts.init_bound == pytest.approx(bound)
    assert prompts.prompts.abs().max() <= bound
    # ViT-B/16: 0.0625 as docs/protocol.md quotes it
    assert math.sqrt(6 / (3 * 16 * 16 + 768)) == pytest.approx(0.0625)


def test_prompt_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    model = create_backbone("vptlab-tiny", num_classes=5, pretrained=False, image_size=16, **ARGS)
    attach_prompts(model, num_tokens=8, deep=True, dropout=0.5)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.vpt.train()
        assert not torch.equal(model(x), model(x))


def explicit_prefix_vpt(model, x, deep: bool, pool: str):
    """Prompts after all prefix tokens: Z_0 = [CLS, REG, P_0, E]; the head pools as the backbone designs it."""
    p = get_prompts(model).prompts
    n, k = p.shape[1], 1 + model.num_reg_tokens
    e = model.patch_embed(x) + model.pos_embed  # no_embed_class: the prefix tokens carry no position
    z = torch.cat([model.cls_token.expand(len(x), -1, -1), model.reg_token.expand(len(x), -1, -1), e], 1)
    z = torch.cat([z[:, :k], p[0].expand(len(x), -1, -1), z[:, k:]], 1)
    for i, blk in enumerate(model.blocks):
        if deep and i > 0:
            z = torch.cat([z[:, :k], p[i].expand(len(x), -1, -1), z[:, k + n :]], 1)
        z = _block(blk, z)
    z = model.norm(z)
    if pool == "map":  # timm's attention pooling reads the patches only (pool_include_prefix=False)
        feat = model.attn_pool(z[:, k + n :])
    else:
        feat = z[:, 0] if pool == "token" else z[:, k + n :].mean(1)  # avg: patches only, not CLS/REG/prompts
    return model.head(model.fc_norm(feat))


REG_ARGS = dict(ARGS, reg_tokens=2, no_embed_class=True)


@pytest.mark.parametrize("pool", ["token", "avg", "map"])
@pytest.mark.parametrize("deep", [False, True])
def test_prompts_follow_all_prefix_tokens_and_the_backbones_own_pooling(deep, pool):
    torch.manual_seed(0)
    model = create_backbone(
        "vptlab-tiny", num_classes=5, pretrained=False, image_size=16, global_pool=pool, **REG_ARGS
    )
    assert model.num_prefix_tokens == 3 and model.global_pool == pool  # the run's choice is kept
    attach_prompts(model, num_tokens=4, deep=deep)
    assert model.num_prefix_tokens == 3 + 4
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), explicit_prefix_vpt(model, x, deep, pool), atol=1e-5, rtol=1e-5)


def test_intermediates_see_prompts_as_prefix_tokens_and_removal_restores_the_model():
    from vptlab.backbones import detach_prompts

    torch.manual_seed(0)
    model = create_backbone("vptlab-tiny", num_classes=5, pretrained=False, image_size=16, **REG_ARGS)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        plain = model(x)
        attach_prompts(model, num_tokens=4, deep=True)
        final, inter = model.forward_intermediates(x, indices=1, output_fmt="NLC", return_prefix_tokens=True)
        spatial, prefix = inter[0]
        assert spatial.shape == (2, 4, 32) and prefix.shape == (2, 3 + 4, 32)  # 2x2 patches; CLS+REG+prompts
        assert final.shape[1] == 3 + 4 + 4
        detach_prompts(model)
        assert model.num_prefix_tokens == 3 and get_prompts(model) is None
        torch.testing.assert_close(model(x), plain)


def test_average_pooling_with_fc_norm_is_kept_as_the_backbone_designs_it():
    from vptlab.backbones.create import describe_backbone

    model = create_backbone(
        "vptlab-tiny", num_classes=5, pretrained=False, image_size=16, class_token=False, global_pool="avg",
        **ARGS,
    )  # fmt: skip
    assert not isinstance(model.fc_norm, torch.nn.Identity)
    attach_prompts(model, num_tokens=2, deep=False)
    assert model.num_prefix_tokens == 2
    info = describe_backbone(model)
    assert (info["global_pool"], info["fc_norm"], info["class_token"], info["prefix_tokens"]) == (
        "avg", True, False, 0,
    )  # fmt: skip
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_a_convnet_is_refused_prompts_with_one_line():
    model = create_backbone("resnet18", num_classes=5, pretrained=False)
    with pytest.raises(UserError, match="VisionTransformer or SwinTransformer"):
        attach_prompts(model, num_tokens=2, deep=False)


@pytest.mark.parametrize(("deep", "count"), [(True, 92_160), (False, 7_680)])
def test_vit_b16_prompt_counts_with_ten_tokens(deep, count):
    """The VPT paper's ViT-B/16 numbers: 12 x 10 x 768 deep, 10 x 768 shallow; the class token stays first."""
    model = create_backbone("vit_base_patch16_224", num_classes=2, pretrained=False)
    prompts = attach_prompts(model, num_tokens=10, deep=deep)
    assert sum(p.numel() for p in prompts.parameters()) == count
    assert (prompts.num_prefix, model.num_prefix_tokens, model.global_pool) == (1, 11, "token")
