"""FGVC in the VPT release's layout: each of the five image-folder conventions loads, checks, trains, studies and
reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark_layouts import FGVC_LAYOUTS, make_fgvc
from vptlab.data import list_tasks, load_task
from vptlab.data.checks import check_source
from vptlab.data.ragged import is_ragged
from vptlab.errors import UserError


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VPTLAB_NO_PROGRESS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "vptlab", *args], capture_output=True, text=True, env=env)


@pytest.fixture
def fgvc_root(tmp_path: Path) -> Path:
    root = tmp_path / "fgvc"
    for task, _, _ in FGVC_LAYOUTS:
        make_fgvc(root, task)
    return root


@pytest.mark.parametrize("task,folder,image_dir", FGVC_LAYOUTS)
def test_each_image_folder_convention_loads(fgvc_root: Path, tmp_path: Path, task, folder, image_dir) -> None:
    data = load_task(f"fgvc:{fgvc_root}", task, image_size=32, cache_dir=tmp_path / "cache")
    assert data.info.num_classes == 3 and data.record["image_dir"].endswith(
        f"{folder}/{image_dir}".rstrip("/")
    )
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 9)
    assert is_ragged(data.train) and not is_ragged(data.test)
    assert data.test.images.shape == (9, 32, 32, 3)
    # class ids 10, 20, 30 -> labels 0, 1, 2 in sorted order
    assert sorted(set(data.train.labels.tolist())) == [0, 1, 2]


def test_class_ids_map_in_sorted_order_and_final_trains_on_train_plus_val(tmp_path: Path) -> None:
    folder = make_fgvc(tmp_path / "r", "cub")
    train = json.loads((folder / "train.json").read_text())
    first = next(iter(train))
    train[first] = 5  # a smaller id than every other: becomes label 0, the others shift up
    (folder / "train.json").write_text(json.dumps(train))
    data = load_task(f"fgvc:{tmp_path / 'r'}", "cub", stage="final", image_size=32, cache_dir=tmp_path / "c")
    assert data.info.num_classes == 4 and data.val is None and len(data.train) == 24
    assert data.record["classes"] == [5, 10, 20, 30]


def test_a_single_dataset_folder_is_a_root_too(tmp_path: Path) -> None:
    folder = make_fgvc(tmp_path / "r", "stanford_dogs")
    assert [t.name for t in list_tasks(f"fgvc:{folder}")] == ["stanford_dogs"]
    assert (
        len(load_task(f"fgvc:{folder}", "stanford_dogs", image_size=32, cache_dir=tmp_path / "c").test) == 9
    )


def test_train_fraction_file_is_read_with_the_source_option(tmp_path: Path) -> None:
    folder = make_fgvc(tmp_path / "r", "cub")
    train = json.loads((folder / "train.json").read_text())
    (folder / "train_0.5.json").write_text(json.dumps(dict(list(train.items())[::2])))
    data = load_task(f"fgvc:{tmp_path / 'r'}?fraction=0.5", "cub", image_size=32, cache_dir=tmp_path / "c")
    assert len(data.train) == 9 and data.record["train_file"] == "train_0.5.json"
    with pytest.raises(UserError, match="fraction"):
        load_task(f"fgvc:{tmp_path / 'r'}?fraction=2", "cub", image_size=32, cache_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda f: (f / "val.json").write_text("{not json"), "val.json: not valid JSON"),
        (lambda f: (f / "test.json").unlink(), "test.json: split file not found"),
        (lambda f: next((f / "images").rglob("*.png")).unlink(), "image not found"),
        (lambda f: (f / "train.json").write_text(json.dumps({"../x.png": 1})), "leaves the task folder"),
        (lambda f: (f / "train.json").write_text(json.dumps({"a.png": [1]})), "class id must be"),
    ],
)
def test_bad_input_is_one_clear_user_error(tmp_path: Path, breakage, message) -> None:
    folder = make_fgvc(tmp_path / "r", "cub")
    breakage(folder)
    with pytest.raises(UserError, match=message):
        load_task(f"fgvc:{tmp_path / 'r'}", "cub", image_size=32, cache_dir=tmp_path / "c")
    report = check_source(f"fgvc:{tmp_path / 'r'}", images=False)
    assert any(message in p for p in report.all_problems())


def test_data_check_cli_reports_counts_and_problems(fgvc_root: Path) -> None:
    ok = _cli("data", "check", f"fgvc:{fgvc_root}")
    assert ok.returncode == 0, ok.stderr
    assert "FGVC root" in ok.stdout and "train.json" in ok.stdout and "18 images" in ok.stdout
    assert ok.stdout.count("  ok") == 5
    corrupt = next((fgvc_root / "Stanford-dogs" / "Images").rglob("*.png"))
    corrupt.write_bytes(b"not a png")
    bad = _cli("data", "check", f"fgvc:{fgvc_root}", "--task", "stanford_dogs")
    assert bad.returncode == 2 and "cannot decode image" in bad.stdout


def test_train_cli_on_fgvc_records_the_transform(fgvc_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _cli(
        "train", "--method", "vpt-deep", "--task", "stanford_cars", "--data", f"fgvc:{fgvc_root}",
        "--backbone", "vptlab-tiny", "--image-size", "32", "--epochs", "2", "--warmup-epochs", "0",
        "--lr", "1", "--wd", "0", "--batch-size", "8", "--prompt-length", "2", "--out", str(out),
        env_extra={"VPTLAB_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok"
    assert result["data"]["transform"]["resize_shorter"] == 36 and result["data"]["transform"]["crop"] == 32


def test_the_same_seed_gives_the_same_run_and_augmentation_changes_training(fgvc_root, tmp_path) -> None:
    from vptlab.train import RunConfig, train_run

    data = load_task(f"fgvc:{fgvc_root}", "cub", image_size=32, cache_dir=tmp_path / "cache")
    kw = dict(method="vpt-deep", task="cub", data=f"fgvc:{fgvc_root}", backbone="vptlab-tiny", image_size=32,
              epochs=2, warmup_epochs=0, lr=1.0, wd=0.0, batch_size=6, prompt_length=2)  # fmt: skip
    a = train_run(RunConfig.of(**kw), tmp_path / "a", task_data=data)
    b = train_run(RunConfig.of(**kw), tmp_path / "b", task_data=data)
    assert a["metrics"]["train_loss"] == b["metrics"]["train_loss"]
    # the same run on centre crops only (no random crops): different training losses
    plain = type(data)(data.info, data.train.subset(np.arange(len(data.train))), data.val, data.test)
    plain.train.images = np.asarray(plain.train.images)
    c = train_run(RunConfig.of(**kw), tmp_path / "c", task_data=plain)
    assert c["metrics"]["train_loss"] != a["metrics"]["train_loss"]


def test_study_plan_run_and_report_on_fgvc(fgvc_root: Path, tmp_path: Path) -> None:
    from vptlab_testing import tiny_spec

    methods = """
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
    spec = tiny_spec(f"fgvc:{fgvc_root}", "oxford_flowers", epochs=1, seeds="[1, 2]", methods=methods)
    spec = spec.replace("image_size = 16", "image_size = 32")
    path = tmp_path / "fgvc.toml"
    path.write_text(spec)
    env = {"VPTLAB_CACHE": str(tmp_path / "cache")}
    assert _cli("study", "plan", str(path), env_extra=env).returncode == 0
    run = _cli("study", "run", str(path), "--out", str(tmp_path / "out"), env_extra=env)
    assert run.returncode == 0, run.stderr
    rep = _cli("report", str(tmp_path / "out"), "--fid-features", "none", "--no-attention", env_extra=env)
    assert rep.returncode == 0, rep.stderr
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    section = md.split("FGVC (the VPT paper's fine-grained benchmark)")[1]
    assert "| oxford_flowers |" in section.split("\n\n")[1] or "oxford_flowers" in section
    # the bundled published VPT-deep number sits beside ours, labelled as published; none for Linear
    assert "| VPT-deep (published) | 99.0 | - |" in section and "Linear (published)" not in section
