"""Linear probing from cached features: the same run as the ordinary path, features computed once and reused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vptlab.train import build_model, train_run
from vptlab.train.features import cached_features, feature_key
from vptlab.train.loop import Precision
from vptlab_testing import make_imageset

CPU = Precision(torch.device("cpu"), None)


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _assert_same_rows(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for key in ra:
            if key != "seconds":
                assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("stage", ["tune", "final"])
def test_features_path_gives_the_ordinary_paths_metrics(tiny_cfg, toy_task, tmp_path, stage):
    if stage == "final":
        toy_task.val = None
    cfg = tiny_cfg("linear", epochs=3, stage=stage, eval_test_every=2, lr=5.0)
    fast = train_run(cfg, tmp_path / "fast", task_data=toy_task)
    slow = train_run(cfg, tmp_path / "slow", task_data=toy_task, linear_features=False)
    _assert_same_rows(_rows(tmp_path / "fast"), _rows(tmp_path / "slow"))
    assert fast["status"] == slow["status"] == "ok"
    assert fast["metrics"] == pytest.approx(slow["metrics"], rel=1e-5)
    assert fast["linear_features"]["cached"] and "linear_features" not in slow
    tuned = [load_file(str(tmp_path / d / "tuned.safetensors")) for d in ("fast", "slow")]
    assert tuned[0].keys() == tuned[1].keys() == {"head.weight", "head.bias"}
    for name in tuned[0]:
        torch.testing.assert_close(tuned[0][name], tuned[1][name], rtol=1e-5, atol=1e-6)


def test_result_files_keep_their_format(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("linear", eval_test_every=1)
    fast = train_run(cfg, tmp_path / "fast", task_data=toy_task)
    slow = train_run(cfg, tmp_path / "slow", task_data=toy_task, linear_features=False)
    assert set(fast) - {"linear_features"} == set(slow)
    assert [set(r) for r in _rows(tmp_path / "fast")] == [set(r) for r in _rows(tmp_path / "slow")]


def test_features_are_computed_once_then_read_from_the_cache(tiny_cfg, toy_task, tmp_path):
    first = train_run(
        tiny_cfg("linear", lr=1.0, seed=7, eval_test_every=0), tmp_path / "a", task_data=toy_task
    )
    second = train_run(
        tiny_cfg("linear", lr=2.0, seed=7, eval_test_every=0), tmp_path / "b", task_data=toy_task
    )
    splits = first["linear_features"]["splits"]
    assert set(splits) == {"train", "val"}  # the tune stage never evaluates test: no test features
    assert not any(s["hit"] for s in splits.values())
    assert all(s["hit"] for s in second["linear_features"]["splits"].values())


def test_a_paused_features_run_continues_as_if_uninterrupted(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("linear", epochs=4)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    part = train_run(cfg, tmp_path / "split", task_data=toy_task, until_epoch=2)
    assert part["status"] == "partial"
    done = train_run(cfg, tmp_path / "split", task_data=toy_task)
    assert done["metrics"] == pytest.approx(whole["metrics"], rel=1e-6)


def test_key_follows_weights_and_pixels_not_only_names(tiny_cfg):
    model, _ = build_model(tiny_cfg("linear").resolved(), 4)
    images = make_imageset(8, seed=1)
    other_pixels = make_imageset(8, seed=2)
    other_pixels.manifest = images.manifest  # same file names and labels, different pixels
    mean, std = (0.5,) * 3, (0.25,) * 3
    base = feature_key(model, images, mean, std, CPU)
    assert feature_key(model, other_pixels, mean, std, CPU)["pixels"] != base["pixels"]
    with torch.no_grad():
        model.blocks[0].mlp.fc1.weight.add_(1.0)
    assert feature_key(model, images, mean, std, CPU)["weights"] != base["weights"]
    with torch.no_grad():
        model.head.weight.add_(1.0)  # the head is what trains: not part of the key
    assert (
        feature_key(model, images, mean, std, CPU)["weights"]
        == feature_key(model, images, mean, std, CPU)["weights"]
    )


def test_an_entry_without_its_header_is_recomputed(tiny_cfg, tmp_path):
    model, _ = build_model(tiny_cfg("linear").resolved(), 4)
    images = make_imageset(10, seed=3)
    mean, std = (0.5,) * 3, (0.25,) * 3
    first, rec = cached_features(model, images, mean=mean, std=std, precision=CPU, cache_dir=tmp_path)
    header = next((tmp_path / "features").glob("*.json"))
    header.unlink()
    again, rec2 = cached_features(model, images, mean=mean, std=std, precision=CPU, cache_dir=tmp_path)
    assert not rec["hit"] and not rec2["hit"]
    np.testing.assert_array_equal(first.features.numpy(), again.features.numpy())
    third, rec3 = cached_features(model, images, mean=mean, std=std, precision=CPU, cache_dir=tmp_path)
    assert rec3["hit"] and third.features.shape == (10, model.num_features)
