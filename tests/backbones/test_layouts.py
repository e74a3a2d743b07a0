"""Each downloadable checkpoint layout, built from a small random timm model and renamed into that layout, loads
into the matching timm model with every backbone weight where it belongs, and a report of what was left out."""

from __future__ import annotations

import re

import pytest
import torch

from vptlab.backbones import create_backbone
from vptlab.backbones.checkpoints import load_checkpoint
from vptlab.backbones.create import describe_backbone
from vptlab.errors import UserError

VIT = dict(image_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)


def _make(name: str, seed: int, **kw):
    torch.manual_seed(seed)
    return create_backbone(name, num_classes=7, pretrained=False, **kw)


def _backbone_state(model) -> dict[str, torch.Tensor]:
    """Every tensor but the classifier (what a checkpoint must set)."""
    from vptlab.backbones.create import classifier_name

    head = classifier_name(model) + "."
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(head)}


def _load(tmp_path, obj, model, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return load_checkpoint(model, path)


def _assert_same_backbone(model, expected: dict[str, torch.Tensor], skip: tuple[str, ...] = ()):
    got = model.state_dict()
    for k, v in expected.items():
        if not k.startswith(skip) and "relative_position_index" not in k and "attn_mask" not in k:
            torch.testing.assert_close(got[k], v, msg=f"tensor {k} did not land where it should")


def test_mae_pretrain_checkpoint_drops_the_decoder_and_reports_fc_norm_missing(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    sd = _backbone_state(source)
    sd.update({"mask_token": torch.zeros(1, 1, 32), "decoder_embed.weight": torch.zeros(16, 32),
               "decoder_blocks.0.norm1.weight": torch.ones(16), "decoder_pred.weight": torch.zeros(48, 16)})  # fmt: skip
    target = _make(
        "vptlab-tiny", 2, global_pool="avg", class_token=True, **VIT
    )  # MAE fine-tunes avg + fc_norm
    target_sd = _backbone_state(target)
    report = _load(tmp_path, {"model": sd, "epoch": 799}, target)
    assert report.layout == "mae"
    _assert_same_backbone(target, {k: v for k, v in sd.items() if k in target_sd and k != "norm.weight"})
    assert report.missing == ["fc_norm.bias", "fc_norm.weight"]
    assert "mask_token" in report.unexpected and "decoder_embed.weight" in report.unexpected
    assert describe_backbone(target)["checkpoint"]["layout"] == "mae"


def test_mae_finetuned_checkpoint_loads_fc_norm(tmp_path):
    source = _make("vptlab-tiny", 1, global_pool="avg", **VIT)
    full = source.state_dict()  # fc_norm and a 7-class head, as MAE's fine-tuning saves them
    target = _make("vptlab-tiny", 2, global_pool="avg", **VIT)
    report = _load(tmp_path, {"model": full}, target)
    assert report.layout == "mae" and report.missing == []
    _assert_same_backbone(target, _backbone_state(source))


def test_moco_v3_pretrain_checkpoint_loads_the_base_encoder(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    sd = {f"module.base_encoder.{k}": v for k, v in _backbone_state(source).items()}
    sd.update({f"module.momentum_encoder.{k}": v + 1 for k, v in _backbone_state(source).items()})
    sd.update({"module.base_encoder.head.0.weight": torch.zeros(64, 32),
               "module.predictor.0.weight": torch.zeros(64, 64)})  # fmt: skip
    target = _make("vptlab-tiny", 2, **VIT)
    report = _load(
        tmp_path, {"state_dict": sd, "epoch": 300, "arch": "vit_base"}, target, "vit-b-300ep.pth.tar"
    )
    assert report.layout == "moco-v3"
    _assert_same_backbone(target, _backbone_state(source))
    assert "module.predictor.0.weight" in report.unexpected
    assert any("linear-probe" in n for n in report.notes)


def test_moco_v3_linear_probe_checkpoint_loads_the_frozen_backbone_not_its_head(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    sd = {f"module.{k}": v for k, v in _backbone_state(source).items()}
    sd.update({"module.head.weight": torch.zeros(1000, 32), "module.head.bias": torch.zeros(1000)})
    target = _make("vptlab-tiny", 2, **VIT)
    head_before = target.head.weight.clone()
    report = _load(tmp_path, {"state_dict": sd, "best_acc1": 76.7}, target, "linear-vit-b-300ep.pth.tar")
    assert report.layout == "moco-v3" and "1000-class" in report.notes[0]
    _assert_same_backbone(target, _backbone_state(source))
    assert torch.equal(target.head.weight, head_before)


def test_dino_training_checkpoint_loads_the_teacher_backbone(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    teacher = {f"backbone.{k}": v for k, v in _backbone_state(source).items()}
    teacher["head.mlp.0.weight"] = torch.zeros(8, 32)
    student = {f"module.backbone.{k}": v * 0 for k, v in _backbone_state(source).items()}
    target = _make("vptlab-tiny", 2, **VIT)
    report = _load(tmp_path, {"teacher": teacher, "student": student, "epoch": 100}, target)
    assert report.layout == "dino" and "head.mlp.0.weight" in report.unexpected
    _assert_same_backbone(target, _backbone_state(source))


def test_dinov2_with_registers_uses_timms_conversion(tmp_path):
    kw = dict(image_size=28, patch_size=14, embed_dim=32, depth=2, num_heads=2)
    source = _make("vit_small_patch14_reg4_dinov2", 1, **kw)
    sd = _backbone_state(source)
    pos0 = torch.randn(1, 1, 32)  # DINOv2 keeps a class position; timm folds it into cls_token
    file = {k: v for k, v in sd.items() if k not in ("cls_token", "reg_token", "pos_embed")}
    file.update(cls_token=sd["cls_token"] - pos0, register_tokens=sd["reg_token"],
                pos_embed=torch.cat([pos0, sd["pos_embed"]], 1), mask_token=torch.zeros(1, 32))  # fmt: skip
    target = _make("vit_small_patch14_reg4_dinov2", 2, **kw)
    assert describe_backbone(target)["family"] == "vit-registers"
    report = _load(tmp_path, file, target)
    assert report.layout == "dinov2"
    _assert_same_backbone(target, sd)


def test_deit_checkpoint(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    target = _make("vptlab-tiny", 2, **VIT)
    report = _load(tmp_path, {"model": source.state_dict(), "epoch": 299}, target)
    assert report.layout == "deit" and report.missing == []
    _assert_same_backbone(target, _backbone_state(source))


def test_openai_clip_layout_loads_the_visual_tower(tmp_path):
    source = _make("vit_base_patch16_clip_224", 1, **VIT)
    assert describe_backbone(source)["pre_norm"]
    swaps = [("patch_embed.proj", "conv1"), ("norm_pre", "ln_pre"), ("blocks.", "transformer.resblocks."),
             ("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.qkv.", "attn.in_proj_"), ("attn.proj", "attn.out_proj"),
             ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]  # fmt: skip
    file = {}
    for k, v in _backbone_state(source).items():
        if k == "cls_token":
            file["visual.class_embedding"] = v.reshape(-1)
        elif k == "pos_embed":
            file["visual.positional_embedding"] = v[0]
        elif k.startswith("norm."):
            file["visual.ln_post." + k[5:]] = v
        else:
            for a, b in swaps:
                k = k.replace(a, b)
            file["visual." + k] = v
    file["visual.proj"] = torch.zeros(32, 16)
    file["transformer.resblocks.0.ln_1.weight"] = torch.ones(24)  # the text tower
    file["token_embedding.weight"] = torch.zeros(100, 24)
    target = _make("vit_base_patch16_clip_224", 2, **VIT)
    report = _load(tmp_path, file, target, "open_clip_model.pt")
    assert report.layout == "clip"
    _assert_same_backbone(target, _backbone_state(source))


SWIN = dict(img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4)


def test_original_swin_layout_uses_timms_conversion(tmp_path):
    source = _make("swin_tiny_patch4_window7_224", 1, **SWIN)
    sd = _backbone_state(source)
    file = {}
    for k, v in sd.items():  # the original code downsamples at the end of a stage, timm at the start
        k = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k)
        file[k] = v
    file["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    file["head.weight"], file["head.bias"] = torch.zeros(21841, 32), torch.zeros(21841)
    target = _make("swin_tiny_patch4_window7_224", 2, **SWIN)
    report = _load(tmp_path, {"model": file}, target)
    assert report.layout == "swin"
    _assert_same_backbone(target, sd)
    assert describe_backbone(target)["family"] == "swin"


CONVNEXT = dict(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16))


def test_facebook_convnext_layout_uses_timms_conversion(tmp_path):
    source = _make("convnext_atto", 1, **CONVNEXT)
    sd = _backbone_state(source)  # head.norm is the backbone's final norm, only head.fc is the classifier
    file = {}
    for k, v in sd.items():
        k = k.replace("stem.", "downsample_layers.0.")
        k = re.sub(r"stages\.(\d+)\.downsample\.(\d+)", r"downsample_layers.\1.\2", k)
        k = re.sub(r"stages\.(\d+)\.blocks\.(\d+)", r"stages.\1.\2", k)
        k = k.replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv").replace("head.norm", "norm")
        file[k] = v
    file["head.weight"], file["head.bias"] = torch.zeros(1000, 16), torch.zeros(1000)
    target = _make("convnext_atto", 2, **CONVNEXT)
    report = _load(tmp_path, {"model": file}, target)
    assert report.layout == "convnext"
    _assert_same_backbone(target, sd)


def test_a_missing_backbone_tensor_is_still_an_error(tmp_path):
    source = _make("vptlab-tiny", 1, **VIT)
    sd = _backbone_state(source)
    del sd["blocks.1.mlp.fc2.weight"]
    with pytest.raises(UserError, match="'blocks.1.mlp.fc2.weight' is missing"):
        _load(tmp_path, {"model": sd}, _make("vptlab-tiny", 2, **VIT))


def test_resnet_state_dict_loads_without_its_fc(tmp_path):
    source = _make("resnet18", 1)
    target = _make("resnet18", 2)
    fc = target.fc.weight.clone()
    report = _load(tmp_path, source.state_dict(), target)
    assert report.layout == "timm" and report.unexpected == ["fc.bias", "fc.weight"]
    _assert_same_backbone(target, _backbone_state(source))
    assert torch.equal(target.fc.weight, fc)
