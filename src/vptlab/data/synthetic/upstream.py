"""The upstream pretraining set for the bundled tiny backbone: FractalDB-style formula-driven images.

Each class is one random IFS (:mod:`fractals`); each image is a jittered variant of its class's system, drawn by
the chaos game in a random palette, mirrored or not, at a random scale and position, over a dark background with
a soft gradient.  The same "look" is reused by the downstream tasks that are meant to sit close to the upstream
distribution (low FID), so it lives here with the set itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from vptlab.data.base import ImageSet, TaskInfo, manifest_of
from vptlab.data.synthetic import fractals as f
from vptlab.data.synthetic import render as r
from vptlab.data.synthetic.spec import SyntheticTask, render_images, seed_sequence
from vptlab.data.synthetic.version import GENERATOR_VERSION
from vptlab.errors import require

UPSTREAM_JITTER = 0.05  # relative noise on each map parameter: FractalDB's intra-class variation


def upstream_info(num_classes: int = 100) -> TaskInfo:
    """The upstream set as a task: classification of ``num_classes`` fractal classes."""
    return TaskInfo("fractal_upstream", "natural", "classification", num_classes)


# --- the look, shared with near-upstream tasks --------------------------------------------------------------


def sample_background(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A dark background per image: a base colour, a soft linear gradient and a little low-frequency noise."""
    return {
        "bg_colour": r.hsv_to_rgb(rng.random(n), rng.uniform(0, 0.6, n), rng.uniform(0.0, 0.22, n)),
        "bg_angle": rng.uniform(0, 2 * np.pi, n).astype(r.F32),
        "bg_amp": rng.uniform(0, 0.12, n).astype(r.F32),
        "bg_noise": (rng.standard_normal((n, 4, 4)) * rng.uniform(0, 0.05, (n, 1, 1))).astype(r.F32),
    }


def draw_background(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    shade = r.b(p["bg_amp"]) * r.linear_gradient(size, p["bg_angle"]) + r.smooth_noise(p["bg_noise"], size)
    return np.clip(r.fill(p["bg_colour"], size) + shade[..., None], 0, 1)


def sample_palette(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Two bright colours of nearby hues and a direction: the fractal is shaded from one to the other."""
    hue = rng.random(n)
    sat = rng.uniform(0.3, 1.0, n)
    return {
        "fg_a": r.hsv_to_rgb(hue, sat, rng.uniform(0.75, 1.0, n)),
        "fg_b": r.hsv_to_rgb(np.mod(hue + rng.uniform(-0.15, 0.15, n), 1), sat, rng.uniform(0.75, 1.0, n)),
        "fg_angle": rng.uniform(0, 2 * np.pi, n).astype(r.F32),
    }


def draw_palette(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    t = (r.linear_gradient(size, p["fg_angle"])[..., None] + 1) / 2
    return p["fg_a"][:, None, None, :] * (1 - t) + p["fg_b"][:, None, None, :] * t


def sample_fractal_images(
    rng: np.random.Generator, labels: np.ndarray, systems: f.Systems, jitter: float = UPSTREAM_JITTER
) -> dict[str, np.ndarray]:
    """Per-image parameters of fractal images whose class ``labels`` index into ``systems``."""
    n = len(labels)
    var = f.jitter(rng, systems.take(labels), jitter)
    scale = rng.uniform(0.6, 0.95, n)
    room = 1 - scale  # keep the attractor inside the frame
    return {
        "mats": var.mats,
        "shifts": var.shifts,
        "probs": var.probs,
        "flip": rng.random(n) < 0.5,
        "scale": scale.astype(r.F32),
        "cx": (rng.uniform(-1, 1, n) * room).astype(r.F32),
        "cy": (rng.uniform(-1, 1, n) * room).astype(r.F32),
        **sample_palette(rng, n),
        **sample_background(rng, n),
    }


def render_fractal_images(
    p: dict[str, np.ndarray], size: int, rng: np.random.Generator, ctx: Any
) -> np.ndarray:
    chains, steps = f.num_points(size)
    pts = f.chaos_game(rng, f.Systems(p["mats"], p["shifts"], p["probs"]), chains, steps)
    pts = f.place(f.normalise(pts), p["scale"], p["cx"], p["cy"], flip=p["flip"])
    return f.draw_points(draw_background(p, size), pts, draw_palette(p, size))


# --- the upstream set ---------------------------------------------------------------------------------------


@cache
def upstream_systems(num_classes: int, seed: int) -> f.Systems:
    """The class systems: a prefix of one seeded stream, so fewer classes are a subset of more."""
    return f.sample_systems(np.random.default_rng(seed_sequence(seed, "upstream", "classes")), num_classes)


def _upstream_task(num_classes: int) -> SyntheticTask:
    return SyntheticTask(
        info=upstream_info(num_classes),
        shows="one random IFS fractal per class, jittered, random palette/position/scale, dark background",
        mirrors="FractalDB-1k (formula-driven pretraining)",
        quadrant="upstream",
        sample=lambda rng, labels, ctx: sample_fractal_images(rng, labels, ctx),
        render=render_fractal_images,
    )


def upstream(num_classes: int = 100, per_class: int = 400, image_size: int = 32, seed: int = 0) -> ImageSet:
    """The upstream pretraining set: ``num_classes * per_class`` fractal images, labels ``i % num_classes``.

    Deterministic by all four arguments; the classes of a smaller ``num_classes`` are the first classes of a
    larger one.  The default (100 x 400 = 40,000 images at 32x32) is what ``vptlab-tiny`` is pretrained on.
    """
    require(num_classes >= 2, f"upstream num_classes must be >= 2, got {num_classes}")
    require(per_class >= 1, f"upstream per_class must be >= 1, got {per_class}")
    require(image_size >= 8, f"image_size must be >= 8, got {image_size}")
    require(seed >= 0, f"seed must be >= 0, got {seed}")
    n = num_classes * per_class
    labels = np.arange(n, dtype=np.int64) % num_classes  # interleaved: every prefix is balanced
    systems = upstream_systems(num_classes, seed)
    ss = seed_sequence(seed, "upstream", "images", num_classes, per_class)
    images = render_images(_upstream_task(num_classes), labels, ss, image_size, systems)
    tag = f"synthetic-{GENERATOR_VERSION}:upstream:{num_classes}x{per_class}:{seed}:{image_size}"
    members = [f"{tag}:{i}" for i in range(n)]
    desc = f"synthetic upstream fractals, {num_classes} classes x {per_class} (seed {seed}, {image_size}px)"
    return ImageSet(images, labels, manifest_of(members, labels), desc)
