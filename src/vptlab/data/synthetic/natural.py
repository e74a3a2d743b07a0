"""Natural-group tasks: classification of fractals (close to upstream), shapes and textures (far from it)."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from vptlab.data.base import TaskInfo
from vptlab.data.synthetic import fractals as f
from vptlab.data.synthetic import render as r
from vptlab.data.synthetic.spec import Params, SyntheticTask, seed_sequence
from vptlab.data.synthetic.upstream import render_fractal_images, sample_fractal_images

# --- fractal: new IFS classes in the upstream look -----------------------------------------------------------

FRACTAL_CLASSES = 20
FRACTAL_JITTER = (
    0.1  # more intra-class variation than upstream (0.05): 20 classes from 50 images each is not trivial
)


@cache
def _fractal_classes(seed: int) -> f.Systems:
    # Its own stream: these systems are not among the upstream classes (unseen classes, seen style).
    return f.sample_systems(np.random.default_rng(seed_sequence(seed, "fractal", "classes")), FRACTAL_CLASSES)


FRACTAL = SyntheticTask(
    info=TaskInfo("fractal", "natural", "classification", FRACTAL_CLASSES),
    shows="a fractal of one of 20 IFS classes never seen upstream, drawn exactly in the upstream style",
    mirrors="cifar / caltech101 (natural classification close to the pretraining images)",
    quadrant="classification, low FID (VPT expected to win)",
    sample=lambda rng, labels, ctx: sample_fractal_images(rng, labels, ctx, FRACTAL_JITTER),
    render=render_fractal_images,
    context=_fractal_classes,
)

# --- shapes: silhouettes on cluttered colour backgrounds -----------------------------------------------------

SHAPE_NAMES = (
    "disc",
    "ring",
    "triangle",
    "square",
    "pentagon",
    "star",
    "cross",
    "crescent",
    "heart",
    "arrow",
)


def _sdf_shape(k: int, x: np.ndarray, y: np.ndarray, p: Params) -> np.ndarray:
    """Signed distance of shape class ``k`` with radius ``p['r']``, centre and rotation from ``p``."""
    cx, cy, s, th = p["cx"], p["cy"], p["r"], p["theta"]
    u, v = r.local(x, y, cx, cy, th)
    s3 = r.b(s)
    if k == 0:
        return np.hypot(u, v) - s3
    if k == 1:
        return np.abs(np.hypot(u, v) - 0.72 * s3) - 0.28 * s3
    if k in (2, 3, 4):
        return r.sdf_ngon(x, y, cx, cy, s * 1.1, k + 1, th)
    if k == 5:
        return r.sdf_star(x, y, cx, cy, s * 1.15, 5, 0.45, th)
    if k == 6:
        arm = r.sdf_box(x, y, cx, cy, s, 0.3 * s, th)
        return np.minimum(arm, r.sdf_box(x, y, cx, cy, 0.3 * s, s, th))
    if k == 7:
        return np.maximum(np.hypot(u, v) - s3, 0.85 * s3 - np.hypot(u - 0.45 * s3, v))
    if k == 8:
        lobes = (
            np.minimum(np.hypot(u - 0.42 * s3, v + 0.3 * s3), np.hypot(u + 0.42 * s3, v + 0.3 * s3))
            - 0.5 * s3
        )
        tip = np.maximum(np.abs(u) + (v + 0.3 * s3) * 0.9 - 0.95 * s3, -(v + 0.3 * s3))
        return np.minimum(lobes, tip * 0.7)
    shaft = r.sdf_box(x, y, cx - 0.35 * s * np.cos(th), cy - 0.35 * s * np.sin(th), 0.65 * s, 0.18 * s, th)
    head = r.sdf_ngon(x, y, cx + 0.35 * s * np.cos(th), cy + 0.35 * s * np.sin(th), 0.6 * s, 3, th)
    return np.minimum(shaft, head)


def _sample_clutter(rng: np.random.Generator, n: int, grid: int = 5) -> Params:
    """A busy natural-ish backdrop: two random colours mixed by a smooth noise field."""
    return {
        "bg_a": r.random_colour(rng, n, s=(0.1, 0.8), v=(0.2, 0.9)),
        "bg_b": r.random_colour(rng, n, s=(0.1, 0.8), v=(0.2, 0.9)),
        "bg_field": rng.uniform(0, 1, (n, grid, grid)).astype(r.F32),
        "noise": rng.uniform(0.01, 0.05, n).astype(r.F32),
    }


def _draw_clutter(p: Params, size: int) -> np.ndarray:
    t = r.smooth_noise(p["bg_field"], size)[..., None]
    return p["bg_a"][:, None, None] * (1 - t) + p["bg_b"][:, None, None] * t


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour whose brightness is far from the background's mean, so the object stays visible."""
    lum = background.mean(-1)
    value = np.where(lum > 0.5, rng.uniform(0.05, 0.3, len(lum)), rng.uniform(0.75, 1.0, len(lum)))
    return r.hsv_to_rgb(rng.random(len(lum)), rng.uniform(0.2, 1.0, len(lum)), value)


def _sample_shapes(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n = len(labels)
    p = _sample_clutter(rng, n)
    s = rng.uniform(0.3, 0.6, n)
    p.update(
        label=labels,
        r=s.astype(r.F32),
        cx=rng.uniform(-1, 1, n).astype(r.F32) * (0.95 - s),
        cy=rng.uniform(-1, 1, n).astype(r.F32) * (0.95 - s),
        theta=rng.uniform(0, 2 * np.pi, n).astype(r.F32),
        colour=_contrasting_colour(rng, (p["bg_a"] + p["bg_b"]) / 2),
    )
    return p


def _render_shapes(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    x, y = r.grid(size)
    img = _draw_clutter(p, size)
    alpha = np.zeros(img.shape[:3], r.F32)
    for k in np.unique(p["label"]):
        idx = np.flatnonzero(p["label"] == k)
        sub = {key: p[key][idx] for key in ("cx", "cy", "r", "theta")}
        alpha[idx] = r.coverage(_sdf_shape(int(k), x, y, sub), size)
    return r.add_noise(r.over(img, alpha, p["colour"]), rng, p["noise"])


SHAPES = SyntheticTask(
    info=TaskInfo("shapes", "natural", "classification", len(SHAPE_NAMES)),
    shows="one silhouette (disc, ring, triangle, square, pentagon, star, cross, crescent, heart, arrow), any "
    "rotation, size, position and colour, on a smooth two-colour clutter background",
    mirrors="caltech101 / svhn (object classification on images unlike the pretraining data)",
    quadrant="classification, high FID (FT expected to win)",
    sample=_sample_shapes,
    render=_render_shapes,
    class_names=SHAPE_NAMES,
)

# --- textures: ten procedural texture families ---------------------------------------------------------------

TEXTURE_NAMES = (
    "stripes",
    "checker",
    "dots",
    "grid",
    "rings",
    "waves",
    "blobs",
    "speckle",
    "bricks",
    "spiral",
)


def _band(g: np.ndarray, slope: np.ndarray | float, size: int) -> np.ndarray:
    """Anti-aliased ``g > 0`` for a field whose gradient is at most ``slope`` per unit length."""
    return r.coverage(-g / slope, size)


def _texture(k: int, u: np.ndarray, v: np.ndarray, p: Params, size: int) -> np.ndarray:
    """Pattern value in ``[0, 1]`` of texture family ``k`` at rotated coordinates ``(u, v)``."""
    w = r.b(p["freq"]) * np.pi  # ``freq`` cycles across the image width (2 units)
    ph = r.b(p["phase"])
    if k == 0:
        return 0.5 + 0.5 * np.sin(w * u + ph)
    if k == 1:
        return _band(np.sin(w * u + ph) * np.sin(w * v), w, size)
    if k == 2:
        du, dv = np.sin(w * u + ph), np.sin(w * v)
        return _band(du * dv - 0.55, w, size) + _band(-du * dv - 0.55, w, size)
    if k == 3:
        line = np.maximum(np.abs(np.cos(w * u + ph)), np.abs(np.cos(w * v)))
        return _band(line - 0.85, w, size)
    if k == 4:
        return 0.5 + 0.5 * np.sin(w * np.hypot(u - r.b(p["ox"]), v - r.b(p["oy"])) + ph)
    if k == 5:
        return 0.5 + 0.5 * np.sin(w * u + 2.2 * np.sin(0.8 * w * v) + ph)
    if k in (6, 7):
        field = r.smooth_noise(p["field6" if k == 6 else "field16"], size)
        return _band(field - 0.5, 6.0 if k == 6 else 12.0, size)
    if k == 8:
        row = np.floor(w * v / np.pi)
        shifted = u + np.where(np.mod(row, 2) == 1, np.pi / r.b(p["freq"] * np.pi), 0)
        mortar = np.minimum(np.abs(np.sin(w * v)), np.abs(np.sin(0.5 * w * shifted + ph)))
        return _band(mortar - 0.3, w, size)
    rho, ang = np.hypot(u - r.b(p["ox"]), v - r.b(p["oy"])), np.arctan2(v - r.b(p["oy"]), u - r.b(p["ox"]))
    return 0.5 + 0.5 * np.sin(w * rho + 4 * ang + ph)


def _sample_textures(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n = len(labels)
    lo = r.random_colour(rng, n, s=(0.0, 0.9), v=(0.1, 0.6))
    return {
        "label": labels,
        "freq": rng.uniform(2.0, 5.0, n).astype(r.F32),
        "phase": rng.uniform(0, 2 * np.pi, n).astype(r.F32),
        "theta": rng.uniform(0, np.pi, n).astype(r.F32),
        "ox": rng.uniform(-1, 1, n).astype(r.F32),
        "oy": rng.uniform(-1, 1, n).astype(r.F32),
        "field6": rng.uniform(0, 1, (n, 6, 6)).astype(r.F32),
        "field16": rng.uniform(0, 1, (n, 16, 16)).astype(r.F32),
        "lo": lo,
        "hi": np.clip(lo + r.random_colour(rng, n, s=(0.0, 0.8), v=(0.25, 0.6)), 0, 1),
        "noise": rng.uniform(0.02, 0.08, n).astype(r.F32),
    }


def _render_textures(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    x, y = r.grid(size)
    t = np.zeros((len(p["label"]), size, size), r.F32)
    for k in np.unique(p["label"]):
        idx = np.flatnonzero(p["label"] == k)
        sub = {key: val[idx] for key, val in p.items()}
        u, v = r.local(x, y, 0.0, 0.0, sub["theta"])
        t[idx] = _texture(int(k), u, v, sub, size)
    img = p["lo"][:, None, None] * (1 - t[..., None]) + p["hi"][:, None, None] * t[..., None]
    return r.add_noise(img, rng, p["noise"])


TEXTURES = SyntheticTask(
    info=TaskInfo("textures", "natural", "classification", len(TEXTURE_NAMES)),
    shows="a full-frame texture of one of 10 families (stripes, checker, dots, grid, rings, waves, blobs, "
    "speckle, bricks, spiral), random scale, rotation, phase and two colours",
    mirrors="dtd (texture classification)",
    quadrant="classification, high FID (FT expected to win)",
    sample=_sample_textures,
    render=_render_textures,
    class_names=TEXTURE_NAMES,
)

NATURAL: tuple[SyntheticTask, ...] = (FRACTAL, SHAPES, TEXTURES)
