"""Resizing a decoded RGB image to the run's square size, by name (the run config's ``interpolation``).

Two families:

* PIL's filters (``nearest``, ``bilinear``, ``bicubic``, ``lanczos``): ``Image.resize``, which antialiases when
  it shrinks (the filter widens with the scale factor), the same as torchvision's ``Resize((s, s))`` on a PIL
  image.  vptlab's default.
* ``tf-bilinear``: what the reference code does to VTAB-1k images (``tf.image.resize(image, [s, s])`` in its
  ``tf_dataset.py``): bilinear interpolation between the two nearest source pixels on each axis, with
  half-pixel centres (output pixel ``i`` samples source coordinate ``(i + 0.5) * in / out - 0.5``, clamped to
  the image), no antialiasing, computed in float32.  When it shrinks an image by more than 2x it reads only
  some source pixels (aliasing), unlike PIL.  The same semantics as ``torch.nn.functional.interpolate(...,
  mode="bilinear", align_corners=False, antialias=False)``.  The reference keeps the float result; the decoded
  image cache stores uint8, so the result is rounded to the nearest grey level (at most 0.5/255 from TF's).

A resize takes and returns ``(H, W, 3)`` uint8 arrays, so it composes with any decoder (decode -> RGB uint8).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from vptlab.errors import UserError

TF_BILINEAR = "tf-bilinear"
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
RESIZE_MODES = (*PIL_FILTERS, TF_BILINEAR)


def check_resize_mode(name: str) -> str:
    """``name`` if it is a resize mode, else a :class:`UserError` listing the valid ones."""
    if name not in RESIZE_MODES:
        raise UserError(f"interpolation must be one of {', '.join(RESIZE_MODES)}, got {name!r}")
    return name


def resize_image(rgb: np.ndarray, size: int, mode: str = "bilinear") -> np.ndarray:
    """``rgb`` (``(H, W, 3)`` uint8) resized to ``size`` x ``size`` with ``mode``: uint8 ``(size, size, 3)``."""
    check_resize_mode(mode)
    if rgb.shape[:2] == (size, size):
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    if mode == TF_BILINEAR:
        out = tf_bilinear_resize(rgb, size, size)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    return np.asarray(img.resize((size, size), PIL_FILTERS[mode]), dtype=np.uint8)


def resize_pil(img: Image.Image, size: tuple[int, int], mode: str = "bilinear") -> Image.Image:
    """A PIL image resized to ``size`` = ``(width, height)`` with ``mode`` (any aspect; FGVC's shorter-side resize)."""
    check_resize_mode(mode)
    if img.size == size:
        return img
    if mode == TF_BILINEAR:
        out = tf_bilinear_resize(np.asarray(img.convert("RGB")), size[1], size[0])
        return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    return img.resize(size, PIL_FILTERS[mode])


def tf_bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``tf.image.resize(image, [height, width], "bilinear", antialias=False)``: float32 ``(height, width, C)``.

    Rows are interpolated along x first, then the two rows along y, each as ``a + (b - a) * t`` in float32,
    the order and form of TF's ``ResizeBilinear`` kernel (half-pixel centres).
    """
    src = np.asarray(image, dtype=np.float32)
    if src.ndim == 2:
        src = src[:, :, None]
    y0, y1, ty = _taps(src.shape[0], height)
    x0, x1, tx = _taps(src.shape[1], width)
    tx = tx[None, :, None]
    top = src[y0][:, x0] + (src[y0][:, x1] - src[y0][:, x0]) * tx
    bottom = src[y1][:, x0] + (src[y1][:, x1] - src[y1][:, x0]) * tx
    return (top + (bottom - top) * ty[:, None, None]).astype(np.float32)


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper source index and the weight of the upper one, per output index (half-pixel centres)."""
    scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(pos)
    lower = np.clip(floor.astype(np.int64), 0, in_size - 1)
    upper = np.clip(np.ceil(pos).astype(np.int64), 0, in_size - 1)
    return lower, upper, (pos - floor).astype(np.float32)
