"""Shared test set-up: quiet progress bars, one thread, deterministic torch."""

from __future__ import annotations

import os

os.environ.setdefault("VPTLAB_NO_PROGRESS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own decoded-image cache, never the user's."""
    monkeypatch.setenv("VPTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "vptlab-cache"))
