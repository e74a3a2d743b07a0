"""The VPT reference's FGVC transforms, on cached pixels.

The reference (KMnP/vpt ``src/data/transforms.py``) builds, for crop size C (224; 448 -> 512, 384 -> 438):

* train: ``Resize(R)`` (shorter side to R = C * 8 // 7, aspect kept), ``RandomCrop(C)``,
  ``RandomHorizontalFlip(0.5)``;
* eval: ``Resize(R)``, ``CenterCrop(C)``.

vptlab decodes each image once at the ``Resize(R)`` stage (PIL, bilinear, antialiased: exactly what torchvision
does to a PIL image) and caches it (:mod:`vptlab.data.ragged`); the crop and flip are then index arithmetic on
the cached pixels, redrawn every epoch from ``(seed, epoch)``.  The offsets follow torchvision's ranges
(``top`` in ``0..h-C``, ``left`` in ``0..w-C``, flip with probability 0.5) and the centre crop its rounding
(``int(round((h - C) / 2))``, Python's round-half-even), so given the same offsets the pixels equal
``torchvision.transforms.functional.crop`` / ``hflip`` of the resized image, and the eval view equals
``Resize(R) + CenterCrop(C)`` on the PIL image, bit for bit.  The random numbers are numpy's, not torch's: the
same seed gives the same crops in vptlab, not the crops a torchvision run would draw.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vptlab.data import images as _images
from vptlab.data.resize import resize_pil

TRANSFORM_NAME = "reference-fgvc"  # recorded in a run's data record
_STREAM = 0x5EED_C0  # the crop stream of (seed, epoch): independent of the data order's stream


def resize_dim(crop: int) -> int:
    """The reference's resize size for a crop: 224 -> 256, 384 -> 438, 448 -> 512 (C * 8 // 7)."""
    return crop * 8 // 7


def shorter_side_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``Resize(int)`` output ``(width, height)``: shorter side to ``shorter``, long side
    ``int(shorter * long / short)`` (truncated, as torchvision computes it)."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def resize_shorter(img: Image.Image, shorter: int, interpolation: str = "bilinear") -> Image.Image:
    """``img`` resized as torchvision's ``Resize(shorter)`` resizes a PIL image (unchanged if already so)."""
    size = shorter_side_size(*img.size, shorter)
    if size == img.size:
        return img
    return resize_pil(img, size, interpolation)


def center_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """``(top, left)`` of torchvision's ``CenterCrop(crop)`` (which rounds half to even)."""
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def decode_resized(path: str | os.PathLike, shorter: int, interpolation: str = "bilinear") -> np.ndarray:
    """An image file as RGB uint8 ``(h, w, 3)``, shorter side resized to ``shorter``; :class:`BadImage` if
    unreadable (decoded as torchvision's default loader does: ``Image.open(f).convert("RGB")``)."""
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
        return np.asarray(resize_shorter(rgb, shorter, interpolation), dtype=np.uint8)
    except _images._DECODE_ERRORS as err:
        raise _images.BadImage(f"{type(err).__name__}: {err}") from None


def decode_eval(path: str | os.PathLike, crop: int, interpolation: str = "bilinear") -> np.ndarray:
    """The reference's eval transform of an image file: ``Resize(crop * 8 // 7)`` then ``CenterCrop(crop)``."""
    return center_crop(decode_resized(path, resize_dim(crop), interpolation), crop)


def center_crop(image: np.ndarray, crop: int) -> np.ndarray:
    top, left = center_offsets(image.shape[0], image.shape[1], crop)
    return image[top : top + crop, left : left + crop]


@dataclass(frozen=True)
class CropFlips:
    """One epoch's random crop offsets and flips, one row per image of a set."""

    tops: np.ndarray
    lefts: np.ndarray
    flips: np.ndarray


def draw_crop_flips(shapes: np.ndarray, crop: int, seed: int, epoch: int) -> CropFlips:
    """``RandomCrop(crop)`` + ``RandomHorizontalFlip(0.5)`` parameters for every image of shapes ``(N, 2)``
    (height, width), a function of ``(seed, epoch)`` only: a resumed run and any batch size see the same."""
    rng = np.random.default_rng([int(seed), int(epoch), _STREAM])
    u = rng.random((len(shapes), 3))
    span = shapes.astype(np.int64) - crop + 1  # offsets 0..h-crop inclusive, as torch.randint(0, h - th + 1)
    if len(span) and span.min() < 1:
        raise ValueError(
            f"an image is smaller than the crop {crop}: {shapes[np.argmin(span.min(1))].tolist()}"
        )
    tops = np.minimum((u[:, 0] * span[:, 0]).astype(np.int64), span[:, 0] - 1)
    lefts = np.minimum((u[:, 1] * span[:, 1]).astype(np.int64), span[:, 1] - 1)
    return CropFlips(tops, lefts, u[:, 2] < 0.5)


def crop_flip(image: np.ndarray, crop: int, top: int, left: int, flip: bool) -> np.ndarray:
    """``hflip(crop(image, top, left, crop, crop))`` on a uint8 ``(h, w, 3)`` array (flip only if ``flip``)."""
    out = image[top : top + crop, left : left + crop]
    return out[:, ::-1] if flip else out
