"""load_task / list_tasks: source strings, the synthetic source (a stand-in, and the real one once it exists)."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from vptlab.data import ImageSet, TaskInfo, list_tasks, load_task, parse_source, sources, with_normalization
from vptlab.errors import UserError

SPLIT_SIZES = {"train800": 800, "val200": 200, "train800val200": 1000, "test": 300, "pool": 3000}


def _fake_synthetic(sizes: dict[str, int] = SPLIT_SIZES) -> types.SimpleNamespace:
    """The synthetic module's interface (SYNTHETIC_TASKS, generate), with images that encode split and index."""
    tasks = {"blobs": TaskInfo("blobs", "natural", "classification", 4)}
    calls = []

    def generate(task: str, split: str, image_size: int = 32, seed: int = 0) -> ImageSet:
        calls.append(split)
        if split == "train800val200":  # as the real generator: exactly train800 then val200
            parts = [generate(task, s, image_size, seed) for s in ("train800", "val200")]
            return ImageSet.concat(parts, split)
        n = sizes[split]
        images = np.zeros((n, image_size, image_size, 3), np.uint8)
        images[:, 0, 0, 0] = list(sizes).index(split)
        images[:, 0, 0, 1] = np.arange(n) % 256
        images[:, 0, 0, 2] = np.arange(n) // 256
        return ImageSet(images, np.arange(n) % 4, f"{task}-{split}-{image_size}-{seed}", split)

    return types.SimpleNamespace(
        calls=calls, SYNTHETIC_TASKS=tasks, generate=generate, GENERATOR_VERSION="t", __file__=__file__
    )


@pytest.fixture
def fake_synthetic(monkeypatch):
    fake = _fake_synthetic()
    monkeypatch.setattr(sources, "_synthetic", lambda: fake)
    return fake


def _real_synthetic():
    from vptlab.data import synthetic

    if not hasattr(synthetic, "generate") or not hasattr(synthetic, "SYNTHETIC_TASKS"):
        pytest.skip("vptlab.data.synthetic is not written yet")
    return synthetic


# --- source strings ----------------------------------------------------------------------------------------


def test_parse_source_forms(tmp_path):
    assert parse_source("synthetic").kind == "synthetic"
    assert parse_source(f"vtab1k:{tmp_path}").path == tmp_path
    src = parse_source(f"folder:{tmp_path}?seed=2")
    assert (src.kind, src.path, src.options) == ("folder", tmp_path, "seed=2")
    assert str(src) == f"folder:{tmp_path}?seed=2"
    assert parse_source(str(tmp_path)).kind == "folder"


@pytest.mark.parametrize("text", ["", "nowhere/at/all", "imagenet"])
def test_unknown_source_lists_the_forms(text):
    with pytest.raises(
        UserError,
        match=r"expected 'synthetic', 'vtab1k:ROOT', 'fgvc:ROOT', 'fewshot:ROOT', 'folder:PATH' or an existing path",
    ):
        load_task(text, "x")


def test_missing_vtab_root():
    with pytest.raises(UserError, match=r"VTAB-1k root /no/such not found"):
        list_tasks("vtab1k:/no/such")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"stage": "eval"}, "stage must be one of tune, final"),
        ({"regime": "fewshot"}, "regime must be"),
        ({"interpolation": "cubic"}, "interpolation must be one of nearest, bilinear, bicubic, lanczos"),
        ({"image_size": 0}, "image_size must be a positive integer"),
    ],
)
def test_bad_arguments(vtab_root, kw, match):
    with pytest.raises(UserError, match=match):
        load_task(f"vtab1k:{vtab_root}", "kitti", **kw)


def test_with_normalization_updates_the_record(vtab_root, cache_dir):
    data = load_task(f"vtab1k:{vtab_root}", "kitti", image_size=8, cache_dir=cache_dir)
    other = with_normalization(data, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert other.mean == (0.5, 0.5, 0.5) and other.record["std"] == [0.5, 0.5, 0.5]
    assert data.record["mean"] == [0.485, 0.456, 0.406]
    with pytest.raises(UserError, match="3 positive stds"):
        with_normalization(data, (0.5,), (0.0,))


# --- synthetic (through its interface) ---------------------------------------------------------------------


def test_synthetic_standard_stages(fake_synthetic):
    tune = load_task("synthetic", "blobs", image_size=4)
    final = load_task("synthetic", "blobs", stage="final", image_size=4)
    assert (len(tune.train), len(tune.val), len(tune.test)) == (800, 200, 300)
    assert (len(final.train), final.val) == (1000, None)
    assert tune.record["source"] == "synthetic" and tune.record["interpolation"] is None


def test_synthetic_size_draws_from_train800val200_and_the_pool(fake_synthetic):
    data = load_task("synthetic", "blobs", regime="size:2000", image_size=4)
    assert (len(data.train), len(data.val)) == (2000, 500)
    assert set(data.train.images[:, 0, 0, 0].tolist()) == {0, 1, 4}  # train800val200, pool
    assert data.record["size"]["pool_size"] == 4000
    with pytest.raises(
        UserError,
        match=r"size:4000 on blobs: the pool \(train800val200 \+ pool\) holds 4000 .* largest possible N is 3200",
    ):
        load_task("synthetic", "blobs", regime="size:4000", image_size=4)


def test_synthetic_kshot(fake_synthetic):
    data = load_task("synthetic", "blobs", regime="kshot:1", split_seed=3, image_size=4)
    assert np.bincount(data.train.labels).tolist() == [1] * 4 and len(data.val) == 4


def test_synthetic_unknown_task(fake_synthetic):
    with pytest.raises(UserError, match=r"unknown synthetic task 'cifar'; known tasks: blobs"):
        load_task("synthetic", "cifar")
    assert [t.name for t in list_tasks("synthetic")] == ["blobs"]


def test_synthetic_splits_are_generated_once_then_cached(fake_synthetic, cache_dir):
    load_task("synthetic", "blobs", image_size=4, cache_dir=cache_dir)
    first = list(fake_synthetic.calls)
    again = load_task("synthetic", "blobs", image_size=4, cache_dir=cache_dir)
    assert first == ["train800", "val200", "test"] and fake_synthetic.calls == first
    assert isinstance(again.train.images, np.memmap)
    load_task("synthetic", "blobs", image_size=5, cache_dir=cache_dir)
    assert len(fake_synthetic.calls) == 6  # another size is another entry


def test_exported_folder_with_pool_gives_the_same_size_draws(monkeypatch, tmp_path, cache_dir):
    """The size pool of synthetic data and of its exported folder hold the same images in the same order."""
    from vptlab.data.vtab1k import write_task_folder

    small = {"train800": 40, "val200": 12, "train800val200": 52, "test": 8, "pool": 60}
    fake = _fake_synthetic(small)
    monkeypatch.setattr(sources, "_synthetic", lambda: fake)
    info = fake.SYNTHETIC_TASKS["blobs"]
    write_task_folder(tmp_path / "vtab", "blobs", lambda s: fake.generate("blobs", s, 6), info=info)
    kw = {"regime": "size:80", "split_seed": 7, "image_size": 6, "cache_dir": cache_dir}
    direct = load_task("synthetic", "blobs", **kw)
    exported = load_task(f"vtab1k:{tmp_path / 'vtab'}", "blobs", **kw)
    np.testing.assert_array_equal(direct.train.images, exported.train.images)
    np.testing.assert_array_equal(direct.val.labels, exported.val.labels)


def test_real_synthetic_source_loads_a_task():
    syn = _real_synthetic()
    name = next(iter(syn.SYNTHETIC_TASKS))
    data = load_task("synthetic", name, image_size=16)
    assert (len(data.train), len(data.val)) == (800, 200) and len(data.test) >= 1000
    assert data.train.images.shape[1:] == (16, 16, 3)


@pytest.mark.slow
def test_real_synthetic_source_loads_every_task():
    syn = _real_synthetic()
    for name in syn.SYNTHETIC_TASKS:
        data = load_task("synthetic", name, image_size=16)
        assert (len(data.train), len(data.val)) == (800, 200) and len(data.test) >= 1000
        assert data.train.images.shape[1:] == (16, 16, 3)
        assert data.train.labels.max() < data.info.num_classes


@pytest.mark.slow
def test_exported_synthetic_task_loads_back_identically(tmp_path, cache_dir):
    """export-synthetic writes a real VTAB-1k folder; the real-data path gives back the same pixels."""
    from vptlab.cli import main

    syn = _real_synthetic()
    task = next(iter(syn.SYNTHETIC_TASKS))
    assert main(["data", "export-synthetic", task, str(tmp_path / "vtab"), "--image-size", "16"]) == 0
    direct = load_task("synthetic", task, image_size=16)
    via_files = load_task(f"vtab1k:{tmp_path / 'vtab'}", task, image_size=16, cache_dir=cache_dir)
    np.testing.assert_array_equal(direct.train.images, via_files.train.images)
    np.testing.assert_array_equal(direct.test.labels, via_files.test.labels)


def test_write_task_folder_round_trip(fake_synthetic, tmp_path, cache_dir, monkeypatch):
    from vptlab.data.vtab1k import write_task_folder

    small = {"train800": 8, "val200": 4, "test": 4, "pool": 0}

    def get(split: str):
        if not small[split]:
            return None
        s = fake_synthetic.generate("blobs", split, image_size=6)
        return s.subset(np.arange(small[split]))

    folder = write_task_folder(tmp_path / "vtab", "kitti", get)
    assert sorted(p.name for p in folder.glob("*.txt")) == [
        "test.txt",
        "train800.txt",
        "train800val200.txt",
        "val200.txt",
    ]
    data = load_task(
        f"vtab1k:{Path(folder).parent}", "kitti", stage="final", image_size=6, cache_dir=cache_dir
    )
    assert len(data.train) == 12 and data.train.images[:, 0, 0, 0].tolist() == [0] * 8 + [1] * 4
