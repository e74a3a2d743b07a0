"""Local checkpoints: Google's .npz layout, safetensors, .pth (weights only), shape errors, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vptlab.backbones import create_backbone
from vptlab.errors import UserError

ARGS = dict(depth=2, embed_dim=32, num_heads=2)


def _model(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return create_backbone("vptlab-tiny", num_classes=3, pretrained=False, **{**ARGS, **kw}).eval()


def to_google_npz(model, path, heads: int = 2) -> None:
    """Write ``model`` in the google-research/vision_transformer layout (the inverse of the loader)."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    d = model.embed_dim
    w = {
        "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": sd["patch_embed.proj.bias"],
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        "head/kernel": np.zeros((d, 21843), np.float32),  # an IN21k head: must be ignored
        "head/bias": np.zeros(21843, np.float32),
        "pre_logits/kernel": np.zeros((d, d), np.float32),
    }
    for i in range(len(model.blocks)):
        b, g = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        a = g + "MultiHeadDotProductAttention_1/"
        qkv_w, qkv_b = sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]
        for j, name in enumerate(("query", "key", "value")):
            w[f"{a}{name}/kernel"] = qkv_w[j * d : (j + 1) * d].T.reshape(d, heads, d // heads)
            w[f"{a}{name}/bias"] = qkv_b[j * d : (j + 1) * d].reshape(heads, d // heads)
        w[a + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, d // heads, d)
        w[a + "out/bias"] = sd[b + "attn.proj.bias"]
        w[g + "LayerNorm_0/scale"], w[g + "LayerNorm_0/bias"] = sd[b + "norm1.weight"], sd[b + "norm1.bias"]
        w[g + "LayerNorm_2/scale"], w[g + "LayerNorm_2/bias"] = sd[b + "norm2.weight"], sd[b + "norm2.bias"]
        w[g + "MlpBlock_3/Dense_0/kernel"] = sd[b + "mlp.fc1.weight"].T
        w[g + "MlpBlock_3/Dense_0/bias"] = sd[b + "mlp.fc1.bias"]
        w[g + "MlpBlock_3/Dense_1/kernel"] = sd[b + "mlp.fc2.weight"].T
        w[g + "MlpBlock_3/Dense_1/bias"] = sd[b + "mlp.fc2.bias"]
    np.savez(path, **w)


def _features(model, x):
    with torch.no_grad():
        return model.forward_head(model.forward_features(x), pre_logits=True)


def test_google_npz_loads_with_equal_outputs(tmp_path):
    source = _model(seed=1)
    to_google_npz(source, tmp_path / "ViT-tiny.npz")
    loaded = create_backbone(
        "vptlab-tiny", num_classes=3, checkpoint=tmp_path / "ViT-tiny.npz", **ARGS
    ).eval()
    loaded.head.load_state_dict(source.head.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded(x), source(x))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_state_dict_files_load(tmp_path, suffix):
    source = _model(seed=2)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = create_backbone("vptlab-tiny", num_classes=3, checkpoint=path, **ARGS).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_features(loaded, x), _features(source, x))


def test_position_embeddings_are_resampled_for_another_image_size(tmp_path):
    source = _model(seed=3)
    save_file({k: v for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    loaded = create_backbone(
        "vptlab-tiny", num_classes=3, checkpoint=tmp_path / "w.safetensors", image_size=64, **ARGS
    )
    assert loaded.pos_embed.shape == (1, 1 + 8 * 8, 32)
    torch.testing.assert_close(loaded.pos_embed[:, 0], source.pos_embed[:, 0])  # CLS entry kept
    assert loaded(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_wrong_shape_names_the_first_mismatching_tensor(tmp_path):
    wide = create_backbone("vptlab-tiny", num_classes=3, pretrained=False, depth=2, embed_dim=48, num_heads=2)
    save_file(dict(wide.state_dict()), str(tmp_path / "wide.safetensors"))
    with pytest.raises(UserError, match=r"wide.safetensors: tensor 'cls_token' has shape \(1, 1, 48\)"):
        create_backbone("vptlab-tiny", num_classes=3, checkpoint=tmp_path / "wide.safetensors", **ARGS)


def test_deeper_checkpoint_names_the_unexpected_tensor(tmp_path):
    deep = create_backbone("vptlab-tiny", num_classes=3, pretrained=False, depth=3, embed_dim=32, num_heads=2)
    save_file(dict(deep.state_dict()), str(tmp_path / "deep.safetensors"))
    with pytest.raises(UserError, match="'blocks.2"):
        create_backbone("vptlab-tiny", num_classes=3, checkpoint=tmp_path / "deep.safetensors", **ARGS)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors", ".pth"])
def test_truncated_checkpoint_is_a_clear_error(tmp_path, suffix):
    source = _model()
    path = tmp_path / f"w{suffix}"
    if suffix == ".npz":
        to_google_npz(source, path)
    elif suffix == ".safetensors":
        save_file(dict(source.state_dict()), str(path))
    else:
        torch.save(source.state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=f"w{suffix}"):
        create_backbone("vptlab-tiny", num_classes=3, checkpoint=path, **ARGS)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    torch.save({"state_dict": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="evil.pth"):
        create_backbone("vptlab-tiny", num_classes=3, checkpoint=tmp_path / "evil.pth", **ARGS)
    assert "must never run" not in capsys.readouterr().out


def test_missing_checkpoint_and_unknown_backbone(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        create_backbone("vptlab-tiny", num_classes=3, checkpoint=tmp_path / "nope.npz")
    with pytest.raises(UserError, match="unknown backbone 'vit_base_patch16_2244'.*did you mean"):
        create_backbone("vit_base_patch16_2244", num_classes=3)


def test_timm_vit_by_name_without_weights():
    model = create_backbone("vit_tiny_patch16_224", num_classes=7, pretrained=False, image_size=32, depth=1)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    assert model.global_pool == "token"
