"""The TF-style resize (``interpolation = "tf-bilinear"``) against independent computations, and its plumbing.

``tf.image.resize(method="bilinear", antialias=False)`` samples output pixel ``i`` at source coordinate
``(i + 0.5) * in / out - 0.5`` (half-pixel centres), clamped to the image, and blends the two neighbours on each
axis.  The reference below writes that formula as a plain per-pixel loop; torch's ``interpolate(mode="bilinear",
align_corners=False, antialias=False)`` has the same semantics (it clamps negative source coordinates to 0 and
repeats the last pixel past the end, as TF's kernel does with its index clamps), so it is a second, independent
implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vptlab.data.images import check_interpolation, decode_image
from vptlab.data.resize import RESIZE_MODES, resize_image, resize_pil, tf_bilinear_resize
from vptlab.errors import UserError


def loop_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear, one output pixel at a time, in float64."""
    in_h, in_w, channels = image.shape
    out = np.zeros((out_h, out_w, channels))

    def tap(i: int, n_in: int, n_out: int) -> tuple[int, int, float]:
        x = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        lo = math.floor(x)
        return lo, min(lo + 1, n_in - 1), x - lo

    for i in range(out_h):
        y0, y1, wy = tap(i, in_h, out_h)
        for j in range(out_w):
            x0, x1, wx = tap(j, in_w, out_w)
            top = (1 - wx) * image[y0, x0] + wx * image[y0, x1]
            bottom = (1 - wx) * image[y1, x0] + wx * image[y1, x1]
            out[i, j] = (1 - wy) * top + wy * bottom
    return out


def torch_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=False)
    return y[0].permute(1, 2, 0).numpy()


SHAPES = [
    ((37, 53), (16, 16)),
    ((40, 40), (10, 10)),
    ((7, 5), (16, 16)),
    ((300, 200), (32, 32)),
    ((9, 9), (9, 4)),
]


@pytest.mark.parametrize(("src", "dst"), SHAPES)
def test_matches_the_half_pixel_formula_and_torch(src, dst):
    image = np.random.default_rng(0).integers(0, 256, (*src, 3), dtype=np.uint8)
    ours = tf_bilinear_resize(image, *dst)
    assert ours.dtype == np.float32 and ours.shape == (*dst, 3)
    np.testing.assert_allclose(ours, loop_reference(image, *dst), atol=2e-3)
    np.testing.assert_allclose(ours, torch_reference(image, *dst), atol=2e-3)


def test_a_hand_computed_case():
    """A ramp 0, 10, 20, 30 halved: samples at 0.5 and 2.5, so 5 and 25 (PIL's antialiased filter averages
    more neighbours and gives other values)."""
    ramp = np.tile(np.array([0, 10, 20, 30], np.uint8)[None, :, None], (4, 1, 3))
    assert tf_bilinear_resize(ramp, 4, 2)[0, :, 0].tolist() == [5.0, 25.0]
    pil = resize_image(ramp, 2, "bilinear")  # 4x4 -> 2x2 with PIL, for contrast
    assert pil[0, :, 0].tolist() != [5, 25]


def test_no_antialias_when_shrinking():
    """A 1-pixel checkerboard shrunk 4x: TF-style bilinear samples between two pixels (aliasing: it keeps
    the pattern's contrast at some pixels), PIL's antialiased bilinear averages to a flat grey."""
    board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.repeat(board[:, :, None], 3, axis=2)
    tf_style = tf_bilinear_resize(board, 16, 16)
    np.testing.assert_allclose(tf_style, loop_reference(board, 16, 16), atol=1e-3)
    pil = resize_image(board, 16, "bilinear").astype(float)
    assert pil.std() < 10 and abs(pil.mean() - 127.5) < 5


def test_resize_image_rounds_the_float_result_to_uint8():
    image = np.random.default_rng(1).integers(0, 256, (50, 31, 3), dtype=np.uint8)
    out = resize_image(image, 24, "tf-bilinear")
    assert out.dtype == np.uint8 and out.shape == (24, 24, 3)
    assert np.abs(out - tf_bilinear_resize(image, 24, 24)).max() <= 0.5 + 1e-4
    assert np.array_equal(resize_image(out, 24, "tf-bilinear"), out)  # already the size: unchanged


def test_decode_image_uses_the_mode(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (45, 60, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(image).save(path)
    tf_style = decode_image(path, 16, "tf-bilinear")
    assert np.array_equal(tf_style, np.clip(np.rint(torch_reference(image, 16, 16)), 0, 255).astype(np.uint8))
    assert not np.array_equal(tf_style, decode_image(path, 16, "bilinear"))


def test_the_mode_is_validated_and_recorded(tmp_path):
    from vptlab.data import load_task
    from vptlab.train import RunConfig

    assert "tf-bilinear" in RESIZE_MODES and check_interpolation("tf-bilinear") == "tf-bilinear"
    with pytest.raises(UserError, match="tf-bilinear"):
        check_interpolation("tf-bicubic")
    assert (
        RunConfig(method="linear", task="blobs", interpolation="tf-bilinear").interpolation == "tf-bilinear"
    )
    with pytest.raises(UserError, match="interpolation"):
        RunConfig(method="linear", task="blobs", interpolation="area")
    rng = np.random.default_rng(3)
    for c in range(2):
        (tmp_path / "data" / f"c{c}").mkdir(parents=True)
        for i in range(6):
            img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / f"c{c}" / f"{i}.png")
    kw = {"stage": "final", "image_size": 8, "cache_dir": tmp_path / "cache"}
    tf_style = load_task(f"folder:{tmp_path / 'data'}", "data", interpolation="tf-bilinear", **kw)
    pil = load_task(f"folder:{tmp_path / 'data'}", "data", interpolation="bilinear", **kw)
    assert tf_style.record["interpolation"] == "tf-bilinear" and pil.record["interpolation"] == "bilinear"
    assert not np.array_equal(np.asarray(tf_style.train.images), np.asarray(pil.train.images))


def test_non_square_resize_of_a_pil_image():
    """The FGVC path resizes the shorter side (any aspect): PIL filters as PIL, tf-bilinear as the formula."""
    image = np.random.default_rng(4).integers(0, 256, (30, 44, 3), dtype=np.uint8)
    img = Image.fromarray(image)
    assert np.array_equal(
        np.asarray(resize_pil(img, (22, 15), "bilinear")), np.asarray(img.resize((22, 15), Image.BILINEAR))
    )
    tf_style = np.asarray(resize_pil(img, (22, 15), "tf-bilinear")).astype(float)
    assert np.abs(tf_style - loop_reference(image, 15, 22)).max() <= 0.5 + 1e-3
    assert resize_pil(img, (44, 30), "tf-bilinear") is img
