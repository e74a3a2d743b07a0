"""A user's own images: class sub-folders, list files, split files; the saved split repeats exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datahelpers import make_class_folders, write_image

from vptlab.data import list_tasks, load_task
from vptlab.data.folders import FolderOptions, parse_options, read_folder, write_split_files
from vptlab.errors import UserError

COUNTS = {"cat": 10, "dog": 10, "owl": 5}


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    return make_class_folders(tmp_path / "pets", COUNTS)


def _load(source, cache_dir, **kw):
    return load_task(source, kw.pop("task", "pets"), image_size=8, cache_dir=cache_dir, **kw)


def test_class_folders_make_a_stratified_split(pets, cache_dir):
    data = _load(f"folder:{pets}", cache_dir)
    assert data.info.name == "pets" and data.info.num_classes == 3
    assert (data.info.group, data.info.objective) == ("natural", "classification")
    # per class: test 20%, then val 20% of the rest (4:1)
    assert np.bincount(data.test.labels).tolist() == [2, 2, 1]
    assert np.bincount(data.val.labels).tolist() == [2, 2, 1]
    assert np.bincount(data.train.labels).tolist() == [6, 6, 3]
    assert data.record["classes"] == ["cat", "dog", "owl"]


def test_partition_does_not_follow_split_seed(pets, cache_dir):
    """The held-out test part is a fixed dataset; split_seed only moves the regime's draws."""
    a, b = (_load(f"folder:{pets}", cache_dir, split_seed=s) for s in (0, 1))
    assert a.record["manifests"] == b.record["manifests"]
    c = _load(f"folder:{pets}?seed=1", cache_dir)
    assert c.record["manifests"]["test"] != a.record["manifests"]["test"]


def test_saved_split_repeats_the_run_exactly(pets, cache_dir):
    first = _load(f"folder:{pets}", cache_dir, stage="final")
    saved = Path(first.record["split_files"])
    labels = json.loads((saved / "labels.json").read_text())
    assert labels["classes"] == ["cat", "dog", "owl"] and labels["split"]["seed"] == 0
    again = _load(f"folder:{saved}", cache_dir, stage="final")
    assert again.record["sizes"] == first.record["sizes"]
    np.testing.assert_array_equal(again.train.images, first.train.images)
    np.testing.assert_array_equal(again.test.labels, first.test.labels)


def test_split_files_folder(tmp_path, cache_dir):
    root = tmp_path / "own"
    for split, n in (("train", 6), ("val", 2), ("test", 4)):
        lines = [f"img/{split}{i}.png {i % 2}\n" for i in range(n)]
        for i in range(n):
            write_image(root / "img" / f"{split}{i}.png", i)
        (root / f"{split}.txt").write_text("".join(lines))
    data = _load(str(root), cache_dir, task="own")
    assert (len(data.train), len(data.val), len(data.test)) == (6, 2, 4)
    assert data.record["partition"]["generated"] is False


def test_split_files_need_all_three(tmp_path):
    root = tmp_path / "own"
    root.mkdir()
    (root / "train.txt").write_text("")
    with pytest.raises(UserError, match=r"has train.txt but not val.txt, test.txt"):
        read_folder(root)


def test_list_file_source(tmp_path, cache_dir):
    root = tmp_path / "listed"
    lines = []
    for i in range(12):
        write_image(root / "x" / f"{i}.jpg", i)
        lines.append(f"x/{i}.jpg {i % 3}\n")
    (root / "all.txt").write_text("".join(lines))
    data = _load(str(root / "all.txt"), cache_dir, task="listed")
    assert data.info.num_classes == 3 and len(data.train) + len(data.val) + len(data.test) == 12


def test_list_file_with_an_unused_label_is_an_empty_class(tmp_path):
    root = tmp_path / "listed"
    write_image(root / "a.png", 0)
    (root / "all.txt").write_text("a.png 0\na.png 2\n")
    with pytest.raises(UserError, match=r"all\.txt: class 1 has no images; labels must be 0\.\.2"):
        read_folder(root / "all.txt")


def test_list_file_bad_line_is_named(tmp_path):
    root = tmp_path / "listed"
    write_image(root / "a.png", 0)
    (root / "all.txt").write_text("a.png 0\na.png one\n")
    with pytest.raises(UserError, match=r"all\.txt:2: expected 'relative/path label'"):
        read_folder(root / "all.txt")


def test_empty_class_folder(pets):
    (pets / "yak").mkdir()
    (pets / "yak" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=r"yak: class folder holds no images \(\.jpg, .*every class needs"):
        read_folder(pets)


def test_no_class_folders(tmp_path):
    write_image(tmp_path / "flat" / "a.png", 0)
    with pytest.raises(UserError, match=r"flat: no class sub-folders"):
        read_folder(tmp_path / "flat")


def test_options_override_name_group_objective(pets):
    info = list_tasks(f"folder:{pets}?group=specialized&objective=structured&name=zoo")[0]
    assert (info.name, info.group, info.objective) == ("zoo", "specialized", "structured")


@pytest.mark.parametrize(
    "text, match",
    [
        ("colour=red", "key one of"),
        ("seed=x", "expected a int"),
        ("test_fraction=1.5", "between 0 and 1"),
        ("group=odd", "group must be"),
    ],
)
def test_bad_options(pets, text, match):
    with pytest.raises(UserError, match=match):
        list_tasks(f"folder:{pets}?{text}")


def test_labels_json_sets_task_metadata(pets, tmp_path):
    folder = read_folder(pets, FolderOptions(group="specialized"))
    out = write_split_files(tmp_path / "split", folder)
    info = read_folder(out).info
    assert (info.name, info.group) == ("pets", "specialized")


def test_wrong_task_name_for_a_folder(pets, cache_dir):
    with pytest.raises(UserError, match=r"holds one task, 'pets'; got task 'cifar'"):
        _load(f"folder:{pets}", cache_dir, task="cifar")


def test_kshot_and_size_on_a_folder(pets, cache_dir):
    one = _load(f"folder:{pets}", cache_dir, regime="kshot:1")
    assert np.bincount(one.train.labels).tolist() == [1, 1, 1] and len(one.val) == 3
    size = _load(f"folder:{pets}", cache_dir, regime="size:16")
    assert (len(size.train), len(size.val)) == (16, 4) and size.record["size"]["pool"] == "train+val"
    with pytest.raises(UserError, match=r"holds 20 images .*largest possible N is 16"):
        _load(f"folder:{pets}", cache_dir, regime="size:20")


def test_parse_options_round_trip():
    assert parse_options("seed=3&test_fraction=0.1") == FolderOptions(seed=3, test_fraction=0.1)
