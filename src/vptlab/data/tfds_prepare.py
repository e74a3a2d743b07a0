"""Build the VTAB-1k image-folder release from a local TFDS data directory (``vptlab data prepare --from-tfds``).

The common VTAB-1k release (NOAH's ``get_vtab1k.py``, used by VPT's successors) is written by running
google-research/task_adaptation's data classes and saving each example of the ``train800``, ``val200``,
``train800val200`` and ``test`` splits as ``images/<split>/<i:06d>.jpg`` with a line ``images/<split>/<i:06d>.jpg
label`` in ``<task>/<split>.txt``.  This module reproduces it without TensorFlow in the loop of vptlab: each task
below names its TFDS builder, the split slices task_adaptation defines for it, and the label it derives (the
structured tasks bin object counts, distances or positions), and :func:`prepare_vtab1k` writes the folder.

TFDS is reached through a small reader interface (:class:`Reader`): the real one (:class:`TfdsReader`, needs the
``tfds`` extra: ``pip install 'vptlab[tfds]'``) opens ``tfds.builder(name, data_dir=DIR)`` and reads examples in
file order (no shuffling); tests feed in-memory examples.  Nothing is downloaded: the data directory must hold
the prepared TFDS datasets.  The sha256 of every split file written goes into ``<root>/vtab1k-checksums.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from vptlab._io import atomic_write_text
from vptlab._progress import progress
from vptlab.errors import UserError

SPLITS = ("train800", "val200", "train800val200", "test")
CHECKSUMS = "vtab1k-checksums.json"

# A slice: (TFDS split, start, stop); stop None = to the end.
Slice = tuple[str, int, int | None]


class Reader(Protocol):
    """What the converter needs from a TFDS dataset: split sizes and examples of a slice, in file order."""

    def num_examples(self, split: str) -> int: ...

    def examples(self, split: str, start: int, stop: int | None) -> Iterator[dict[str, Any]]: ...


@dataclass(frozen=True)
class TfdsTask:
    """One VTAB-1k task as task_adaptation builds it from TFDS."""

    name: str
    builder: str
    slices: Callable[[Reader], dict[str, list[Slice]]]
    label: Callable[[dict[str, Any]], int]
    image: Callable[[np.ndarray], np.ndarray] = lambda img: img


# --- the split slices of task_adaptation's data classes -----------------------------------------------------


def _from_train(percent: int, test: str = "test") -> Callable[[Reader], dict[str, list[Slice]]]:
    """val200 from the start of the last (100 - percent)% of train (cifar, caltech101, pets, svhn, clevr)."""

    def slices(r: Reader) -> dict[str, list[Slice]]:
        n = percent * r.num_examples("train") // 100
        return _common([("train", 0, 800)], [("train", n, n + 200)], [(test, 0, None)])

    return slices


def _official_val(r: Reader) -> dict[str, list[Slice]]:
    """train[:800], validation[:200], test (dtd, flowers102, sun397, pcam, dmlab, kitti, retinopathy)."""
    return _common([("train", 0, 800)], [("validation", 0, 200)], [("test", 0, None)])


def _three_way(train_percent: int, val_percent: int) -> Callable[[Reader], dict[str, list[Slice]]]:
    """One TFDS split cut into train / val / test by percent (eurosat, resisc45 60/20/20; dsprites 80/10/10)."""

    def slices(r: Reader) -> dict[str, list[Slice]]:
        n = r.num_examples("train")
        tr, va = train_percent * n // 100, val_percent * n // 100
        return _common([("train", 0, 800)], [("train", tr, tr + 200)], [("train", tr + va, None)])

    return slices


def _smallnorb(r: Reader) -> dict[str, list[Slice]]:
    """val200 = test[:200]; test = test[50%:] (TFDS percent slices round to the closest example)."""
    half = int(round(50 * r.num_examples("test") / 100))
    return _common([("train", 0, 800)], [("test", 0, 200)], [("test", half, None)])


def _common(train800: list[Slice], val200: list[Slice], test: list[Slice]) -> dict[str, list[Slice]]:
    return {"train800": train800, "val200": val200, "train800val200": train800 + val200, "test": test}


# --- labels -----------------------------------------------------------------------------------------------


def _plain(ex: dict) -> int:
    return int(ex["label"])


def _bin(value: float, thresholds: list[float]) -> int:
    """task_adaptation's ``reduce_max(where(thrs - value < 0))``: the last threshold below ``value``."""
    return int(np.flatnonzero(np.asarray(thresholds) - value < 0).max())


def _clevr_count(ex: dict) -> int:
    return len(ex["objects"]["size"]) - 3


def _clevr_dist(ex: dict) -> int:
    return _bin(
        float(np.min(np.asarray(ex["objects"]["pixel_coords"])[:, 2])), [0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0]
    )


def _kitti_vehicle(ex: dict) -> int:
    types = np.asarray(ex["objects"]["type"])
    z = np.asarray(ex["objects"]["location"]).reshape(-1, 3)[types < 3, 2]
    return _bin(float(np.min(np.concatenate([z, [1000.0]]))), [-100.0, 8.0, 20.0, 999.0])


def _dsprites(attribute: str, original: int) -> Callable[[dict], int]:
    factor = original / 16.0
    return lambda ex: int(np.floor_divide(float(ex[attribute]), factor))


def _grey_to_rgb(scale: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    def convert(img: np.ndarray) -> np.ndarray:
        img = np.asarray(img)
        if img.ndim == 2:
            img = img[..., None]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        return (img.astype(np.int64) * scale).clip(0, 255).astype(np.uint8)

    return convert


TFDS_TASKS: dict[str, TfdsTask] = {
    t.name: t
    for t in (
        TfdsTask("cifar", "cifar100:3.*.*", _from_train(90), _plain),
        TfdsTask("caltech101", "caltech101:3.*.*", _from_train(90), _plain),
        TfdsTask("dtd", "dtd:3.*.*", _official_val, _plain),
        TfdsTask("oxford_flowers102", "oxford_flowers102:2.*.*", _official_val, _plain),
        TfdsTask("oxford_iiit_pet", "oxford_iiit_pet:3.*.*", _from_train(80), _plain),
        TfdsTask("svhn", "svhn_cropped:3.*.*", _from_train(90), _plain),
        TfdsTask("sun397", "sun397/tfds:4.*.*", _official_val, _plain),
        TfdsTask("patch_camelyon", "patch_camelyon:2.*.*", _official_val, _plain),
        TfdsTask("eurosat", "eurosat/rgb:2.*.*", _three_way(60, 20), _plain),
        TfdsTask("resisc45", "resisc45:3.*.*", _three_way(60, 20), _plain),
        TfdsTask(
            "diabetic_retinopathy", "diabetic_retinopathy_detection/btgraham-300:3.*.*", _official_val, _plain
        ),
        TfdsTask("clevr_count", "clevr:3.*.*", _from_train(90, test="validation"), _clevr_count),
        TfdsTask("clevr_dist", "clevr:3.*.*", _from_train(90, test="validation"), _clevr_dist),
        TfdsTask("dmlab", "dmlab:2.0.1", _official_val, _plain),
        TfdsTask("kitti", "kitti:3.1.0", _official_val, _kitti_vehicle),
        TfdsTask(
            "dsprites_loc",
            "dsprites:2.*.*",
            _three_way(80, 10),
            _dsprites("label_x_position", 32),
            _grey_to_rgb(255),
        ),
        TfdsTask(
            "dsprites_ori",
            "dsprites:2.*.*",
            _three_way(80, 10),
            _dsprites("label_orientation", 40),
            _grey_to_rgb(255),
        ),
        TfdsTask(
            "smallnorb_azi",
            "smallnorb:2.*.*",
            _smallnorb,
            lambda ex: int(ex["label_azimuth"]),
            _grey_to_rgb(),
        ),
        TfdsTask(
            "smallnorb_ele",
            "smallnorb:2.*.*",
            _smallnorb,
            lambda ex: int(ex["label_elevation"]),
            _grey_to_rgb(),
        ),
    )
}


# --- the real reader ----------------------------------------------------------------------------------------


class TfdsReader:
    """A prepared TFDS dataset in ``data_dir``, read in file order (needs ``tensorflow-datasets``)."""

    def __init__(self, builder: str, data_dir: str | os.PathLike) -> None:
        try:
            import tensorflow_datasets as tfds
        except ImportError:
            raise UserError(
                "building VTAB-1k from TFDS needs tensorflow-datasets: pip install 'vptlab[tfds]'"
            ) from None
        self.tfds = tfds
        try:
            self.builder = tfds.builder(builder, data_dir=str(data_dir))
        except Exception as err:  # TFDS raises its own types for a missing or unprepared dataset
            raise UserError(f"TFDS dataset {builder} not found in {data_dir}: {err}") from None

    def num_examples(self, split: str) -> int:
        return int(self.builder.info.splits[split].num_examples)

    def examples(self, split: str, start: int, stop: int | None) -> Iterator[dict[str, Any]]:
        spec = f"{split}[{start}:{'' if stop is None else stop}]"
        try:
            source = self.builder.as_data_source(split=spec)
            yield from (source[i] for i in range(len(source)))
        except (AttributeError, NotImplementedError, ValueError, TypeError):  # no array_record files
            ds = self.builder.as_dataset(split=spec, shuffle_files=False)
            yield from self.tfds.as_numpy(ds)


# --- writing the release ------------------------------------------------------------------------------------


def prepare_vtab1k(
    root: str | os.PathLike,
    reader_for: Callable[[str], Reader],
    tasks: list[str] | None = None,
    *,
    ext: str = "jpg",
) -> dict[str, dict[str, str]]:
    """Write ``root/<task>/images/<split>/<i:06d>.<ext>`` and ``root/<task>/<split>.txt`` for each task; returns
    (and writes to ``root/vtab1k-checksums.json``) the sha256 of every split file.  ``reader_for(builder)`` opens a
    TFDS builder (``TfdsReader`` with a data directory, or a test's in-memory reader)."""
    names = tasks or list(TFDS_TASKS)
    unknown = [t for t in names if t not in TFDS_TASKS]
    if unknown:
        raise UserError(f"unknown VTAB-1k task {unknown[0]!r}; known tasks: {', '.join(TFDS_TASKS)}")
    root = Path(root)
    path = root / CHECKSUMS
    checksums = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        task = TFDS_TASKS[name]
        checksums[name] = _write_task(root / name, task, reader_for(task.builder), ext)
        atomic_write_text(path, json.dumps(checksums, indent=2, sort_keys=True) + "\n")
    return checksums


def _write_task(folder: Path, task: TfdsTask, reader: Reader, ext: str) -> dict[str, str]:
    slices = task.slices(reader)
    sums = {}
    for split in SPLITS:
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        lines = []
        examples = (ex for s, a, b in slices[split] for ex in reader.examples(s, a, b))
        for i, ex in enumerate(progress(examples, desc=f"{task.name} {split}", unit="img")):
            rel = f"images/{split}/{i:06d}.{ext}"
            Image.fromarray(task.image(np.asarray(ex["image"]))).save(folder / rel)
            lines.append(f"{rel} {task.label(ex)}\n")
        text = "".join(lines)
        atomic_write_text(folder / f"{split}.txt", text)
        sums[f"{split}.txt"] = hashlib.sha256(text.encode()).hexdigest()
    record = {"builder": task.builder, "slices": {k: [list(s) for s in v] for k, v in slices.items()}}
    atomic_write_text(folder / "prepare.json", json.dumps(record, indent=2) + "\n")
    return sums
