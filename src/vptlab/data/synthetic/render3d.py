"""A tiny batched 3-D renderer for the smallNORB-like tasks: box-and-prism toys, orthographic camera, z-buffer.

Objects are unions of convex parts (boxes, triangular prisms) given as faces of up to four vertices.  Each image
has its own object instance, camera azimuth and elevation, and light; faces are rasterised one at a time over the
whole batch with a running z-buffer; silhouettes are anti-aliased analytically from each face's edge distances.
"""

from __future__ import annotations

import numpy as np

from vptlab.data.synthetic import render as r

MAX_FACES = 18
OBJECT_NAMES = ("house", "car", "plane", "chair", "lamp")


def _box(c: tuple, s: tuple) -> list[np.ndarray]:
    """Six quads of an axis-aligned box with centre ``c`` and full sizes ``s``, wound counter-clockwise seen
    from outside (so the right-hand normal points out)."""
    cx, cy, cz = c
    hx, hy, hz = (v / 2 for v in s)
    v = np.array(
        [[cx + dx * hx, cy + dy * hy, cz + dz * hz] for dz in (-1, 1) for dy in (-1, 1) for dx in (-1, 1)]
    )
    quads = ((0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5))
    return [v[list(q)] for q in quads]


def _roof(c: tuple, s: tuple) -> list[np.ndarray]:
    """A triangular prism along x (a gable roof) standing on the plane ``z = c[2] - s[2] / 2``."""
    cx, cy, cz = c
    hx, hy, hz = (v / 2 for v in s)
    a0, b0, t0 = [cx - hx, cy - hy, cz - hz], [cx - hx, cy + hy, cz - hz], [cx - hx, cy, cz + hz]
    a1, b1, t1 = [cx + hx, cy - hy, cz - hz], [cx + hx, cy + hy, cz - hz], [cx + hx, cy, cz + hz]
    faces = [[a0, t0, b0, b0], [a1, b1, t1, t1], [a0, b0, b1, a1], [a0, a1, t1, t0], [b0, t0, t1, b1]]
    return [np.array(f, float) for f in faces]


def _object(kind: int, d: np.ndarray) -> list[np.ndarray]:
    """The faces of object ``kind``; ``d`` holds per-instance size factors (around 1) for its parts."""
    if kind == 0:  # house with an off-centre chimney
        return (
            _box((0, 0, 0.25 * d[2]), (1.2 * d[0], 0.8 * d[1], 0.5 * d[2]))
            + _roof((0, 0, 0.5 * d[2] + 0.2), (1.2 * d[0], 0.8 * d[1], 0.4 * d[3]))
            + _box((0.35 * d[0], 0.2, 0.65 * d[2]), (0.15, 0.15, 0.5 * d[4]))
        )
    if kind == 1:  # car: body and a cabin set towards the back
        return _box((0, 0, 0.2), (1.4 * d[0], 0.6 * d[1], 0.3 * d[2])) + _box(
            (-0.2 * d[3], 0, 0.45 * d[2]), (0.7 * d[3], 0.55 * d[1], 0.25 * d[4])
        )
    if kind == 2:  # plane: fuselage, wing forward of centre, tail fin
        return (
            _box((0, 0, 0.3), (1.6 * d[0], 0.22, 0.22))
            + _box((0.15 * d[3], 0, 0.3), (0.4, 1.6 * d[1], 0.06))
            + _box((-0.7 * d[0], 0, 0.55 * d[2]), (0.25, 0.06, 0.35 * d[4]))
        )
    if kind == 3:  # chair: seat and back on one side
        return _box((0, 0, 0.3 * d[2]), (0.8 * d[0], 0.8 * d[1], 0.15)) + _box(
            (-0.35 * d[0], 0, 0.65 * d[2] + 0.1 * d[3]), (0.12, 0.8 * d[1], 0.8 * d[4])
        )
    # lamp: a base, an offset post and a head reaching forward
    return (
        _box((0, 0, 0.05), (0.7 * d[0], 0.5 * d[1], 0.1))
        + _box((-0.2, 0, 0.5 * d[2]), (0.1, 0.1, 0.9 * d[2]))
        + _box((0.05 * d[3], 0, 0.95 * d[2]), (0.6 * d[3], 0.25, 0.2 * d[4]))
    )


def build_objects(kinds: np.ndarray, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(B, MAX_FACES, 4, 3)`` (centred, bounding radius 1) and a face mask ``(B, MAX_FACES)``."""
    verts = np.zeros((len(kinds), MAX_FACES, 4, 3), r.F32)
    mask = np.zeros((len(kinds), MAX_FACES), bool)
    for i, (k, d) in enumerate(zip(kinds.tolist(), dims)):
        faces = np.stack(_object(k, d))
        pts = faces.reshape(-1, 3)
        faces = faces - (pts.min(0) + pts.max(0)) / 2
        faces /= np.linalg.norm(faces.reshape(-1, 3), axis=1).max()
        verts[i, : len(faces)], mask[i, : len(faces)] = faces, True
    return verts, mask


def _camera(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """World -> camera rotation rows (screen right, screen down, depth away from the camera), ``(B, 3, 3)``."""
    ca, sa, ce, se = np.cos(azimuth), np.sin(azimuth), np.cos(elevation), np.sin(elevation)
    right = np.stack([-sa, ca, np.zeros_like(ca)], -1)
    down = np.stack([se * ca, se * sa, -ce], -1)
    away = np.stack([-ce * ca, -ce * sa, -se], -1)
    return np.stack([right, down, away], 1).astype(r.F32)


def render_objects(
    verts: np.ndarray,
    mask: np.ndarray,
    azimuth: np.ndarray,
    elevation: np.ndarray,
    light: np.ndarray,
    colour: np.ndarray,
    background: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Render each image's object over ``background`` (``(B, H, W, 3)``).

    ``light`` is a unit direction in camera coordinates (towards the light); ``colour`` ``(B, 3)``; ``scale`` the
    screen radius of the object's bounding sphere.  A pixel takes the nearest face whose outline holds its
    centre (z-buffer); the silhouette is anti-aliased with the faces' analytic coverage.
    """
    size = background.shape[1]
    # A uniform scale keeps normals and depth order; the camera is orthographic.
    cam = np.einsum("bij,bfvj->bfvi", _camera(azimuth, elevation), verts) * scale[:, None, None, None]
    normal = np.cross(cam[:, :, 1] - cam[:, :, 0], cam[:, :, 2] - cam[:, :, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    facing = mask & (normal[..., 2] < -1e-3)  # normals point out; the camera looks along +depth
    shade = (0.3 + 0.7 * np.maximum(np.einsum("bfi,bi->bf", normal, light), 0)).astype(r.F32)
    x, y = r.grid(size)
    zbuf = np.full(background.shape[:3], np.inf, r.F32)
    face_shade = np.zeros_like(zbuf)  # shade of the nearest face holding the pixel centre
    edge_shade = np.zeros_like(zbuf)  # shade of the most-covering face, for silhouette pixels
    cover = np.zeros_like(zbuf)
    for f in range(MAX_FACES):
        on = np.flatnonzero(facing[:, f])  # back faces and padding are skipped image by image
        if len(on) == 0:
            continue
        depth, alpha = _rasterise(cam[on, f], normal[on, f], x, y, size)
        nearer = (alpha >= 0.5) & (depth < zbuf[on])
        zbuf[on] = np.where(nearer, depth, zbuf[on])
        face_shade[on] = np.where(nearer, r.b(shade[on, f]), face_shade[on])
        edge_shade[on] = np.where(alpha > cover[on], r.b(shade[on, f]), edge_shade[on])
        cover[on] = np.maximum(alpha, cover[on])
    lit = np.where(np.isfinite(zbuf), face_shade, edge_shade)
    return r.over(background, cover, lit[..., None] * colour[:, None, None, :])


def _rasterise(
    quad: np.ndarray, normal: np.ndarray, x: np.ndarray, y: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Depth on the face's plane and the anti-aliased coverage of one convex face per image."""
    px, py = quad[..., 0], quad[..., 1]
    area = np.sum(px * np.roll(py, -1, 1) - np.roll(px, -1, 1) * py, 1)
    sign = np.where(area >= 0, -1.0, 1.0)  # interior points have edge values of the opposite sign
    sdf = np.full((len(quad),) + x.shape[1:], -np.inf, r.F32)
    for i in range(4):
        x0, y0, x1, y1 = px[:, i], py[:, i], px[:, (i + 1) % 4], py[:, (i + 1) % 4]
        length = np.hypot(x1 - x0, y1 - y0)
        if not (length > 1e-9).any():
            continue
        # Signed distance to the edge's line, positive outside; a repeated vertex (triangle) is ignored.
        k = np.where(length > 1e-9, -sign / np.maximum(length, 1e-9), 0.0)
        dist = ((x - r.b(x0)) * r.b(y1 - y0) - (y - r.b(y0)) * r.b(x1 - x0)) * r.b(k)
        sdf = np.maximum(sdf, np.where(r.b(length > 1e-9), dist, -np.inf))
    nz = np.where(np.abs(normal[:, 2]) < 1e-6, -1e-6, normal[:, 2])
    q0 = quad[:, 0]
    depth = r.b(q0[:, 2]) - (
        r.b(normal[:, 0]) * (x - r.b(q0[:, 0])) + r.b(normal[:, 1]) * (y - r.b(q0[:, 1]))
    ) / r.b(nz)
    return depth.astype(r.F32), r.coverage(sdf, size)
