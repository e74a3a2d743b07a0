"""Run cards (README.md) and label maps (labels.json) written with every result."""

from __future__ import annotations

import json
from pathlib import Path

from vptlab.train import train_run
from vptlab.train.card import class_names, render_card


def test_label_map_by_source():
    folder = {"task": {"num_classes": 2}, "data": {"source_kind": "folder", "classes": ["cat", "dog"]}}
    assert class_names(folder) == (["cat", "dog"], True)
    from vptlab.data.synthetic.tasks import TASKS

    synthetic = {"task": {"num_classes": 4}, "data": {"source_kind": "synthetic", "task": "cells"}}
    assert class_names(synthetic) == (list(TASKS["cells"].class_names), True)
    vtab = {"task": {"num_classes": 3}, "data": {"source_kind": "vtab1k", "task": "dtd"}}
    assert class_names(vtab) == (["0", "1", "2"], False)  # the release names no classes


def test_every_run_writes_its_card_and_labels(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("vpt-deep", prompt_length=2), tmp_path, task_data=toy_task)
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert labels["classes"] == ["0", "1", "2", "3"] and labels["named"] is False
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("# vpt-deep on toy: ok")
    assert f"test_top1: {result['metrics']['test_top1']:.4g}%" in card
    assert f"| trainable parameters (with head) | {result['cost']['trainable_params']:,} |" in card
    assert f"vptlab predict {tmp_path}" in card and "vptlab.load_tuned" in card


def test_a_failed_run_card_says_why_and_offers_no_use():
    result = {"status": "failed", "error": "RuntimeError: out of memory", "config": {"method": "full", "task": "t"},
              "metrics": {}, "seconds": 1.0}  # fmt: skip
    card = render_card(result, run_dir=Path("r"))
    assert "none: the run ended failed (RuntimeError: out of memory)" in card and "vptlab predict" not in card


def test_seed_spread_on_the_card():
    runs = [{"status": "ok", "config": {"method": "full", "task": "t", "seed": s}, "metrics": {"test_top1": a}}
            for s, a in ((2, 70.0), (1, 80.0), (10, 90.0))]  # fmt: skip
    card = render_card({**runs[0], "seconds": 1.0}, Path("r"), seeds=runs)
    assert "over 3 seeds (1, 2, 10): test_top1 80.00 +- 10.00% (sample std), min 70.00, max 90.00" in card
