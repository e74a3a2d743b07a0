"""The backbone presets (Swin-B IN-21k, ViT-B MAE, ViT-B MoCo v3) parse, name their backbone and plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from vptlab.backbones.create import family_of_name
from vptlab.cli import main
from vptlab.study.spec import load_spec

STUDIES = Path(__file__).resolve().parents[2] / "src" / "vptlab" / "studies"


@pytest.mark.parametrize(
    ("name", "backbone", "family"),
    [
        ("paper-swin.toml", "swin_base_patch4_window7_224.ms_in22k", "swin"),
        ("paper-mae.toml", "vit_base_patch16_224.mae", "vit"),
        ("paper-moco.toml", "vit_base_patch16_224", "vit"),
    ],
)
def test_backbone_presets_plan(name, backbone, family, capsys):
    spec = load_spec(STUDIES / name)
    assert spec.backbone.name == backbone and family_of_name(backbone) == family
    assert set(spec.method_names) == {"full", "vpt-deep", "vpt-shallow", "linear"}
    assert len(spec.data.tasks) == 19 and spec.training.seeds == (42, 44, 82, 100, 800)
    header = (STUDIES / name).read_text().split("\n\n")[0]
    assert "What it runs" in header and "should show" in header
    assert main(["study", "plan", str(STUDIES / name)]) == 0
    out = capsys.readouterr().out
    assert f"backbone {backbone}" in out and "vpt-shallow" in out


def test_self_supervised_presets_use_the_references_wider_grids():
    spec = load_spec(STUDIES / "paper-mae.toml")
    lrs = dict(spec.method("vpt-deep").options)["lr"]
    assert 1000.0 in lrs and 0.05 in lrs and len(lrs) == 14
    assert len(dict(spec.method("linear").options)["lr"]) == 13


def test_a_study_of_prompts_on_a_convnet_is_refused_naming_the_methods_that_fit():
    from vptlab.errors import UserError
    from vptlab.study.spec import parse_spec

    text = """
[backbone]
name = "convnext_atto"
[data]
source = "synthetic"
tasks = "all"
[methods.full]
[methods.vpt-deep]
"""
    with pytest.raises(UserError, match=r"s.toml: \[methods.vpt-deep\]: .*methods for convnet: full"):
        parse_spec(text, "s.toml")
