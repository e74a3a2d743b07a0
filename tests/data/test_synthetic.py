"""The built-in synthetic benchmark: what every user of ``source="synthetic"`` relies on."""

from __future__ import annotations

import functools
import hashlib
import inspect
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.data.base import GROUPS, OBJECTIVES
from vptlab.data.synthetic import (
    SPLIT_SIZES,
    SYNTHETIC_TASKS,
    TASKS,
    export_synthetic,
    generate,
    upstream,
    upstream_info,
)
from vptlab.data.synthetic.upstream import upstream_systems
from vptlab.errors import UserError

ALL = list(SYNTHETIC_TASKS)


@functools.cache
def gen(task: str, split: str, image_size: int = 32, seed: int = 0):
    """Generated once per test session: the tests below only read the sets."""
    return generate(task, split, image_size=image_size, seed=seed)


def _hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(im.tobytes()).hexdigest() for im in images}


def test_tasks_cover_all_groups_and_both_objectives():
    assert len(SYNTHETIC_TASKS) >= 9
    assert {t.group for t in SYNTHETIC_TASKS.values()} == set(GROUPS)
    assert {t.objective for t in SYNTHETIC_TASKS.values()} == set(OBJECTIVES)
    for name, task in TASKS.items():
        assert task.info.name == name and task.info is SYNTHETIC_TASKS[name]
        assert task.shows and task.mirrors and task.quadrant
        assert not task.class_names or len(task.class_names) == task.info.num_classes


@pytest.mark.parametrize("task", ALL)
def test_same_seed_same_images_other_seed_other_images(task):
    a, b = gen(task, "val200"), generate(task, "val200")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.manifest == b.manifest
    c = generate(task, "val200", seed=1)
    assert not np.array_equal(a.images, c.images)
    assert a.manifest != c.manifest


@pytest.mark.parametrize("task", ALL)
def test_split_sizes_types_and_label_balance(task):
    k = SYNTHETIC_TASKS[task].num_classes
    for split, n in (("train800", 800), ("val200", 200)):
        s = gen(task, split)
        assert s.images.shape == (n, 32, 32, 3) and s.images.dtype == np.uint8
        assert s.labels.dtype == np.int64 and s.labels.min() >= 0 and s.labels.max() < k
        counts = np.bincount(s.labels, minlength=k)
        assert counts.max() - counts.min() <= 1, counts
        assert s.images.std() > 5  # not blank


@pytest.mark.parametrize("task", ALL)
def test_train_and_test_never_share_an_image(task):
    train, test = gen(task, "train800"), gen(task, "val200")
    assert not _hashes(train.images) & _hashes(test.images)


def test_test_split_is_large_and_balanced_and_disjoint():
    test = gen("textures", "test")
    assert len(test) == SPLIT_SIZES["test"] >= 2000
    counts = np.bincount(test.labels)
    assert counts.max() - counts.min() <= 1
    assert not _hashes(test.images) & _hashes(gen("textures", "train800val200").images)


def test_pool_serves_the_largest_data_size_run():
    assert SPLIT_SIZES["pool"] >= 20000 + 5000


@pytest.mark.slow
def test_pool_is_generated_balanced_and_disjoint_from_test():
    pool = generate("textures", "pool")
    assert len(pool) == SPLIT_SIZES["pool"]
    counts = np.bincount(pool.labels)
    assert counts.max() - counts.min() <= 1
    assert not _hashes(pool.images) & _hashes(gen("textures", "test").images)


@pytest.mark.parametrize("task", ["fractal", "count"])
def test_train800val200_is_exactly_train800_then_val200(task):
    tv, tr, va = (gen(task, s) for s in ("train800val200", "train800", "val200"))
    assert np.array_equal(tv.images, np.concatenate([tr.images, va.images]))
    assert np.array_equal(tv.labels, np.concatenate([tr.labels, va.labels]))
    assert len({tv.manifest, tr.manifest, va.manifest}) == 3


@pytest.mark.parametrize("task", ALL)
def test_any_image_size_renders_the_same_scenes(task):
    small, big = gen(task, "val200"), gen(task, "val200", image_size=64)
    assert big.images.shape == (200, 64, 64, 3)
    assert np.array_equal(small.labels, big.labels)
    assert small.manifest != big.manifest
    down = big.images.reshape(200, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    corr = np.corrcoef(down.ravel(), small.images.astype(float).ravel())[0, 1]
    assert corr > 0.8, corr  # the same scenes, rendered at another resolution (not upsampled)
    assert generate(task, "val200", image_size=19).images.shape == (200, 19, 19, 3)


def test_unknown_task_or_split_is_a_user_error():
    with pytest.raises(UserError, match="known tasks"):
        generate("nope", "train800")
    with pytest.raises(UserError, match="splits"):
        generate("shapes", "train")


def test_upstream_set_is_many_classes_deterministic_and_balanced():
    defaults = inspect.signature(upstream).parameters
    assert defaults["num_classes"].default >= 100
    assert defaults["num_classes"].default * defaults["per_class"].default >= 20000
    assert upstream_info().num_classes == defaults["num_classes"].default
    a, b = upstream(num_classes=20, per_class=3), upstream(num_classes=20, per_class=3)
    assert a.images.shape == (60, 32, 32, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and a.manifest == b.manifest
    assert np.array_equal(a.labels, np.arange(60) % 20)
    assert not np.array_equal(a.images, upstream(num_classes=20, per_class=3, seed=1).images)
    assert upstream(num_classes=20, per_class=3, image_size=48).images.shape == (60, 48, 48, 3)


def test_upstream_classes_are_distinct_and_fewer_classes_are_a_prefix():
    few, many = upstream_systems(5, 0), upstream_systems(12, 0)
    assert np.array_equal(few.mats, many.mats[:5])
    flat = many.mats.reshape(12, -1)
    assert len({row.tobytes() for row in flat}) == 12


def test_fractal_task_classes_are_not_upstream_classes():
    from vptlab.data.synthetic.natural import _fractal_classes

    ours, up = _fractal_classes(0).mats.reshape(-1, 16), upstream_systems(100, 0).mats.reshape(-1, 16)
    assert np.abs(ours[:, None, :] - up[None, :, :]).max(-1).min() > 1e-3


def _read_split(folder: Path, split: str) -> list[tuple[str, int]]:
    """A tiny VTAB-1k split-file parser: ``relative/path label`` per line."""
    rows = []
    for line in (folder / f"{split}.txt").read_text().splitlines():
        path, label = line.rsplit(" ", 1)
        rows.append((path, int(label)))
    return rows


def test_export_writes_a_vtab1k_folder_that_reads_back_exactly(tmp_path):
    folder = export_synthetic("loc", tmp_path, image_size=16)
    assert folder == tmp_path / "loc"
    for split in ("train800", "val200", "test"):
        ref = generate("loc", split, image_size=16)
        rows = _read_split(folder, split)
        assert [y for _, y in rows] == ref.labels.tolist()
        for i in (0, len(rows) - 1):
            path = folder / rows[i][0]
            assert path.resolve().is_relative_to(folder.resolve())
            assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), ref.images[i])
    assert _read_split(folder, "train800val200") == _read_split(folder, "train800") + _read_split(
        folder, "val200"
    )
    assert not (folder / "pool.txt").exists()


def test_exported_folder_is_recognised_by_the_vtab1k_reader(tmp_path):
    vtab1k = pytest.importorskip("vptlab.data.vtab1k")
    export_synthetic("textures", tmp_path, image_size=8)
    assert "textures" in [t.name for t in vtab1k.find_tasks(tmp_path)]
