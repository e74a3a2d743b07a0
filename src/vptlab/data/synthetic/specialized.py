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
    "count": ((8, 22), (12, 30), (8, 22), (12, 32)),
    "radius": ((0.05, 0.09), (0.04, 0.075), (0.065, 0.12), (0.03, 0.065)),
    "elong": ((1.0, 1.4), (1.0, 1.3), (1.1, 1.8), (1.0, 1.7)),
    "dark": ((0.45, 0.8), (0.55, 0.95), (0.5, 0.9), (0.35, 0.75)),
    "wobble": ((0.0, 0.12), (0.0, 0.1), (0.04, 0.22), (0.06, 0.3)),
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
        # Staining strength varies per slide and scales every nucleus's darkness.
        "dark": _per_class(rng, labels, _CELL_RANGES["dark"], (n, k))
        * rng.uniform(0.75, 1.1, (n, 1)).astype(r.F32),
        "wobble": _per_class(rng, labels, _CELL_RANGES["wobble"], (n, k)),
        "theta": rng.uniform(0, np.pi, (n, k)).astype(r.F32),
        "phase": rng.uniform(0, 2 * np.pi, (n, k)).astype(r.F32),
        # Stain colours vary from slide to slide: hematoxylin (nuclei) blue-purple, eosin (tissue) pink.
        "hema": r.hsv_to_rgb(
            rng.uniform(0.68, 0.8, n), rng.uniform(0.35, 0.75, n), rng.uniform(0.3, 0.55, n)
        ),
        "eosin": r.hsv_to_rgb(
            rng.uniform(0.87, 0.98, n),
            rng.uniform(0.15, 0.45, n) * np.where(pale, 0.85, 1.0),
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
    # Colour ranges overlap between covers (dark pasture, pale forest, green water), as seasons and sensors do.
    return {
        "label": labels,
        "forest": _hsv(rng, n, (0.2, 0.42), (0.3, 0.8), (0.18, 0.5)),
        "grass": _hsv(rng, n, (0.12, 0.35), (0.2, 0.65), (0.3, 0.65)),
        "soil": _hsv(rng, n, (0.05, 0.15), (0.15, 0.6), (0.35, 0.7)),
        "water": _hsv(rng, n, (0.42, 0.64), (0.25, 0.85), (0.15, 0.5)),
        "grey": _hsv(rng, n, (0.0, 1.0), (0.0, 0.15), (0.35, 0.7)),
        "roof": _hsv(rng, n, (-0.05, 0.1), (0.1, 0.6), (0.35, 0.75)),
        "land_mix": rng.uniform(0, 0.6, n).astype(r.F32),
        "theta": rng.uniform(0, np.pi, n).astype(r.F32),
        "offset": rng.uniform(-0.5, 0.5, n).astype(r.F32),
        "freq": rng.uniform(2.5, 5.0, n).astype(r.F32),
        "width": rng.uniform(0.03, 0.12, n).astype(r.F32),
        "amp": rng.uniform(0.2, 0.45, n).astype(r.F32),
        "rough": rng.uniform(0, 1, n).astype(r.F32),
        "field4": rng.uniform(0, 1, (n, 4, 4)).astype(r.F32),
        "field16": rng.uniform(0, 1, (n, 16, 16)).astype(r.F32),
        "blocks": rng.uniform(-0.9, 0.9, (n, 4, 4)).astype(r.F32),
        "gain": rng.uniform(0.7, 1.3, n).astype(r.F32),
        "haze": rng.uniform(0, 0.25, n).astype(r.F32),
        "contrast": rng.uniform(0.3, 1.0, n).astype(r.F32),
        "noise": rng.uniform(0.01, 0.04, n).astype(r.F32),
    }


def _col(c: np.ndarray) -> np.ndarray:
    return c[:, None, None, :]


def _tile_geometry(p: Params, size: int) -> dict[str, np.ndarray]:
    """Shared fields of a tile: rotated coordinates, fine and coarse noise, and a mixed land cover."""
    x, y = r.grid(size)
    u, v = r.local(x, y, 0.0, r.b(p["offset"])[:, 0, 0], p["theta"])
    fine = (r.smooth_noise(p["field16"], size) - 0.5)[..., None]
    coarse = (r.smooth_noise(p["field4"], size) - 0.5)[..., None]
    mix = r.b(p["land_mix"])[..., None]
    land = _col(p["grass"]) * (1 - mix) + _col(p["soil"]) * mix + 0.12 * coarse + 0.08 * fine
    return {"x": x, "y": y, "u": u, "v": v, "fine": fine, "coarse": coarse, "land": land}


def _forest(p: Params, g: dict, size: int) -> np.ndarray:
    return _col(p["forest"]) + (0.12 + 0.2 * r.b(p["rough"])[..., None]) * g["fine"] + 0.08 * g["coarse"]


def _pasture(p: Params, g: dict, size: int) -> np.ndarray:
    return _col(p["grass"]) + 0.12 * g["coarse"] + (0.03 + 0.14 * r.b(p["rough"])[..., None]) * g["fine"]


def _crops(p: Params, g: dict, size: int) -> np.ndarray:
    pick = np.mod(np.floor(g["u"] * r.b(p["freq"]) + 10) * 7.31, 3.0)[..., None]
    field = np.where(pick < 1, _col(p["soil"]), np.where(pick < 2, _col(p["grass"]), _col(p["forest"])))
    return field + 0.06 * g["fine"]


def _water(p: Params, g: dict, size: int) -> np.ndarray:
    shore = r.coverage(r.b(p["amp"]) + 0.75 - g["v"], size)[..., None]  # a strip of shore along one side
    return (_col(p["water"]) + 0.05 * g["coarse"]) * (1 - shore) + g["land"] * shore


def _river(p: Params, g: dict, size: int) -> np.ndarray:
    bed = np.abs(g["v"] - r.b(p["amp"]) * np.sin(g["u"] * r.b(p["freq"]) * 0.8)) - r.b(p["width"])
    return r.over(g["land"], r.coverage(bed, size), p["water"])


def _highway(p: Params, g: dict, size: int) -> np.ndarray:
    road = r.coverage(np.abs(g["v"]) - r.b(p["width"]) * 0.5, size)
    return r.over(g["land"], road, p["grey"])


def _residential(p: Params, g: dict, size: int) -> np.ndarray:
    cell = 1 / r.b(p["freq"] * 1.6)
    du = np.abs(np.mod(g["u"], cell) - cell / 2) - cell * 0.28
    dv = np.abs(np.mod(g["v"], cell) - cell / 2) - cell * 0.22
    ground = 0.5 * g["land"] + 0.5 * _col(p["grey"])
    return r.over(ground, r.coverage(np.maximum(du, dv), size) * r.b(p["contrast"]), p["roof"])


def _industrial(p: Params, g: dict, size: int) -> np.ndarray:
    ground = _col(p["grey"]) * 0.9 + 0.05 * g["fine"]
    for j in range(4):
        half_w = 0.15 + 0.1 * np.abs(p["blocks"][:, j, 2])
        half_h = 0.12 + 0.1 * np.abs(p["blocks"][:, j, 3])
        box = r.sdf_box(
            g["x"], g["y"], p["blocks"][:, j, 0], p["blocks"][:, j, 1], half_w, half_h, p["theta"]
        )
        roof = np.clip(p["grey"] * (1 + 0.4 * p["contrast"][:, None]) + 0.1, 0, 1)
        ground = r.over(ground, r.coverage(box, size), roof)
    return ground


_SATELLITE_DRAW = (_forest, _pasture, _crops, _water, _river, _highway, _residential, _industrial)


def _render_satellite(p: Params, size: int, rng: np.random.Generator, ctx: Any) -> np.ndarray:
    img = np.zeros((len(p["label"]), size, size, 3), r.F32)
    for k in np.unique(p["label"]):
        idx = np.flatnonzero(p["label"] == k)
        sub = {key: val[idx] for key, val in p.items()}
        img[idx] = _SATELLITE_DRAW[k](sub, _tile_geometry(sub, size), size)
    # Illumination and atmosphere: a gain and an additive haze per tile.
    img = img * p["gain"][:, None, None, None] + p["haze"][:, None, None, None]
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
