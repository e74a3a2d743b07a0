"""Random iterated function systems (IFS) and their chaos-game rendering, FractalDB-style.

A class of the upstream set (and of the ``fractal`` task) is one random IFS of 2-4 affine maps.  Maps are drawn
through their singular values with the "sigma-factor" of Anderson & Farrell (2022, "Improving Fractal
Pre-training"), which keeps systems contractive and their attractors neither dust nor blobs; systems whose
rendered attractor fills too little of its bounding box (lines, points) are then rejected as FractalDB does with
its filling rate (Kataoka et al., 2020).  Images come from the chaos game, run for many images and many chains
at once with numpy, and splatted with bilinear weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vptlab.data.synthetic import render as r

MAX_MAPS = 4
MIN_FILL = 0.22  # fraction of the 32x32 frame an attractor scaled to fill it must cover (rejects lines, dust)
CANDIDATE_BATCH = 256
MAX_ASPECT = 3.0  # bounding-box aspect ratio above which an attractor is a sliver, not a shape


@dataclass(frozen=True)
class Systems:
    """A batch of IFS: ``mats (S, 4, 2, 2)``, ``shifts (S, 4, 2)``, ``probs (S, 4)`` (0 for unused maps)."""

    mats: np.ndarray
    shifts: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.probs)

    def take(self, idx: np.ndarray) -> Systems:
        return Systems(self.mats[idx], self.shifts[idx], self.probs[idx])


def _rotation(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def sample_candidates(rng: np.random.Generator, n: int) -> Systems:
    """``n`` random systems by the sigma-factor recipe (not yet filtered for degenerate attractors)."""
    k = rng.integers(2, MAX_MAPS + 1, n)
    used = np.arange(MAX_MAPS)[None, :] < k[:, None]
    sig = -np.sort(-rng.random((n, MAX_MAPS, 2)), axis=-1)  # sigma_1 >= sigma_2
    alpha = rng.uniform(
        0.5 * (5 + k), 0.5 * (6 + k)
    )  # the sigma-factor range that gives good-looking fractals
    total = ((sig[..., 0] + 2 * sig[..., 1]) * used).sum(-1)
    sig *= (alpha / total)[:, None, None]
    signs = np.where(rng.random((n, MAX_MAPS, 2)) < 0.5, -1.0, 1.0)
    diag = np.zeros((n, MAX_MAPS, 2, 2))
    diag[..., 0, 0], diag[..., 1, 1] = sig[..., 0] * signs[..., 0], sig[..., 1] * signs[..., 1]
    rot1 = _rotation(rng.uniform(0, 2 * np.pi, (n, MAX_MAPS)))
    rot2 = _rotation(rng.uniform(0, 2 * np.pi, (n, MAX_MAPS)))
    mats = rot1 @ diag @ rot2
    shifts = rng.uniform(-1, 1, (n, MAX_MAPS, 2))
    # FractalDB picks maps with probability proportional to |det|; the floor keeps thin maps visible.
    probs = np.maximum(sig[..., 0] * sig[..., 1], 0.02) * used
    probs /= probs.sum(-1, keepdims=True)
    contractive = ((sig[..., 0] < 1) | ~used).all(-1)
    keep = np.flatnonzero(contractive)
    return Systems(mats[keep].astype(r.F32), shifts[keep].astype(r.F32), probs[keep].astype(r.F32))


def _map_lookup(probs: np.ndarray) -> np.ndarray:
    """Per system, 256 table rows in proportion to the map probabilities: a random byte picks a map."""
    n = len(probs)
    cum = np.cumsum(probs, -1)
    edges = (np.arange(256) + 0.5) / 256
    k = np.minimum((edges[None, :, None] > cum[:, None, :]).sum(-1), MAX_MAPS - 1)
    return (np.arange(n)[:, None] * MAX_MAPS + k).astype(np.intp)


def chaos_game(
    rng: np.random.Generator, systems: Systems, chains: int, steps: int, burn_in: int = 12
) -> np.ndarray:
    """Points on each system's attractor: ``(S, chains * steps, 2)``.

    A few chains per system, all systems at once: each numpy step works on ``S * chains`` points, and the
    burn-in (points not yet on the attractor) is paid once per chain.
    """
    n = len(systems)
    # One row of 6 parameters per (system, map); a random byte indexes the lookup that picks the row.
    table = np.concatenate([systems.mats.reshape(n, MAX_MAPS, 4), systems.shifts], -1).reshape(-1, 6)
    lookup = _map_lookup(systems.probs).ravel()
    offset = (np.arange(n, dtype=np.intp) * 256)[:, None]
    x = np.zeros((n, chains), r.F32)
    y = np.zeros((n, chains), r.F32)
    pts = np.empty((steps, n, chains, 2), r.F32)
    for step in range(burn_in + steps):
        row = lookup[offset + rng.integers(0, 256, (n, chains), dtype=np.uint8)]
        g = table[row]
        x, y = g[..., 0] * x + g[..., 1] * y + g[..., 4], g[..., 2] * x + g[..., 3] * y + g[..., 5]
        if step % 8 == 0:  # a jittered system can be slightly expansive on average: keep it finite
            np.clip(x, -1e3, 1e3, out=x)
            np.clip(y, -1e3, 1e3, out=y)
        if step >= burn_in:
            pts[step - burn_in, ..., 0], pts[step - burn_in, ..., 1] = x, y
    return pts.transpose(1, 2, 0, 3).reshape(n, -1, 2)


def _robust_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """About the 0.5th and 99.5th percentiles per axis, from every 4th point: a box that ignores stray points."""
    sample = points[:, ::4]
    k = max(1, sample.shape[1] // 200)
    part = np.partition(sample, (k, sample.shape[1] - 1 - k), axis=1)
    return part[:, k], part[:, -1 - k]


def normalise(points: np.ndarray) -> np.ndarray:
    """Points centred on their robust bounding box and scaled so its longer side spans ``[-1, 1]``."""
    lo, hi = _robust_box(points)
    centre, extent = (lo + hi) / 2, np.maximum((hi - lo).max(-1), 1e-6)
    return ((points - centre[:, None, :]) / (extent[:, None, None] / 2)).astype(r.F32)


def attractor_quality(points: np.ndarray, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """FractalDB's filling rate (share of pixels hit, attractor scaled to the frame) and bbox aspect ratio."""
    lo, hi = _robust_box(points)
    ext = np.maximum(hi - lo, 1e-9)
    aspect = ext.max(-1) / ext.min(-1)
    dens = r.splat(normalise(points) * 0.98, size)[..., 0]
    return (dens > 0.05).mean(axis=(1, 2)), aspect


def sample_systems(rng: np.random.Generator, n: int) -> Systems:
    """``n`` accepted systems: contractive, filling at least :data:`MIN_FILL`, not slivers."""
    kept: list[Systems] = []
    total = 0
    while total < n:
        cand = sample_candidates(rng, CANDIDATE_BATCH)  # fixed batch: fewer systems are a prefix of more
        pts = chaos_game(rng, cand, chains=64, steps=32)
        fill, aspect = attractor_quality(pts)
        ok = np.flatnonzero((fill >= MIN_FILL) & (aspect <= MAX_ASPECT) & np.isfinite(pts).all((1, 2)))
        kept.append(cand.take(ok[: n - total]))
        total += len(kept[-1])
    return Systems(*(np.concatenate([getattr(s, f) for s in kept]) for f in ("mats", "shifts", "probs")))


def jitter(rng: np.random.Generator, systems: Systems, amount: float) -> Systems:
    """Per-image variants of each system: small relative noise on every map parameter (FractalDB's
    intra-class variation), so images of a class share a shape without being copies."""
    mats = systems.mats * (1 + amount * rng.standard_normal(systems.mats.shape, dtype=r.F32))
    shifts = systems.shifts + amount * rng.standard_normal(systems.shifts.shape, dtype=r.F32)
    return Systems(mats, shifts, systems.probs)


def num_points(size: int) -> tuple[int, int]:
    """Chains and steps for an image of ``size`` pixels: about three points per pixel, at least 3,000."""
    total = max(3072, 3 * size * size)
    chains = 32
    return chains, -(-total // chains)


def draw_points(canvas: np.ndarray, points: np.ndarray, colour: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """Splat points over ``canvas`` in ``colour`` (``(B, 3)`` or ``(B, H, W, 3)``).

    Density is turned into opacity with ``1 - exp(-d / tau)``, ``tau`` half the mean density of the pixels hit,
    so thin and dense attractors both show up, at any image size and point count.
    """
    dens = r.splat(points, canvas.shape[1])[..., 0]
    hit = np.maximum((dens > 0).sum(axis=(1, 2)), 1)
    tau = 0.5 * dens.sum(axis=(1, 2)) / hit / gain
    alpha = 1 - np.exp(-dens / np.maximum(tau, 1e-6)[:, None, None])
    return r.over(canvas, alpha, colour)


def place(points: np.ndarray, scale, cx, cy, flip=None, angle=None) -> np.ndarray:
    """Normalised points (longer side spanning ``[-1, 1]``) scaled to ``scale`` of the frame's half-width,
    optionally mirrored and rotated, and centred at ``(cx, cy)``."""
    p = points.copy()
    if flip is not None:
        p[..., 0] = np.where(np.asarray(flip)[:, None], -p[..., 0], p[..., 0])
    if angle is not None:
        c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
        p[..., 0], p[..., 1] = c * p[..., 0] - s * p[..., 1], s * p[..., 0] + c * p[..., 1]
    p *= np.asarray(scale, r.F32)[:, None, None]
    p[..., 0] += np.asarray(cx, r.F32)[:, None]
    p[..., 1] += np.asarray(cy, r.F32)[:, None]
    return p
