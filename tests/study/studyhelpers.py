"""Helpers for the study tests: a tiny image-folder task, tiny study specs, and a fake run function.

The fake run function writes what ``train_run`` writes (``metrics.jsonl``, ``result.json`` last) with validation
accuracy a known function of the config, so runner logic (selection, halving, resume, FT-then-PT reuse) is
tested in milliseconds; the end-to-end tests use the real ``train_run`` on the tiny folder task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from vptlab._io import atomic_write_json


def make_folder_task(root: Path, classes: int = 3, per_class: int = 12, size: int = 16) -> Path:
    """``root/<class>/*.png``: class ``c`` is a bright colour channel ``c`` (learnable in an epoch or two)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[..., c % 3] += 150
            Image.fromarray(img).save(folder / f"{i}.png")
    return root


FAKE_SPEC = """
name = "fake"
[data]
source = "vtab1k:/nonexistent"
tasks = ["cifar", "dtd"]
[training]
epochs = 9
warmup_epochs = 1
seeds = [1, 2, 3]
[methods.full]
[methods.vpt-deep]
lr = [50.0, 10.0, 1.0, 0.1]
[methods.ft-then-pt]
lr = [1.0, 0.5]
"""


def fake_val(cfg, epoch: int) -> float:
    """Validation top-1 after ``epoch + 1`` epochs: larger lr and smaller wd are better, and it grows."""
    return round(
        50 + 10 * math.log10(cfg.lr) - 100 * cfg.wd + epoch + (cfg.option("prompt_length") or 0) * 0.01, 3
    )


def fake_run(job, run_dir: Path, stage1_dir: Path | None, options) -> dict:
    """Stands in for ``train_run``: continues from ``result.json``'s ``epochs_done``; lr >= 25 diverges."""
    cfg = job.cfg
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "result.json"
    start = json.loads(path.read_text())["epochs_done"] if path.exists() else 0
    end = job.until_epoch or cfg.epochs
    with open(run_dir / "metrics.jsonl", "a") as fh:  # no fsync: these tests make thousands of runs
        for epoch in range(start, end):
            fh.write(json.dumps({"epoch": epoch, "val_top1": fake_val(cfg, epoch)}) + "\n")
    status = "ok" if end == cfg.epochs else "partial"
    if cfg.lr >= 25:
        status, end = "diverged", 1
    result = {
        "status": status,
        "run_id": cfg.run_id,
        "config": cfg.to_dict(),
        "epochs_done": end,
        "task": {"group": "natural", "objective": "classification"},
        "metrics": {
            "val_top1": fake_val(cfg, end - 1),
            "test_top1": fake_val(cfg, end - 1) - 5 + cfg.seed % 3,
        },
        "seconds": 0.01,
        "fake_started_at": start,
    }
    if stage1_dir is not None:
        result["stage1"] = {"run_id": job.stage1_id, "run_dir": str(stage1_dir), "reused": True}
    elif cfg.method == "ft-then-pt":
        result["stage1"] = {"reused": False}
    atomic_write_json(path, result)
    return result
