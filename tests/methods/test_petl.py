"""The PETL methods (adapter, adaptformer, ssf, fact, convpass, ln-tune, partial-k, mlp-head): parameter counts on
ViT-B/16 against the papers' formulas, merging, resuming, options in configs and study specs.

The guarantees every method shares (only the intended parameters change, no NaN, tuned.safetensors round trip)
are in test_methods.py's table."""

from __future__ import annotations

import pytest
import timm
import torch

from vptlab.errors import UserError
from vptlab.methods import get_method
from vptlab.train import RunConfig, build_model, load_run_model, train_run

PETL = (
    "adapter",
    "adaptformer",
    "ssf",
    "fact",
    "convpass",
    "repadapter",
    "dora",
    "ln-tune",
    "partial-k",
    "mlp-head",
)
MERGEABLE = ("ssf", "fact", "repadapter", "dora")

# ViT-B/16: depth L, width D, MLP hidden 4D; trainable parameters WITHOUT the head at the default options.
L, D, H, CLASSES = 12, 768, 3072, 10
BLOCK = (D * 3 * D + 3 * D) + (D * D + D) + (D * H + H) + (H * D + D) + 4 * D  # qkv, proj, fc1, fc2, 2 norms
VIT_B = {
    # NOAH / V-PETL Bench "Adapter-8": 0.16M
    "adapter": L * (D * 8 + 8 + 8 * D + D),
    # NOAH / V-PETL Bench AdaptFormer (r = 8): 0.16M
    "adaptformer": L * (D * 8 + 8 + 8 * D + D),
    # patch embedding, per block norm1 + qkv + proj + norm2 + fc1 + fc2, final norm; scale and shift each.
    # SSF paper: 0.24M, its VTAB-1k average including the task heads (~38k on average); 0.21M without
    "ssf": 2 * (D + L * (D + 3 * D + D + D + H + D) + D),
    # U, V (D x r each) + per block r x r cores for q, k, v, o and 4 r x r each for fc1, fc2.
    # FacT paper, FacT-TT: 0.04M, the average of its per-task ranks (r = 8: 0.02M, r = 16: 0.06M)
    "fact": 2 * D * 8 + L * (3 * 8 * 8 + 8 * 8 + 4 * 8 * 8 + 4 * 8 * 8),
    # two bypasses per block: down (D x 8 + 8), 3x3 conv (8 x 8 x 9 + 8), up (8 x D + D). Convpass paper: 0.33M
    "convpass": L * 2 * (D * 8 + 8 + 8 * 8 * 9 + 8 + 8 * D + D),
    # before attention and MLP: A (D x 8 + 8), grouped B (D x 8 / 2 + D). No published count checked
    "repadapter": L * 2 * (D * 8 + 8 + D * 8 // 2 + D),
    # A (r x D), B (D x r) and the magnitudes (D) on q and v. LoRA-8 on q, v (V-PETL Bench: 0.29M) + 18,432
    "dora": L * 2 * (8 * D + D * 8 + D),
    # 2 LayerNorms per block + the final one, weight and bias. V-PETL Bench LN-tune: 0.04M
    "ln-tune": (2 * L + 1) * 2 * D,
    # the last block + the final norm. VPT Partial-1: one block, 8.3x total params over its 24 tasks
    "partial-k": BLOCK + 2 * D,
    # Mlp-3: two hidden D x D layers (+ the output layer, which is the head)
    "mlp-head": 2 * (D * D + D),
}
HEAD = D * CLASSES + CLASSES


def _vit_b(name: str, **options) -> torch.nn.Module:
    """A ViT-B/16 with the method applied, on the meta device (shapes only: counting needs no memory)."""
    with torch.device("meta"):
        model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=CLASSES)
        method = get_method(name)
        method.prepare(model, method.make_options(options))
    return model


def _trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", PETL)
def test_vit_b16_trainable_parameters_match_the_papers_formula(name):
    assert _trainable(_vit_b(name)) == VIT_B[name] + HEAD


def test_the_counts_are_the_published_ones_where_the_papers_count_the_same_modules():
    published_m = {"adapter": 0.16, "adaptformer": 0.16, "convpass": 0.33, "ln-tune": 0.04}
    for name, millions in published_m.items():
        assert round(VIT_B[name] / 1e6, 2) == millions
    assert (
        round((VIT_B["ssf"] + 38_000) / 1e6, 2) == 0.24
    )  # SSF counts the heads (VTAB-1k mean ~49.5 classes)


def test_options_change_the_count_as_the_formula_says():
    assert _trainable(_vit_b("adapter", bottleneck=64)) == L * (2 * 64 * D + 64 + D) + HEAD  # 1.19M
    assert _trainable(_vit_b("fact", rank=16)) == 2 * D * 16 + 12 * L * 16 * 16 + HEAD
    assert _trainable(_vit_b("partial-k", k=2)) == 2 * BLOCK + 2 * D + HEAD
    assert _trainable(_vit_b("mlp-head", layers=1)) == HEAD  # Mlp-1 is a linear head


@pytest.mark.parametrize("name", ["adapter", "adaptformer", "convpass", "fact", "repadapter", "dora"])
def test_a_fresh_method_computes_exactly_the_backbone(name, tiny_cfg):
    """Zero-initialised up-projections / V: training starts from the pretrained function."""
    x = torch.randn(3, 3, 16, 16)
    plain, _ = build_model(tiny_cfg("linear").resolved(), 4)
    tuned, _ = build_model(tiny_cfg(name).resolved(), 4)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), tuned.eval()(x))


@pytest.mark.parametrize("name", MERGEABLE)
def test_merge_folds_the_method_into_the_backbone_weights(name, tiny_cfg):
    model, method = build_model(tiny_cfg(name).resolved(), 4)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad and not n.startswith("head."):
                p.add_(0.1 * torch.randn_like(p))  # as if trained (FacT's V starts at zero)
    x = torch.randn(3, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        before = model(x)
        method.merge(model)
        after = model(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    fresh, _ = build_model(tiny_cfg("linear").resolved(), 4)
    assert model.state_dict().keys() == fresh.state_dict().keys()  # the added modules are gone
    assert not any(m._forward_hooks for m in model.modules())
    with torch.no_grad():
        assert not torch.allclose(fresh.eval()(x), after)  # ... and their effect lives in the weights


def test_only_reparameterisable_methods_offer_merge():
    assert {n for n in PETL if get_method(n).merge is not None} == set(MERGEABLE)


@pytest.mark.parametrize("name", PETL)
def test_paused_and_resumed_run_equals_an_uninterrupted_one(name, tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg(name, epochs=2, warmup_epochs=0)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    part = train_run(cfg, tmp_path / "split", task_data=toy_task, until_epoch=1)
    assert part["status"] == "partial"
    rest = train_run(cfg, tmp_path / "split", task_data=toy_task)
    assert rest["status"] == whole["status"] == "ok"
    assert rest["metrics"] == whole["metrics"]


@pytest.mark.parametrize("name", PETL)
def test_one_epoch_on_the_synthetic_benchmark_with_vptlab_tiny(name, tmp_path):
    cfg = RunConfig.of(
        method=name, task="shapes", data="synthetic", epochs=1, warmup_epochs=0, regime="size:40", seed=1
    )
    result = train_run(cfg, tmp_path / name, progress=False)
    assert result["status"] == "ok"
    assert 0 <= result["metrics"]["test_top1"] <= 100
    model, loaded = load_run_model(tmp_path / name)
    assert loaded.run_id == cfg.run_id and loaded.method_options == cfg.resolved().method_options
    assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


# --- options in run configs ----------------------------------------------------------------------------------


def test_options_are_validated_with_the_field_named():
    with pytest.raises(UserError, match="bottleneck must be >= 1, got 0"):
        RunConfig.of(method="adapter", task="t", bottleneck=0)
    with pytest.raises(UserError, match="method adapter has no option 'rank'; its options: bottleneck"):
        RunConfig.of(method="adapter", task="t", rank=4)
    with pytest.raises(UserError, match="method ssf has no option 'k'; its options: none"):
        RunConfig.of(method="ssf", task="t", k=1)
    with pytest.raises(UserError, match="k must be an integer"):
        RunConfig.of(method="partial-k", task="t", k=1.5)
    with pytest.raises(UserError, match="groups=3 must divide bottleneck=8"):
        build_model(RunConfig.of(method="repadapter", task="t", pretrained=False, groups=3).resolved(), 4)


def test_options_are_part_of_the_run_identity_and_defaults_are_explicit():
    base = RunConfig.of(method="adapter", task="t")
    assert base.run_id == RunConfig.of(method="adapter", task="t", bottleneck=8).run_id
    assert base.run_id != RunConfig.of(method="adapter", task="t", bottleneck=16).run_id
    assert base.resolved().option("bottleneck") == 8
    again = RunConfig.from_dict(base.resolved().to_dict())
    assert again.run_id == base.run_id and again.method_options.bottleneck == 8


def test_partial_k_refuses_more_blocks_than_the_backbone_has(tiny_cfg):
    with pytest.raises(UserError, match="k=3 is more than the backbone's 2 blocks"):
        build_model(tiny_cfg("partial-k", k=3).resolved(), 4)


# --- options in study specs and on the command line ----------------------------------------------------------

SPEC = """
name = "s"
[data]
source = "synthetic"
tasks = ["shapes"]
[training]
epochs = 2
[methods.adapter]
lr = 0.001
wd = 0.0
bottleneck = [4, 8]
[methods.adapter.tasks.shapes]
bottleneck = [16]
[methods.fact]
lr = 0.001
wd = 0.0
rank = [4, 8]
scale = [0.1, 1.0]
"""


def test_a_spec_sets_options_as_grid_axes():
    from vptlab.study.plan import study_groups, tune_configs
    from vptlab.study.spec import parse_spec

    spec = parse_spec(SPEC)
    groups = {g.method: g for g in study_groups(spec)}
    fact = tune_configs(spec, groups["fact"])
    assert sorted((c.option("rank"), c.option("scale")) for c in fact) == [
        (4, 0.1),
        (4, 1.0),
        (8, 0.1),
        (8, 1.0),
    ]
    adapter = tune_configs(spec, groups["adapter"])  # the per-task value replaces the method-wide axis
    assert [c.option("bottleneck") for c in adapter] == [16]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            "[methods.adapter]\nrank = 4",
            "methods.adapter.rank: adapter does not use it; its options: .*bottleneck",
        ),
        ("[methods.adapter]\nbottleneck = 0", "methods.adapter.bottleneck: must be >= 1, got 0"),
        ("[methods.fact]\nscale = [1.0, -1.0]", r"methods.fact.scale\[1\]: must be > 0"),
    ],
)
def test_a_spec_with_a_bad_option_names_the_key(table, message):
    from vptlab.study.spec import parse_spec

    with pytest.raises(UserError, match=message):
        parse_spec('name = "s"\n[data]\nsource = "synthetic"\n' + table)


def test_the_petl_preset_plans_every_method():
    from pathlib import Path

    from vptlab.cli import main
    from vptlab.methods import method_names
    from vptlab.study.spec import load_spec

    path = Path(__file__).parents[2] / "studies" / "petl.toml"
    spec = load_spec(path)
    assert set(spec.method_names) == set(method_names())
    assert len(spec.data.tasks) == 19 and spec.training.seeds == (42, 44, 82, 100, 800)
    assert dict(spec.method("adapter").options)["bottleneck"] == (8,)
    assert main(["study", "plan", str(path)]) == 0


def test_cli_lists_the_options_and_takes_them_as_flags(capsys, tmp_path):
    from vptlab.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "--bottleneck 8: bottleneck width r" in out and "mergeable" in out
    args = ["train", "--method", "adapter", "--task", "shapes", "--bottleneck", "0", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "bottleneck must be >= 1, got 0" in capsys.readouterr().err
