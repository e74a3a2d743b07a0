"""The embedded demo: the bundled vptlab-tiny, the packaged demo spec, and a reduced demo study end to end."""

from __future__ import annotations

import json

import pytest
import torch

from vptlab.backbones import create_backbone, tiny_weights_path
from vptlab.backbones.create import TINY_ARCH
from vptlab.cli.demo import demo_spec_path
from vptlab.study.spec import load_spec, spec_from_dict, spec_to_dict

# Pre-logit CLS features of the shipped weights for a fixed input (a regression check of the bundled file).
FIXED_INPUT = torch.linspace(-2, 2, 3 * 32 * 32).reshape(1, 3, 32, 32)
EXPECTED_FEATURE_NORM = 13.369369506835938  # measured once from vptlab-tiny.safetensors; changes only with it


def test_bundled_tiny_backbone_loads_with_the_documented_architecture():
    model = create_backbone("vptlab-tiny", num_classes=7).eval()
    assert model.patch_embed.grid_size == (4, 4) and model.embed_dim == 64 and len(model.blocks) == 4
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    card = json.loads(tiny_weights_path().with_suffix(".json").read_text())
    assert {k: card["architecture"][k] for k in TINY_ARCH} == TINY_ARCH
    assert tiny_weights_path().stat().st_size < 10 * 2**20
    assert card["upstream_top1_heldout"] > 50  # it learned its upstream task


def test_bundled_tiny_backbone_gives_stable_features_and_logits():
    torch.manual_seed(0)
    a = create_backbone("vptlab-tiny", num_classes=5).eval()
    torch.manual_seed(0)
    b = create_backbone("vptlab-tiny", num_classes=5).eval()
    with torch.no_grad():
        feats = a.forward_head(a.forward_features(FIXED_INPUT), pre_logits=True)
        torch.testing.assert_close(a(FIXED_INPUT), b(FIXED_INPUT))
        random = create_backbone("vptlab-tiny", num_classes=5, pretrained=False)
        other = random.forward_head(random.forward_features(FIXED_INPUT), pre_logits=True)
    assert torch.isfinite(feats).all() and feats.shape == (1, 64)
    assert not torch.allclose(feats, other)  # the weights are the shipped ones, not an init
    torch.testing.assert_close(feats.norm(), torch.tensor(EXPECTED_FEATURE_NORM), rtol=1e-4, atol=1e-4)


def test_demo_spec_covers_every_task_and_method():
    from vptlab.data.synthetic import SYNTHETIC_TASKS
    from vptlab.study.plan import study_groups

    spec = load_spec(demo_spec_path())
    groups = study_groups(spec)
    standard = {(g.method, g.task) for g in groups if g.regime == "standard"}
    methods = ("full", "linear", "vpt-shallow", "vpt-deep", "mixed", "ft-then-pt")
    assert standard == {(m, t) for m in methods for t in SYNTHETIC_TASKS}
    assert len(spec.training.seeds) == 3
    assert {g.regime for g in groups} >= {"kshot:1", "size:400"}
    assert {g.task for g in groups if g.regime.startswith("size:")} == {"fractal", "count"}


@pytest.mark.slow
def test_a_reduced_demo_study_runs_and_reports(tmp_path):
    from vptlab.report import ReportOptions, build_report
    from vptlab.study.runner import run_study

    data = spec_to_dict(load_spec(demo_spec_path()))
    data["data"]["tasks"] = ["fractal", "count"]
    data["training"].update(epochs=2, warmup_epochs=1, seeds=[42, 44], tune_seed=42)
    data["regimes"].update(kshot=[], size=[200], size_tasks=["count"])
    data["executor"]["workers"] = 1
    spec = spec_from_dict(data, "reduced-demo")
    record = run_study(spec, tmp_path / "demo", echo=lambda text: None)
    groups = {(g["method"], g["task"], g["regime"]): g for g in record.summary["groups"]}
    assert all(g["phase"] in ("done", "diverged") for g in groups.values())
    assert groups[("ft-then-pt", "count", "standard")]["finals"]["seeds"] == 2
    assert run_study(spec, tmp_path / "demo", echo=lambda text: None).trained == []
    files = build_report(tmp_path / "demo", tmp_path / "demo" / "report", ReportOptions(attention_tasks=1))
    text = files.markdown.read_text()
    assert "## Summary" in text and files.html.stat().st_size > 10_000 and len(files.figures) >= 3
