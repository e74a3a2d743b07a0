"""The image reader: every PIL mode to RGB uint8 as a user expects, checked against numpy on the raw array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.data.images import BadImage, read_rgb

RNG = np.random.default_rng(0)


def _gray3(v: np.ndarray) -> np.ndarray:
    return np.stack([v, v, v], axis=-1).astype(np.uint8)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.rint(rgb.astype(np.float64) * a + 255.0 * (1.0 - a)).astype(np.uint8)


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    raw = RNG.integers(0, 65536, (7, 9), dtype=np.uint16)
    raw[0, 0], raw[0, 1] = 0, 65535
    Image.fromarray(raw).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "I;16"
    got = read_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(got, _gray3(np.rint(raw / 257.0)))
    assert got.min() == 0 and got.max() == 255 and len(np.unique(got)) > 50  # not all white


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    raw = RNG.integers(0, 65536, (5, 6), dtype=np.uint16)
    Image.frombytes("I;16B", (6, 5), raw.astype(">u2").tobytes()).save(tmp_path / "b.tif")
    assert Image.open(tmp_path / "b.tif").mode == "I;16B"
    np.testing.assert_array_equal(read_rgb(tmp_path / "b.tif"), _gray3(np.rint(raw / 257.0)))


def test_32bit_integer_in_16bit_range_and_wide_range(tmp_path: Path) -> None:
    raw = RNG.integers(0, 65536, (4, 5)).astype(np.int32)
    Image.fromarray(raw, mode="I").save(tmp_path / "i.tif")
    np.testing.assert_array_equal(read_rgb(tmp_path / "i.tif"), _gray3(np.rint(raw / 257.0)))
    wide = RNG.integers(-100_000, 300_000, (4, 5)).astype(np.int32)
    Image.fromarray(wide, mode="I").save(tmp_path / "w.tif")
    lo, hi = wide.min(), wide.max()
    expected = np.rint((wide - lo) * (255.0 / (hi - lo)))
    np.testing.assert_array_equal(read_rgb(tmp_path / "w.tif"), _gray3(expected))


def test_float_unit_range_and_other_range(tmp_path: Path) -> None:
    unit = RNG.random((4, 6)).astype(np.float32)
    Image.fromarray(unit, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(
        read_rgb(tmp_path / "f.tif"), _gray3(np.rint(unit.astype(np.float64) * 255))
    )
    other = (RNG.random((4, 6)) * 1000 - 200).astype(np.float32)
    Image.fromarray(other, mode="F").save(tmp_path / "g.tif")
    v = other.astype(np.float64)
    expected = np.rint((v - v.min()) * (255.0 / (v.max() - v.min())))
    np.testing.assert_array_equal(read_rgb(tmp_path / "g.tif"), _gray3(expected))


def test_la_and_rgba_are_composited_over_white(tmp_path: Path) -> None:
    la = RNG.integers(0, 256, (5, 5, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "la.png"), _over_white(_gray3(la[..., 0]), la[..., 1]))
    rgba = RNG.integers(0, 256, (5, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgba.png"), _over_white(rgba[..., :3], rgba[..., 3]))


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    idx = RNG.integers(0, 4, (6, 6), dtype=np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette.flatten().tolist())
    img.save(tmp_path / "p.png", transparency=2)
    expected = palette[idx].copy()
    expected[idx == 2] = 255  # the transparent colour shows as the white page under it
    np.testing.assert_array_equal(read_rgb(tmp_path / "p.png"), expected)
    img.save(tmp_path / "p.bmp")  # a palette BMP (no transparency): the palette's colours
    np.testing.assert_array_equal(read_rgb(tmp_path / "p.bmp"), palette[idx])


def test_cmyk(tmp_path: Path) -> None:
    cmyk = RNG.integers(0, 256, (4, 7, 4), dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    c = cmyk.astype(np.float64)
    expected = np.rint((255 - c[..., :3]) * (255 - c[..., 3:4]) / 255)
    np.testing.assert_array_equal(read_rgb(tmp_path / "c.tif"), expected.astype(np.uint8))


def test_bilevel(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (8, 8)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").mode == "1"
    np.testing.assert_array_equal(read_rgb(tmp_path / "one.png"), _gray3(bits * 255))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    raw = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(raw).save(tmp_path / "r.png", exif=exif)
    got = read_rgb(tmp_path / "r.png")
    np.testing.assert_array_equal(got, np.rot90(raw, k=-1))
    assert got.shape == (6, 4, 3)


@pytest.mark.parametrize("fmt, kwargs", [("gif", {}), ("webp", {"lossless": True}), ("tiff", {})])
def test_first_frame_of_animations_and_pages(tmp_path: Path, fmt: str, kwargs: dict) -> None:
    first = np.zeros((6, 6, 3), np.uint8)
    first[:, :3] = (255, 0, 0)
    second = np.full((6, 6, 3), (0, 0, 255), np.uint8)
    frames = [Image.fromarray(first), Image.fromarray(second)]
    path = tmp_path / f"anim.{fmt}"
    frames[0].save(path, save_all=True, append_images=frames[1:], **kwargs)
    assert getattr(Image.open(path), "n_frames", 1) == 2
    np.testing.assert_array_equal(read_rgb(path), first)


def test_truncated_and_empty_files_are_bad(tmp_path: Path) -> None:
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("cut.jpg", "empty.png"):
        with pytest.raises(BadImage):
            read_rgb(tmp_path / name)
