"""The decoded-image cache: decode and resize each image once, then memory-map it for every later epoch and run.

An entry is three plain files (never a pickle) in ``<cache>/<kind>/``::

    <key>.images.npy   uint8 (N, H, W, 3), opened with np.load(mmap_mode="r")
    <key>.labels.npy   int64 (N,)
    <key>.json         header: what was cached, how, its manifest, the images skipped; written LAST

The key is a hash of everything the pixels depend on: for image files, the file list with each file's size and
modification time, the labels, the size and the interpolation.  Each file is written atomically and the header
last, so an interrupted build leaves no entry that looks complete; an entry whose files disagree with its header
is rebuilt; a lock file makes concurrent processes build an entry once.  Decoding streams into the memory-mapped
output through a bounded window of worker threads (PIL releases the GIL while decoding and resizing), so a
73,728-image split never needs more than a few tens of MB of RAM beyond the page cache.

The cache folder is ``cache_dir`` if given, else ``$VPTLAB_CACHE``, else ``~/.cache/vptlab``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vptlab._io import atomic_path, atomic_write_json, entry_lock, stable_hash
from vptlab._progress import progress
from vptlab.data import images as _images
from vptlab.data.base import ImageSet, manifest_of
from vptlab.errors import UserError

CACHE_VERSION = 1
KINDS = ("images", "sets", "subsets", "splits", "notes")
SKIP_HINT = "skip unreadable images with --skip-bad-images (skip_bad_images=True)"
# Subsets larger than this, taken from a memory-mapped set, are themselves cached rather than held in RAM.
SUBSET_IN_MEMORY_BYTES = 256 << 20


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where cached arrays live: ``cache_dir``, else ``$VPTLAB_CACHE``, else ``~/.cache/vptlab``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("VPTLAB_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vptlab"


def decode_workers() -> int:
    """Decoding threads: ``$VPTLAB_DECODE_WORKERS`` or the number of CPU cores (at most 8)."""
    env = os.environ.get("VPTLAB_DECODE_WORKERS", "")
    if env:
        return max(1, int(env))
    return max(1, min(8, os.cpu_count() or 1))


# --- entries on disk ---------------------------------------------------------------------------------------


def _paths(stem: Path) -> tuple[Path, Path, Path]:
    return Path(f"{stem}.images.npy"), Path(f"{stem}.labels.npy"), Path(f"{stem}.json")


def _read_entry(stem: Path) -> tuple[ImageSet, dict] | None:
    """The cached set at ``stem`` with its header, or ``None`` if absent, partial or inconsistent."""
    images_path, labels_path, header_path = _paths(stem)
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        if not isinstance(header, dict) or header.get("version") != CACHE_VERSION:
            return None
        images = np.load(images_path, mmap_mode="r", allow_pickle=False)  # plain arrays, never pickles
        labels = np.load(labels_path, allow_pickle=False)
        count, manifest = int(header["count"]), str(header["manifest"])
    except (OSError, ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) < count:
        return None
    if labels.dtype.kind not in "iu" or labels.shape != (count,):
        return None
    imageset = ImageSet(images[:count], labels, manifest, header.get("description", ""))
    return imageset, header


def _get_or_build(stem: Path, build: Callable[[], None]) -> tuple[ImageSet, dict]:
    """The entry at ``stem``, built by ``build()`` if absent.

    The build runs under an exclusive lock on ``<stem>.lock``, so runs started together (a study's first wave)
    decode a split once: the others wait, then read what the first wrote.
    """
    entry = _read_entry(stem)
    if entry is not None:
        return entry
    with entry_lock(stem):
        entry = _read_entry(stem)  # built by another process while this one waited
        if entry is None:
            build()
            entry = _read_entry(stem)
    if entry is None:  # pragma: no cover - only if the disk lies
        raise UserError(f"{stem}: cache entry unreadable right after writing it; is the disk full?")
    return entry


def _write_labels_and_header(stem: Path, labels: np.ndarray, header: dict) -> None:
    """The labels, then the header: the header's presence is what marks an entry complete."""
    images_path, labels_path, header_path = _paths(stem)
    with atomic_path(labels_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asarray(labels, np.int64))
    header = {"version": CACHE_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **header}
    atomic_write_json(header_path, header)


def _save_imageset(stem: Path, imageset: ImageSet, header: dict) -> None:
    images_path = _paths(stem)[0]
    with atomic_path(images_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(imageset.images))
    header = {
        "count": len(imageset),
        "manifest": imageset.manifest,
        "description": imageset.description,
        **header,
    }
    _write_labels_and_header(stem, imageset.labels, header)


# --- image files -------------------------------------------------------------------------------------------


def file_list_key(lst: _images.ImageList, image_size: int, interpolation: str) -> str:
    """The cache key of an image list decoded at a size: files (with size and mtime), labels, size, filter."""
    h = hashlib.sha256(f"v{CACHE_VERSION}|{image_size}|{interpolation}\n".encode())
    for file, label, origin in zip(lst.files, lst.labels.tolist(), lst.origins):
        try:
            st = os.stat(file)
        except OSError:
            raise UserError(f"{origin}: image not found: {file}") from None
        h.update(f"{file}\t{st.st_size}\t{st.st_mtime_ns}\t{label}\n".encode())
    return h.hexdigest()[:24]


class Decoded(NamedTuple):
    """A decoded image list: the set, the images skipped (``file:line: reason``), and the list indices kept."""

    imageset: ImageSet
    skipped: list[str]
    kept: np.ndarray


def load_image_list(
    lst: _images.ImageList,
    image_size: int,
    interpolation: str = "bilinear",
    *,
    cache_dir: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
    workers: int | None = None,
    resize: str = "square",
) -> Decoded:
    """The images of ``lst`` decoded at ``image_size`` (memory-mapped from the cache, built on first use).

    ``resize`` is ``"square"`` (resized to ``image_size`` x ``image_size``, the VTAB-1k way) or
    ``"reference-eval"`` (the VPT reference's FGVC eval transform: shorter side to ``image_size * 8 // 7``,
    centre crop ``image_size``; :mod:`vptlab.data.augment`).  ``skipped`` is empty unless ``skip_bad_images``;
    otherwise an unreadable image raises a :class:`UserError` naming its list line.
    """
    _images.check_interpolation(interpolation)
    if image_size < 1:
        raise UserError(f"image_size must be >= 1, got {image_size}")
    decode = _resize_decoder(resize)
    key_filter = interpolation if resize == "square" else f"{interpolation}|{resize}"
    stem = cache_root(cache_dir) / "images" / file_list_key(lst, image_size, key_filter)
    imageset, header = _get_or_build(
        stem,
        lambda: _build_image_entry(
            stem, lst, image_size, interpolation, skip_bad_images, workers or decode_workers(), decode
        ),
    )
    skipped = [f"{s['origin']}: {s['reason']}" for s in header.get("skipped", [])]
    if skipped and not skip_bad_images:
        raise UserError(f"{skipped[0]}; {SKIP_HINT}")
    kept = np.setdiff1d(np.arange(len(lst)), [s["index"] for s in header.get("skipped", [])])
    return Decoded(imageset, skipped, kept)


def _resize_decoder(resize: str) -> Callable[[str, int, str], np.ndarray] | None:
    if resize == "square":
        return None
    if resize == "reference-eval":
        from vptlab.data.augment import decode_eval

        return decode_eval
    raise UserError(f"resize must be 'square' or 'reference-eval', got {resize!r}")


def _build_image_entry(
    stem: Path,
    lst: _images.ImageList,
    size: int,
    interpolation: str,
    skip_bad: bool,
    workers: int,
    decode: Callable[[str, int, str], np.ndarray] | None = None,
) -> None:
    """Decode every image of ``lst`` into a new entry at ``stem``, streaming into a memory map."""
    n = len(lst)
    kept: list[int] = []
    skipped: list[dict[str, Any]] = []
    images_path = _paths(stem)[0]
    with atomic_path(images_path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(max(n, 1), size, size, 3))
        bar = progress(total=n, desc=f"decode {lst.description or 'images'} @{size}", unit="img")
        with bar:
            for i, result in iter_decoded(lst.files, size, interpolation, workers, decode):
                bar.update(1)
                if isinstance(result, np.ndarray):
                    out[len(kept)] = result
                    kept.append(i)
                    continue
                if not skip_bad:
                    raise UserError(
                        f"{lst.origins[i]}: cannot decode image {lst.files[i]}: {result}; {SKIP_HINT}"
                    )
                skipped.append(
                    {"index": i, "origin": lst.origins[i], "reason": f"cannot decode image: {result}"}
                )
        out.flush()
        del out
    header = {
        "count": len(kept),
        "manifest": manifest_of([lst.members[i] for i in kept], lst.labels[kept]),
        "description": lst.description,
        "image_size": size,
        "interpolation": interpolation,
        "files": n,
        "skipped": skipped,
    }
    _write_labels_and_header(stem, lst.labels[kept], header)


def _decode_one(
    file: str, size: int, interpolation: str, decode: Callable[..., np.ndarray] | None = None
) -> np.ndarray | str:
    try:
        return (decode or _images.decode_image)(file, size, interpolation)
    except _images.BadImage as err:
        return str(err)


def iter_decoded(
    files: tuple[str, ...],
    size: int,
    interpolation: str,
    workers: int | None = None,
    decode: Callable[[str, int, str], np.ndarray] | None = None,
) -> Iterator[tuple[int, np.ndarray | str]]:
    """``(index, image or error text)`` in order, decoded by ``workers`` threads a bounded window ahead.

    At most ``4 * workers`` decoded images are held at once, whatever the number of files.  ``decode(file,
    size, interpolation)`` replaces the square resize (the reference's shorter-side resize uses it).
    """
    workers = workers or decode_workers()
    if workers <= 1:
        for i, f in enumerate(files):
            yield i, _decode_one(f, size, interpolation, decode)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="vptlab-decode")
    window: deque[tuple[int, Future]] = deque()
    todo = iter(enumerate(files))
    try:
        for i, f in todo:
            window.append((i, pool.submit(_decode_one, f, size, interpolation, decode)))
            if len(window) >= 4 * workers:
                break
        while window:
            i, fut = window.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                window.append((nxt[0], pool.submit(_decode_one, nxt[1], size, interpolation, decode)))
            yield i, fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- any image set -----------------------------------------------------------------------------------------


def cached_imageset(
    key_parts: dict[str, Any], builder: Callable[[], ImageSet], *, cache_dir: str | os.PathLike | None = None
) -> ImageSet:
    """``builder()``'s set, stored once under a key made from ``key_parts`` and memory-mapped afterwards.

    For generated data (the synthetic tasks): ``key_parts`` must hold everything the pixels depend on
    (generator name and version, task, split, size, seed), as plain JSON values.
    """
    stem = cache_root(cache_dir) / "sets" / stable_hash({"version": CACHE_VERSION, **key_parts}, 24)
    return _get_or_build(stem, lambda: _save_imageset(stem, builder(), {"key_parts": key_parts}))[0]


def take(
    imageset: ImageSet,
    indices: np.ndarray,
    description: str = "",
    *,
    cache_dir: str | os.PathLike | None = None,
    max_in_memory: int = SUBSET_IN_MEMORY_BYTES,
) -> ImageSet:
    """``imageset.subset(indices)``, but a large subset of a memory-mapped set is cached, not held in RAM.

    Same images, labels and manifest as :meth:`ImageSet.subset`; used by the size regime, whose training
    sets reach 20,000 images (3 GB at 224x224).
    """
    indices = np.asarray(indices, dtype=np.int64)
    row_bytes = int(np.prod(imageset.images.shape[1:]))
    filename = getattr(imageset.images, "filename", None)
    if filename is None or len(indices) * row_bytes <= max_in_memory:
        return imageset.subset(indices, description)
    labels = imageset.labels[indices]
    manifest = manifest_of([f"{imageset.manifest}:{i}" for i in indices.tolist()], labels)
    parent = Path(filename)
    key = {"parent": str(parent), "mtime": parent.stat().st_mtime_ns, "manifest": manifest, "n": len(indices)}
    stem = cache_root(cache_dir) / "subsets" / stable_hash({"version": CACHE_VERSION, **key}, 24)
    return _get_or_build(stem, lambda: _build_subset_entry(stem, imageset, indices, manifest, description))[0]


def _build_subset_entry(
    stem: Path, parent: ImageSet, indices: np.ndarray, manifest: str, description: str
) -> None:
    with atomic_path(_paths(stem)[0]) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(indices), *parent.images.shape[1:])
        )
        for start in range(0, len(indices), 1024):
            chunk = indices[start : start + 1024]
            order = np.argsort(chunk)  # read the parent in file order, write back in the subset's order
            out[start + order] = parent.images[chunk[order]]
        out.flush()
        del out
    header = {"count": len(indices), "manifest": manifest, "description": description}
    _write_labels_and_header(stem, parent.labels[indices], header)


# --- housekeeping ------------------------------------------------------------------------------------------


def cache_usage(cache_dir: str | os.PathLike | None = None) -> dict[str, dict[str, int]]:
    """Per kind of entry: how many entries and how many bytes the cache holds."""
    root = cache_root(cache_dir)
    usage = {}
    for kind in KINDS:
        folder = root / kind
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        if kind == "splits":
            entries = len([p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else [])
        else:
            entries = sum(1 for p in files if p.suffix == (".txt" if kind == "notes" else ".json"))
        usage[kind] = {"entries": entries, "bytes": sum(p.stat().st_size for p in files)}
    return usage


def clear_cache(cache_dir: str | os.PathLike | None = None) -> int:
    """Remove vptlab's cached entries (only its own sub-folders) and return the bytes freed."""
    root = cache_root(cache_dir)
    freed = sum(u["bytes"] for u in cache_usage(root).values())
    for kind in KINDS:
        shutil.rmtree(root / kind, ignore_errors=True)
    return freed
