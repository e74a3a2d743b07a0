"""Structured-group tasks: counting, distance, location, orientation, azimuth and elevation.

Their objective is far from upstream classification (high task disparity).  ``count``, ``loc`` and ``ori`` are
drawn in the upstream style (fractal objects or a fractal backdrop on dark backgrounds, low FID); ``dist``,
``azi`` and ``ele`` are rendered scenes unlike the upstream images (high FID), so both structured quadrants hold
tasks.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from vptlab.data.base import TaskInfo
from vptlab.data.synthetic import fractals as f
from vptlab.data.synthetic import render as r
from vptlab.data.synthetic import render3d
from vptlab.data.synthetic.spec import Params, SyntheticTask, seed_sequence
from vptlab.data.synthetic.upstream import (
    draw_background,
    draw_palette,
    render_fractal_images,
    sample_background,
    sample_fractal_images,
    sample_palette,
)

SPRITE_BANK = 200


@cache
def _sprite_bank(seed: int) -> f.Systems:
    """Fractal systems for objects and backdrops: a stream apart from the upstream and ``fractal`` classes."""
    return f.sample_systems(np.random.default_rng(seed_sequence(seed, "sprites")), SPRITE_BANK)


def _sprites(rng: np.random.Generator, p: Params, bank: f.Systems, size: int) -> np.ndarray:
    """Points of the sprites in slots ``p['exists'] (B, K)``: ``(B, K * P, 2)``; empty slots land off-frame."""
    n, k = p["exists"].shape
    on = np.flatnonzero(p["exists"].ravel())
    diameter = 2 * float(p["s"].max()) * size / 2
    steps = -(-max(384, int(3 * diameter**2)) // 16)
    pts = f.normalise(f.chaos_game(rng, bank.take(p["system"].ravel()[on]), 16, steps))
    flat = lambda key: p[key].ravel()[on]  # noqa: E731
    pts = f.place(pts, flat("s"), flat("cx"), flat("cy"), flip=flat("flip"))
    out = np.full((n * k, pts.shape[1], 2), 10.0, r.F32)
    out[on] = pts
    return out.reshape(n, k * pts.shape[1], 2)


# --- count: how many fractal objects ---------------------------------------------------------------------------

COUNT_MAX = 8
_GRID = 3  # objects sit in distinct cells of a 3x3 grid, so they never overlap


def _sample_count(rng: np.random.Generator, labels: np.ndarray, bank: f.Systems) -> Params:
    n, k = len(labels), COUNT_MAX
    cells = np.argsort(rng.random((n, _GRID * _GRID)), axis=1)[:, :k]  # k distinct cells per image
    s = rng.uniform(0.18, 0.3, (n, k)).astype(r.F32)
    room = 1 / _GRID - s
    cx = -1 + (2 * (cells % _GRID) + 1) / _GRID + rng.uniform(-1, 1, (n, k)) * room
    cy = -1 + (2 * (cells // _GRID) + 1) / _GRID + rng.uniform(-1, 1, (n, k)) * room
    return {
        "exists": np.arange(k)[None, :] <= labels[:, None],  # label 0 is one object
        "system": rng.integers(0, len(bank), (n, k)),
        "s": s,
        "cx": cx.astype(r.F32),
        "cy": cy.astype(r.F32),
        "flip": rng.random((n, k)) < 0.5,
        **sample_palette(rng, n),
        **sample_background(rng, n),
    }


def _render_count(p: Params, size: int, rng: np.random.Generator, bank: f.Systems) -> np.ndarray:
    pts = _sprites(rng, p, bank, size)
    return f.draw_points(draw_background(p, size), pts, draw_palette(p, size))


COUNT = SyntheticTask(
    info=TaskInfo("count", "structured", "structured", COUNT_MAX),
    shows="1 to 8 fractal objects (label = count - 1), each in its own cell of a 3x3 grid (no overlap), on a "
    "dark background in the upstream colours",
    mirrors="clevr_count",
    quadrant="structured, low FID (VPT expected to win)",
    sample=_sample_count,
    render=_render_count,
    context=_sprite_bank,
    class_names=tuple(str(i + 1) for i in range(COUNT_MAX)),
)

# --- loc: where the fractal sprite is ------------------------------------------------------------------------

LOC_GRID = 4
LOC_SPAN = 0.8  # sprite centres lie in [-0.8, 0.8]^2, cut into a 4x4 grid of classes


def _sample_loc(rng: np.random.Generator, labels: np.ndarray, bank: f.Systems) -> Params:
    n = len(labels)
    cell = 2 * LOC_SPAN / LOC_GRID
    cx = -LOC_SPAN + cell * (labels % LOC_GRID + rng.random(n))
    cy = -LOC_SPAN + cell * (labels // LOC_GRID + rng.random(n))
    return {
        "exists": np.ones((n, 1), bool),
        "system": rng.integers(0, len(bank), (n, 1)),
        "s": rng.uniform(0.35, 0.55, (n, 1)).astype(r.F32),
        "cx": cx[:, None].astype(r.F32),
        "cy": cy[:, None].astype(r.F32),
        "flip": rng.random((n, 1)) < 0.5,
        **sample_palette(rng, n),
        **sample_background(rng, n),
    }


LOC = SyntheticTask(
    info=TaskInfo("loc", "structured", "structured", LOC_GRID * LOC_GRID),
    shows="one fractal sprite of random shape and size; label = the cell of a 4x4 grid holding its centre "
    "(row-major), positions continuous within cells",
    mirrors="dsprites_loc",
    quadrant="structured, low FID (VPT expected to win)",
    sample=_sample_loc,
    render=_render_count,
    context=_sprite_bank,
)

# --- ori: orientation of a bar over a fractal backdrop ---------------------------------------------------------

ORI_BINS = 16


def _sample_ori(rng: np.random.Generator, labels: np.ndarray, bank: f.Systems) -> Params:
    n = len(labels)
    p = sample_fractal_images(rng, rng.integers(0, len(bank), n), bank)
    half = rng.uniform(0.45, 0.75, n)
    p.update(
        bar_theta=((labels + rng.random(n)) * np.pi / ORI_BINS).astype(r.F32),
        bar_a=half.astype(r.F32),
        bar_b=(half / rng.uniform(3.5, 6.0, n)).astype(r.F32),
        bar_cx=rng.uniform(-0.25, 0.25, n).astype(r.F32),
        bar_cy=rng.uniform(-0.25, 0.25, n).astype(r.F32),
        bar_colour=r.hsv_to_rgb(rng.random(n), rng.uniform(0, 0.5, n), rng.uniform(0.85, 1.0, n)),
    )
    return p


def _render_ori(p: Params, size: int, rng: np.random.Generator, bank: f.Systems) -> np.ndarray:
    img = render_fractal_images(p, size, rng, bank)
    x, y = r.grid(size)
    args = (x, y, p["bar_cx"], p["bar_cy"])
    rim = r.sdf_ellipse(*args, p["bar_a"] + 0.06, p["bar_b"] + 0.06, p["bar_theta"])
    img = r.over(img, 0.85 * r.coverage(rim, size), np.zeros((len(img), 3), r.F32))
    body = r.sdf_ellipse(*args, p["bar_a"], p["bar_b"], p["bar_theta"])
    return r.over(img, r.coverage(body, size), p["bar_colour"])


ORI = SyntheticTask(
    info=TaskInfo("ori", "structured", "structured", ORI_BINS),
    shows="an elongated bright ellipse with a dark rim over an upstream-style fractal image; label = its "
    "orientation in [0, 180) degrees in 16 bins",
    mirrors="dsprites_ori",
    quadrant="structured, low FID (VPT expected to win)",
    sample=_sample_ori,
    render=_render_ori,
    context=_sprite_bank,
)

# --- dist: depth of the nearest object on a ground plane -------------------------------------------------------

DIST_BINS = 6
DIST_SLOTS = 5
_FOCAL = 2.0  # camera height 1: a ground point at depth z appears FOCAL / z below the horizon
_NEAREST = (0.25, 1.3)  # screen offsets below the horizon of the nearest object, cut into 6 equal bins


def _sample_dist(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n, k = len(labels), DIST_SLOTS
    # Bins even in inverse depth (equal steps down the image), as a camera sees them; depth = FOCAL / offset.
    step = (_NEAREST[1] - _NEAREST[0]) / DIST_BINS
    nearest = _NEAREST[0] + step * (DIST_BINS - 1 - labels + rng.random(n))  # label 0: nearest bin
    others = rng.uniform(0.15, 1.0, (n, k - 1)) * (nearest[:, None] - 0.03)
    offset = np.concatenate([nearest[:, None], np.maximum(others, 0.12)], 1)
    exists = np.arange(k)[None, :] <= rng.integers(0, k, n)[:, None]  # 1 to 5 objects, slot 0 always
    depth = np.where(exists, _FOCAL / offset, np.inf)
    order = np.argsort(-depth, axis=1)  # draw far to near
    take = lambda a: np.take_along_axis(a, order, 1)  # noqa: E731
    radius = np.where(rng.random((n, k)) < 0.5, 0.2, 0.32)  # two object sizes, as in CLEVR
    return {
        "depth": take(depth).astype(r.F32),
        "exists": take(exists),
        "radius": take(radius).astype(r.F32),
        "lateral": take(rng.uniform(-0.8, 0.8, (n, k))).astype(r.F32),
        "cylinder": take(rng.random((n, k)) < 0.4),
        "colour": r.random_colour(rng, n * k, s=(0.3, 0.9), v=(0.4, 0.95)).reshape(n, k, 3),
        "horizon": rng.uniform(-0.53, -0.37, n).astype(r.F32),
        "floor": rng.uniform(0.35, 0.6, n).astype(r.F32),
        "light": rng.uniform(-0.8, 0.8, (n, 2)).astype(r.F32),
        "noise": rng.uniform(0.01, 0.03, n).astype(r.F32),
    }


def _ground(p: Params, size: int) -> np.ndarray:
    """Floor brightening towards the camera, a darker wall above the horizon."""
    _, y = r.grid(size)
    below = y - r.b(p["horizon"])
    floor = r.b(p["floor"]) + 0.25 * np.clip(below, 0, None)
    wall = r.b(p["floor"]) * 0.75
    grey = np.where(below > 0, floor, wall)
    return np.repeat(grey[..., None], 3, -1)


def _draw_object(img: np.ndarray, p: Params, j: int, x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Object ``j`` of each image: a shaded sphere or cylinder standing on the floor, with a contact shadow."""
    z, rad = p["depth"][:, j], p["radius"][:, j]
    z = np.where(np.isfinite(z), z, 1e3)
    scr = _FOCAL * rad / z  # screen radius
    cx = p["lateral"][:, j] * 0.9
    base = p["horizon"] + _FOCAL / z  # screen y of the ground contact point
    shadow = r.sdf_ellipse(x, y, cx + 0.3 * scr * p["light"][:, 0], base, 1.2 * scr, 0.35 * scr, 0.0)
    img = r.over(img, 0.5 * r.coverage(shadow, size) * r.b(p["exists"][:, j]), np.zeros((len(img), 3), r.F32))
    cy = base - scr
    du, dv = (x - r.b(cx)) / r.b(scr), (y - r.b(cy)) / r.b(scr)
    cyl = r.b(p["cylinder"][:, j])
    nz = np.sqrt(np.clip(1 - du**2 - (1 - cyl) * dv**2, 0, 1))  # a cylinder's normal has no vertical part
    lx, ly = r.b(p["light"][:, 0]), r.b(p["light"][:, 1])
    lit = 0.35 + 0.65 * np.clip((du * lx + (1 - cyl) * dv * ly + nz) / np.sqrt(1 + lx**2 + ly**2), 0, 1)
    sphere = r.sdf_circle(x, y, cx, cy, scr)
    body = r.sdf_box(x, y, cx, cy, scr, scr, 0.0)
    top = r.sdf_ellipse(x, y, cx, cy - scr, scr, 0.3 * scr, 0.0)
    sdf = np.where(cyl > 0, np.minimum(body, top), sphere)
    shade = np.where((cyl > 0) & (top < 0), 1.0, lit)
    colour = p["colour"][:, j, None, None, :] * shade[..., None]
    return r.over(img, r.coverage(sdf, size) * r.b(p["exists"][:, j]), colour)


def _render_dist(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    x, y = r.grid(size)
    img = _ground(p, size)
    for j in range(DIST_SLOTS):
        img = _draw_object(img, p, j, x, y, size)
    return r.add_noise(img, rng, p["noise"])


DIST = SyntheticTask(
    info=TaskInfo("dist", "structured", "structured", DIST_BINS),
    shows="1 to 5 shaded spheres and cylinders (two sizes) on a grey floor in perspective; label = depth of "
    "the nearest object in 6 bins even in inverse depth (0 = nearest)",
    mirrors="clevr_dist / kitti",
    quadrant="structured, high FID",
    sample=_sample_dist,
    render=_render_dist,
)

# --- azi / ele: pose of a rendered 3-D toy ---------------------------------------------------------------------

AZI_BINS, ELE_BINS = 18, 9
ELE_MIN, ELE_STEP = 30.0, 5.0  # smallNORB elevations: 30 to 70 degrees in 5-degree steps


def _sample_pose(rng: np.random.Generator, n: int, azimuth: np.ndarray, elevation: np.ndarray) -> Params:
    kinds = rng.integers(0, len(render3d.OBJECT_NAMES), n)
    verts, mask = render3d.build_objects(kinds, rng.uniform(0.8, 1.2, (n, 5)))
    light = np.stack([rng.uniform(-0.7, 0.7, n), rng.uniform(-0.9, -0.2, n), -np.ones(n)], -1)
    return {
        "verts": verts,
        "mask": mask,
        "azimuth": np.deg2rad(azimuth).astype(r.F32),
        "elevation": np.deg2rad(elevation).astype(r.F32),
        "light": (light / np.linalg.norm(light, axis=1, keepdims=True)).astype(r.F32),
        "colour": r.hsv_to_rgb(rng.random(n), rng.uniform(0.0, 0.35, n), rng.uniform(0.7, 1.0, n)),
        "bg": rng.uniform(0.55, 0.85, n).astype(r.F32),
        "bg_amp": rng.uniform(0.0, 0.15, n).astype(r.F32),
        "scale": rng.uniform(0.7, 0.9, n).astype(r.F32),
        "noise": rng.uniform(0.01, 0.04, n).astype(r.F32),
    }


def _sample_azi(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n = len(labels)
    azimuth = labels * (360.0 / AZI_BINS) + rng.uniform(-2, 2, n)
    return _sample_pose(rng, n, azimuth, ELE_MIN + ELE_STEP * rng.integers(0, ELE_BINS, n))


def _sample_ele(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n = len(labels)
    return _sample_pose(
        rng, n, rng.uniform(0, 360, n), ELE_MIN + ELE_STEP * labels + rng.uniform(-0.5, 0.5, n)
    )


def _render_pose(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    n = len(p["bg"])
    shade = r.b(p["bg"]) + r.b(p["bg_amp"]) * r.linear_gradient(size, np.full(n, np.pi / 2))
    background = np.repeat(shade[..., None], 3, -1)
    img = render3d.render_objects(
        p["verts"], p["mask"], p["azimuth"], p["elevation"], p["light"], p["colour"], background, p["scale"]
    )
    return r.add_noise(img, rng, p["noise"])


_POSE_SHOWS = (
    "a shaded 3-D toy (house, car, plane, chair or lamp; random proportions, colour and lighting) on a plain "
    "light grey backdrop, orthographic camera; "
)

AZI = SyntheticTask(
    info=TaskInfo("azi", "structured", "structured", AZI_BINS),
    shows=_POSE_SHOWS + "label = camera azimuth in 20-degree steps (elevation random)",
    mirrors="smallnorb_azi",
    quadrant="structured, high FID",
    sample=_sample_azi,
    render=_render_pose,
    cost=8,
)

ELE = SyntheticTask(
    info=TaskInfo("ele", "structured", "structured", ELE_BINS),
    shows=_POSE_SHOWS + "label = camera elevation, 30 to 70 degrees in 5-degree steps (azimuth random)",
    mirrors="smallnorb_ele",
    quadrant="structured, high FID",
    sample=_sample_ele,
    render=_render_pose,
    cost=8,
)

STRUCTURED: tuple[SyntheticTask, ...] = (COUNT, DIST, LOC, ORI, AZI, ELE)
