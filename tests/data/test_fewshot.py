"""NOAH's few-shot split files read as released: loader, check, train, a study over K and seeds, the report figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark_layouts import make_noah
from vptlab.data import list_tasks, load_task
from vptlab.data.checks import check_source
from vptlab.errors import UserError


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VPTLAB_NO_PROGRESS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "vptlab", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def noah_root(tmp_path: Path) -> Path:
    root = tmp_path / "few-shot"
    make_noah(root, "mini-pets")
    make_noah(root, "standford-cars", images_dir=False)  # NOAH's cars: paths relative to the dataset folder
    return root


def test_kshot_and_split_seed_pick_the_released_file(noah_root: Path, tmp_path: Path) -> None:
    assert [t.name for t in list_tasks(f"fewshot:{noah_root}")] == ["mini-pets", "standford-cars"]
    lines = (noah_root / "mini-pets/annotations/train_meta.list.num_shot_2.seed_1").read_text().split("\n")
    data = load_task(f"fewshot:{noah_root}", "mini-pets", regime="kshot:2", split_seed=1, image_size=32,
                     cache_dir=tmp_path / "c")  # fmt: skip
    assert data.info.num_classes == 3 and len(data.train) == len([x for x in lines if x]) == 6
    assert len(data.val) == 3 and len(data.test) == 6
    assert data.record["kshot"]["split_file"] == "train_meta.list.num_shot_2.seed_1"
    cars = load_task(f"fewshot:{noah_root}", "standford-cars", regime="kshot:1", stage="final", split_seed=2,
                     image_size=32, cache_dir=tmp_path / "c")  # fmt: skip
    assert cars.val is None and len(cars.train) == 3  # the final stage trains on the K-shot file alone
    assert cars.info.num_classes == 196  # NOAH's class count for its cars dataset


def test_repeated_lines_are_kept_as_released(noah_root: Path, tmp_path: Path) -> None:
    path = noah_root / "mini-pets/annotations/train_meta.list.num_shot_1.seed_0"
    first = path.read_text().split("\n")[0]
    path.write_text(first + "\n" + path.read_text())  # as oxford-pets' 1-shot file repeats a line
    data = load_task(
        f"fewshot:{noah_root}", "mini-pets", regime="kshot:1", image_size=32, cache_dir=tmp_path / "c"
    )
    assert len(data.train) == 4


def test_missing_split_and_wrong_regime_are_user_errors(noah_root: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="num_shot_4.seed_0; released: kshot:1 seed 0"):
        load_task(
            f"fewshot:{noah_root}", "mini-pets", regime="kshot:4", image_size=32, cache_dir=tmp_path / "c"
        )
    with pytest.raises(UserError, match="use regime kshot:K"):
        load_task(f"fewshot:{noah_root}", "mini-pets", image_size=32, cache_dir=tmp_path / "c")
    (noah_root / "mini-pets/annotations/val_meta.list").write_text("class_0/img_0.png zero\n")
    with pytest.raises(UserError, match="val_meta.list:1: expected"):
        load_task(
            f"fewshot:{noah_root}", "mini-pets", regime="kshot:1", image_size=32, cache_dir=tmp_path / "c"
        )
    assert any(
        "val_meta.list:1" in p for p in check_source(f"fewshot:{noah_root}", images=False).all_problems()
    )


def test_data_check_cli(noah_root: Path) -> None:
    res = _cli("data", "check", f"fewshot:{noah_root}")
    assert res.returncode == 0, res.stderr
    assert "train_meta.list.num_shot_2.seed_2" in res.stdout and "K-shot files for K in [1, 2]" in res.stdout
    prep = _cli("data", "prepare", f"fewshot:{noah_root}", "--task", "mini-pets", "--image-size", "16",
                "--cache-dir", str(noah_root.parent / "cache"))  # fmt: skip
    assert prep.returncode == 0, prep.stderr  # every released K-shot file decoded into the cache
    assert "mini-pets: train 6, test 6" in prep.stdout  # the last one printed: K = 2, seed 2


def test_study_over_shots_and_seeds_and_the_report_figure(noah_root: Path, tmp_path: Path) -> None:
    from vptlab_testing import TINY_BACKBONE

    spec = f"""name = "fs"
{TINY_BACKBONE.replace("image_size = 16", "image_size = 32")}
[data]
source = "fewshot:{noah_root}"
tasks = ["mini-pets"]
split_seed = "seed"
[training]
epochs = 1
warmup_epochs = 0
seeds = [0, 1]
[regimes]
standard = false
kshot = [1, 2]
[methods.linear]
lr = [1.0]
wd = [0.0]
batch_size = 8
[methods.vpt-deep]
lr = [1.0]
wd = [0.0]
prompt_length = 2
batch_size = 8
"""
    path = tmp_path / "fs.toml"
    path.write_text(spec)
    env = {"VPTLAB_CACHE": str(tmp_path / "cache")}
    assert _cli("study", "plan", str(path), env_extra=env).returncode == 0
    run = _cli("study", "run", str(path), "--out", str(tmp_path / "out"), env_extra=env)
    assert run.returncode == 0, run.stderr
    finals = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*/result.json")]
    files = {r["data"]["kshot"]["split_file"] for r in finals if r["config"]["stage"] == "final"}
    assert files == {f"train_meta.list.num_shot_{k}.seed_{s}" for k in (1, 2) for s in (0, 1)}
    rep = _cli("report", str(tmp_path / "out"), "--fid-features", "none", "--no-attention", env_extra=env)
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "few_shot.png" in md and "| K=1 | K=2 |" in md
    assert (tmp_path / "out" / "report" / "few_shot.png").is_file() or list(
        (tmp_path / "out").rglob("few_shot.png")
    )


@pytest.mark.parametrize("preset", ["fgvc", "few-shot"])
def test_presets_plan(preset: str) -> None:
    res = _cli("study", "plan", f"studies/{preset}.toml")
    assert res.returncode == 0, res.stderr
    assert "runs:" in res.stdout


def test_noah_protocol_as_fewshot_k_on_any_source(tmp_path: Path) -> None:
    from datahelpers import make_vtab

    from vptlab.train.config import RunConfig

    make_vtab(tmp_path / "vtab")  # kitti: 16 train800 images (4 per class), 8 val200
    kw = dict(regime="fewshot:2", image_size=8, cache_dir=tmp_path / "c")
    tune = load_task(f"vtab1k:{tmp_path / 'vtab'}", "kitti", split_seed=3, **kw)
    final = load_task(f"vtab1k:{tmp_path / 'vtab'}", "kitti", stage="final", split_seed=3, **kw)
    assert len(tune.train) == 8 and np.bincount(tune.train.labels).tolist() == [2, 2, 2, 2]
    assert len(tune.val) == 8  # the whole val split, as NOAH tunes on its val list
    assert (
        final.val is None and final.train.manifest == tune.train.manifest
    )  # final: the same K per class alone
    other = load_task(f"vtab1k:{tmp_path / 'vtab'}", "kitti", split_seed=4, **kw)
    assert other.train.manifest != tune.train.manifest
    assert tune.record["fewshot"] == {"k": 2, "protocol": "noah", "pool": "train800", "pool_size": 16}
    with pytest.raises(UserError, match="fewshot:5 on kitti: class 0 has 4 image"):
        load_task(
            f"vtab1k:{tmp_path / 'vtab'}", "kitti", regime="fewshot:5", image_size=8, cache_dir=tmp_path / "c"
        )
    assert RunConfig(method="linear", task="kitti", regime="fewshot:4").regime == "fewshot:4"


def test_fewshot_regimes_in_a_study_spec_plan(tmp_path: Path) -> None:
    from vptlab_testing import tiny_spec

    spec = tiny_spec("synthetic", "count", epochs=1, seeds="[0, 1, 2]")
    spec += "\n[regimes]\nstandard = false\nfewshot = [1, 2, 4]\n"
    (tmp_path / "s.toml").write_text(spec)
    res = _cli("study", "plan", str(tmp_path / "s.toml"))
    assert res.returncode == 0, res.stderr
    assert "fewshot:1" in res.stdout and "fewshot:4" in res.stdout
