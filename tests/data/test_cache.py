"""The decoded-image cache: reuse without decoding, invalidation, atomicity, where it lives, generic sets."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from datahelpers import TASK, make_class_folders, write_image

from vptlab.data import ImageSet, cache, images, load_task
from vptlab.data.folders import scan_class_folders
from vptlab.errors import UserError


@pytest.fixture
def decode_calls(monkeypatch):
    """Count calls of the image decoder (from any thread)."""
    calls = {"n": 0}
    lock = threading.Lock()
    real = images.decode_image

    def counting(*args, **kwargs):
        with lock:
            calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(images, "decode_image", counting)
    return calls


def _list(tmp_path: Path):
    root = make_class_folders(tmp_path / "imgs", {"a": 3, "b": 3})
    return scan_class_folders(root)[0]


def test_second_load_reads_the_cache_without_decoding(vtab_root, cache_dir, decode_calls):
    first = load_task(f"vtab1k:{vtab_root}", TASK, image_size=8, cache_dir=cache_dir)
    assert decode_calls["n"] == 32  # train800 + val200 + test
    second = load_task(f"vtab1k:{vtab_root}", TASK, image_size=8, cache_dir=cache_dir)
    assert decode_calls["n"] == 32
    assert isinstance(second.train.images, np.memmap)
    np.testing.assert_array_equal(first.train.images, second.train.images)


def test_a_changed_file_invalidates_the_entry(tmp_path, cache_dir, decode_calls):
    lst = _list(tmp_path)
    before = cache.load_image_list(lst, 8, cache_dir=cache_dir).imageset
    before = np.array(before.images)
    write_image(Path(lst.files[2]), seed=99)
    st = os.stat(lst.files[2])
    os.utime(lst.files[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = cache.load_image_list(lst, 8, cache_dir=cache_dir).imageset
    assert decode_calls["n"] == 12
    assert not np.array_equal(before[2], after.images[2])
    np.testing.assert_array_equal(before[0], after.images[0])


def test_size_and_interpolation_are_part_of_the_key(tmp_path, cache_dir, decode_calls):
    lst = _list(tmp_path)
    a = cache.load_image_list(lst, 8, "bilinear", cache_dir=cache_dir).imageset
    b = cache.load_image_list(lst, 8, "nearest", cache_dir=cache_dir).imageset
    c = cache.load_image_list(lst, 4, "bilinear", cache_dir=cache_dir).imageset
    assert decode_calls["n"] == 18 and c.images.shape[1:] == (4, 4, 3)
    assert not np.array_equal(a.images, b.images)
    header = next((cache_dir / "images").glob("*.json")).read_text()
    assert '"interpolation"' in header and '"image_size"' in header


def test_a_partial_entry_is_never_used(tmp_path, cache_dir, decode_calls):
    lst = _list(tmp_path)
    cache.load_image_list(lst, 8, cache_dir=cache_dir)
    header = next((cache_dir / "images").glob("*.json"))
    header.unlink()  # as if killed after writing the arrays but before the header
    images_file = next((cache_dir / "images").glob("*.images.npy"))
    images_file.write_bytes(images_file.read_bytes()[:200])  # and truncated
    again = cache.load_image_list(lst, 8, cache_dir=cache_dir).imageset
    assert decode_calls["n"] == 12 and len(again) == 6


def test_no_temporary_files_are_left_behind(tmp_path, cache_dir):
    cache.load_image_list(_list(tmp_path), 8, cache_dir=cache_dir)
    assert not [p for p in (cache_dir / "images").iterdir() if p.name.startswith(".")]


def test_a_failed_build_leaves_no_entry(tmp_path, cache_dir):
    lst = _list(tmp_path)
    Path(lst.files[4]).write_bytes(b"broken")
    with pytest.raises(UserError, match="cannot decode image"):
        cache.load_image_list(lst, 8, cache_dir=cache_dir)
    assert [p.suffix for p in (cache_dir / "images").iterdir()] == [".lock"]


def test_cache_dir_argument_then_env_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VPTLAB_CACHE", str(tmp_path / "env"))
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert cache.cache_root() == tmp_path / "env"
    monkeypatch.delenv("VPTLAB_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "vptlab"


def test_the_env_cache_is_used_by_default(vtab_root, monkeypatch, tmp_path):
    monkeypatch.setenv("VPTLAB_CACHE", str(tmp_path / "envcache"))
    load_task(f"vtab1k:{vtab_root}", TASK, image_size=8)
    assert len(list((tmp_path / "envcache" / "images").glob("*.json"))) == 3


def test_decoding_in_threads_keeps_the_order(tmp_path):
    lst = _list(tmp_path)
    serial = [r for _, r in cache.iter_decoded(lst.files, 8, "bilinear", workers=1)]
    threaded = list(cache.iter_decoded(lst.files, 8, "bilinear", workers=3))
    assert [i for i, _ in threaded] == list(range(6))
    assert all(np.array_equal(a, b) for a, (_, b) in zip(serial, threaded))


def test_cached_imageset_builds_once(cache_dir):
    calls = []

    def build() -> ImageSet:
        calls.append(1)
        return ImageSet(np.full((5, 4, 4, 3), 7, np.uint8), np.arange(5), "m", "five")

    key = {"generator": "test", "version": 1, "size": 4}
    a = cached_a = cache.cached_imageset(key, build, cache_dir=cache_dir)
    b = cache.cached_imageset(key, build, cache_dir=cache_dir)
    assert len(calls) == 1 and isinstance(b.images, np.memmap)
    assert (a.manifest, a.description, b.labels.tolist()) == ("m", "five", [0, 1, 2, 3, 4])
    assert cached_a.images.sum() == 5 * 4 * 4 * 3 * 7
    cache.cached_imageset({**key, "size": 5}, build, cache_dir=cache_dir)
    assert len(calls) == 2


def test_take_caches_a_large_subset_of_a_memmap(cache_dir):
    parent = cache.cached_imageset(
        {"t": "take"},
        lambda: ImageSet(np.arange(40 * 12, dtype=np.uint8).reshape(40, 2, 2, 3), np.arange(40) % 3, "p"),
        cache_dir=cache_dir,
    )
    idx = np.array([30, 2, 17, 5, 39])
    big = cache.take(parent, idx, "sub", cache_dir=cache_dir, max_in_memory=0)
    small = parent.subset(idx, "sub")
    assert isinstance(big.images, np.memmap)
    np.testing.assert_array_equal(big.images, small.images)
    assert big.manifest == small.manifest and big.labels.tolist() == small.labels.tolist()


def test_cache_usage_and_clear(tmp_path, cache_dir):
    cache.load_image_list(_list(tmp_path), 8, cache_dir=cache_dir)
    usage = cache.cache_usage(cache_dir)
    assert usage["images"]["entries"] == 1 and usage["images"]["bytes"] > 6 * 8 * 8 * 3
    assert cache.clear_cache(cache_dir) == sum(u["bytes"] for u in usage.values())
    assert cache.cache_usage(cache_dir)["images"] == {"entries": 0, "bytes": 0}


@pytest.mark.slow
def test_a_large_split_streams_through_bounded_memory(tmp_path, cache_dir):
    """3,000 images at 64px decode into a memmap; the decoded set is never held in Python memory at once."""
    import tracemalloc

    root = tmp_path / "many"
    files = [write_image(root / "c0" / f"{i:05d}.png", i, size=(16, 16)) for i in range(1500)]
    files += [write_image(root / "c1" / f"{i:05d}.png", i + 5000, size=(16, 16)) for i in range(1500)]
    lst = scan_class_folders(root)[0]
    tracemalloc.start()
    data = cache.load_image_list(lst, 64, cache_dir=cache_dir, workers=2).imageset
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.images.shape == (3000, 64, 64, 3)
    assert peak < data.images.nbytes / 4  # 36 MB of pixels, far less traced at any moment


def test_concurrent_builders_build_an_entry_once(cache_dir):
    """Runs started together wait for the first build instead of decoding the same split again."""
    import time

    calls = []

    def build() -> ImageSet:
        calls.append(1)
        time.sleep(0.2)
        return ImageSet(np.zeros((3, 2, 2, 3), np.uint8), np.arange(3), "m")

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(cache.cached_imageset({"k": 1}, build, cache_dir=cache_dir))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 3
