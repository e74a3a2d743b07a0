"""Image sets named on the command line: folders, VTAB-1k tasks, synthetic tasks; mistakes are user errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.analysis.imagesets import check_spec, load_image_set, read_image_folder, spec_cache_key
from vptlab.errors import UserError


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (9, 7, 3), dtype=np.uint8)).save(path)


def _vtab(root: Path, task: str = "kitti") -> Path:
    lines = {"train800": [], "val200": [], "test": []}
    for split, n in (("train800", 8), ("val200", 4), ("test", 4)):
        for i in range(n):
            _png(root / task / split / f"{i}.png", len(lines[split]) + 100 * n)
            lines[split].append(f"{split}/{i}.png {i % 4}\n")
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, rows in lines.items():
        (root / task / f"{split}.txt").write_text("".join(rows))
    return root


def test_a_folder_is_every_image_under_it_resized(tmp_path):
    for i in range(3):
        _png(tmp_path / "a" / f"{i}.png", i)
    _png(tmp_path / "b" / "deep" / "x.jpg", 9)
    (tmp_path / "notes.txt").write_text("not an image")
    images = read_image_folder(tmp_path, 12)
    assert images.images.shape == (4, 12, 12, 3) and images.images.dtype == np.uint8
    again = load_image_set(f"folder:{tmp_path}", 12)
    assert again.manifest == images.manifest
    assert load_image_set(tmp_path, 10).manifest != images.manifest  # the size is part of the identity


def test_vtab_task_is_its_train800val200(tmp_path):
    root = _vtab(tmp_path / "vtab")
    images = load_image_set(f"vtab1k:{root}/kitti", 16)
    assert len(images) == 12 and images.images.shape[1:] == (16, 16, 3)
    with pytest.raises(UserError, match="vtab1k:ROOT/TASK"):
        load_image_set("vtab1k:kitti", 16)


def test_synthetic_sets(tmp_path):
    shapes = load_image_set("synthetic:shapes", 16)
    assert len(shapes) == 1000 and shapes.images.shape[1:] == (16, 16, 3)
    with pytest.raises(UserError, match="unknown synthetic set 'nope'; known: upstream, "):
        load_image_set("synthetic:nope", 16)
    assert spec_cache_key("synthetic:upstream", 32) != spec_cache_key("synthetic:upstream", 16)
    assert spec_cache_key(tmp_path, 32) is None


def test_bad_specs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        check_spec(tmp_path / "missing")
    with pytest.raises(UserError, match="no such FID statistics file"):
        check_spec(tmp_path / "missing.npz")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="not a folder of images"):
        check_spec(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="found 0 images"):
        load_image_set(tmp_path / "empty", 8)
    (tmp_path / "broken" / "c").mkdir(parents=True)
    (tmp_path / "broken" / "c" / "a.png").write_bytes(b"not a png")
    (tmp_path / "broken" / "c" / "b.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot decode image"):
        load_image_set(tmp_path / "broken", 8)
