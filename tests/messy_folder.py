"""A folder shaped like a real export, for the own-images tests: every odd file a user's folder holds.

``make_messy_folder(root)`` writes it and returns what a correct reader must do with it: the images it must use
(relative paths) and the files it must name (unused or unreadable), each by a name that appears in the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Messy:
    root: Path
    used: tuple[str, ...]  # images that must be read (relative to root)
    unreadable: tuple[str, ...]  # images that exist but cannot be decoded (zero-byte, truncated)
    not_used: tuple[str, ...]  # files that are not images vptlab reads: named, never used
    small_class: str  # a class with one image: never in val or test


def _rgb(rng: np.random.Generator, h: int, w: int, base: int) -> np.ndarray:
    img = rng.integers(0, 60, (h, w, 3)).astype(np.int64)
    img[..., base % 3] += 150
    return img.clip(0, 255).astype(np.uint8)


def make_messy_folder(root: Path) -> Messy:
    rng = np.random.default_rng(0)
    cats, dogs, owl = root / "cats", root / "dogs", root / "owl"
    for d in (cats / "nested" / "deeper", dogs, owl):
        d.mkdir(parents=True, exist_ok=True)
    used = []

    def save(img: Image.Image, rel: str, **kw) -> None:
        img.save(root / rel, **kw)
        used.append(rel)

    save(Image.fromarray(_rgb(rng, 30, 40, 0)), "cats/a.JPG", quality=95)
    save(Image.fromarray(_rgb(rng, 24, 24, 0)), "cats/b.png")
    save(Image.fromarray(_rgb(rng, 24, 24, 0)[..., 0]), "cats/gray.png")
    save(
        Image.fromarray(np.dstack([_rgb(rng, 20, 20, 0), rng.integers(0, 256, (20, 20), np.uint8)])),
        "cats/rgba.png",
    )
    save(Image.fromarray(_rgb(rng, 16, 16, 0)).convert("CMYK"), "cats/cmyk.jpg")
    save(Image.fromarray(rng.integers(0, 65536, (18, 18), dtype=np.uint16)), "cats/deep16.png")
    pal = Image.fromarray(_rgb(rng, 20, 20, 0)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save(pal, "cats/palette.bmp")
    frames = [Image.fromarray(_rgb(rng, 16, 16, 0)), Image.fromarray(_rgb(rng, 16, 16, 2))]
    save(frames[0], "cats/anim.gif", save_all=True, append_images=frames[1:])
    save(Image.fromarray(_rgb(rng, 5, 5, 0)), "cats/tiny5x5.png")
    save(Image.fromarray(_rgb(rng, 600, 900, 0)), "cats/large.jpg", quality=80)
    save(Image.fromarray(_rgb(rng, 20, 20, 0)), "cats/nested/deeper/c.jpeg")
    save(Image.fromarray(_rgb(rng, 20, 20, 0)), "cats/café_ü猫.png")
    for i in range(8):
        save(Image.fromarray(_rgb(rng, 20, 20, 1)), f"dogs/d{i}.PNG")
    os.symlink(root / "dogs" / "d0.PNG", root / "dogs" / "link-to-d0.png")
    used.append("dogs/link-to-d0.png")
    save(Image.fromarray(_rgb(rng, 20, 20, 2)), "owl/only.webp", lossless=True)

    (cats / "zero.png").write_bytes(b"")
    Image.fromarray(_rgb(rng, 64, 64, 0)).save(cats / "whole.jpg")
    data = (cats / "whole.jpg").read_bytes()
    (cats / "whole.jpg").unlink()
    (cats / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cats / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cats / "photo.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    (dogs / "notes.txt").write_text("taken in 2021\n")
    (root / "README.md").write_text("my export\n")
    return Messy(
        root,
        tuple(sorted(used)),
        ("cats/zero.png", "cats/truncated.jpg"),
        (".DS_Store", "cats/.DS_Store", "cats/photo.HEIC", "dogs/notes.txt", "README.md"),
        "owl",
    )
