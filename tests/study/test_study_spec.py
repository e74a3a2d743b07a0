"""Study specs: valid files expand as documented; every mistake names the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vptlab.errors import UserError
from vptlab.study.plan import Group, grid_points, study_groups, tune_configs
from vptlab.study.spec import load_spec, parse_spec, spec_from_dict, spec_to_dict

STUDIES = Path(__file__).resolve().parents[2] / "src" / "vptlab" / "studies"
HEAD = "[data]\nsource = 'vtab1k:/x'\ntasks = ['cifar', 'dtd']\n"


def test_defaults_come_from_the_method_registry_and_design():
    spec = parse_spec(HEAD + "[methods.full]\n[methods.vpt-deep]\n")
    full, vpt = spec.methods
    assert dict(full.options)["lr"] == (0.001, 0.0001, 0.0005, 0.005)
    assert dict(full.options)["batch_size"] == (128,)
    assert len(dict(vpt.options)["lr"]) == 10 and dict(vpt.options)["wd"] == (0.01, 0.001, 0.0001, 0.0)
    assert spec.training.seeds == (42, 44, 82, 100, 800) and spec.training.tune_seed == 42
    assert full.grid_size("cifar") == 16 and vpt.grid_size("cifar") == 40


def test_a_list_is_a_grid_axis_and_task_options_override_per_task():
    spec = parse_spec(
        HEAD + "[task_options.dtd]\nprompt_length = [1, 2]\n[methods.full]\n"
        "[methods.vpt-deep]\nlr = [1.0]\nwd = [0.0, 0.1]\nprompt_length = 5\n"
        "[methods.vpt-deep.tasks.cifar]\nprompt_length = 7\n"
    )
    vpt = spec.method("vpt-deep")
    assert [p["prompt_length"] for p in grid_points(vpt, "cifar")] == [7, 7]
    assert sorted(p["prompt_length"] for p in grid_points(vpt, "dtd")) == [1, 1, 2, 2]
    assert "prompt_length" not in dict(spec.method("full").axes("dtd"))  # full reads no prompt length
    cfgs = tune_configs(spec, Group("vpt-deep", "dtd", "standard"))
    assert len(cfgs) == 4 and len({c.run_id for c in cfgs}) == 4
    assert all(c.stage == "tune" and c.seed == 42 and c.eval_test_every == 0 for c in cfgs)


def test_ft_then_pt_comes_after_full_and_takes_its_stage_1_from_full():
    spec = parse_spec(HEAD + "[methods.ft-then-pt]\n[methods.full]\n")
    assert [g.method for g in study_groups(spec)][:2] == ["full", "ft-then-pt"]
    full = tune_configs(spec, Group("full", "cifar", "standard"))[3]
    ftpt = tune_configs(spec, Group("ft-then-pt", "cifar", "standard"), full)
    assert len(ftpt) == 40
    assert {c.stage1().run_id for c in ftpt} == {full.run_id}


def test_round_trip_through_study_json():
    spec = parse_spec(
        HEAD + "[regimes]\nkshot = [1]\n[methods.full]\n[methods.vpt-deep]\nprompt_length = [1, 5]\n"
    )
    assert spec_from_dict(spec_to_dict(spec)) == spec


@pytest.mark.parametrize(
    ("tune", "plan"),
    [
        ("early_stopping = 'sha'", ((10, 3), (20, 2))),  # the default: 1/3 kept at 10%, 1/2 at 20%
        ("early_stopping = 'sha'\neta = 3\nmin_epochs = 4", ((4, 3), (12, 3), (36, 3))),  # geometric
        ("early_stopping = 'sha'\neta = 4", ((10, 4), (20, 2))),  # eta sets the first cut
        ("early_stopping = 'sha'\nrungs = [[5, 4], [25, 2]]", ((5, 4), (25, 2))),
        ("early_stopping = 'none'", ()),
    ],
)
def test_the_halving_plan_is_resolved_and_survives_study_json(tune, plan):
    spec = parse_spec(
        HEAD + f"[training]\nepochs = 100\nwarmup_epochs = 10\n[tune]\n{tune}\n[methods.full]\n"
    )
    assert spec.tune.rungs == plan
    assert spec_from_dict(spec_to_dict(spec)) == spec


def test_yaml_reads_numbers_written_without_a_dot():
    text = "data:\n  source: vtab1k:/x\n  tasks: [cifar]\nmethods:\n  full:\n    lr: [1e-3, 5e-4]\n"
    spec = parse_spec(text, "s.yaml", yaml_format=True)
    assert dict(spec.method("full").options)["lr"] == (0.001, 0.0005)


def test_yaml_is_loaded_safely():
    with pytest.raises(UserError, match="not valid YAML"):
        parse_spec("methods: !!python/object/apply:os.system ['echo hi']\n", "s.yaml", yaml_format=True)


BAD = [
    ("[methods.full]\nlr = [0.1, -1]", "bad.toml: methods.full.lr[1]: must be > 0, got -1"),
    ("[methods.full]\nprompt_length = 3", "methods.full.prompt_length: full does not use it"),
    ("[methods.full]\n[methods.ft-then-pt]\nft_lr = 1", "methods.ft-then-pt.ft_lr: taken from methods.full"),
    (
        "[training]\nepoch = 3\n[methods.full]",
        "training.epoch: unknown key; valid keys here: curve_regimes, epochs,",
    ),
    ("[methods.fulll]", "methods.fulll: unknown method; choose from full, vpt-deep,"),
    ("[methods.full]\nlr = 'a'", "methods.full.lr: must be a number, got a string 'a'"),
    ("[methods.vpt-deep.tasks.foo]\nprompt_length = 1", "methods.vpt-deep.tasks.foo: unknown task"),
    ("[tune]\nearly_stopping = 'x'\n[methods.full]", "tune.early_stopping: must be one of 'none', 'sha'"),
    ("[methods.full]\nbatch_size = 1.5", "methods.full.batch_size: must be an integer, got a number 1.5"),
    ("x = ", "bad.toml: not valid TOML"),
    ("[regimes]\nstandard = false\n[methods.full]", "regimes: no regime left"),
    ("[training]\nepochs = 0\n[methods.full]", "training.epochs: must be >= 1, got 0"),
    ("[training]\nseeds = [1, 1]\n[methods.full]", "training.seeds: lists a seed twice"),
    ("[methods.ft-then-pt]", "ft-then-pt needs ft_lr and ft_wd"),
    (
        "[training]\nepochs = 10\nwarmup_epochs = 10\n[methods.full]",
        "training.warmup_epochs: must be < epochs",
    ),
    ("[methods.full]\nlr = []", "methods.full.lr: must not be empty"),
    ("[methods.full]\nwd = true", "methods.full.wd: must be a number, got a boolean True"),
    ("[methods.full.tasks.dtd]\nlr = -1", "methods.full.tasks.dtd.lr: must be > 0, got -1"),
    ("[executor]\nkind = 'slurm'\n[methods.full]", "executor.kind: must be one of 'local', 'ray'"),
    ("[executor]\nworkers = 0\n[methods.full]", "executor.workers: must be >= 1, got 0"),
    ("[regimes]\nkshot = [0]\n[methods.full]", "regimes.kshot[0]: must be >= 1, got 0"),
    ("[backbone]\nimage_size = 'big'\n[methods.full]", "backbone.image_size: must be an integer"),
    ("[methods]", "methods: at least one method is needed"),
    ("[task_options.cifar]\nlr = 1\n[methods.full]", "task_options.cifar.lr: not a per-task option"),
    (
        "[tune]\nearly_stopping = 'sha'\nrungs = [[10, 3], [5, 2]]\n[methods.full]",
        "tune.rungs: epochs must increase and stay below training.epochs (100)",
    ),
    (
        "[tune]\nearly_stopping = 'sha'\nrungs = [[10, 1]]\n[methods.full]",
        "tune.rungs: each eta must be >= 2",
    ),
    (
        "[tune]\nearly_stopping = 'sha'\nrungs = [10, 3]\n[methods.full]",
        "tune.rungs: must be a list of [epoch, eta]",
    ),
    (
        "[tune]\nearly_stopping = 'sha'\nmin_epochs = 60\n[methods.full]",
        "tune.min_epochs: must be <= training.epochs / 2",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_spec_names_the_key(text, message):
    with pytest.raises(UserError) as err:
        parse_spec(HEAD + text, "bad.toml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_methods_table_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="methods: missing"):
        parse_spec(HEAD, "s.toml")
    with pytest.raises(UserError, match="study spec not found"):
        load_spec(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["paper.toml", "one-shot.toml", "data-size.toml", "demo.toml"])
def test_presets_parse_and_say_what_they_run(name):
    path = STUDIES / name
    if not path.is_file():
        pytest.skip(f"{name} is not written yet")
    spec = load_spec(path)
    header = path.read_text().split("\n\n")[0]
    assert "What it runs" in header or "what it runs" in header.lower()
    assert "should show" in header
    assert spec.data.tasks and spec.methods


def test_paper_preset_is_the_paper_protocol():
    spec = load_spec(STUDIES / "paper.toml")
    assert len(spec.data.tasks) == 19 and spec.method_names == ("full", "vpt-deep", "mixed", "ft-then-pt")
    assert spec.training.seeds == (42, 44, 82, 100, 800) and spec.training.epochs == 100
    assert spec.backbone.image_size == 224 and spec.training.warmup_epochs == 10
    assert dict(spec.method("full").options)["batch_size"] == (128,)
    assert dict(spec.method("vpt-deep").options)["batch_size"] == (64,)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["name", "backbone", "data", "training", "regimes", "methods", "tune", "executor", "x"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=5))
def test_any_malformed_spec_is_a_user_error_never_a_crash(data):
    try:
        spec_from_dict(data, "fuzz")
    except UserError as err:
        assert str(err).startswith("fuzz: ")


def test_a_folder_source_lists_its_one_task(tmp_path):
    from studyhelpers import make_folder_task

    make_folder_task(tmp_path / "colours", classes=2, per_class=6)
    spec = parse_spec(f"[data]\nsource = 'folder:{tmp_path / 'colours'}'\n[methods.full]\n")
    assert spec.data.tasks == ("colours",)
    with pytest.raises(UserError, match="data.tasks\\[0\\]: unknown task 'other'; known tasks: colours"):
        parse_spec(f"[data]\nsource = 'folder:{tmp_path / 'colours'}'\ntasks = ['other']\n[methods.full]\n")


def test_synthetic_tasks_default_to_all():
    spec = parse_spec("[methods.vpt-deep]\n")
    assert spec.data.source == "synthetic" and len(spec.data.tasks) >= 5


LIMITED = """
[data]
source = "synthetic"
tasks = ["fractal", "count", "loc"]
[regimes]
standard = true
kshot = [1]
kshot_methods = ["full", "vpt-deep"]
size = [400]
size_tasks = ["count"]
size_methods = ["full", "vpt-deep"]
[methods.full]
[methods.vpt-deep]
[methods.linear]
"""


def test_kshot_and_size_regimes_can_be_limited_to_tasks_and_methods():
    from vptlab.study.plan import study_groups

    groups = {(g.method, g.task, g.regime) for g in study_groups(parse_spec(LIMITED, "lim.toml"))}
    assert len([g for g in groups if g[2] == "standard"]) == 9
    assert {(m, t) for m, t, r in groups if r == "kshot:1"} == {
        (m, t) for m in ("full", "vpt-deep") for t in ("fractal", "count", "loc")
    }
    assert {(m, t) for m, t, r in groups if r == "size:400"} == {("full", "count"), ("vpt-deep", "count")}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ('size_tasks = ["count"]', 'size_tasks = ["cifar"]'),
            "regimes.size_tasks[0]: must be one of the study's tasks",
        ),
        (
            ('size_methods = ["full", "vpt-deep"]', 'size_methods = ["lora"]'),
            "regimes.size_methods[0]: must be one of",
        ),
    ],
)
def test_regime_limits_are_checked(change, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_spec(LIMITED.replace(*change), "lim.toml")


def test_test_curves_can_be_limited_to_some_regimes():
    from vptlab.study.plan import final_configs

    spec = parse_spec(
        LIMITED.replace(
            "[regimes]", '[training]\neval_test_every = 2\ncurve_regimes = ["standard"]\n[regimes]'
        ),
        "c.toml",
    )
    cadence = {}
    for group in study_groups(spec):
        cfg = tune_configs(spec, group)[0]
        cadence[group.regime] = {c.eval_test_every for c in final_configs(spec, cfg)}
    assert cadence == {"standard": {2}, "kshot:1": {0}, "size:400": {0}}


def test_a_method_can_have_its_own_warm_up_and_ft_then_pt_reuses_that_full_run():
    spec = parse_spec(
        HEAD + "[training]\nepochs = 20\n[methods.full]\nlr = 0.001\nwd = 0.0\nwarmup_epochs = 5\n"
        "[methods.ft-then-pt]\nlr = 1.0\nwd = 0.0\n"
    )
    (full,) = tune_configs(spec, Group("full", "cifar", "standard"))
    assert full.warmup_epochs == 5 and full.schedule == "step"
    (ftpt,) = tune_configs(spec, Group("ft-then-pt", "cifar", "standard"), full)
    assert ftpt.warmup_epochs == 2  # its own: 10% of 20 epochs
    assert ftpt.stage1().run_id == full.run_id  # stage 1 is exactly the selected full run, warm-up included
    assert ftpt.stage1().warmup_epochs == 5


def test_paper_preset_sets_the_reference_head_and_ft_warm_up():
    spec = load_spec(STUDIES / "paper.toml")
    assert spec.training.head_init == "reference"
    assert dict(spec.method("full").options)["warmup_epochs"] == (5,)
    assert "warmup_epochs" not in dict(spec.method("vpt-deep").options)
    for name in ("one-shot", "data-size"):
        assert load_spec(STUDIES / f"{name}.toml").training.head_init == "reference"


def test_method_option_keys_come_from_the_method_config():
    spec = parse_spec(HEAD + "[methods.lora]\nlora_targets = ['qv', 'qkv+proj']\nlora_rank = 4\n")
    assert dict(spec.method("lora").options)["lora_targets"] == ("qv", "qkv+proj")
    with pytest.raises(UserError, match="methods.lora.lora_targets: must be one of 'qv', 'qkv\\+proj'"):
        parse_spec(HEAD + "[methods.lora]\nlora_targets = 'qk'\n")
    with pytest.raises(UserError, match="methods.ft-then-pt.stage2_head: must be one of 'fresh', 'keep'"):
        parse_spec(HEAD + "[methods.full]\n[methods.ft-then-pt]\nstage2_head = 'new'\n")
