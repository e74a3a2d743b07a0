"""What a synthetic task is made of, and the seeded, chunked machinery that turns labels into images.

A task draws every random quantity of a scene first (``sample``: labels in, a dict of per-image parameter arrays
out, independent of the image size), then draws the scenes (``render``: parameters in, float images out, at the
requested size).  Splitting the two keeps a scene the same at every image size and lets the renderer work in
sub-batches sized to memory while the draws stay fixed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vptlab.data.base import TaskInfo
from vptlab.data.synthetic import render as r

Params = dict[str, np.ndarray]
SampleFn = Callable[[np.random.Generator, np.ndarray, Any], Params]
RenderFn = Callable[[Params, int, np.random.Generator, Any], np.ndarray]

CHUNK = 500  # images drawn per random stream; part of the generator (changing it changes every image)
PIXEL_BUDGET = 1 << 20  # float pixels per render call (x the task's ``cost``): bounds memory at large sizes


def _no_context(seed: int) -> None:
    return None


@dataclass(frozen=True)
class SyntheticTask:
    """One procedural task: its :class:`TaskInfo`, what it mirrors, and how its images are drawn.

    ``context(seed)`` builds what all splits of one seed share (e.g. the IFS that define the classes);
    ``cost`` scales down render sub-batches for renderers that hold several maps per pixel.
    """

    info: TaskInfo
    shows: str
    mirrors: str
    quadrant: str
    sample: SampleFn
    render: RenderFn
    context: Callable[[int], Any] = _no_context
    cost: int = 1
    class_names: tuple[str, ...] = ()


def seed_sequence(seed: int, *keys: str | int) -> np.random.SeedSequence:
    """An independent random stream for ``seed`` and a path of names (task, split, ...)."""
    key = tuple(k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys)
    return np.random.SeedSequence(int(seed), spawn_key=key)


def _child(ss: np.random.SeedSequence, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + keys))


def balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    """``n`` labels, every class within one of ``n / num_classes``, in random order."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def render_images(
    task: SyntheticTask, labels: np.ndarray, ss: np.random.SeedSequence, size: int, ctx: Any
) -> np.ndarray:
    """Draw the images for ``labels``: uint8 ``(N, size, size, 3)``, deterministic by ``ss`` and ``size``."""
    out = np.empty((len(labels), size, size, 3), np.uint8)
    sub = int(max(1, min(CHUNK, PIXEL_BUDGET // (size * size * task.cost))))
    for c, start in enumerate(range(0, len(labels), CHUNK)):
        params = task.sample(_child(ss, c), labels[start : start + CHUNK], ctx)
        n = len(labels[start : start + CHUNK])
        for s0 in range(0, n, sub):
            part = {k: v[s0 : s0 + sub] for k, v in params.items()}
            img = task.render(part, size, _child(ss, c, s0, size), ctx)
            out[start + s0 : start + s0 + len(img)] = r.to_uint8(img)
    return out
