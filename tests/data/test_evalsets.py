"""Domain shift: ImageNet-variant folders (class folders by wnid or by index, NOAH's list) as evaluation sets,
masked to their classes; result.json carries each evaluation; check, train, a study and the report's table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark_layouts import class_image, make_variant
from vptlab.data import load_task
from vptlab.data.evalsets import eval_image_list, load_eval_set
from vptlab.errors import UserError

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VPTLAB_NO_PROGRESS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "vptlab", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def imagenet(tmp_path: Path) -> Path:
    """A 4-class 'ImageNet' as a folder source (class folders named by wnid) and its shifted variants."""
    make_variant(tmp_path, "imagenet", WNIDS, per_class=8)
    variants = tmp_path / "variants"
    make_variant(variants, "imagenet-sketch", WNIDS)  # all classes, by wnid
    make_variant(variants, "imagenet-a", WNIDS[1::2], offset=1)  # a 2-class subset: masked
    v2 = variants / "imagenetv2-matched-frequency-format-val"
    for c in range(4):  # ImageNet-V2: folders named by class index
        (v2 / str(c)).mkdir(parents=True)
        class_image(c, 50 + c, (40, 48)).save(v2 / str(c) / "a.png")
    return tmp_path


def test_variant_layouts_map_into_the_training_label_space(imagenet: Path, tmp_path: Path) -> None:
    data = load_task(f"folder:{imagenet / 'imagenet'}", "imagenet", image_size=32, cache_dir=tmp_path / "c")
    assert data.record["classes"] == WNIDS
    a = load_eval_set("a", str(imagenet / "variants/imagenet-a"), data, image_size=32)
    assert sorted(set(a.images.labels.tolist())) == [1, 3] and a.mask.tolist() == [False, True, False, True]
    v2 = load_eval_set(
        "v2", str(imagenet / "variants/imagenetv2-matched-frequency-format-val"), data, image_size=32
    )
    assert v2.mask is None and v2.images.labels.tolist() == [0, 1, 2, 3]
    # NOAH's domain-generalisation list: labels given, paths relative to the folder
    noah = imagenet / "variants" / "noah"
    (noah / "annotations").mkdir(parents=True)
    (noah / "imagenet-r" / WNIDS[2]).mkdir(parents=True)
    class_image(2, 9, (50, 40)).save(noah / "imagenet-r" / WNIDS[2] / "cartoon_1.png")
    (noah / "annotations/val_meta.list").write_text(f"imagenet-r/{WNIDS[2]}/cartoon_1.png 2\n")
    assert eval_image_list(noah, None, 4).labels.tolist() == [2]


def test_unknown_classes_are_a_user_error_and_a_names_file_resolves_them(
    imagenet: Path, tmp_path: Path
) -> None:
    data = load_task(f"folder:{imagenet / 'imagenet'}", "imagenet", image_size=32, cache_dir=tmp_path / "c")
    make_variant(tmp_path, "other", ["n99999999", WNIDS[0]])
    with pytest.raises(UserError, match="n99999999"):
        load_eval_set("x", str(tmp_path / "other"), data, image_size=32)
    names = tmp_path / "names.txt"
    names.write_text("\n".join([WNIDS[0], "n99999999", WNIDS[2], WNIDS[3]]) + "\n")
    ok = load_eval_set("x", f"{tmp_path / 'other'}?classes={names}", data, image_size=32)
    assert sorted(set(ok.images.labels.tolist())) == [0, 1]


def test_the_loop_gets_each_set_with_its_logit_mask(imagenet: Path, tmp_path: Path) -> None:
    from vptlab.train import RunConfig, train_run
    from vptlab.train.engine import TrainOptions
    from vptlab.train.evalsets import with_config_eval_sets

    data = load_task(f"folder:{imagenet / 'imagenet'}", "imagenet", image_size=32, cache_dir=tmp_path / "c")
    kw = dict(method="linear", task="imagenet", data=f"folder:{imagenet / 'imagenet'}", backbone="vptlab-tiny",
              image_size=32, epochs=1, warmup_epochs=0, lr=1.0, wd=0.0, batch_size=8)  # fmt: skip
    sets = {"a": str(imagenet / "variants/imagenet-a"), "sketch": str(imagenet / "variants/imagenet-sketch")}
    cfg = RunConfig(**kw, extra={"eval_sets": sets}).resolved()
    opts = with_config_eval_sets(TrainOptions.make("cpu"), cfg, data)
    assert opts.eval_sets["a"].classes == (1, 3) and opts.eval_sets["sketch"].classes is None
    assert with_config_eval_sets(TrainOptions.make("cpu"), RunConfig(**kw).resolved(), data).eval_sets == {}
    result = train_run(cfg, tmp_path / "run", task_data=data)
    assert result["status"] == "ok" and set(result["metrics"]["eval"]) == {"a", "sketch"}
    assert result["data"]["eval_sets"]["a"]["masked_to_classes"] is True


def test_train_cli_records_each_evaluation(imagenet: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _cli(
        "train", "--method", "linear", "--task", "imagenet", "--data", f"folder:{imagenet / 'imagenet'}",
        "--backbone", "vptlab-tiny", "--image-size", "32", "--epochs", "2", "--warmup-epochs", "0",
        "--lr", "1", "--wd", "0", "--batch-size", "8", "--out", str(out),
        "--eval-set", f"sketch={imagenet / 'variants/imagenet-sketch'}",
        "--eval-set", f"a={imagenet / 'variants/imagenet-a'}",
        env_extra={"VPTLAB_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = json.loads((out / "result.json").read_text())
    evals, records = result["metrics"]["eval"], result["data"]["eval_sets"]
    assert set(evals) == {"sketch", "a"} == set(records)
    assert (
        records["a"]["masked_to_classes"]
        and records["a"]["classes"] == 2
        and records["sketch"]["images"] == 8
    )
    assert all(0.0 <= e["top1"] <= 100.0 for e in evals.values())
    assert np.isfinite(evals["a"]["loss"])


def test_data_check_on_a_variants_root(imagenet: Path) -> None:
    res = _cli("data", "check", f"imagenet-variants:{imagenet / 'variants'}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "imagenet-a" in res.stdout and "imagenetv2-matched-frequency-format-val" in res.stdout


def test_study_with_eval_sets_and_the_robustness_table(imagenet: Path, tmp_path: Path) -> None:
    from vptlab_testing import tiny_spec

    methods = "[methods.linear]\nlr = [1.0]\nwd = [0.0]\nbatch_size = 8\n"
    spec = tiny_spec(f"folder:{imagenet / 'imagenet'}", "imagenet", epochs=1, seeds="[1]", methods=methods)
    spec = spec.replace(
        "[training]",
        f'[data.eval_sets]\nsketch = "{imagenet / "variants/imagenet-sketch"}"\n'
        f'imagenet-a = "{imagenet / "variants/imagenet-a"}"\n[training]',
    )
    path = tmp_path / "shift.toml"
    path.write_text(spec)
    env = {"VPTLAB_CACHE": str(tmp_path / "cache")}
    run = _cli("study", "run", str(path), "--out", str(tmp_path / "out"), env_extra=env)
    assert run.returncode == 0, run.stderr
    finals = [json.loads(p.read_text()) for p in (tmp_path / "out/runs").glob("*/result.json")]
    finals = [r for r in finals if r["config"]["stage"] == "final"]
    assert finals and all(set(r["metrics"]["eval"]) == {"sketch", "imagenet-a"} for r in finals)
    rep = _cli("report", str(tmp_path / "out"), "--fid-features", "none", "--no-attention", env_extra=env)
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "out/report/report.md").read_text()
    assert "| method | task | (own test) | imagenet-a | sketch |" in md
