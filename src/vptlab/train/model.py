"""Building the model a run trains, saving only what it tuned, and loading a finished run back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vptlab._io import atomic_path
from vptlab.backbones import create_backbone
from vptlab.backbones.create import backbone_family
from vptlab.errors import UserError
from vptlab.methods import Method, get_method
from vptlab.methods.base import require_family
from vptlab.train.config import RunConfig

TUNED_FILE = "tuned.safetensors"


def build_model(cfg: RunConfig, num_classes: int, stage1_dir: Path | None = None) -> tuple[nn.Module, Method]:
    """Backbone (+ stage-1 weights for ft-then-pt) with the method applied; seeded by ``cfg.seed``."""
    cfg = cfg.resolved()
    method = get_method(cfg.method)
    options = cfg.method_options
    torch.manual_seed(cfg.seed)
    model = create_backbone(
        cfg.backbone,
        num_classes=num_classes,
        image_size=cfg.image_size,
        pretrained=cfg.pretrained,
        checkpoint=cfg.checkpoint,
        dropout=getattr(options, "backbone_dropout", 0.0),  # an option of this name is the backbone's dropout
        **dict(cfg.backbone_args),
    )
    init_head(model, cfg.head_init)
    if stage1_dir is not None:
        if method.load_stage1 is not None:
            method.load_stage1(model, Path(stage1_dir) / TUNED_FILE, options)
        else:
            load_tuned(model, Path(stage1_dir) / TUNED_FILE)
    require_family(
        method, backbone_family(model), cfg.backbone
    )  # prompts on a ConvNet: one line, naming those that fit
    method.prepare(model, options)
    return model, method


REFERENCE_HEAD_BIAS = -math.log((1 - 0.01) / 0.01)  # the reference MLP's special_bias: a 1% prior per class


def init_head(model: nn.Module, mode: str) -> None:
    """``default``: the head as the backbone library creates it.  ``reference``: the reference code's head
    (``MLP(..., special_bias=True)``): ``kaiming_normal_(weight, mode="fan_out")``, bias ``-log(99)``."""
    if mode == "default":
        return
    head = model.get_classifier()
    with torch.no_grad():
        nn.init.kaiming_normal_(head.weight, mode="fan_out")
        nn.init.constant_(head.bias, REFERENCE_HEAD_BIAS)


def tuned_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters this run trained (prompts + head for VPT: kilobytes, not the backbone)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_tuned(model: nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(tuned_state(model), str(tmp))


def load_tuned(model: nn.Module, path: Path, skip_prefixes: tuple[str, ...] = ()) -> None:
    """Load saved tuned parameters onto a model built the same way; every saved tensor must fit.

    Tensors whose names start with one of ``skip_prefixes`` (e.g. ``"head"``) are not loaded."""
    if not path.is_file():
        raise UserError(f"{path}: no tuned weights (was the run saved with save_weights=False?)")
    try:
        saved = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for a truncated or foreign file
        raise UserError(f"{path}: cannot read tuned weights ({type(err).__name__})") from err
    saved = {n: t for n, t in saved.items() if not n.startswith(skip_prefixes)}
    own = dict(model.named_parameters())
    for name, tensor in saved.items():
        if name not in own:
            raise UserError(f"{path}: tensor {name!r} does not exist in this model")
        if own[name].shape != tensor.shape:
            raise UserError(
                f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(own[name].shape)}"
            )
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)


def load_run_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild a finished run's model (backbone, method, tuned weights) in eval mode."""
    run_dir = Path(run_dir)
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise UserError(f"{run_dir}: not a finished run (no readable result.json)") from err
    cfg = RunConfig.from_dict(result["config"], source=str(run_dir / "result.json"))
    stage1 = result.get("stage1", {}).get("run_dir")
    model, _ = build_model(cfg, result["task"]["num_classes"], Path(stage1) if stage1 else None)
    load_tuned(model, run_dir / TUNED_FILE)
    return model.to(device).eval(), cfg
