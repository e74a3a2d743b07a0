"""FID: the distance equals pytorch-fid's, statistics round-trip through .npz, caching, image folders, Inception."""

from __future__ import annotations

from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image

from vptlab.analysis.fid import (
    FIDStats,
    compute_fid,
    fid_from_stats,
    frechet_distance,
    image_set_stats,
    load_stats,
    save_stats,
    stats_from_features,
)
from vptlab.data.base import ImageSet, manifest_of
from vptlab.errors import UserError

pfid = pytest.importorskip("pytorch_fid.fid_score")


def _features(seed: int, n: int = 200, d: int = 16, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return rng.normal(size=(n, d)) @ mix + shift


# pytorch-fid 0.3 still passes scipy's deprecated ``disp`` to sqrtm.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")


@pytest.mark.parametrize(("d", "shift"), [(2, 0.0), (8, 0.5), (16, 2.0), (64, 0.0)])
def test_frechet_distance_equals_pytorch_fid(d, shift):
    a, b = _features(0, d=d), _features(1, d=d, shift=shift)
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = pfid.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(float(theirs), rel=1e-9, abs=1e-9)


def test_one_dimension_is_the_closed_form():
    """(pytorch-fid 0.3 cannot do 1-d with scipy >= 1.16: its sqrtm unpacking breaks.)"""
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert value == pytest.approx(4.0 + 4.0 + 9.0 - 2 * 6.0)


def test_singular_covariances_match_pytorch_fid():
    """Fewer samples than dimensions: both take the same eps-on-the-diagonal path."""
    a, b = _features(2, n=10, d=32), _features(3, n=10, d=32, shift=1.0)
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = pfid.calculate_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(float(theirs), rel=1e-6)


def test_distance_to_itself_is_zero_and_mismatched_sizes_fail():
    a = _features(4)
    st = stats_from_features(a)
    assert fid_from_stats(st, st) == pytest.approx(0.0, abs=1e-6)
    other = stats_from_features(_features(5, d=8))
    with pytest.raises(UserError, match="different feature sizes"):
        fid_from_stats(st, other)


def test_stats_round_trip_in_pytorch_fid_layout(tmp_path):
    st = stats_from_features(_features(6), key="backbone-x", description="six")
    path = tmp_path / "six.npz"
    save_stats(path, st)
    back = load_stats(path)
    np.testing.assert_array_equal(back.mu, st.mu)
    np.testing.assert_array_equal(back.sigma, st.sigma)
    assert (back.count, back.features, back.description) == (200, "backbone-x", "six")
    with np.load(path) as f:  # what pytorch-fid reads from a stats file
        np.testing.assert_array_equal(f["mu"][:], st.mu)
        np.testing.assert_array_equal(f["sigma"][:], st.sigma)


def test_published_style_stats_file_with_only_mu_and_sigma(tmp_path):
    path = tmp_path / "published.npz"
    np.savez(path, mu=np.zeros(4), sigma=np.eye(4))
    st = load_stats(path)
    assert st.count == 0 and st.mu.shape == (4,)
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(4))
    with pytest.raises(UserError, match="'mu' and 'sigma'"):
        load_stats(bad)
    with pytest.raises(UserError, match="no such"):
        load_stats(tmp_path / "missing.npz")


class _MeanColour:
    """A stand-in extractor: per-image channel means and stds (6-d), counting its calls."""

    key = "test-mean-colour"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        x = images.astype(np.float64)
        return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def _imageset(seed: int, n: int = 30, bright: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.clip(rng.integers(0, 200, (n, 8, 8, 3)) + bright, 0, 255).astype(np.uint8)
    labels = np.zeros(n, dtype=np.int64)
    return ImageSet(images, labels, manifest_of([f"s{seed}:{i}" for i in range(n)], labels))


def test_stats_are_cached_per_manifest_and_extractor(tmp_path):
    ex = _MeanColour()
    first = image_set_stats(_imageset(0), ex, cache_dir=tmp_path)
    second = image_set_stats(_imageset(0), ex, cache_dir=tmp_path)
    assert ex.calls == 1
    np.testing.assert_array_equal(first.sigma, second.sigma)
    image_set_stats(_imageset(1), ex, cache_dir=tmp_path)
    assert ex.calls == 2


def _write_folder(root, seed: int, n: int, bright: int):
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        arr = np.clip(rng.integers(0, 150, (10, 12, 3)) + bright, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(sub / f"{i}.png")
    return root


def test_fid_between_folders_orders_by_difference(tmp_path):
    ex = _MeanColour()
    ex.image_size = 8
    a = _write_folder(tmp_path / "a", 0, 24, 0)
    a2 = _write_folder(tmp_path / "a2", 1, 24, 0)
    far = _write_folder(tmp_path / "far", 2, 24, 90)
    near, _, _ = compute_fid(a, a2, ex, cache_dir=tmp_path / "c")
    distant, sa, sb = compute_fid(a, far, ex, cache_dir=tmp_path / "c")
    assert 0 <= near < distant
    assert sa.count == 24 and sb.count == 24
    save_stats(tmp_path / "a.npz", sa)
    via_file, _, _ = compute_fid(tmp_path / "a.npz", far, ex, cache_dir=tmp_path / "c")
    assert via_file == pytest.approx(distant)


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        compute_fid(tmp_path / "nope", tmp_path, _MeanColour())


def test_inception_offline_without_weights_names_the_option(monkeypatch):
    from pytorch_fid import inception as pfi

    from vptlab.analysis.fid_features import InceptionFeatures

    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr(pfi, "load_state_dict_from_url", offline)
    with pytest.raises(UserError, match="--inception-weights"):
        InceptionFeatures()(np.zeros((2, 8, 8, 3), dtype=np.uint8))


def test_unknown_feature_type_is_a_user_error():
    from vptlab.analysis.fid_features import make_extractor

    with pytest.raises(UserError, match="inception, backbone"):
        make_extractor("sift")


@pytest.mark.slow
def test_inception_from_a_local_weights_file(tmp_path, monkeypatch):
    """pytorch-fid's network loads a local file (here: random weights in the FID layout) and gives 2048-d."""
    import torch
    from pytorch_fid import inception as pfi

    from vptlab.analysis.fid_features import InceptionFeatures

    torch.manual_seed(0)
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", lambda self, sd, *a, **k: None)
    net = pfi.fid_inception_v3()
    monkeypatch.undo()
    path = tmp_path / "pt_inception.pth"
    torch.save(net.state_dict(), path)
    ex = InceptionFeatures(weights=path)
    feats = ex(np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8))
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()
    assert ex.key.startswith("inception-pool3-")
    with pytest.raises(UserError, match="no such file"):
        InceptionFeatures(weights=tmp_path / "missing.pth")


def test_fidstats_is_plain_data():
    st = FIDStats(np.zeros(2), np.eye(2))
    assert st.count == 0 and st.features == ""


def test_backbone_features_from_a_local_checkpoint(tmp_path):
    """The offline feature path: a vptlab backbone's pre-logit CLS features, images resized to its input."""
    from safetensors.torch import save_file

    from vptlab.analysis.fid_features import BackboneFeatures
    from vptlab.backbones import create_backbone

    model = create_backbone("vptlab-tiny", num_classes=2, pretrained=False)
    path = tmp_path / "tiny.safetensors"
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("head")}, str(path)
    )
    ex = BackboneFeatures("vptlab-tiny", checkpoint=path)
    images = np.random.default_rng(0).integers(0, 255, (5, 48, 48, 3), dtype=np.uint8)
    feats = ex(images)
    assert feats.shape == (5, 64) and np.isfinite(feats).all()
    assert ex.image_size == 32 and ex.key.startswith("backbone-vptlab-tiny-")
    np.testing.assert_allclose(ex(images[:2]), feats[:2], rtol=1e-5, atol=1e-6)  # deterministic, eval mode


def test_cli_fid_saves_statistics_and_compares_stats_files(tmp_path, capsys):
    import json

    from safetensors.torch import save_file

    from vptlab.backbones import create_backbone
    from vptlab.cli import main

    model = create_backbone("vptlab-tiny", num_classes=2, pretrained=False)
    ckpt = tmp_path / "tiny.safetensors"
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("head")}, str(ckpt)
    )
    a, b = _write_folder(tmp_path / "a", 0, 12, 0), _write_folder(tmp_path / "b", 1, 12, 80)
    assert main(["fid", str(a), "--save-stats", str(tmp_path / "a.npz"), "--checkpoint", str(ckpt)]) == 0
    assert load_stats(tmp_path / "a.npz").count == 12
    assert main(["fid", str(a), str(b), "--checkpoint", str(ckpt), "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert main(["fid", str(tmp_path / "a.npz"), str(b), "--checkpoint", str(ckpt), "--json"]) == 0
    via_file = json.loads(capsys.readouterr().out)
    assert via_file["fid"] == pytest.approx(direct["fid"]) and direct["fid"] > 0
    assert main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]) == 0  # no model needed
    assert capsys.readouterr().out.startswith("FID 0.0000")


def test_backbone_features_of_a_convnet_and_a_pooled_vit_say_which_backbone(tmp_path):
    """FID features come from the chosen backbone, pooled as it designs its head, and say so."""
    import torch

    from vptlab.analysis.fid_features import BackboneFeatures
    from vptlab.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("resnet18", num_classes=3, pretrained=False)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    feats = BackboneFeatures("resnet18", checkpoint=tmp_path / "r18.pth")
    images = (np.random.default_rng(0).random((3, 40, 40, 3)) * 255).astype(np.uint8)
    out = feats(images)
    assert out.shape == (3, 512) and np.isfinite(out).all()
    assert feats.describe().startswith("resnet18 (convnet, avg pooling, pre-logit features, weights ")
