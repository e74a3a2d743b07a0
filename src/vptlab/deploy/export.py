"""``vptlab export``: a tuned run as one self-contained model file, with its preprocessing and labels beside it.

The model is the whole classifier: backbone + tuned parameters + head.  A method that can be folded into the
backbone's weights (its metadata has a ``merge(model)`` hook: LoRA, SSF, FacT, RepAdapter) is merged first, and
the merged model is checked to give the unmerged model's logits; VPT's prompts stay modules (they are tokens,
not weights).  Formats:

- ``safetensors``: every tensor of the (merged) model; :func:`load_exported` rebuilds it with vptlab;
- ``torchscript``: a traced module, ``torch.jit.load(path)`` needs only torch;
- ``onnx``: opset 17 with a dynamic batch axis (input ``images``, output ``logits``), checked against PyTorch with
  onnxruntime (``pip install 'vptlab[onnx]'``).

Every export is loaded back and compared with the PyTorch model on a batch of 5: the same top-1 and logits within
``ATOL + RTOL x |logit|``; the result goes into the JSON (``check``).  The JSON (``<file>.json``) holds the
preprocessing, the class names, the run's config and how the model was built.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vptlab._io import atomic_path, atomic_write_json
from vptlab.deploy.tuned import TunedModel, load_tuned
from vptlab.errors import UserError

FORMATS = {"safetensors": "safetensors", "torchscript": "pt", "onnx": "onnx"}
ATOL, RTOL = 1e-4, 1e-3
CHECK_BATCH = 5
ONNX_OPSET = 17


def merge_method(model: nn.Module, method: Any) -> tuple[nn.Module, bool]:
    """``model`` with the method folded into the backbone weights where its ``merge`` hook allows."""
    merge = getattr(method, "merge", None)
    if merge is None:
        return model, False
    merged = copy.deepcopy(model)
    returned = merge(merged)
    return (returned if isinstance(returned, nn.Module) else merged).eval(), True


def check_inputs(image_size: int, n: int = CHECK_BATCH) -> torch.Tensor:
    """A fixed batch of normalised-looking inputs for the equality checks."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, image_size, image_size, generator=g)


def compare(reference: torch.Tensor, other: torch.Tensor, what: str) -> dict[str, Any]:
    """Same top-1 and logits within tolerance, or a RuntimeError (an export that changes answers is a bug)."""
    reference, other = reference.float().cpu(), torch.as_tensor(np.asarray(other)).float().cpu()
    diff = float((reference - other).abs().max())
    agree = bool((reference.argmax(1) == other.argmax(1)).all())
    ok = agree and torch.allclose(other, reference, atol=ATOL, rtol=RTOL)
    if not ok:
        raise RuntimeError(
            f"{what}: logits differ from the PyTorch model (max |diff| {diff:.3g}, top-1 agree {agree})"
        )
    return {"batch": len(reference), "max_abs_diff": diff, "top1_agree": agree}


def export_run(
    run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None
) -> tuple[Path, dict[str, Any]]:
    """Export a finished run to ``out`` (default ``RUN_DIR/export/model.<ext>``); returns the path and the JSON."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    tuned = load_tuned(run_dir)
    path = Path(out) if out else Path(run_dir) / "export" / f"model.{FORMATS[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    from vptlab.methods import get_method

    model, merged = merge_method(tuned.model, get_method(tuned.config["method"]))
    x = check_inputs(tuned.preprocess.image_size)
    with torch.inference_mode():
        reference = tuned.model(x)
        checks = {"merge": compare(reference, model(x), "merged model")} if merged else {}
    writer = {"safetensors": _safetensors, "torchscript": _torchscript, "onnx": _onnx}[fmt]
    checks[fmt], extra = writer(model, tuned, path, x, reference)
    meta = {
        "format": fmt,
        "file": path.name,
        "run_id": tuned.run_id,
        "run_dir": str(Path(run_dir).resolve()),
        "method": tuned.config["method"],
        "merged": merged,
        "classes": tuned.classes,
        "preprocessing": tuned.preprocess.to_dict(),
        "config": tuned.config,
        "check": checks,
        **extra,
    }
    atomic_write_json(path.with_name(path.name + ".json"), meta)
    return path, meta


def _safetensors(model: nn.Module, tuned: TunedModel, path: Path, x: torch.Tensor, reference: torch.Tensor):
    from safetensors.torch import save_model

    with atomic_path(path) as tmp:
        save_model(model, str(tmp))
    structure = (
        "backbone"
        if set(model.state_dict()) == set(_plain_backbone(tuned.config, tuned).state_dict())
        else "method"
    )
    meta = {"structure": structure}
    rebuilt = load_exported(
        path,
        meta={**meta, "config": tuned.config, "merged": model is not tuned.model, "classes": tuned.classes},
    )
    with torch.inference_mode():
        return compare(reference, rebuilt(x), "safetensors export"), meta


def _torchscript(model: nn.Module, tuned: TunedModel, path: Path, x: torch.Tensor, reference: torch.Tensor):
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's deprecation and "might not generalize" notes
        traced = torch.jit.trace(model, x[:2])
        with atomic_path(path) as tmp:
            traced.save(str(tmp))
        loaded = torch.jit.load(str(path))
        return compare(reference, loaded(x), "TorchScript export"), {}


def _onnx(model: nn.Module, tuned: TunedModel, path: Path, x: torch.Tensor, reference: torch.Tensor):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("ONNX export needs onnx and onnxruntime: pip install 'vptlab[onnx]'") from None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation note
        with atomic_path(path) as tmp:
            torch.onnx.export(
                model,
                (x[:2],),
                str(tmp),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    meta = {"onnx": {"opset": ONNX_OPSET, "input": "images", "output": "logits", "runtime": ort.__version__}}
    return compare(reference, logits, "ONNX export (onnxruntime)"), meta


def _plain_backbone(
    config: dict[str, Any], tuned: TunedModel | None = None, num_classes: int | None = None
) -> nn.Module:
    from vptlab.backbones import create_backbone

    return create_backbone(
        config["backbone"],
        num_classes=num_classes or len(tuned.classes),
        image_size=config["image_size"],
        pretrained=False,
        **dict(config.get("backbone_args") or ()),
    )


def load_exported(path: str | os.PathLike, meta: dict[str, Any] | None = None) -> nn.Module:
    """A ``safetensors`` export rebuilt as a model in eval mode (``meta``: its JSON, read beside it if None)."""
    import json

    from safetensors.torch import load_model

    from vptlab.train.config import RunConfig

    path = Path(path)
    if meta is None:
        meta_path = path.with_name(path.name + ".json")
        try:
            meta = json.loads(meta_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as err:
            raise UserError(f"{meta_path}: missing or unreadable export description") from err
    config = meta["config"]
    num_classes = len(meta["classes"])
    with torch.random.fork_rng():
        if meta.get("structure") == "method":  # the method's modules (prompts, unmerged adapters) are needed
            from vptlab.train.model import build_model

            cfg = RunConfig.from_dict(config, source=str(path))
            model, method = build_model(
                dataclasses.replace(cfg, pretrained=False, checkpoint=None), num_classes
            )
            if meta.get("merged"):
                model, _ = merge_method(model, method)
        else:
            model = _plain_backbone(config, num_classes=num_classes)
    try:
        load_model(model, str(path), strict=True)
    except Exception as err:  # safetensors' own error types for a foreign or truncated file
        raise UserError(
            f"{path}: does not fit the model its description names ({type(err).__name__}: {err})"
        ) from err
    return model.eval()
