"""The TFDS -> VTAB-1k converter on an in-memory reader: task_adaptation's slices, labels, the release's files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vptlab.data import load_task
from vptlab.data.tfds_prepare import CHECKSUMS, TFDS_TASKS, prepare_vtab1k
from vptlab.errors import UserError


class FakeReader:
    """Examples made from their index: image value and label tell which example of which split was written."""

    def __init__(self, sizes: dict[str, int], make=None) -> None:
        self.sizes, self.make, self.asked = sizes, make, []

    def num_examples(self, split: str) -> int:
        return self.sizes[split]

    def examples(self, split: str, start: int, stop: int | None):
        self.asked.append((split, start, stop))
        stop = self.sizes[split] if stop is None else min(stop, self.sizes[split])
        for i in range(start, stop):
            ex = {"image": np.full((4, 4, 3), i % 251, np.uint8), "label": i % 100}
            yield self.make(i, ex) if self.make else ex


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_cifar_slices_files_and_checksums(tmp_path: Path) -> None:
    reader = FakeReader({"train": 1200, "test": 30})
    sums = prepare_vtab1k(tmp_path, lambda b: reader, ["cifar"])
    assert reader.asked[:2] == [("train", 0, 800), ("train", 1080, 1280)]  # 90% of 1200 = 1080
    folder = tmp_path / "cifar"
    assert len(_lines(folder / "train800.txt")) == 800 and len(_lines(folder / "test.txt")) == 30
    assert len(_lines(folder / "val200.txt")) == 120  # the fake train split ends at 1200
    assert _lines(folder / "train800.txt")[5] == "images/train800/000005.jpg 5"
    assert _lines(folder / "val200.txt")[0] == f"images/val200/000000.jpg {1080 % 100}"
    assert _lines(folder / "train800val200.txt") == [
        line.replace("train800/", "train800val200/") for line in _lines(folder / "train800.txt")
    ] + [f"images/train800val200/{800 + i:06d}.jpg {(1080 + i) % 100}" for i in range(120)]
    recorded = json.loads((tmp_path / CHECKSUMS).read_text())
    for split in ("train800", "val200", "train800val200", "test"):
        digest = hashlib.sha256((folder / f"{split}.txt").read_bytes()).hexdigest()
        assert recorded["cifar"][f"{split}.txt"] == digest == sums["cifar"][f"{split}.txt"]
    # the folder is a VTAB-1k task vptlab loads
    data = load_task(f"vtab1k:{tmp_path}", "cifar", image_size=8, cache_dir=tmp_path / "c")
    assert len(data.train) == 800 and len(data.test) == 30


@pytest.mark.parametrize(
    "task,sizes,expected",
    [
        ("eurosat", {"train": 2000}, [("train", 0, 800), ("train", 1200, 1400), ("train", 1600, None)]),
        ("dsprites_loc", {"train": 2000}, [("train", 0, 800), ("train", 1600, 1800), ("train", 1800, None)]),
        ("smallnorb_azi", {"train": 900, "test": 500}, [("train", 0, 800), ("test", 0, 200), ("test", 250, None)]),
        ("dtd", {"train": 900, "validation": 300, "test": 20}, [("train", 0, 800), ("validation", 0, 200), ("test", 0, None)]),
        ("clevr_count", {"train": 1000, "validation": 20}, [("train", 0, 800), ("train", 900, 1100), ("validation", 0, None)]),
    ],
)  # fmt: skip
def test_slices_follow_task_adaptation(task: str, sizes: dict, expected: list) -> None:
    assert [
        s for k in ("train800", "val200", "test") for s in TFDS_TASKS[task].slices(FakeReader(sizes))[k]
    ] == expected


def test_structured_labels_and_grey_images() -> None:
    clevr = {"objects": {"size": [0] * 5, "pixel_coords": np.array([[0, 0, 9.2], [0, 0, 12.0]])}}
    assert TFDS_TASKS["clevr_count"].label(clevr) == 2 and TFDS_TASKS["clevr_dist"].label(clevr) == 3
    kitti = {"objects": {"type": np.array([0, 5]), "location": np.array([[0, 0, 15.0], [0, 0, 2.0]])}}
    assert TFDS_TASKS["kitti"].label(kitti) == 1  # the pedestrian (type 5) at 2 m is no vehicle
    assert (
        TFDS_TASKS["kitti"].label({"objects": {"type": np.array([], int), "location": np.zeros((0, 3))}}) == 3
    )
    assert TFDS_TASKS["dsprites_loc"].label({"label_x_position": 31}) == 15
    assert TFDS_TASKS["dsprites_ori"].label({"label_orientation": 39}) == 15  # 40 -> 16 bins of 2.5
    rgb = TFDS_TASKS["dsprites_ori"].image(np.ones((4, 4, 1), np.uint8))
    assert rgb.shape == (4, 4, 3) and rgb.max() == 255


def test_unknown_task_and_missing_extra_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown VTAB-1k task 'cifar10'"):
        prepare_vtab1k(tmp_path, lambda b: FakeReader({}), ["cifar10"])
    env = {**os.environ, "VPTLAB_NO_PROGRESS": "1"}
    (tmp_path / "tfds").mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "vptlab", "data", "prepare", f"vtab1k:{tmp_path / 'out'}", "--from-tfds",
         str(tmp_path / "tfds"), "--task", "dtd"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        assert res.returncode == 2 and "pip install 'vptlab[tfds]'" in res.stderr
    else:  # with tfds installed: the empty data dir holds no dtd
        assert res.returncode == 2 and "not found" in res.stderr
