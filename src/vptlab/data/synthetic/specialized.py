"""Specialized-group tasks: a histology-like and a satellite-like classification, both far from upstream."""

from __future__ import annotations

from typing import Any

import numpy as np

from vptlab.data.base import TaskInfo
from vptlab.data.synthetic import render as r
from vptlab.data.synthetic.spec import Params, SyntheticTask

# --- cells: stained tissue with nuclei -------------------------------------------------------------------------

CELL_NAMES = ("normal", "inflamed", "tumour", "necrotic")
CELL_SLOTS = 34
# Per class: nuclei count, radius, elongation, darkness (stain uptake) and outline irregularity ranges.  The
# ranges overlap on purpose: as in histology, no single cue decides the class.
_CELL_RANGES = {
    "count": ((7, 15), (16, 30), (7, 16), (16, 34)),
    "radius": ((0.06, 0.09), (0.04, 0.065), (0.085, 0.14), (0.025, 0.05)),
    "elong": ((1.0, 1.35), (1.0, 1.2), (1.15, 1.9), (1.0, 1.7)),
    "dark": ((0.5, 0.75), (0.7, 0.95), (0.55, 0.9), (0.3, 0.6)),
    "wobble": ((0.0, 0.08), (0.0, 0.05), (0.08, 0.22), (0.1, 0.3)),
}


def _per_class(
    rng: np.random.Generator, labels: np.ndarray, ranges: tuple, shape: tuple[int, ...]
) -> np.ndarray:
    """Uniform draws whose range depends on each image's class."""
    lo = np.array([a for a, _ in ranges], r.F32)[labels].reshape((-1,) + (1,) * (len(shape) - 1))
    hi = np.array([b for _, b in ranges], r.F32)[labels].reshape((-1,) + (1,) * (len(shape) - 1))
    return (lo + (hi - lo) * rng.random(shape, dtype=r.F32)).astype(r.F32)


def _sample_cells(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n, k = len(labels), CELL_SLOTS
    count = np.floor(_per_class(rng, labels, _CELL_RANGES["count"], (n,)) + 0.999).astype(np.int64)
    pale = labels == 3  # necrotic tissue takes up less stain
    return {
        "exists": np.arange(k)[None, :] < count[:, None],
        "cx": rng.uniform(-1.05, 1.05, (n, k)).astype(r.F32),
        "cy": rng.uniform(-1.05, 1.05, (n, k)).astype(r.F32),
        "radius": _per_class(rng, labels, _CELL_RANGES["radius"], (n, k)),
        "elong": _per_class(rng, labels, _CELL_RANGES["elong"], (n, k)),
        "dark": _per_class(rng, labels, _CELL_RANGES["dark"], (n, k)),
        "wobble": _per_class(rng, labels, _CELL_RANGES["wobble"], (n, k)),
        "theta": rng.uniform(0, np.pi, (n, k)).astype(r.F32),
        "phase": rng.uniform(0, 2 * np.pi, (n, k)).astype(r.F32),
        # Stain colours vary from slide to slide: hematoxylin (nuclei) blue-purple, eosin (tissue) pink.
        "hema": r.hsv_to_rgb(
            rng.uniform(0.68, 0.8, n), rng.uniform(0.35, 0.75, n), rng.uniform(0.3, 0.55, n)
        ),
        "eosin": r.hsv_to_rgb(
            rng.uniform(0.87, 0.98, n),
            rng.uniform(0.15, 0.45, n) * np.where(pale, 0.7, 1.0),
            rng.uniform(0.75, 0.95, n),
        ),
        "fibres": rng.uniform(0, 1, (n, 10, 10)).astype(r.F32),
        "noise": rng.uniform(0.015, 0.04, n).astype(r.F32),
    }


def _nucleus_sdf(x: np.ndarray, y: np.ndarray, p: Params, j: int) -> np.ndarray:
    """An ellipse whose outline wobbles with three lobes (irregular nuclei), for slot ``j`` of each image."""
    a = p["radius"][:, j] * np.sqrt(p["elong"][:, j])
    b = p["radius"][:, j] / np.sqrt(p["elong"][:, j])
    u, v = r.local(x, y, p["cx"][:, j], p["cy"][:, j], p["theta"][:, j])
    rho = np.maximum(np.hypot(u, v), 1e-6)
    sin_t, cos_t = v / rho, u / rho
    sin3, cos3 = 3 * sin_t - 4 * sin_t**3, 4 * cos_t**3 - 3 * cos_t  # triple-angle: no arctan2 needed
    c, s = np.cos(p["phase"][:, j]), np.sin(p["phase"][:, j])
    wobble = r.b(p["wobble"][:, j]) * (sin3 * r.b(c) + cos3 * r.b(s))
    return (np.hypot(u / r.b(a), v / r.b(b)) - 1 - wobble) * np.minimum(r.b(a), r.b(b))


def _render_cells(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    texture = (r.smooth_noise(p["fibres"], size) - 0.5)[..., None] * 0.18
    img = np.clip(r.fill(p["eosin"], size) + texture, 0, 1)
    reach = float((p["radius"] * np.sqrt(p["elong"]) * (1 + p["wobble"])).max()) + 0.05
    for j in range(CELL_SLOTS):
        on = np.flatnonzero(p["exists"][:, j])
        if len(on) == 0:
            break
        q = {key: p[key][on] for key in ("cx", "cy", "radius", "elong", "theta", "phase", "wobble", "dark")}
        index, x, y = r.window(size, q["cx"][:, j], q["cy"][:, j], reach)
        alpha = r.coverage(_nucleus_sdf(x, y, q, j), size)
        colour = p["eosin"][on] * (1 - q["dark"][:, j, None]) + p["hema"][on] * q["dark"][:, j, None]
        index = (on[index[0]], index[1], index[2])
        img[index] = r.over(img[index], alpha, colour)
    return r.add_noise(img, rng, p["noise"])


CELLS = SyntheticTask(
    info=TaskInfo("cells", "specialized", "classification", len(CELL_NAMES)),
    shows="a stained tissue patch; class from nuclei density, size, shape and stain uptake: normal, inflamed "
    "(dense small dark), tumour (large irregular), necrotic (pale fragments); stain colours vary per slide",
    mirrors="patch_camelyon / diabetic_retinopathy (medical imaging)",
    quadrant="classification, high FID (FT expected to win)",
    sample=_sample_cells,
    render=_render_cells,
    class_names=CELL_NAMES,
)

# --- satellite: land-cover tiles -------------------------------------------------------------------------------

SATELLITE_NAMES = ("forest", "pasture", "crops", "water", "river", "highway", "residential", "industrial")


def _hsv(rng: np.random.Generator, n: int, h: tuple, s: tuple, v: tuple) -> np.ndarray:
    return r.hsv_to_rgb(np.mod(rng.uniform(*h, n), 1), rng.uniform(*s, n), rng.uniform(*v, n))


def _sample_satellite(rng: np.random.Generator, labels: np.ndarray, ctx: Any) -> Params:
    n = len(labels)
    return {
        "label": labels,
        "forest": _hsv(rng, n, (0.22, 0.4), (0.35, 0.8), (0.18, 0.42)),
        "grass": _hsv(rng, n, (0.15, 0.32), (0.25, 0.65), (0.4, 0.7)),
        "soil": _hsv(rng, n, (0.06, 0.14), (0.25, 0.6), (0.4, 0.75)),
        "water": _hsv(rng, n, (0.5, 0.64), (0.35, 0.85), (0.2, 0.55)),
        "grey": _hsv(rng, n, (0.0, 1.0), (0.0, 0.12), (0.4, 0.75)),
        "roof": _hsv(rng, n, (-0.05, 0.08), (0.2, 0.7), (0.35, 0.8)),
        "theta": rng.uniform(0, np.pi, n).astype(r.F32),
        "offset": rng.uniform(-0.5, 0.5, n).astype(r.F32),
        "freq": rng.uniform(2.5, 5.0, n).astype(r.F32),
        "width": rng.uniform(0.06, 0.16, n).astype(r.F32),
        "amp": rng.uniform(0.2, 0.45, n).astype(r.F32),
        "field4": rng.uniform(0, 1, (n, 4, 4)).astype(r.F32),
        "field16": rng.uniform(0, 1, (n, 16, 16)).astype(r.F32),
        "blocks": rng.uniform(-0.9, 0.9, (n, 4, 4)).astype(r.F32),
        "noise": rng.uniform(0.01, 0.04, n).astype(r.F32),
    }


def _cover(c: np.ndarray, size: int) -> np.ndarray:
    return r.fill(c, size)


def _satellite(k: int, p: Params, size: int) -> np.ndarray:
    """The tile of land-cover class ``k`` for the images in ``p``."""
    x, y = r.grid(size)
    u, v = r.local(x, y, 0.0, r.b(p["offset"])[:, 0, 0], p["theta"])
    fine = (r.smooth_noise(p["field16"], size) - 0.5)[..., None]
    coarse = (r.smooth_noise(p["field4"], size) - 0.5)[..., None]
    land = _cover(p["grass"], size) + 0.12 * coarse + 0.06 * fine
    if k == 0:
        return _cover(p["forest"], size) + 0.25 * fine + 0.08 * coarse
    if k == 1:
        return land
    if k == 2:
        strip = np.floor(u * r.b(p["freq"]) + 10)
        pick = (np.mod(strip * 7.31, 3.0) / 3.0)[..., None]
        field = np.where(
            pick < 0.34,
            p["soil"][:, None, None],
            np.where(pick < 0.67, p["grass"][:, None, None], p["forest"][:, None, None]),
        )
        return field + 0.05 * fine
    if k == 3:
        return _cover(p["water"], size) + 0.05 * coarse
    if k == 4:
        bed = np.abs(v - r.b(p["amp"]) * np.sin(u * r.b(p["freq"]) * 0.8)) - r.b(p["width"])
        return r.over(land, r.coverage(bed, size), p["water"])
    if k == 5:
        road = r.coverage(np.abs(v) - r.b(p["width"]) * 0.5, size)
        return r.over(land, road, p["grey"])
    if k == 6:
        cell = 1 / r.b(p["freq"] * 1.6)
        du = np.abs(np.mod(u, cell) - cell / 2) - cell * 0.28
        dv = np.abs(np.mod(v, cell) - cell / 2) - cell * 0.22
        houses = r.coverage(np.maximum(du, dv), size)
        return r.over(r.over(land, 0.8 * np.ones_like(du), p["grey"]) * 0.5 + land * 0.5, houses, p["roof"])
    ground = _cover(p["grey"], size) * 0.9 + 0.05 * fine
    for j in range(4):
        bx, by = p["blocks"][:, j, 0], p["blocks"][:, j, 1]
        box = r.sdf_box(
            x,
            y,
            bx,
            by,
            0.15 + 0.1 * np.abs(p["blocks"][:, j, 2]),
            0.12 + 0.1 * np.abs(p["blocks"][:, j, 3]),
            p["theta"],
        )
        ground = r.over(ground, r.coverage(box, size), np.clip(p["grey"] * 1.35 + 0.1, 0, 1))
    return ground


def _render_satellite(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    img = np.zeros((len(p["label"]), size, size, 3), r.F32)
    for k in np.unique(p["label"]):
        idx = np.flatnonzero(p["label"] == k)
        img[idx] = _satellite(int(k), {key: val[idx] for key, val in p.items()}, size)
    return r.add_noise(img, rng, p["noise"])


SATELLITE = SyntheticTask(
    info=TaskInfo("satellite", "specialized", "classification", len(SATELLITE_NAMES)),
    shows="a top-down land-cover tile: forest, pasture, crops (strip fields), water, river, highway, "
    "residential (house grid), industrial (large roofs); colours vary by season and sensor",
    mirrors="eurosat / resisc45 (remote sensing)",
    quadrant="classification, high FID (FT expected to win)",
    sample=_sample_satellite,
    render=_render_satellite,
    class_names=SATELLITE_NAMES,
)

SPECIALIZED: tuple[SyntheticTask, ...] = (CELLS, SATELLITE)
