"""Finding the images of a folder: one walk, one order, and every other file named with the reason.

Every command that reads a folder of images (``data split``, ``data check``, ``train``, ``fid``, ``advise``, the
decoded-image cache) lists its files through :func:`walk_images`, so they all see the same files in the same order
(sorted relative POSIX paths).  A file that is not used is never dropped silently: it comes back in ``dropped`` as
``path: reason`` (hidden files such as ``.DS_Store``, files of other types, image formats vptlab cannot decode,
broken symbolic links), for the caller to show (:mod:`vptlab.data.notices`) and record.
"""

from __future__ import annotations

import os
from pathlib import Path

from vptlab.data.images import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS

# Files vptlab itself writes beside a user's images; never reported as "not an image".
OWN_FILES = ("labels.json", "train.txt", "val.txt", "test.txt", "task.json")


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not read as an image (``None``: it is one of :data:`IMAGE_EXTENSIONS`)."""
    suffix = path.suffix.lower()
    if path.name.startswith("."):
        return "hidden file, not an image"
    if not os.path.exists(path):
        return "broken symbolic link"
    if suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
        return f"image format {suffix} is not supported; convert it to PNG or JPEG"
    if suffix not in IMAGE_EXTENSIONS:
        return f"not an image (extension {suffix or 'none'}; images are {', '.join(IMAGE_EXTENSIONS)})"
    return None


def walk_images(folder: Path, root: Path) -> tuple[list[str], list[str]]:
    """Every image file under ``folder`` (recursively, following symbolic links once), and every other file.

    Returns the images as paths relative to ``root`` (sorted) and the dropped files as ``path: reason``.
    """
    images: list[str] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back up the tree: walked once already
            dirnames[:] = []
            dropped.append(f"{dirpath}: folder already read through another path (symbolic link loop)")
            continue
        seen.add(real)
        hidden = sorted(d for d in dirnames if d.startswith("."))
        dropped += [f"{os.path.join(dirpath, d)}{os.sep}: hidden folder, not read" for d in hidden]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            problem = file_problem(path)
            if problem is None:
                images.append(path.relative_to(root).as_posix())
            else:
                dropped.append(f"{path}: {problem}")
    return sorted(images), sorted(dropped)


def loose_files(root: Path) -> list[str]:
    """Files directly in a class-folder root: not in any class, so not used (vptlab's own files excepted)."""
    out = []
    for p in sorted(root.iterdir()):
        if p.is_dir() or p.name in OWN_FILES:
            continue
        why = file_problem(p) or "image outside any class sub-folder"
        out.append(f"{p}: {why} (not used; images go in {root}/<class>/)")
    return out
