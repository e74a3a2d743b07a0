"""Images of different sizes in the decoded-image cache, for transforms that crop at random (FGVC).

The reference's train transform crops a random C x C window out of an image whose *shorter* side is R, so the
cache must keep each resized image whole: a 256 x 341 image has 118 possible left offsets.  Padding to the
largest image would waste most of the space (FGVC holds panoramas); storing a fixed centre square would change
the crops.  So a ragged entry is one flat uint8 buffer of every image's pixels, row after row, plus their shapes::

    <key>.images.npy   uint8 (total_pixels * 3,)   memory-mapped
    <key>.shapes.npy   int64 (N, 2)                height, width of each image
    <key>.labels.npy   int64 (N,)
    <key>.json         header (written last: its presence marks the entry complete)

:class:`RaggedImages` presents such an entry to the rest of vptlab as a ``(N, C, C, 3)`` uint8 array of centre
crops (the eval view: FID, attention maps, features and evaluation see the reference's eval transform of the
image); indexing with an index array gives another :class:`RaggedImages` (so subsets, k-shot draws and
size draws keep the whole images), and :meth:`RaggedImages.augmented` gives a batch of the train transform.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vptlab._io import atomic_path, entry_lock
from vptlab._progress import progress
from vptlab.data import augment, cache
from vptlab.data.base import ImageSet, manifest_of
from vptlab.data.images import ImageList, check_interpolation
from vptlab.errors import UserError

RAGGED_KIND = "ragged"


class RaggedImages:
    """Whole resized images (one flat buffer) seen as ``(N, crop, crop, 3)`` centre crops."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(
        self, pixels: np.ndarray, shapes: np.ndarray, crop: int, index: np.ndarray | None = None
    ) -> None:
        self.pixels, self.shapes, self.crop = pixels, np.asarray(shapes, np.int64), int(crop)
        sizes = self.shapes[:, 0] * self.shapes[:, 1] * 3
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.index = np.arange(len(self.shapes)) if index is None else np.asarray(index, np.int64)

    def _view(self, index: np.ndarray) -> RaggedImages:
        out = object.__new__(RaggedImages)
        out.pixels, out.shapes, out.crop, out.offsets, out.index = (
            self.pixels,
            self.shapes,
            self.crop,
            self.offsets,
            index,
        )
        return out

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.index), self.crop, self.crop, 3)

    def __len__(self) -> int:
        return len(self.index)

    def image(self, i: int) -> np.ndarray:
        """The ``i``-th image whole, as resized: uint8 ``(h, w, 3)`` (a view of the buffer)."""
        j = self.index[i]
        h, w = self.shapes[j]
        return self.pixels[self.offsets[j] : self.offsets[j] + h * w * 3].reshape(h, w, 3)

    def image_shapes(self) -> np.ndarray:
        """``(N, 2)`` heights and widths of the whole images, in this view's order."""
        return self.shapes[self.index]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return np.ascontiguousarray(augment.center_crop(self.image(int(key)), self.crop))
        return self._view(self.index[key])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, np.uint8)
        for i in range(len(self)):
            out[i] = augment.center_crop(self.image(i), self.crop)
        return out if dtype is None else out.astype(dtype)

    def augmented(self, rows: np.ndarray, params: augment.CropFlips) -> np.ndarray:
        """The train transform of images ``rows``: each its random crop (and flip) from ``params``, whose rows
        are this view's images (as :func:`augment.draw_crop_flips` of :meth:`image_shapes` gives)."""
        out = np.empty((len(rows), self.crop, self.crop, 3), np.uint8)
        for k, i in enumerate(np.asarray(rows).tolist()):
            out[k] = augment.crop_flip(
                self.image(i), self.crop, int(params.tops[i]), int(params.lefts[i]), bool(params.flips[i])
            )
        return out


def crops_at_random(source: str) -> bool:
    """Whether a data source's train sets are cropped at random each epoch (FGVC): no features computed once."""
    return str(source).startswith("fgvc:")


def is_ragged(imageset: ImageSet | Any) -> bool:
    """Whether a set (or a loop's input) holds whole images for the random-crop train transform."""
    return isinstance(getattr(imageset, "images", None), RaggedImages)


def random_crop_reader(data: Any, seed: int, epoch: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The per-batch train transform of a loop's input: random crop + flip for a set of whole images (FGVC),
    ``None`` for anything else (images used as cached)."""
    if not is_ragged(data):
        return None
    images = data.images
    params = augment.draw_crop_flips(images.image_shapes(), images.crop, seed, epoch)
    return lambda rows: images.augmented(rows, params)


def augmented_batch(images: RaggedImages, rows: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The reference's train transform (random crop + flip) of ``images[rows]``, drawn from ``(seed, epoch)``."""
    return images.augmented(rows, augment.draw_crop_flips(images.image_shapes(), images.crop, seed, epoch))


# --- cache entries -----------------------------------------------------------------------------------------


def load_ragged(
    lst: ImageList,
    crop: int,
    interpolation: str = "bilinear",
    *,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
) -> cache.Decoded:
    """The images of ``lst`` resized to shorter side ``crop * 8 // 7`` and cached whole, as a set of
    :class:`RaggedImages` with centre crop ``crop``."""
    check_interpolation(interpolation)
    shorter = augment.resize_dim(crop)
    key = cache.file_list_key(lst, shorter, f"{interpolation}|{augment.TRANSFORM_NAME}|shorter-side")
    stem = cache.cache_root(cache_dir) / RAGGED_KIND / key
    header = _read_or_build(stem, lambda: _build(stem, lst, shorter, interpolation, skip_bad_images))
    skipped = [f"{s['origin']}: {s['reason']}" for s in header.get("skipped", [])]
    if skipped and not skip_bad_images:
        raise UserError(f"{skipped[0]}; {cache.SKIP_HINT}")
    pixels = np.load(f"{stem}.images.npy", mmap_mode="r", allow_pickle=False)
    shapes = np.load(f"{stem}.shapes.npy", allow_pickle=False)
    labels = np.load(f"{stem}.labels.npy", allow_pickle=False)
    images = RaggedImages(pixels, shapes, crop)
    kept = np.setdiff1d(np.arange(len(lst)), [s["index"] for s in header.get("skipped", [])])
    imageset = ImageSet(images, labels, header["manifest"], lst.description)
    return cache.Decoded(imageset, skipped, kept)


def _read_or_build(stem: Path, build: Any) -> dict:
    header = _read_header(stem)
    if header is not None:
        return header
    with entry_lock(stem):
        header = _read_header(stem)
        if header is None:
            build()
            header = _read_header(stem)
    if header is None:  # pragma: no cover - only if the disk lies
        raise UserError(f"{stem}: cache entry unreadable right after writing it; is the disk full?")
    return header


def _read_header(stem: Path) -> dict | None:
    import json

    try:
        header = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
        shapes = np.load(f"{stem}.shapes.npy", allow_pickle=False)
        pixels = np.load(f"{stem}.images.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if header.get("version") != cache.CACHE_VERSION or shapes.ndim != 2 or len(shapes) != header.get("count"):
        return None
    if pixels.dtype != np.uint8 or pixels.size != int((shapes[:, 0] * shapes[:, 1]).sum()) * 3:
        return None
    return header


def _build(stem: Path, lst: ImageList, shorter: int, interpolation: str, skip_bad: bool) -> None:
    """Decode ``lst`` at shorter side ``shorter``: image shapes first (headers only), then pixels streamed
    into one memory-mapped buffer at their offsets."""
    dims, problems = _header_sizes(lst, shorter)
    kept: list[int] = []
    skipped: list[dict[str, Any]] = [
        {"index": i, "origin": lst.origins[i], "reason": why} for i, why in problems.items()
    ]
    if skipped and not skip_bad:
        raise UserError(f"{skipped[0]['origin']}: {skipped[0]['reason']}; {cache.SKIP_HINT}")
    todo = [i for i in range(len(lst)) if i not in problems]
    total = sum(dims[i][0] * dims[i][1] * 3 for i in todo)
    shapes: list[tuple[int, int]] = []
    pos = 0
    images_path = Path(f"{stem}.images.npy")
    images_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(images_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(max(total, 1),))
        files = tuple(lst.files[i] for i in todo)
        bar = progress(total=len(files), desc=f"decode {lst.description or 'images'} @{shorter}+", unit="img")
        with bar:
            for k, result in cache.iter_decoded(files, shorter, interpolation, decode=augment.decode_resized):
                bar.update(1)
                i = todo[k]
                if not isinstance(result, np.ndarray) or result.shape[:2] != dims[i]:
                    why = result if isinstance(result, str) else "decoded size differs from its header"
                    if not skip_bad:
                        raise UserError(f"{lst.origins[i]}: cannot decode image {lst.files[i]}: {why}")
                    skipped.append({"index": i, "origin": lst.origins[i], "reason": f"cannot decode: {why}"})
                    continue
                out[pos : pos + result.size] = result.reshape(-1)
                pos += result.size
                kept.append(i)
                shapes.append(result.shape[:2])
        out.flush()
        del out
    _finish(stem, lst, kept, shapes, skipped, shorter, interpolation)


def _offset(shapes: list[tuple[int, int]]) -> int:
    return int(sum(h * w * 3 for h, w in shapes))


def _finish(stem, lst, kept, shapes, skipped, shorter, interpolation) -> None:
    shape_arr = np.asarray(shapes, np.int64).reshape(-1, 2)
    with atomic_path(Path(f"{stem}.shapes.npy")) as tmp, open(tmp, "wb") as fh:
        np.save(fh, shape_arr)
    # A skipped image leaves its bytes at the end unused; trim so the header check (size == pixels) holds.
    total = _offset(shapes)
    images_path = Path(f"{stem}.images.npy")
    pixels = np.load(images_path, mmap_mode="r", allow_pickle=False)
    if pixels.size != total:
        with atomic_path(images_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(pixels[:total]))
        del pixels
    header = {
        "count": len(kept),
        "manifest": manifest_of([lst.members[i] for i in kept], lst.labels[kept]),
        "description": lst.description,
        "shorter_side": shorter,
        "interpolation": interpolation,
        "transform": augment.TRANSFORM_NAME,
        "files": len(lst),
        "skipped": sorted(skipped, key=lambda s: s["index"]),
    }
    cache._write_labels_and_header(stem, lst.labels[kept], header)


def _header_sizes(lst: ImageList, shorter: int) -> tuple[dict[int, tuple[int, int]], dict[int, str]]:
    """Each image's resized ``(height, width)`` from its header (no decoding), and the files that fail."""
    from PIL import Image

    dims: dict[int, tuple[int, int]] = {}
    problems: dict[int, str] = {}
    for i, file in enumerate(lst.files):
        try:
            with Image.open(file) as img:
                w, h = augment.shorter_side_size(*img.size, shorter)
                dims[i] = (h, w)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            problems[i] = f"cannot decode image {file}: {type(err).__name__}: {err}"
    return dims, problems
