"""`vptlab pretrain` on a tiny setting: weights + model card, loadable as a backbone, reproducible by seed."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vptlab.backbones import create_backbone
from vptlab.cli import main
from vptlab.errors import UserError
from vptlab.train.pretrain import PretrainConfig, pretrain

TINY = dict(
    classes=4,
    per_class=12,
    image_size=16,
    patch_size=8,
    embed_dim=16,
    depth=1,
    num_heads=2,
    epochs=2,
    warmup_epochs=1,
    batch_size=16,
    holdout=0.25,
)


@pytest.mark.slow
def test_pretrain_writes_weights_and_a_model_card_that_load(tmp_path):
    card = pretrain(PretrainConfig(**TINY), tmp_path, name="mini")
    saved = json.loads((tmp_path / "mini.json").read_text())
    assert saved["architecture"]["embed_dim"] == 16 and saved["data"]["classes"] == 4
    assert 0 <= saved["upstream_top1_heldout"] <= 100 and len(saved["history"]) == 2
    assert saved["command"].startswith("vptlab pretrain --classes 4")
    assert "held-out upstream top-1" in (tmp_path / "mini.md").read_text()
    weights = load_file(str(tmp_path / "mini.safetensors"))
    assert not any(k.startswith("head.") for k in weights)
    model = create_backbone(
        "vptlab-tiny",
        num_classes=3,
        checkpoint=tmp_path / "mini.safetensors",
        image_size=16,
        embed_dim=16,
        depth=1,
        num_heads=2,
    )
    torch.testing.assert_close(model.cls_token, weights["cls_token"])
    # same seed, same weights
    pretrain(PretrainConfig(**TINY), tmp_path / "again", name="mini")
    again = load_file(str(tmp_path / "again" / "mini.safetensors"))
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert card["upstream_top1_heldout"] == saved["upstream_top1_heldout"]


def test_pretrain_config_is_validated():
    with pytest.raises(UserError, match="multiple of patch_size"):
        PretrainConfig(image_size=30)
    with pytest.raises(UserError, match="epochs must be >= 1"):
        PretrainConfig(epochs=0)


def test_pretrain_cli_rejects_bad_values(capsys):
    assert main(["pretrain", "--out", "x", "--epochs", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vptlab: error: epochs must be >= 1, got 0"]
