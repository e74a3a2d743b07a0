"""Split regimes: sizes, determinism, stratification, errors; on in-memory sets (any source) and VTAB folders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vptlab.data import ImageSet, TaskInfo, load_task
from vptlab.data.splits import (
    EXTRA,
    TRAIN,
    VAL,
    Pools,
    Regime,
    kshot_indices,
    largest_size,
    parse_regime,
    select,
    size_indices,
    stratified_partition,
)
from vptlab.errors import UserError

INFO = TaskInfo("toy", "natural", "classification", 5)


def _set(n: int, classes: int = 5, offset: int = 0) -> ImageSet:
    """Images whose first pixel holds their global index, so draws can be traced back."""
    images = np.zeros((n, 2, 2, 3), np.uint8)
    images[:, 0, 0, 0] = (np.arange(n) + offset) % 256
    labels = np.arange(n) % classes
    return ImageSet(images, labels, f"toy{offset}-{n}")


def _pools() -> Pools:
    """train 40 (8 per class), val 10 (2 per class), test 20, and 150 extra images: a pool of 200."""
    train, val, test, extra = _set(40), _set(10, offset=40), _set(20, offset=200), _set(150, offset=50)
    trainval_origin = np.repeat([TRAIN, VAL], [40, 10])
    return Pools(
        train=lambda: train,
        val=lambda: val,
        trainval=lambda: ImageSet.concat([train, val]),
        test=lambda: test,
        trainval_origin=lambda: trainval_origin,
        pool=lambda: ImageSet.concat([train, val, extra]),
        pool_origin=lambda: np.concatenate([trainval_origin, np.full(150, EXTRA)]),
        has_extra=True,
    )


def _ids(imageset: ImageSet) -> np.ndarray:
    return imageset.images[:, 0, 0, 0].astype(int)


# --- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, want",
    [("standard", Regime("standard")), ("kshot:1", Regime("kshot", 1)), ("size:400", Regime("size", 400))],
)
def test_parse_regime(text, want):
    assert parse_regime(text) == want and str(want) == text


@pytest.mark.parametrize(
    "text", ["", "kshot", "kshot:0", "kshot:x", "size:3", "size:-8", "random", "standard:1"]
)
def test_bad_regime_lists_the_forms(text):
    with pytest.raises(
        UserError,
        match=r"regime must be 'standard', 'kshot:K' \(K >= 1\), 'fewshot:K' \(K >= 1\) or 'size:N'",
    ):
        parse_regime(text)


def test_negative_seed_is_a_user_error():
    with pytest.raises(UserError, match="split seeds must be >= 0, got -1"):
        select("kshot:1", "tune", _pools(), INFO, -1)


def test_bad_stage():
    with pytest.raises(UserError, match="stage must be one of tune, final"):
        select("standard", "test", _pools(), INFO, 0)


# --- standard ----------------------------------------------------------------------------------------------


def test_standard_tune_and_final():
    tune = select("standard", "tune", _pools(), INFO, 0)
    final = select("standard", "final", _pools(), INFO, 0)
    assert (len(tune.train), len(tune.val), len(tune.test)) == (40, 10, 20)
    assert (len(final.train), final.val, len(final.test)) == (50, None, 20)


def test_split_seed_does_not_change_standard():
    a, b = (select("standard", "tune", _pools(), INFO, s) for s in (0, 1))
    assert a.train.manifest == b.train.manifest


# --- k-shot ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2])
def test_kshot_takes_k_per_class_from_each_pool(k):
    sel = select(f"kshot:{k}", "tune", _pools(), INFO, 3)
    assert np.bincount(sel.train.labels).tolist() == [k] * 5
    assert np.bincount(sel.val.labels).tolist() == [k] * 5
    assert _ids(sel.train).max() < 40 and set(_ids(sel.val)) <= set(range(40, 50))  # train800 / val200 only
    assert (
        len(sel.test) == 20 and sel.record["kshot"]["k"] == k and sel.record["kshot"]["fallback_draws"] == 0
    )


def test_kshot_final_is_the_union_of_both_draws():
    tune = select("kshot:2", "tune", _pools(), INFO, 3)
    final = select("kshot:2", "final", _pools(), INFO, 3)
    assert final.val is None
    assert sorted(_ids(final.train)) == sorted(np.concatenate([_ids(tune.train), _ids(tune.val)]))


def test_kshot_same_seed_same_draw_other_seed_other_draw():
    a, b, c = (select("kshot:1", "tune", _pools(), INFO, s) for s in (5, 5, 6))
    assert a.train.manifest == b.train.manifest and a.val.manifest == b.val.manifest
    assert a.train.manifest != c.train.manifest


def test_kshot_short_val_class_falls_back_to_other_non_test_images():
    """val200 holds 2 per class: a third val image per class comes from train800, never from test."""
    sel = select("kshot:3", "tune", _pools(), INFO, 0)
    assert np.bincount(sel.val.labels).tolist() == [3] * 5
    assert not set(_ids(sel.train)) & set(_ids(sel.val))
    assert sel.record["kshot"]["fallback_draws"] == 5 and sel.record["kshot"]["pool_size"] == 50


def test_kshot_uses_the_larger_pool_when_train_and_val_are_short():
    sel = select("kshot:15", "tune", _pools(), INFO, 0)  # 10 per class in train+val, 40 in the pool
    assert np.bincount(sel.train.labels).tolist() == [15] * 5 and sel.record["kshot"]["pool_size"] == 200
    assert set(_ids(sel.train)) >= set(range(40)) - set(_ids(sel.val))  # all of train800 used first
    assert max(_ids(sel.test)) >= 200 and not set(_ids(sel.train)) & set(range(200, 220))


def test_kshot_too_few_in_a_class_names_it():
    with pytest.raises(
        UserError,
        match=r"kshot:25 on toy: class 0 has 40 image\(s\) in the pool \(pool, 200 images\), "
        r"needs 50 \(K for train and K for val\)",
    ):
        select("kshot:25", "tune", _pools(), INFO, 0)


def test_kshot_indices_are_within_class_and_distinct():
    labels = np.repeat(np.arange(4), 6)
    origin = np.tile([TRAIN, TRAIN, TRAIN, VAL, VAL, VAL], 4)
    tr, va, fallback = kshot_indices(labels, origin, 3, 0, num_classes=4, pool="p", task="t")
    assert len(set(tr.tolist()) | set(va.tolist())) == 24 and fallback == 0
    assert (origin[tr] == TRAIN).all() and np.bincount(labels[va]).tolist() == [3] * 4


# --- size --------------------------------------------------------------------------------------------------


def test_size_draws_n_train_and_n_over_4_val_disjoint():
    sel = select("size:100", "tune", _pools(), INFO, 0)
    assert (len(sel.train), len(sel.val)) == (100, 25)
    assert not set(_ids(sel.train)) & set(_ids(sel.val))
    assert max(_ids(sel.train)) < 200  # never a test image
    assert sel.record["size"] == {"n": 100, "val_n": 25, "pool": "pool", "pool_size": 200}


def test_size_final_is_train_plus_val():
    final = select("size:100", "final", _pools(), INFO, 0)
    assert len(final.train) == 125 and final.val is None


def test_size_is_seeded():
    a, b, c = (select("size:40", "tune", _pools(), INFO, s) for s in (1, 1, 2))
    assert a.train.manifest == b.train.manifest and a.train.manifest != c.train.manifest


def test_size_pool_too_small_gives_the_largest_n():
    with pytest.raises(
        UserError,
        match=r"size:200 on toy: the pool \(pool\) holds 200 images but N \+ N/4 = 250 "
        r"are needed; the largest possible N is 160",
    ):
        select("size:200", "tune", _pools(), INFO, 0)


@given(st.integers(min_value=0, max_value=100_000))
def test_largest_size_is_tight(pool_size):
    n = largest_size(pool_size)
    assert n + n // 4 <= pool_size < (n + 1) + (n + 1) // 4


def test_size_indices_cover_distinct_members():
    tr, va = size_indices(50, 20, 0, pool="p", task="t")
    assert len(set(tr.tolist()) | set(va.tolist())) == 25


# --- stratified partition (own folders) --------------------------------------------------------------------


def test_stratified_partition_keeps_class_proportions():
    labels = np.repeat(np.arange(3), [50, 20, 10])
    train, val, test = stratified_partition(labels, 0)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(80))
    assert np.bincount(labels[test]).tolist() == [10, 4, 2]
    assert np.bincount(labels[val]).tolist() == [8, 3, 2]
    assert np.bincount(labels[train]).tolist() == [32, 13, 6]


def test_stratified_partition_is_seeded():
    labels = np.repeat(np.arange(3), 20)
    a, b, c = (stratified_partition(labels, s) for s in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[2], c[2])


@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=6), st.integers(0, 10))
def test_stratified_partition_every_class_trains(sizes, seed):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    train, val, test = stratified_partition(labels, seed)
    assert len(train) + len(val) + len(test) == len(labels)
    assert set(labels[train].tolist()) == set(range(len(sizes)))
    for c, n in enumerate(sizes):
        if n >= 3:
            assert c in labels[val] and c in labels[test]


# --- regimes on a VTAB-1k folder ---------------------------------------------------------------------------


def test_vtab_kshot_and_size(vtab_root, cache_dir):
    kw = {"image_size": 8, "cache_dir": cache_dir}
    one = load_task(f"vtab1k:{vtab_root}", "kitti", regime="kshot:1", **kw)
    assert (len(one.train), len(one.val), len(one.test)) == (4, 4, 8)
    size = load_task(f"vtab1k:{vtab_root}", "kitti", regime="size:32", split_seed=1, **kw)
    assert (len(size.train), len(size.val)) == (32, 8)
    assert size.record["size"]["pool_size"] == 44  # train800val200 (24) + pool.txt (20)
    again = load_task(f"vtab1k:{vtab_root}", "kitti", regime="size:32", split_seed=1, **kw)
    assert again.record["manifests"] == size.record["manifests"]


def test_vtab_size_too_large_names_task_pool_and_largest(vtab_root, cache_dir):
    with pytest.raises(
        UserError,
        match=r"size:400 on kitti: the pool \(train800val200 \+ pool\.txt\) holds 44 "
        r"images .*largest possible N is 35",
    ):
        load_task(f"vtab1k:{vtab_root}", "kitti", regime="size:400", image_size=8, cache_dir=cache_dir)


def test_vtab_kshot_falls_back_when_val200_lacks_a_class(vtab_root, cache_dir):
    val = vtab_root / "kitti" / "val200.txt"
    val.write_text("".join(line for line in val.read_text().splitlines(True) if not line.endswith(" 3\n")))
    both = vtab_root / "kitti" / "train800val200.txt"
    both.write_text(
        "".join(
            line
            for line in both.read_text().splitlines(True)
            if "val200/0003" not in line and "val200/0007" not in line
        )
    )
    data = load_task(f"vtab1k:{vtab_root}", "kitti", regime="kshot:1", image_size=8, cache_dir=cache_dir)
    assert np.bincount(data.val.labels).tolist() == [1, 1, 1, 1]
    assert data.record["kshot"]["fallback_draws"] == 1  # class 3's val image comes from train800


def test_vtab_kshot_origins_stay_aligned_when_images_are_skipped(vtab_root, cache_dir):
    (vtab_root / "kitti" / "images/train800/0000.png").write_bytes(b"bad")
    kw = {"regime": "kshot:2", "image_size": 8, "cache_dir": cache_dir, "skip_bad_images": True}
    data = load_task(f"vtab1k:{vtab_root}", "kitti", **kw)
    assert data.record["skipped_images"] == 1 and data.record["kshot"]["fallback_draws"] == 0
    val = load_task(f"vtab1k:{vtab_root}", "kitti", **{**kw, "regime": "standard"}).val
    assert {bytes(x) for x in data.val.images} <= {bytes(x) for x in val.images}  # val drawn from val200
