"""A linear lr x wd grid in one pass: the same runs, bit for bit, as training each grid point on its own."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vptlab.train import train_run
from vptlab.train.linear_grid import can_share_pass, train_linear_grid


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _grid(tiny_cfg, lrs=(5.0, 0.5), wds=(0.01, 0.0), **kw):
    return [tiny_cfg("linear", lr=lr, wd=wd, epochs=3, **kw) for lr in lrs for wd in wds]


def test_grid_pass_equals_separate_runs(tiny_cfg, toy_task, tmp_path):
    cfgs = _grid(tiny_cfg, lrs=(1e5, 5.0, 0.5), eval_test_every=2)
    grid = train_linear_grid(cfgs, [tmp_path / "grid" / str(i) for i in range(len(cfgs))], task_data=toy_task)
    for i, (cfg, res) in enumerate(zip(cfgs, grid)):
        alone = train_run(cfg, tmp_path / "alone" / str(i), task_data=toy_task)
        assert res["status"] == alone["status"] and res["run_id"] == alone["run_id"]
        assert set(res) == set(alone) | {"linear_grid"}
        if alone["status"] == "diverged":
            assert res["diverged_at"]["epoch"] == alone["diverged_at"]["epoch"]
            continue
        a, b = _rows(tmp_path / "grid" / str(i)), _rows(tmp_path / "alone" / str(i))
        assert [set(r) for r in a] == [set(r) for r in b]
        for ra, rb in zip(a, b):
            for key in ra:
                if key != "seconds":
                    assert ra[key] == rb[key], (cfg.lr, cfg.wd, key)
        for name, tensor in load_file(str(tmp_path / "grid" / str(i) / "tuned.safetensors")).items():
            other = load_file(str(tmp_path / "alone" / str(i) / "tuned.safetensors"))[name]
            assert torch.equal(tensor, other)
    assert {r["status"] for r in grid} == {"ok", "diverged"}


def test_finished_runs_are_kept(tiny_cfg, toy_task, tmp_path):
    cfgs = _grid(tiny_cfg)
    dirs = [tmp_path / str(i) for i in range(len(cfgs))]
    train_run(cfgs[0], dirs[0], task_data=toy_task)
    before = (dirs[0] / "result.json").stat().st_mtime_ns
    results = train_linear_grid(cfgs, dirs, task_data=toy_task)
    assert (dirs[0] / "result.json").stat().st_mtime_ns == before
    assert "linear_grid" not in results[0] and results[1]["linear_grid"]["size"] == len(cfgs) - 1
    again = train_linear_grid(cfgs, dirs, task_data=toy_task)
    assert [r["run_id"] for r in again] == [r["run_id"] for r in results]


def test_only_linear_configs_differing_in_lr_and_wd_share_a_pass(tiny_cfg, toy_task, tmp_path):
    assert can_share_pass(_grid(tiny_cfg))
    assert not can_share_pass([tiny_cfg("linear"), tiny_cfg("linear", seed=1)])
    assert not can_share_pass([tiny_cfg("vpt-deep", lr=1.0), tiny_cfg("vpt-deep", lr=2.0)])
    with pytest.raises(ValueError, match="differ only in lr and wd"):
        train_linear_grid(
            [tiny_cfg("linear"), tiny_cfg("linear", batch_size=8)], [tmp_path / "a", tmp_path / "b"]
        )
