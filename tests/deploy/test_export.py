"""``vptlab export``: one self-contained model file per format, loaded back and compared with PyTorch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

import vptlab
from vptlab.cli import main
from vptlab.deploy.export import check_inputs, export_run, load_exported
from vptlab.train import train_run

ort = pytest.importorskip(
    "onnxruntime", reason="the onnx extra (pip install 'vptlab[onnx]') is not installed"
)

METHODS = ["linear", "full", "vpt-shallow", "vpt-deep", "bias", "lora"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from vptlab.data.base import TaskData, TaskInfo
    from vptlab.train import RunConfig
    from vptlab_testing import TINY_ARGS, make_imageset

    task = TaskData(TaskInfo("toy", "natural", "classification", 4), make_imageset(64, 1), make_imageset(32, 2),
                    make_imageset(48, 3), record={"source": "test", "task": "toy"})  # fmt: skip
    root = tmp_path_factory.mktemp("export")
    for m in METHODS:
        prompts = {"prompt_length": 3} if "vpt" in m else {}
        cfg = RunConfig.of(method=m, task="toy", data="test", pretrained=False, backbone_args=TINY_ARGS, image_size=16,
                           epochs=2, warmup_epochs=1, batch_size=16, **prompts)  # fmt: skip
        assert train_run(cfg, root / m, task_data=task)["status"] == "ok"
    return root


def _reference(run_dir, n: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    tuned = vptlab.load_tuned(run_dir)
    x = check_inputs(16, n) * 1.5
    with torch.inference_mode():
        return x, tuned.model(x)


@pytest.mark.parametrize("method", METHODS)
def test_onnx_gives_pytorchs_top1(runs, method):
    path, meta = export_run(runs / method, "onnx")
    x, ref = _reference(runs / method)  # 7 images: not the batch size it was traced with
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    assert np.array_equal(logits.argmax(1), ref.argmax(1).numpy())
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4, rtol=1e-3)
    beside = json.loads(path.with_name("model.onnx.json").read_text())
    assert beside["classes"] == ["0", "1", "2", "3"] and beside["preprocessing"]["image_size"] == 16
    assert beside["preprocessing"]["mean"] == list(vptlab.load_tuned(runs / method).preprocess.mean)
    assert beside["check"]["onnx"]["top1_agree"] and beside["method"] == method


@pytest.mark.parametrize("method", ["vpt-deep", "lora", "full"])
def test_torchscript_loads_back_with_torch_alone(runs, method, tmp_path):
    path, _ = export_run(runs / method, "torchscript", tmp_path / "model.pt")
    x, ref = _reference(runs / method)
    loaded = torch.jit.load(str(path))
    torch.testing.assert_close(loaded(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_safetensors_holds_the_whole_model(runs, method, tmp_path):
    path, meta = export_run(runs / method, "safetensors", tmp_path / "m.safetensors")
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    assert (
        "patch_embed.proj.weight" in tensors and "head.weight" in tensors
    )  # the backbone too, not just tuned
    x, ref = _reference(runs / method)
    with torch.inference_mode():
        torch.testing.assert_close(load_exported(path)(x), ref, atol=1e-6, rtol=1e-6)


def test_loras_merge_hook_folds_it_into_the_backbone(runs, tmp_path):
    path, meta = export_run(runs / "lora", "safetensors", tmp_path / "merged.safetensors")
    assert meta["merged"] and meta["check"]["merge"]["top1_agree"] and meta["structure"] == "backbone"
    from safetensors.torch import load_file

    assert not any("lora" in k for k in load_file(str(path)))  # plain ViT weights
    onnx_path, _ = export_run(runs / "lora", "onnx", tmp_path / "merged.onnx")
    x, ref = _reference(runs / "lora")
    (logits,) = ort.InferenceSession(str(onnx_path)).run(["logits"], {"images": x.numpy()})
    np.testing.assert_allclose(logits, ref.numpy(), atol=1e-4, rtol=1e-3)


def test_a_wrong_merge_is_caught(runs, tmp_path, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    import vptlab.methods as methods
    from vptlab.methods.lora import LoRALinear, LoRAQV

    def drop_lora(model: nn.Module) -> None:  # forgets the update: not the same model
        for block in model.blocks:
            for name in ("qkv", "proj"):
                if isinstance(getattr(block.attn, name), (LoRALinear, LoRAQV)):
                    setattr(block.attn, name, getattr(block.attn, name).base)

    real = methods.get_method
    monkeypatch.setattr(methods, "get_method", lambda name: dataclasses.replace(real(name), merge=drop_lora))
    run = tmp_path / "run"
    shutil.copytree(runs / "lora", run)
    weights = load_file(str(run / "tuned.safetensors"))  # a LoRA update large enough to change the logits
    save_file(
        {k: (v + 0.5 if "lora_" in k else v) for k, v in weights.items()}, str(run / "tuned.safetensors")
    )
    with pytest.raises(RuntimeError, match="merged model: logits differ"):
        export_run(run, "safetensors")


def test_every_registered_merge_hook_gives_the_same_outputs(tiny_cfg, toy_task, tmp_path):
    """Whatever methods declare ``merge`` (LoRA, SSF, FacT, RepAdapter, ...): export checks them equal."""
    from vptlab.methods import list_methods

    mergeable = [m.name for m in list_methods() if getattr(m, "merge", None) is not None]
    for name in mergeable:
        assert train_run(tiny_cfg(name), tmp_path / name, task_data=toy_task)["status"] == "ok"
        _, meta = export_run(tmp_path / name, "onnx")
        assert meta["merged"] and meta["check"]["merge"]["top1_agree"], name


def test_cli_export(runs, tmp_path, capsys):
    assert (
        main(["export", str(runs / "vpt-deep"), "--format", "onnx", "--out", str(tmp_path / "v.onnx")]) == 0
    )
    out = capsys.readouterr().out
    assert "v.onnx (onnx" in out and "same top-1" in out
    assert (tmp_path / "v.onnx").is_file() and (tmp_path / "v.onnx.json").is_file()
    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2
    assert "not a finished run" in capsys.readouterr().err
