"""K prompt configurations in one pass through one frozen backbone (bench/prompt_sweep.py, a learner of the one
training loop): the same runs as K separate ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vptlab.train import train_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from prompt_sweep import can_sweep, train_prompt_sweep  # noqa: E402


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["vpt-deep", "vpt-shallow"])
def test_sweep_equals_separate_runs(tiny_cfg, toy_task, tmp_path, method):
    settings = [(0.5, 1e-4, 42), (2.0, 0.0, 42), (1e6, 0.01, 42)]  # the last one diverges
    cfgs = [
        tiny_cfg(
            method, lr=lr, wd=wd, seed=seed, epochs=3, prompt_length=2, prompt_dropout=0.0, eval_test_every=2
        )
        for lr, wd, seed in settings
    ]
    swept = train_prompt_sweep(cfgs, [tmp_path / "sweep" / str(i) for i in range(3)], task_data=toy_task)
    for i, (cfg, res) in enumerate(zip(cfgs, swept)):
        alone = train_run(cfg, tmp_path / "alone" / str(i), task_data=toy_task)
        assert res["status"] == alone["status"] and res["run_id"] == alone["run_id"]
        assert set(res) == set(alone) | {"prompt_sweep"} and res["params"] == alone["params"]
        if alone["status"] == "diverged":
            assert res["diverged_at"]["epoch"] == alone["diverged_at"]["epoch"]
            continue
        for a, b in zip(_rows(tmp_path / "sweep" / str(i)), _rows(tmp_path / "alone" / str(i)), strict=True):
            assert set(a) == set(b)
            for key in a:
                if key != "seconds":
                    assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (i, key)
        mine = load_file(str(tmp_path / "sweep" / str(i) / "tuned.safetensors"))
        theirs = load_file(str(tmp_path / "alone" / str(i) / "tuned.safetensors"))
        assert mine.keys() == theirs.keys()
        for name in mine:
            torch.testing.assert_close(mine[name], theirs[name], rtol=1e-4, atol=1e-5)
    assert [r["status"] for r in swept] == ["ok", "ok", "diverged"]


def test_runs_with_different_seeds_share_a_pretrained_backbone(tiny_cfg, tmp_path):
    from vptlab.data.base import TaskData, TaskInfo
    from vptlab_testing import make_imageset

    data = TaskData(TaskInfo("toy32", "natural", "classification", 4), make_imageset(48, 1, size=32),
                    make_imageset(16, 2, size=32), make_imageset(16, 3, size=32))  # fmt: skip
    kw = dict(pretrained=True, backbone_args=(), image_size=32, prompt_length=2, prompt_dropout=0.0)
    cfgs = [tiny_cfg("vpt-deep", seed=seed, lr=lr, **kw) for seed, lr in ((42, 0.5), (44, 1.0))]
    swept = train_prompt_sweep(cfgs, [tmp_path / "s0", tmp_path / "s1"], task_data=data)
    for i, cfg in enumerate(cfgs):
        alone = train_run(cfg, tmp_path / f"a{i}", task_data=data)
        assert swept[i]["metrics"] == pytest.approx(alone["metrics"], rel=1e-4, abs=1e-5)
    random_init = [tiny_cfg("vpt-deep", seed=seed) for seed in (42, 44)]
    results = train_prompt_sweep(random_init, [tmp_path / "r0", tmp_path / "r1"], task_data=data)
    assert {r["status"] for r in results} == {"failed"} and "one frozen backbone" in results[0]["error"]


def test_only_prompt_configs_differing_in_lr_wd_seed_share_a_pass(tiny_cfg, tmp_path):
    assert can_sweep([tiny_cfg("vpt-deep", lr=1.0), tiny_cfg("vpt-deep", lr=2.0, seed=3, wd=0.1)])
    assert not can_sweep([tiny_cfg("vpt-deep", prompt_length=2), tiny_cfg("vpt-deep", prompt_length=4)])
    assert not can_sweep([tiny_cfg("vpt-deep"), tiny_cfg("vpt-shallow")])
    assert not can_sweep([tiny_cfg("full"), tiny_cfg("full", lr=1.0)])
    with pytest.raises(ValueError, match="differ only in lr, wd and seed"):
        train_prompt_sweep([tiny_cfg("linear")], [tmp_path])
