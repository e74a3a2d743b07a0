"""The FGVC transforms equal torchvision's on the same image, and the cached path gives the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark_layouts import class_image
from vptlab.data import augment
from vptlab.data.images import ImageList
from vptlab.data.ragged import augmented_batch, load_ragged, random_crop_reader

tv = pytest.importorskip("torchvision.transforms")
F = pytest.importorskip("torchvision.transforms.functional")


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "odd.png"
    class_image(1, 7, (301, 263)).save(path)  # odd sizes: the centre crop's half-pixel rounding matters
    return path


def _lst(files: list[Path]) -> ImageList:
    n = len(files)
    return ImageList(
        tuple(str(f) for f in files),
        tuple(f.name for f in files),
        np.arange(n) % 2,
        tuple(f"list:{i + 1}" for i in range(n)),
        "t",
    )


@pytest.mark.parametrize("crop", [224, 32, 384])
def test_eval_transform_equals_torchvision_resize_centercrop_on_pil(image_file: Path, crop: int) -> None:
    # torchvision on a PIL image: PIL's antialiased resize, so equality is exact (bit for bit)
    ref = tv.Compose([tv.Resize(augment.resize_dim(crop)), tv.CenterCrop(crop)])(
        Image.open(image_file).convert("RGB")
    )
    ours = augment.decode_eval(image_file, crop)
    assert ours.shape == (crop, crop, 3)
    np.testing.assert_array_equal(ours, np.asarray(ref))


def test_eval_transform_within_rounding_of_torchvision_on_tensors(image_file: Path) -> None:
    # torchvision on a uint8 tensor resizes with its own antialiased kernel: not bit-equal, within rounding
    import torch

    x = torch.from_numpy(np.array(Image.open(image_file).convert("RGB"))).permute(2, 0, 1)
    ref = tv.Compose([tv.Resize(256, antialias=True), tv.CenterCrop(224)])(x).permute(1, 2, 0).numpy()
    diff = np.abs(augment.decode_eval(image_file, 224).astype(int) - ref.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.5


def test_resize_dims_match_the_reference_table() -> None:
    assert [augment.resize_dim(c) for c in (224, 384, 448)] == [256, 438, 512]
    assert augment.shorter_side_size(500, 375, 256) == (341, 256)  # int(256 * 500 / 375) = 341


def test_train_crops_and_flips_equal_torchvision_functional_given_the_offsets(image_file, tmp_path) -> None:
    entry = load_ragged(_lst([image_file]), 224, cache_dir=tmp_path / "cache").imageset.images
    resized = tv.Resize(256)(Image.open(image_file).convert("RGB"))
    np.testing.assert_array_equal(
        entry.image(0), np.asarray(resized)
    )  # the cache holds the Resize(256) image
    params = augment.draw_crop_flips(entry.image_shapes(), 224, seed=3, epoch=0)
    for epoch in range(6):
        params = augment.draw_crop_flips(entry.image_shapes(), 224, seed=3, epoch=epoch)
        top, left, flip = int(params.tops[0]), int(params.lefts[0]), bool(params.flips[0])
        ref = F.crop(resized, top, left, 224, 224)
        ref = F.hflip(ref) if flip else ref
        np.testing.assert_array_equal(entry.augmented(np.array([0]), params)[0], np.asarray(ref))


def test_random_crops_are_seeded_cover_the_range_and_flip_about_half() -> None:
    shapes = np.tile([[256, 300]], (4000, 1))
    a = augment.draw_crop_flips(shapes, 224, seed=1, epoch=2)
    b = augment.draw_crop_flips(shapes, 224, seed=1, epoch=2)
    c = augment.draw_crop_flips(shapes, 224, seed=1, epoch=3)
    np.testing.assert_array_equal(a.lefts, b.lefts)
    assert not np.array_equal(a.lefts, c.lefts)
    assert a.tops.min() == 0 and a.tops.max() == 32 and a.lefts.max() == 76  # 0..h-224, 0..w-224 inclusive
    assert 0.45 < a.flips.mean() < 0.55


def test_a_batch_does_not_depend_on_the_batch_it_is_read_in(tmp_path: Path) -> None:
    files = []
    for i in range(5):
        files.append(tmp_path / f"{i}.png")
        class_image(i, i, (40 + 7 * i, 37)).save(files[-1])
    images = load_ragged(_lst(files), 32, cache_dir=tmp_path / "cache").imageset.images
    whole = augmented_batch(images, np.arange(5), seed=4, epoch=1)
    transform = random_crop_reader(type("S", (), {"images": images})(), 4, 1)
    np.testing.assert_array_equal(transform(np.array([1, 3])), whole[[1, 3]])
    # the default (eval) view of the cached set is the centre crop: what evaluation and FID see
    np.testing.assert_array_equal(np.asarray(images)[2], augment.decode_eval(files[2], 32))
