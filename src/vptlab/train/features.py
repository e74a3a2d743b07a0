"""Linear probing from features computed once.

Under ``linear`` the backbone is frozen, runs in eval mode and sees no augmentation, so the pre-logit feature
of every image (``forward_head(forward_features(x), pre_logits=True)``: final norm, CLS token) is the same in
every epoch, every grid point and every seed.  It is computed once per image set and stored on disk beside the
decoded images, as plain arrays (never pickles)::

    <cache>/features/<key>.features.npy   float32 (N, D)
    <cache>/features/<key>.labels.npy     int64 (N,)
    <cache>/features/<key>.json           header (what was computed, from what); written LAST

The key hashes what the features depend on: the backbone's weights (every tensor except the head, by value),
its architecture, the image set's manifest and pixels (by value, so two folders with the same file names never
share an entry), the image size, the normalisation and the precision.  Each file is written atomically and the
header last; an entry whose files disagree with its header is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vptlab._io import atomic_path, atomic_write_json, entry_lock, stable_hash
from vptlab.data.base import ImageSet
from vptlab.data.cache import cache_root
from vptlab.train.loop import FeatureSet, Precision, batches, eval_batch_size

FEATURES_VERSION = 1
KIND = "features"
_HASH_CHUNK_BYTES = 64 << 20
# (id(images), shape, manifest) -> (images, digest): a study's grid reuses one TaskData for many runs, so the
# pixels of a large test set are hashed once per process, not once per run.
_PIXEL_DIGESTS: dict[tuple, tuple[np.ndarray, str]] = {}


def weights_digest(model: nn.Module) -> str:
    """A hash of the backbone's tensors by value (the head, trained by the probe, is left out)."""
    head = {id(p) for p in model.get_classifier().parameters()}
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
        if id(tensor) in head:
            continue
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


def pixels_digest(images: np.ndarray, manifest: str) -> str:
    """A hash of the uint8 pixels, read in chunks (a memory-mapped test set is never loaded whole)."""
    memo_key = (id(images), images.shape, manifest)
    hit = _PIXEL_DIGESTS.get(memo_key)
    if hit is not None and hit[0] is images:
        return hit[1]
    h = hashlib.sha256(f"{images.shape}|{images.dtype}\n".encode())
    per_chunk = max(1, _HASH_CHUNK_BYTES // max(1, images[0].nbytes if len(images) else 1))
    for start in range(0, len(images), per_chunk):
        h.update(np.ascontiguousarray(images[start : start + per_chunk]).data)
    digest = h.hexdigest()[:24]
    _PIXEL_DIGESTS[memo_key] = (images, digest)
    return digest


def feature_key(model: nn.Module, imageset: ImageSet, mean: tuple, std: tuple, precision: Precision,
                weights: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the features of ``imageset`` depend on (hashed into the cache key)."""
    return {
        "version": FEATURES_VERSION,
        "weights": weights or weights_digest(model),
        "architecture": type(model).__name__,
        "embed_dim": int(getattr(model, "num_features", 0)),
        "manifest": imageset.manifest,
        "pixels": pixels_digest(imageset.images, imageset.manifest),
        "image_size": imageset.image_size,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "precision": precision.name,
    }


@torch.inference_mode()
def extract_features(model: nn.Module, imageset: ImageSet, mean: tuple, std: tuple, precision: Precision,
                     batch_size: int | None = None) -> np.ndarray:  # fmt: skip
    """Pre-logit features ``(N, D)`` float32 of every image, in order, with the backbone in eval mode."""
    model.eval()
    device = precision.device
    order = np.arange(len(imageset))
    chunks = []
    bs = batch_size or eval_batch_size(device)
    for x, _ in batches(imageset.images, imageset.labels, order, bs, mean, std, device):
        with precision.autocast():
            f = model.forward_head(model.forward_features(x), pre_logits=True)
        chunks.append(f.float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, int(model.num_features)), np.float32)


def cached_features(model: nn.Module, imageset: ImageSet, *, mean: tuple, std: tuple, precision: Precision,
                    cache_dir: str | Path | None = None, weights: str | None = None) -> tuple[FeatureSet, dict]:  # fmt: skip
    """The features of ``imageset`` on the run's device, from the cache (computed and stored on first use).

    Returns the set and a record: the cache key and whether the entry was read (``hit``) or computed."""
    key_parts = feature_key(model, imageset, mean, std, precision, weights)
    stem = cache_root(cache_dir) / KIND / stable_hash(key_parts, length=24)
    array, hit = _read(stem, imageset), True
    if array is None:
        with entry_lock(stem):
            array = _read(stem, imageset)
            if array is None:
                hit = False
                array = extract_features(model, imageset, mean, std, precision)
                _write(stem, array, imageset.labels, key_parts)
    features = torch.from_numpy(array).to(precision.device)
    record = {"key": stem.name, "hit": hit, "count": len(imageset), "dim": int(array.shape[1])}
    return FeatureSet(features, imageset.labels, imageset.manifest), record


def _paths(stem: Path) -> tuple[Path, Path, Path]:
    return Path(f"{stem}.features.npy"), Path(f"{stem}.labels.npy"), Path(f"{stem}.json")


def _read(stem: Path, imageset: ImageSet) -> np.ndarray | None:
    """The stored features, or None when absent, partial, or not matching ``imageset``."""
    features_path, labels_path, header_path = _paths(stem)
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        array = np.load(features_path)
        labels = np.load(labels_path)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if header.get("version") != FEATURES_VERSION or array.dtype != np.float32 or array.ndim != 2:
        return None
    if len(array) != len(imageset) or header.get("count") != len(imageset):
        return None
    if not np.array_equal(labels, imageset.labels):
        return None
    return array


def _write(stem: Path, array: np.ndarray, labels: np.ndarray, key_parts: dict) -> None:
    """Features, labels, then the header: the header's presence marks the entry complete."""
    features_path, labels_path, header_path = _paths(stem)
    for path, value in ((features_path, array), (labels_path, np.asarray(labels, np.int64))):
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=False)
    header = {**key_parts, "count": len(array), "dim": int(array.shape[1]),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    atomic_write_json(header_path, header)


def task_features(model: nn.Module, splits: dict[str, ImageSet], *, mean: tuple, std: tuple,
                  precision: Precision, cache_dir: str | Path | None = None) -> tuple[dict[str, FeatureSet], dict]:  # fmt: skip
    """Features of each named split, and the record a run stores (``linear_features`` in result.json)."""
    start = time.perf_counter()
    weights = weights_digest(model)
    sets, records = {}, {}
    for name, imageset in splits.items():
        sets[name], records[name] = cached_features(
            model, imageset, mean=mean, std=std, precision=precision, cache_dir=cache_dir, weights=weights
        )
    record = {"cached": True, "weights": weights, "splits": records,
              "seconds": round(time.perf_counter() - start, 3)}  # fmt: skip
    return sets, record
