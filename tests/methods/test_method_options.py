"""Method-owned configs: run ids that stay stable, option validation, and the fidelity options of issue 11."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from vptlab.backbones import create_backbone
from vptlab.errors import UserError
from vptlab.methods import get_method
from vptlab.train import RunConfig, build_model, train_run
from vptlab.train.optim import REFERENCE_ADAMW_EPS, build_optimizer

# Run ids computed by vptlab before methods owned their configs (RunConfig with flat method fields).  These
# configs compute the same thing today, so their ids must not move: a study folder made then is reused.
PINNED = [
    ("671023e104a0ab00", dict(method="vpt-deep", task="count")),
    (
        "5afa4bae8f4294ec",
        dict(
            method="vpt-shallow",
            task="cifar",
            data="vtab1k:/data/vtab",
            backbone="vit_base_patch16_224",
            lr=10.0,
            wd=0.0001,
            prompt_length=50,
            stage="final",
            seed=44,
        ),
    ),  # fmt: skip
    ("6e3496ba589cf676", dict(method="full", task="count")),
    ("2f26ce5df3096039", dict(method="linear", task="shapes", regime="kshot:1")),
    (
        "7b32d6f61016f4cd",
        dict(
            method="mixed",
            task="count",
            prompt_length=5,
            prompt_dropout=0.0,
            reference_optimizer=True,
            schedule="epoch",
        ),
    ),  # fmt: skip
    # options added later, at the value that reproduces the old computation
    (
        "04f544ce882fd91d",
        dict(method="lora", task="count", lora_rank=4, lora_alpha=8.0, lora_targets="qkv+proj"),
    ),
    (
        "01b4bf55a7cbdf1a",
        dict(method="bias", task="count", backbone_args=(("depth", 2),), pretrained=False, bias_decay=False),
    ),  # fmt: skip
    ("a4459792fd4e957e", dict(method="ft-then-pt", task="count", ft_lr=0.001, ft_wd=0.0, stage2_head="keep")),
]


@pytest.mark.parametrize(("run_id", "fields"), PINNED)
def test_run_ids_of_unchanged_configs_are_pinned(run_id, fields):
    assert RunConfig.of(**fields).run_id == run_id


def test_changed_defaults_change_the_run_id_and_stage_one_keeps_its_own():
    by_id = {fields["method"]: run_id for run_id, fields in PINNED}
    assert RunConfig.of(method="lora", task="count", lora_rank=4, lora_alpha=8.0).run_id != by_id["lora"]
    ft_then_pt = RunConfig.of(method="ft-then-pt", task="count", ft_lr=0.001, ft_wd=0.0)
    assert ft_then_pt.run_id != by_id["ft-then-pt"]  # stage 2 now starts with a fresh head
    assert ft_then_pt.stage1().run_id == "de55931159615b97"  # the full run it reuses did not change


def test_an_old_flat_result_config_loads_with_the_legacy_meaning_of_new_options():
    old = {  # a LoRA result.json config written before method-owned configs
        "method": "lora", "task": "count", "data": "synthetic", "backbone": "vptlab-tiny", "checkpoint": None,
        "backbone_args": [], "pretrained": True, "image_size": 32, "interpolation": "bilinear", "stage": "tune",
        "regime": "standard", "split_seed": 0, "lr": 0.001, "wd": 0.0001, "batch_size": 64, "epochs": 100,
        "warmup_epochs": 10, "schedule": "step", "reference_optimizer": False, "seed": 42,
        "prompt_length": None, "prompt_dropout": None, "backbone_dropout": None, "lora_rank": 4,
        "lora_alpha": 8.0, "ft_lr": None, "ft_wd": None, "ft_batch_size": None, "eval_test_every": 1,
        "precision": "auto", "skip_bad_images": False,
    }  # fmt: skip
    cfg = RunConfig.from_dict(old)
    assert cfg.method_options.lora_targets == "qkv+proj"
    assert cfg.run_id == "04f544ce882fd91d"
    # the new flat form round-trips, every option recorded
    new = cfg.resolved().to_dict()
    assert new["lora_targets"] == "qkv+proj" and new["head_init"] == "default"
    assert RunConfig.from_dict(new).run_id == cfg.run_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(method="lora", lora_rank=0), "lora_rank must be >= 1, got 0"),
        (dict(method="lora", lora_targets="qkv"), "lora_targets must be one of 'qv', 'qkv+proj', got 'qkv'"),
        (dict(method="vpt-deep", prompt_dropout=1.0), "prompt_dropout must be in [0, 1), got 1.0"),
        (dict(method="vpt-deep", prompt_length="10"), "prompt_length must be an integer, got '10'"),
        (dict(method="ft-then-pt", stage2_head="new"), "stage2_head must be one of 'fresh', 'keep'"),
        (dict(method="linear", lora_rank=4), "method linear has no option 'lora_rank'; its options: none"),
        (dict(method="full", head_init="kaiming"), "head_init must be one of"),
        (dict(method="full", epochs=5, warmup_epochs=10), "warmup_epochs must be in [0, epochs=5), got 10"),
    ],
)
def test_a_bad_option_names_the_field(fields, message):
    with pytest.raises(UserError) as err:
        RunConfig.of(task="t", **fields)
    assert message in str(err.value)


def test_warm_up_defaults_to_ten_percent_of_the_epochs():
    assert RunConfig(method="full", task="t").resolved().warmup_epochs == 10
    assert RunConfig(method="full", task="t", epochs=30).resolved().warmup_epochs == 3
    assert RunConfig(method="full", task="t", epochs=30, warmup_epochs=0).resolved().warmup_epochs == 0
    assert RunConfig(method="full", task="t", epochs=1).resolved().warmup_epochs == 0


def test_run_id_is_resolved_once():
    cfg = RunConfig(method="vpt-deep", task="t")
    assert cfg.run_id is cfg.run_id and cfg.resolved() is cfg.resolved()


def test_reference_head_init(tiny_cfg):
    model, _ = build_model(tiny_cfg("linear", head_init="reference"), 4)
    head = model.get_classifier()
    assert torch.allclose(head.bias, torch.full((4,), -math.log(99.0)))
    # kaiming_normal_ with mode fan_out: std sqrt(2 / out_features) = sqrt(2 / 4)
    assert 0.5 < head.weight.std().item() < 0.95
    default, _ = build_model(tiny_cfg("linear"), 4)
    assert not torch.allclose(default.get_classifier().bias, head.bias)
    assert default.get_classifier().weight.std().item() < 0.5  # nn.Linear's uniform(+-1/sqrt(32))


def test_ft_then_pt_stage_two_starts_with_a_fresh_head_unless_asked_to_keep_it(tiny_cfg, toy_task, tmp_path):
    s1 = tiny_cfg("full", epochs=1, warmup_epochs=0, lr=0.05)
    assert train_run(s1, tmp_path, task_data=toy_task)["status"] == "ok"
    tuned = load_file(str(tmp_path / "tuned.safetensors"))
    fresh_full, _ = build_model(s1, 4)  # the untrained head a run with this seed starts from

    fresh, _ = build_model(tiny_cfg("ft-then-pt"), 4, tmp_path)
    assert torch.equal(
        fresh.blocks[0].attn.qkv.weight, tuned["blocks.0.attn.qkv.weight"]
    )  # fine-tuned backbone
    assert not torch.equal(fresh.head.weight, tuned["head.weight"])
    assert torch.equal(fresh.head.weight, fresh_full.head.weight)

    kept, _ = build_model(tiny_cfg("ft-then-pt", stage2_head="keep"), 4, tmp_path)
    assert torch.equal(kept.head.weight, tuned["head.weight"])


def test_ft_then_pt_records_its_stage_two_head(tiny_cfg):
    assert tiny_cfg("ft-then-pt").resolved().to_dict()["stage2_head"] == "fresh"


def test_reference_optimizer_is_the_reference_code(tiny_cfg):
    model, _ = build_model(tiny_cfg("full"), 4)
    opt, note = build_optimizer(model, "adamw", 1e-3, 1e-4, reference=True)
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert all(g["eps"] == REFERENCE_ADAMW_EPS == 1e-6 for g in opt.param_groups)
    assert wd_of[id(named["blocks.0.norm1.weight"])] == 0.01  # decayed: only names with "bias" are excluded
    assert wd_of[id(named["pos_embed"])] == 0.01
    assert wd_of[id(named["blocks.0.norm1.bias"])] == 0.0 and wd_of[id(named["head.bias"])] == 0.0
    default, _ = build_optimizer(model, "adamw", 1e-3, 1e-4)
    assert all(g["eps"] == 1e-8 for g in default.param_groups)


def test_backbone_dropout_is_mlp_and_embedding_dropout_only(tiny_cfg):
    model, _ = build_model(tiny_cfg("full", backbone_dropout=0.1), 4)
    assert model.pos_drop.p == 0.1
    for block in model.blocks:
        assert block.mlp.drop1.p == 0.1 and block.mlp.drop2.p == 0.1
        assert block.attn.proj_drop.p == 0.0 and block.attn.attn_drop.p == 0.0


def _lora_count(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def test_lora_parameter_counts_on_vit_b16():
    lora = get_method("lora")
    model = create_backbone("vit_base_patch16_224", num_classes=10, pretrained=False)
    lora.prepare(model, lora.make_options())
    assert _lora_count(model) == 12 * 2 * (768 * 8 + 8 * 768) == 294_912  # the PETL literature's q,v form
    model = create_backbone("vit_base_patch16_224", num_classes=10, pretrained=False)
    lora.prepare(model, lora.make_options({"lora_targets": "qkv+proj"}))
    assert _lora_count(model) == 12 * (8 * (768 + 3 * 768) + 8 * (768 + 768)) == 442_368


@pytest.mark.parametrize("targets", ["qv", "qkv+proj"])
def test_merged_lora_gives_the_same_outputs(targets, tiny_cfg):
    model, method = build_model(tiny_cfg("lora", lora_targets=targets), 4)
    with torch.no_grad():  # B starts at zero: give the updates something to merge
        for name, p in model.named_parameters():
            if "lora_b" in name:
                p.normal_(0, 0.5)
    model.eval()
    x = torch.randn(3, 3, 16, 16)
    before = model(x)
    method.merge(model)
    assert _lora_count(model) == 0
    assert torch.allclose(model(x), before, atol=1e-5)
    assert not torch.allclose(before, build_model(tiny_cfg("lora", lora_targets=targets), 4)[0].eval()(x))


@pytest.mark.parametrize(("bias_decay", "expected"), [(True, 0.01), (False, 0.0)])
def test_bitfit_decays_the_biases_it_tunes(bias_decay, expected, tiny_cfg):
    model, method = build_model(tiny_cfg("bias", bias_decay=bias_decay), 4)
    opt, _ = build_optimizer(model, method.optimizer, 0.1, 0.01)
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    for name in (
        "blocks.0.attn.qkv.bias",
        "blocks.1.mlp.fc2.bias",
        "blocks.0.norm1.bias",
        "patch_embed.proj.bias",
    ):
        assert wd_of[id(named[name])] == expected
    assert wd_of[id(named["head.bias"])] == 0.0 and wd_of[id(named["head.weight"])] == 0.01


@pytest.fixture
def extra_method():
    """A method registered for one test (and removed after it)."""
    from dataclasses import dataclass

    from vptlab.methods import Method, MethodConfig, option, register
    from vptlab.methods.base import _REGISTRY, at_least

    @dataclass(frozen=True)
    class HeadsConfig(MethodConfig):
        heads: int = option(2, help="heads", check=at_least(1))

    method = register(
        Method(
            "two-heads",
            "two heads",
            "head",
            prepare=lambda model, options: None,
            config=HeadsConfig,
            label="Two heads",
            color="#123456",
            order=50,
            cost="linear",
            tie_axes=("heads",),
        )  # fmt: skip
    )
    yield method
    del _REGISTRY[method.name]


def test_labels_colours_order_cost_ties_and_spec_keys_come_from_the_method(extra_method):
    from vptlab.analysis._plot import method_color
    from vptlab.analysis.results import method_label, method_rank
    from vptlab.study.estimate import method_kind
    from vptlab.study.select import tie_axes
    from vptlab.study.spec import parse_spec

    assert method_label("two-heads") == "Two heads" and method_color("two-heads") == "#123456"
    assert method_rank("full") < method_rank("lora") < method_rank("two-heads") < method_rank("not-installed")
    assert method_kind("two-heads") == "linear" and method_kind("mixed") == "full"
    assert tie_axes("two-heads") == ("lr", "wd", "heads")
    spec = parse_spec(
        "[data]\nsource = 'vtab1k:/x'\ntasks = ['cifar']\n[methods.two-heads]\nheads = [1, 3]\n"
    )
    assert dict(spec.method("two-heads").options)["heads"] == (1, 3)
    assert RunConfig.of(method="two-heads", task="t", heads=3).identity()["heads"] == 3
