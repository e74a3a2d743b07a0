"""Shared test set-up: quiet progress bars, one thread, deterministic torch."""

from __future__ import annotations

import os

os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from vptlab_testing import TINY_ARGS, make_imageset  # noqa: E402, F401


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own decoded-image cache, never the user's."""
    monkeypatch.setenv("VPTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "vptlab-cache"))


@pytest.fixture
def toy_task():
    """A 4-class task at 16x16: 64 train, 32 val, 48 test images."""
    from vptlab.data.base import TaskData, TaskInfo

    info = TaskInfo("toy", "natural", "classification", 4)
    return TaskData(
        info,
        make_imageset(64, 1),
        make_imageset(32, 2),
        make_imageset(48, 3),
        record={"source": "test", "task": "toy"},
    )


@pytest.fixture
def tiny_cfg():
    """RunConfig factory for a 2-layer, 32-wide ViT at 16x16 from random init."""
    from vptlab.train import RunConfig

    def make(method: str, **kw):
        base = dict(
            method=method,
            task="toy",
            data="test",
            pretrained=False,
            backbone_args=TINY_ARGS,
            image_size=16,
            epochs=2,
            warmup_epochs=1,
            batch_size=16,
        )
        return RunConfig.of(**{**base, **kw})

    return make
