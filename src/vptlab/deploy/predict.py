"""``vptlab predict``: top-k classes of new images with a tuned run, one CSV row per image.

Paths are image files or folders (searched recursively for image files, in sorted order).  Images are decoded
in batches with the run's preprocessing; a file that cannot be decoded is named (its row says why, and the
caller is told) and skipped, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vptlab._progress import progress
from vptlab.data.images import BadImage, is_image_file
from vptlab.deploy.tuned import TunedModel
from vptlab.errors import UserError


@dataclass
class Prediction:
    path: str
    labels: list[str]
    probs: list[float]
    indices: list[int]
    error: str = ""

    def as_dict(self) -> dict:
        out = {"path": self.path, "labels": self.labels, "probs": self.probs, "indices": self.indices}
        return {**out, "error": self.error} if self.error else out


def collect_images(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths`` (files as given, folders searched recursively), each once."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
            if not inside:
                raise UserError(f"{p}: folder holds no image files (.jpg, .jpeg, .png, .bmp, .webp)")
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise UserError(f"{p}: no such image file or folder")
    seen: set[Path] = set()
    return [f for f in found if not (f.resolve() in seen or seen.add(f.resolve()))]


def predict_files(
    tuned: TunedModel,
    files: Sequence[Path],
    top_k: int = 5,
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> Iterator[Prediction]:
    """Predictions for ``files`` in order, batched; unreadable files come back with ``error`` set."""
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    k = min(top_k, len(tuned.classes))
    with progress(total=len(files), desc="predict", unit="img", enabled=show_progress) as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            images, good, bad = _read(tuned, chunk)
            if good:
                probs = torch.softmax(tuned.logits(np.stack(images)), dim=1)
                top = probs.topk(k, dim=1)
                results = dict(zip(good, zip(top.values.tolist(), top.indices.tolist())))
            for f in chunk:
                if f in bad:
                    yield Prediction(str(f), [], [], [], bad[f])
                else:
                    values, indices = results[f]
                    yield Prediction(str(f), [tuned.classes[i] for i in indices], values, indices)
            bar.update(len(chunk))


def _read(tuned: TunedModel, files: Sequence[Path]) -> tuple[list[np.ndarray], list[Path], dict[Path, str]]:
    images, good, bad = [], [], {}
    for f in files:
        try:
            images.append(tuned.preprocess.read(f))
            good.append(f)
        except BadImage as err:
            bad[f] = f"unreadable image: {err}"
        except OSError as err:
            bad[f] = f"cannot read: {err.strerror or err}"
    return images, good, bad


def csv_header(top_k: int) -> list[str]:
    cols = ["path"]
    for i in range(1, top_k + 1):
        cols += [f"label_{i}", f"prob_{i}", f"index_{i}"]
    return [*cols, "error"]


def csv_row(p: Prediction, top_k: int) -> list[str]:
    row = [p.path]
    for i in range(top_k):
        if i < len(p.labels):
            row += [p.labels[i], f"{p.probs[i]:.6f}", str(p.indices[i])]
        else:
            row += ["", "", ""]
    return [*row, p.error]


def predict_to_csv(
    tuned: TunedModel,
    paths: Sequence[str | os.PathLike],
    out: io.TextIOBase,
    *,
    top_k: int = 5,
    batch_size: int = 64,
    show_progress: bool | None = None,
) -> tuple[int, list[Prediction]]:
    """Write one CSV row per image to ``out``; returns how many were predicted and the unreadable ones."""
    files = collect_images(paths)
    k = min(top_k, len(tuned.classes))
    writer = csv.writer(out)
    writer.writerow(csv_header(k))
    done, skipped = 0, []
    for p in predict_files(tuned, files, top_k, batch_size, show_progress):
        writer.writerow(csv_row(p, k))
        if p.error:
            skipped.append(p)
        else:
            done += 1
    return done, skipped
