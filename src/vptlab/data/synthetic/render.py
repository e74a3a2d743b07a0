"""Vectorised 2-D drawing primitives for the synthetic tasks.

Every primitive draws a whole batch at once: per-image parameters are arrays of shape ``(B,)`` and images are
float32 ``(B, H, W, 3)`` in ``[0, 1]``.  Shapes are described by signed distance functions (SDFs) in resolution-free
coordinates (``x`` right, ``y`` down, both in ``[-1, 1]`` across the image), so a scene renders at any image size
and edges are anti-aliased analytically from the pixel width instead of by upsampling.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each ``(1, H, W)``, spanning ``[-1, 1]`` across the image."""
    c = ((np.arange(size, dtype=F32) + 0.5) / size) * 2 - 1
    return c[None, None, :].repeat(size, 1), c[None, :, None].repeat(size, 2)


def b(v: np.ndarray | float) -> np.ndarray:
    """Per-image values ``(B,)`` broadcast against ``(B, H, W)`` maps."""
    return np.asarray(v, dtype=F32).reshape(-1, 1, 1)


def coverage(sdf: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased alpha from a signed distance (negative inside): a one-pixel linear ramp across the edge."""
    return np.clip(0.5 - sdf * (size / 2), 0.0, 1.0)


def local(x: np.ndarray, y: np.ndarray, cx, cy, theta) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in a frame centred at ``(cx, cy)`` and rotated by ``theta`` (radians)."""
    dx, dy = x - b(cx), y - b(cy)
    c, s = b(np.cos(theta)), b(np.sin(theta))
    return c * dx + s * dy, -s * dx + c * dy


def sdf_circle(x, y, cx, cy, r) -> np.ndarray:
    return np.hypot(x - b(cx), y - b(cy)) - b(r)


def sdf_ellipse(x, y, cx, cy, a, bb, theta) -> np.ndarray:
    """Approximate SDF of an ellipse with semi-axes ``a`` (along ``theta``) and ``bb``; exact on the axes."""
    u, v = local(x, y, cx, cy, theta)
    k = np.hypot(u / b(a), v / b(bb))
    return (k - 1) * np.minimum(b(a), b(bb))


def sdf_box(x, y, cx, cy, hw, hh, theta) -> np.ndarray:
    """Rectangle with half-width ``hw`` (along ``theta``) and half-height ``hh``."""
    u, v = local(x, y, cx, cy, theta)
    qx, qy = np.abs(u) - b(hw), np.abs(v) - b(hh)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def sdf_ngon(x, y, cx, cy, r, n: int, theta) -> np.ndarray:
    """Regular ``n``-gon with circumradius ``r`` (distance to the nearest edge line; exact inside)."""
    u, v = local(x, y, cx, cy, theta)
    sector = 2 * np.pi / n
    a = np.mod(np.arctan2(v, u), sector) - sector / 2
    return np.hypot(u, v) * np.cos(a) - b(r) * np.cos(np.pi / n)


def sdf_star(x, y, cx, cy, r, n: int, inner: float, theta) -> np.ndarray:
    """``n``-pointed star: radius varies linearly between ``inner * r`` and ``r`` with the angle."""
    u, v = local(x, y, cx, cy, theta)
    sector = 2 * np.pi / n
    t = np.abs(np.mod(np.arctan2(v, u), sector) / sector * 2 - 1)  # 1 at a point, 0 between points
    radius = b(r) * (inner + (1 - inner) * t)
    return (np.hypot(u, v) - radius) * 0.6  # the 0.6 keeps the ramp about a pixel wide along slanted edges


def window(size: int, cx: np.ndarray, cy: np.ndarray, half: float) -> tuple[tuple, np.ndarray, np.ndarray]:
    """The pixels within ``half`` (coordinate units) of each centre, as an index and coordinates ``(B, w, w)``.

    Small objects touch few pixels: drawing them on a window instead of the full frame is many times cheaper.
    Windows are clipped at the border (clipped pixels repeat, and repeat the same value), so
    ``canvas[index] = over(canvas[index], alpha, colour)`` composites in place.
    """
    w = 2 * int(np.ceil(half * size / 2)) + 2
    px = np.floor((np.asarray(cx) + 1) * size / 2).astype(np.int64) - w // 2 + 1
    py = np.floor((np.asarray(cy) + 1) * size / 2).astype(np.int64) - w // 2 + 1
    off = np.arange(w)
    xi = np.clip(px[:, None] + off, 0, size - 1)[:, None, :].repeat(w, 1)
    yi = np.clip(py[:, None] + off, 0, size - 1)[:, :, None].repeat(w, 2)
    bi = np.arange(len(px))[:, None, None]
    coords = lambda i: ((i + 0.5) / size * 2 - 1).astype(F32)  # noqa: E731
    return (bi, yi, xi), coords(xi), coords(yi)


def over(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Composite ``colour`` (``(B, 3)`` or ``(B, H, W, 3)``) over ``canvas`` with ``alpha`` ``(B, H, W)``."""
    colour = np.asarray(colour, dtype=F32)
    if colour.ndim == 2:
        colour = colour[:, None, None, :]
    a = alpha[..., None]
    return canvas * (1 - a) + colour * a


def fill(colour: np.ndarray, size: int) -> np.ndarray:
    """A canvas of one colour per image."""
    return np.broadcast_to(np.asarray(colour, F32)[:, None, None, :], (len(colour), size, size, 3)).copy()


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; ``h`` in turns (``[0, 1)``), result ``(..., 3)``."""
    h, s, v = (np.asarray(t, F32) for t in (h, s, v))
    k = np.mod(np.stack([5 + h * 6, 3 + h * 6, 1 + h * 6], -1), 6)
    w = np.clip(np.minimum(k, 4 - k), 0, 1)
    return v[..., None] * (1 - s[..., None] * w)


def random_colour(rng: np.random.Generator, n: int, s=(0.5, 1.0), v=(0.6, 1.0)) -> np.ndarray:
    """``n`` random colours of any hue with saturation and value drawn from the given ranges."""
    return hsv_to_rgb(rng.random(n), rng.uniform(*s, n), rng.uniform(*v, n))


def smooth_noise(values: np.ndarray, size: int) -> np.ndarray:
    """Bilinear interpolation of a coarse ``(B, g, g)`` value grid to ``(B, size, size)``.

    The grid is drawn once per image, independent of ``size``, so the same noise field renders at any size.
    """
    g = values.shape[-1]
    c = np.clip(((np.arange(size) + 0.5) / size) * (g - 1), 0, g - 1 - 1e-6)
    i0 = c.astype(np.int64)
    t = (c - i0).astype(F32)
    rows = values[:, i0] * (1 - t)[None, :, None] + values[:, i0 + 1] * t[None, :, None]
    return rows[:, :, i0] * (1 - t) + rows[:, :, i0 + 1] * t


def linear_gradient(size: int, angle: np.ndarray) -> np.ndarray:
    """A ramp ``(B, H, W)`` from -1 to 1 along ``angle`` (radians), for lighting and background shading."""
    x, y = grid(size)
    return (b(np.cos(angle)) * x + b(np.sin(angle)) * y) / np.sqrt(2)


def splat(points: np.ndarray, size: int, channel: np.ndarray | None = None, channels: int = 1) -> np.ndarray:
    """Accumulate points into density images: ``(B, H, W, channels)`` float32.

    ``points``: ``(B, P, 2)`` as ``(x, y)`` in ``[-1, 1]``; ``channel``: ``(B, P)`` integers in ``[0, channels)``
    saying which density map each point adds to.  Points are binned on a 2x finer grid and box-filtered down,
    which anti-aliases at a quarter of the cost of bilinear splatting; one ``np.bincount`` covers the batch.
    """
    nb, fine = len(points), 2 * size
    u = ((points[..., 0] + 1) * (fine / 2)).astype(np.int64)
    v = ((points[..., 1] + 1) * (fine / 2)).astype(np.int64)
    ok = (u >= 0) & (u < fine) & (v >= 0) & (v < fine)
    idx = np.arange(nb, dtype=np.int64)[:, None] * (channels * fine * fine) + v * fine + u
    if channel is not None:
        idx += channel.astype(np.int64) * (fine * fine)
    out = np.bincount(idx[ok], minlength=nb * channels * fine * fine).astype(F32)
    out = out.reshape(nb, channels, size, 2, size, 2).sum(axis=(3, 5)) / 4
    return out.transpose(0, 2, 3, 1)


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: np.ndarray | float) -> np.ndarray:
    """Per-pixel Gaussian sensor noise with a per-image standard deviation."""
    sig = np.asarray(sigma, F32).reshape(-1, 1, 1, 1)
    return img + rng.standard_normal(img.shape, dtype=F32) * sig


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float images in ``[0, 1]`` -> uint8, clipped and rounded."""
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
