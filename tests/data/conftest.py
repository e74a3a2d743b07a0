"""Fixtures for the data tests (the folder-writing helpers are in datahelpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datahelpers import make_vtab


@pytest.fixture
def vtab_root(tmp_path: Path) -> Path:
    root = tmp_path / "vtab"
    make_vtab(root)
    return root


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A cache of this test's own, so cache behaviour is not influenced by other tests."""
    return tmp_path / "cache"
