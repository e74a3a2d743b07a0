"""The paper presets do what the reference code does where it is clear, and one-shot images are drawn as it does."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vptlab.data import load_task
from vptlab.study.plan import Group, final_configs, tune_configs
from vptlab.study.spec import load_spec, parse_spec

STUDIES = Path(__file__).resolve().parents[2] / "src" / "vptlab" / "studies"
PAPER_PRESETS = ("paper.toml", "one-shot.toml", "data-size.toml")


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_presets_use_the_papers_backbone_resize_and_precision(name):
    spec = load_spec(STUDIES / name)
    assert spec.backbone.name == "vit_base_patch16_224.orig_in21k"
    assert spec.backbone.interpolation == "tf-bilinear" and spec.training.precision == "fp32"
    regime = spec.regimes.names[0]
    cfg = tune_configs(spec, Group("vpt-deep", "dsprites_ori", regime))[0]
    assert (cfg.interpolation, cfg.precision, cfg.option("prompt_length")) == ("tf-bilinear", "fp32", 50)
    assert (cfg.head_init, cfg.warmup_epochs) == ("reference", 10)
    full = tune_configs(spec, Group("full", "dsprites_ori", regime))[0]
    assert (full.head_init, full.warmup_epochs) == ("reference", 5)  # the reference's FT warm-up


def test_every_prompt_length_names_its_source():
    text = (STUDIES / "paper.toml").read_text()
    lines = [ln for ln in text.splitlines() if re.match(r"^\w+ = \{ prompt_length", ln)]
    assert len(lines) == 19
    for line in lines:
        assert re.search(r"# \[(demo|cmd|tmp|vpt)\]", line), line
    for tag in (
        "[demo] KMnP/vpt demo.ipynb",
        "[cmd]  ChengHan111/VPT-or-FT command.txt",
        "[tmp]  VPT-or-FT tempo",
    ):
        assert tag in text
    assert "could not be checked" not in text and "ships no VTAB configs" not in text
    spec = load_spec(STUDIES / "paper.toml")
    for task, length in (
        ("dsprites_ori", 50),
        ("clevr_dist", 200),
        ("dmlab", 100),
        ("sun397", 5),
        ("cifar", 10),
    ):
        assert tune_configs(spec, Group("vpt-deep", task, "standard"))[0].option("prompt_length") == length


def _kshot_finals(split_seed: str) -> list:
    spec = parse_spec(
        "[backbone]\nimage_size = 16\n[data]\nsource = 'synthetic'\ntasks = ['count']\n"
        f"split_seed = {split_seed}\n[training]\nepochs = 2\nwarmup_epochs = 0\nseeds = [42, 44, 82]\n"
        "[regimes]\nstandard = false\nkshot = [1]\n[methods.linear]\nlr = 0.1\nwd = 0.0\n"
    )
    selected = tune_configs(spec, Group("linear", "count", "kshot:1"))[0]
    return final_configs(spec, selected)


def _train_images(cfg) -> np.ndarray:
    data = load_task(
        cfg.data, cfg.task, stage="final", regime=cfg.regime, split_seed=cfg.split_seed, image_size=16
    )
    return np.asarray(data.train.images)


def test_fixed_one_shot_draw_gives_every_final_seed_the_same_images():
    finals = _kshot_finals("0")  # the reference's mode (one-shot.toml)
    assert [c.seed for c in finals] == [42, 44, 82] and {c.split_seed for c in finals} == {0}
    first, *rest = (_train_images(c) for c in finals)
    assert all(np.array_equal(first, other) for other in rest)


def test_per_seed_one_shot_draw_differs_between_final_seeds():
    finals = _kshot_finals("'seed'")
    assert [c.split_seed for c in finals] == [42, 44, 82]  # each final run draws with its own seed
    images = [_train_images(c) for c in finals]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


def test_the_one_shot_preset_draws_once():
    spec = load_spec(STUDIES / "one-shot.toml")
    assert spec.data.split_seed == 0
    selected = tune_configs(spec, Group("full", "cifar", "kshot:1"))[0]
    assert {c.split_seed for c in final_configs(spec, selected)} == {0}
