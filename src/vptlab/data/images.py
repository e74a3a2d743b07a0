"""Image files: the lists that name them (``relative/path label`` lines) and decoding one to a fixed size.

Every real-data source (VTAB-1k folders, a user's folders) reduces to an :class:`ImageList`: absolute file paths,
integer labels, and for each entry the ``file:line`` it came from, so any later problem (a corrupt image found
while decoding) can still be reported where the user can fix it.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from vptlab.data.base import manifest_of
from vptlab.data.resize import RESIZE_MODES, check_resize_mode, resize_image
from vptlab.errors import UserError

# What vptlab reads (Pillow decodes these without optional plugins); anything else found where images are looked
# for is named on the console, never silently dropped: UNSUPPORTED_IMAGE_EXTENSIONS with a hint to convert.
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
)
UNSUPPORTED_IMAGE_EXTENSIONS = (
    ".heic",
    ".heif",
    ".avif",
    ".svg",
    ".psd",
    ".raw",
    ".cr2",
    ".nef",
    ".arw",
    ".dng",
    ".jxl",
)
INTERPOLATIONS = (
    RESIZE_MODES  # the run config's `interpolation`: PIL filters and "tf-bilinear" (data/resize.py)
)
# A truncated file must fail loudly, not decode as a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# What PIL raises for unreadable, corrupt or truncated files (plugins differ).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class BadImage(Exception):
    """An image file that exists but cannot be decoded; ``str(err)`` says why."""


@dataclass(frozen=True)
class ImageList:
    """Image files with labels: what a split file (or a folder scan) names, before any decoding.

    ``files`` are real (symlink-resolved) paths; ``members`` are the names used in manifests (paths relative to the task folder, so a manifest does not
    depend on where the data lies); ``origins`` say where each entry came from (``file:line``).
    """

    files: tuple[str, ...]
    members: tuple[str, ...]
    labels: np.ndarray
    origins: tuple[str, ...]
    description: str = ""

    def __len__(self) -> int:
        return len(self.files)

    @property
    def manifest(self) -> str:
        return manifest_of(list(self.members), self.labels)

    def classes_seen(self) -> np.ndarray:
        return np.unique(self.labels)

    def select(self, keep: Callable[[int], bool], description: str = "") -> ImageList:
        """The entries whose index passes ``keep``, in order."""
        idx = [i for i in range(len(self)) if keep(i)]
        return ImageList(
            tuple(self.files[i] for i in idx),
            tuple(self.members[i] for i in idx),
            self.labels[idx],
            tuple(self.origins[i] for i in idx),
            description or self.description,
        )

    @staticmethod
    def concat(lists: list[ImageList], description: str = "") -> ImageList:
        """The lists one after another; an entry already present (same member) is kept once, first."""
        seen: set[str] = set()
        files, members, labels, origins = [], [], [], []
        for lst in lists:
            for f, m, y, o in zip(lst.files, lst.members, lst.labels.tolist(), lst.origins):
                if m not in seen:
                    seen.add(m)
                    files.append(f)
                    members.append(m)
                    labels.append(y)
                    origins.append(o)
        return ImageList(
            tuple(files), tuple(members), np.asarray(labels, np.int64), tuple(origins), description
        )


def check_interpolation(name: str) -> str:
    """``name`` if it is a resize mode (:data:`INTERPOLATIONS`), else a :class:`UserError` listing them."""
    return check_resize_mode(name)


def decode_image(path: str | os.PathLike, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """Decode an image file to RGB and resize it to ``size`` x ``size``: uint8 ``(size, size, 3)``.

    Decoding is :func:`read_rgb` (every mode to RGB uint8, EXIF orientation applied); the resize is
    :func:`vptlab.data.resize.resize_image` with ``interpolation``: a PIL filter (antialiased when shrinking, as
    torchvision's ``Resize((size, size))`` on a PIL image; vptlab's default), or ``"tf-bilinear"``, the reference
    code's ``tf.image.resize`` (bilinear, half-pixel centres, no antialias).
    Raises :class:`BadImage` for unreadable or truncated files.
    """
    check_interpolation(interpolation)
    return resize_image(read_rgb(path), size, interpolation)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to RGB uint8 ``(H, W, 3)`` as a viewer shows it; no resizing.

    The first frame of an animated GIF/WebP or a multi-page TIFF; EXIF orientation applied; every mode
    converted by :func:`to_rgb`.  Raises :class:`BadImage` for unreadable, truncated or unsupported files.
    """
    try:
        with Image.open(path) as img:
            img.seek(0)
            img.load()  # decode fully now: truncation errors surface here, not later
            return to_rgb(ImageOps.exif_transpose(img))
    except _DECODE_ERRORS as err:
        raise BadImage(f"{type(err).__name__}: {err}") from None


def to_rgb(img: Image.Image) -> np.ndarray:
    """One decoded image, any PIL mode, as RGB uint8 ``(H, W, 3)``.

    * 16-bit grayscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): scaled from 0..65535 to 0..255
      (``round(v / 257)``), never clipped.
    * 32-bit integer (``I``): values within 0..65535 are 16-bit samples (how PIL reads some 16-bit files),
      scaled as above; any other range is stretched from its minimum to its maximum.
    * 32-bit float (``F``): values within 0..1 are scaled by 255; any other range is stretched from its minimum
      to its maximum; NaN becomes 0.
    * Transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent colour): composited over white, as a
      browser shows it on a white page: ``round(c * a / 255 + 255 * (1 - a / 255))``.
    * ``CMYK``: ``round((255 - c) * (255 - k) / 255)`` per channel (no colour profile).
    * ``1`` (bilevel) and ``L``: grey replicated into the three channels; other modes through PIL's convert.
    """
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        return _gray(_scale_integer(np.asarray(img)))
    if mode == "F":
        return _gray(_scale_float(np.asarray(img, dtype=np.float64)))
    if mode == "CMYK":
        cmyk = np.asarray(img, dtype=np.float64)
        rgb = (255.0 - cmyk[..., :3]) * (255.0 - cmyk[..., 3:4]) / 255.0
        return np.rint(rgb).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:4] / 255.0
        return np.rint(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if mode in ("1", "L"):
        return _gray(np.asarray(img.convert("L"), dtype=np.uint8))
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _gray(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=-1)


def _scale_integer(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    lo, hi = (int(v.min()), int(v.max())) if v.size else (0, 0)
    if lo >= 0 and hi <= 65535:
        return np.rint(v / 257.0).astype(np.uint8)
    return _stretch(v.astype(np.float64), lo, hi)


def _scale_float(values: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(v * 255.0).astype(np.uint8)
    return _stretch(v, lo, hi)


def _stretch(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    return np.rint((v - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


LINE_FORMAT = "'relative/path label'"
_CONTROL = ("Cc", "Zl", "Zp")
_INT = re.compile(r"[+-]?[0-9]{1,18}")  # a longer number is no label (and int() refuses > 4300 digits)


def read_list_file(
    path: Path, base: Path, *, num_classes: int | None, confine: bool = True, check_files: bool = True
) -> tuple[ImageList, list[str]]:
    """Parse a list file (one ``relative/path label`` per line, paths relative to ``base``).

    Returns the entries that passed and every problem found, each as ``file:line: what is wrong (what is
    valid)``; a caller that wants strictness raises on the first (:func:`raise_problems`).  ``confine`` rejects
    paths that leave ``base`` (``..``, absolute, or a symlink resolving outside), as a VTAB-1k task folder must
    be self-contained.  ``num_classes`` bounds the labels when known.
    """
    if not path.is_file():
        raise UserError(f"{path}: split file not found")
    resolver = _Resolver(str(base), confine, check_files)
    files, members, labels, origins, problems = [], [], [], [], []
    # lines end at "\n" only, as an editor counts them (str.splitlines also breaks at \f, \x1c, \u2028, ...)
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
        if not line.strip():
            continue
        origin = f"{path}:{lineno}"
        entry = _parse_line(line, origin, num_classes, resolver)
        if isinstance(entry, str):
            problems.append(entry)
            continue
        files.append(entry[0])
        members.append(entry[1])
        labels.append(entry[2])
        origins.append(origin)
    if not files and not problems:
        problems.append(f"{path}: no entries; expected lines {LINE_FORMAT}")
    lst = ImageList(tuple(files), tuple(members), np.asarray(labels, np.int64), tuple(origins), path.stem)
    return lst, problems


def _parse_line(
    line: str, origin: str, num_classes: int | None, resolver: _Resolver
) -> tuple[str, str, int] | str:
    """One list line -> ``(file, member, label)``, or the problem with it as a message."""
    parts = line.strip().rsplit(maxsplit=1)
    if len(parts) != 2 or not _is_int(parts[1]):
        return f"{origin}: expected {LINE_FORMAT} with an integer label, got {line.strip()[:80]!r}"
    rel, label = parts[0], int(parts[1])
    if any(unicodedata.category(ch) in _CONTROL for ch in rel):  # NUL, tab, CR, line separators...
        return f"{origin}: path {rel[:80]!r} holds a control character; expected {LINE_FORMAT}"
    if num_classes is not None and not 0 <= label < num_classes:
        return f"{origin}: label {label} out of range; valid labels are 0..{num_classes - 1}"
    if label < 0:
        return f"{origin}: label {label} is negative; labels are 0, 1, 2, ..."
    file = resolver.resolve(rel)
    if file.startswith("!"):
        return f"{origin}: {file[1:]}"
    return file, rel, label


class _Resolver:
    """Turns list paths into real file paths, fast enough for a 73,728-line split file.

    The real path of each folder is computed once (most images share a few folders); each file costs one
    ``lstat``, plus a ``realpath`` only when it is itself a symlink.  Problems come back as ``"!message"``.
    """

    def __init__(self, base: str, confine: bool, check_files: bool) -> None:
        self.base, self.confine, self.check_files = base, confine, check_files
        self.base_real = os.path.join(os.path.realpath(base), "")
        self.dirs: dict[str, str] = {}

    def resolve(self, rel: str) -> str:
        if self.confine and os.path.isabs(rel):
            return f"!path {rel!r} is absolute; paths must be relative to {self.base}"
        joined = os.path.join(self.base, rel)
        folder, name = os.path.split(joined)
        if name in ("", ".", ".."):
            real = os.path.realpath(joined)
        else:
            if folder not in self.dirs:
                self.dirs[folder] = os.path.realpath(folder)
            real = os.path.join(self.dirs[folder], name)
        if not self._inside(real):
            return f"!path {rel!r} leaves the task folder {self.base}; paths must stay inside it"
        try:
            st = os.lstat(real)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(real)
                if not self._inside(real):
                    return f"!path {rel!r} leaves the task folder {self.base}; paths must stay inside it"
                st = os.stat(real)
        except OSError:
            st = None
        if self.check_files and (st is None or not stat.S_ISREG(st.st_mode)):
            return f"!image not found: {joined}"
        return real

    def _inside(self, real: str) -> bool:
        return not self.confine or real.startswith(self.base_real)


def _is_int(text: str) -> bool:
    """ASCII digits only: ``int()`` would also take '1_0' or Arabic-Indic digits, never meant as labels."""
    return _INT.fullmatch(text) is not None


def raise_problems(problems: list[str], hint: str = "") -> None:
    """Raise the first problem as a :class:`UserError` (saying how many more there are), if any."""
    if problems:
        more = f" (and {len(problems) - 1} more problems{hint})" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)
