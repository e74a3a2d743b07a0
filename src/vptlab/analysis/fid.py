"""Fréchet distance between two image sets, and the statistics (mu, sigma) it is computed from.

The distance is the one pytorch-fid computes (``pytorch_fid.fid_score.calculate_frechet_distance``, Dougal
Sutherland's stable version), reimplemented here so the rest of vptlab does not import pytorch-fid; a test holds
the two equal.  Statistics are saved in pytorch-fid's ``.npz`` layout (keys ``mu`` and ``sigma``) so published
statistics, e.g. of ImageNet, can stand in for a pretraining set we cannot read.  Statistics of an image set are
cached per (set manifest, feature extractor): the pretraining side is computed once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import linalg

from vptlab._io import atomic_path
from vptlab.data.base import ImageSet
from vptlab.errors import UserError

log = logging.getLogger(__name__)


class FeatureExtractor(Protocol):
    """Maps uint8 images ``(N, H, W, 3)`` to features ``(N, D)``; ``key`` names it in stats caches."""

    key: str

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FIDStats:
    """Mean and covariance of one image set's features (pytorch-fid's ``mu`` and ``sigma``)."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int = 0
    features: str = ""
    description: str = ""


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))``, exactly as pytorch-fid computes it.

    Same edge cases: a non-finite matrix square root (nearly singular product) is retried with ``eps`` added to
    both diagonals, and a small imaginary part from numerical error is dropped (a large one is an error).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"covariances differ in shape: {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        log.warning("FID: singular covariance product; adding %s to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in sqrt(S1 S2)")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(a: FIDStats, b: FIDStats) -> float:
    """The Fréchet distance between two sets' statistics; both must come from the same features."""
    if a.features and b.features and a.features != b.features:
        log.warning("FID between statistics of different features: %s vs %s", a.features, b.features)
    if a.mu.shape != b.mu.shape:
        raise UserError(
            f"FID statistics have different feature sizes ({a.mu.shape[0]} vs {b.mu.shape[0]}): "
            f"{a.description or a.features} vs {b.description or b.features}; use the same --features for both"
        )
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def stats_from_features(features: np.ndarray, key: str = "", description: str = "") -> FIDStats:
    """Mean and covariance (``np.cov``, rows are samples) as pytorch-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise UserError(f"FID needs at least 2 images, got {len(features)} ({description or 'image set'})")
    return FIDStats(features.mean(axis=0), np.cov(features, rowvar=False), len(features), key, description)


def save_stats(path: str | Path, stats: FIDStats) -> None:
    """Write ``mu`` and ``sigma`` (plus provenance) as ``.npz``, readable by pytorch-fid as a stats file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            mu=stats.mu,
            sigma=stats.sigma,
            count=np.int64(stats.count),
            features=np.str_(stats.features),
            description=np.str_(stats.description),
        )


def load_stats(path: str | Path) -> FIDStats:
    """Read an ``.npz`` with ``mu`` and ``sigma`` (ours, or pytorch-fid's published files)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such FID statistics file")
    if not zipfile.is_zipfile(path):  # else numpy guesses "pickle" and suggests loading it unsafely
        raise UserError(f"{path}: not a .npz statistics file (not a zip archive); is it truncated?")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" not in data or "sigma" not in data:
                raise UserError(
                    f"{path}: an FID statistics file needs arrays 'mu' and 'sigma', has {list(data)}"
                )
            mu, sigma = np.asarray(data["mu"]), np.asarray(data["sigma"])
            count = int(data["count"]) if "count" in data else 0
            features = str(data["features"]) if "features" in data else ""
            description = str(data["description"]) if "description" in data else str(path)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable .npz statistics file ({err})") from err
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise UserError(f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UserError(f"{path}: mu or sigma holds NaN or infinite values; the statistics are corrupt")
    return FIDStats(mu, sigma, count, features, description)


def stats_cache_dir() -> Path:
    """Where computed statistics are cached: ``$VPTLAB_CACHE/fid-stats`` (default ``~/.cache/vptlab``)."""
    root = os.environ.get("VPTLAB_CACHE") or Path.home() / ".cache" / "vptlab"
    return Path(root) / "fid-stats"


def image_set_stats(
    images: ImageSet,
    extractor: FeatureExtractor,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> FIDStats:
    """Statistics of ``images`` under ``extractor``, cached by the set's manifest and the extractor's key."""
    cache_file = _cache_file(cache_dir, extractor, images.manifest)
    cached = _cached_stats(cache_file) if use_cache else None
    if cached is not None and cached.count == len(images):
        return cached
    stats = stats_from_features(extractor(images.images), extractor.key, images.description)
    if use_cache:
        save_stats(cache_file, stats)
    return stats


def _cached_stats(path: Path) -> FIDStats | None:
    """A cache entry, or None when absent or damaged (it is then computed and written again)."""
    try:
        return load_stats(path) if path.is_file() else None
    except UserError:
        return None


def _cache_file(cache_dir: str | Path | None, extractor: FeatureExtractor, name: str) -> Path:
    return Path(cache_dir or stats_cache_dir()) / _safe(extractor.key) / f"{name}.npz"


def _safe(key: str) -> str:
    """A feature key as a folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def set_stats(
    spec: str | Path,
    extractor: FeatureExtractor,
    *,
    cache_dir: str | Path | None = None,
    skip_bad_images: bool = False,
) -> FIDStats:
    """Statistics of the image set ``spec`` names (or read from it, if it is a ``.npz`` statistics file)."""
    from vptlab.analysis.fid_features import extractor_image_size
    from vptlab.analysis.imagesets import check_spec, is_stats_file, load_image_set, spec_cache_key

    check_spec(spec)
    if is_stats_file(spec):
        return load_stats(spec)
    size = extractor_image_size(extractor)
    key = spec_cache_key(spec, size)
    keyed = _cache_file(cache_dir, extractor, hashlib.sha256(key.encode()).hexdigest()[:16]) if key else None
    cached = _cached_stats(keyed) if keyed is not None else None
    if cached is not None:
        return cached  # a generated set: no need to generate it again
    images = load_image_set(spec, size, skip_bad_images=skip_bad_images)
    stats = image_set_stats(images, extractor, cache_dir=cache_dir)
    if keyed is not None:
        save_stats(keyed, stats)
    return stats


def compute_fid(
    a: str | Path, b: str | Path, extractor: FeatureExtractor, *, cache_dir: str | Path | None = None
) -> tuple[float, FIDStats, FIDStats]:
    """FID between two image sets (or statistics files), with both sides' statistics."""
    stats_a = set_stats(a, extractor, cache_dir=cache_dir)
    stats_b = set_stats(b, extractor, cache_dir=cache_dir)
    return fid_from_stats(stats_a, stats_b), stats_a, stats_b
