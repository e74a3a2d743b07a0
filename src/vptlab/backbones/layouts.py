"""Checkpoint layouts people download, recognised and turned into the matching timm model's names.

Each layout is recognised from the file's own keys (never from its name) and converted with timm's own
``checkpoint_filter_fn`` where timm has one (OpenAI / open_clip CLIP, DINOv2, Swin, ConvNeXt), so vptlab does
not keep a second copy of those mappings:

=============  ==========================================================================================
``timm``       a timm state dict (``.safetensors``/``.pth``, optionally under ``state_dict``/``model``)
``npz``        Google's ``ViT-B_16.npz`` (google-research/vision_transformer)
``mae``        MAE (facebookresearch/mae): ``{"model": ...}``; a pretrain file carries the decoder and
               ``mask_token`` (dropped), a fine-tuned one ``fc_norm`` + ``head``
``moco-v3``    MoCo v3 (facebookresearch/moco-v3), two different files under ``state_dict``:
               the *pretrain* checkpoint (``module.base_encoder.`` + ``module.momentum_encoder.`` + predictor:
               the base encoder is loaded, its projection MLP ``head`` dropped) and the *linear-probe*
               checkpoint (``module.`` + a 1000-class ``head``: the frozen backbone is loaded, the head
               dropped).  The VPT reference loads the linear-probe file (``linear-vit-b-300ep.pth.tar``);
               its backbone is the pretrain file's base encoder, so both give the same backbone.
``dino``       DINO training checkpoint (``teacher``/``student`` with ``module.backbone.``): the teacher
``dinov2``     DINOv2 (``mask_token``, ``register_tokens``, layer scale): timm's converter
``deit``       DeiT (facebookresearch/deit): ``{"model": ...}`` in timm's names; the head is not loaded
``clip``       OpenAI CLIP / open_clip (``visual.*``, optionally ``module.``; or a timm ``visual.trunk``)
``swin``       Swin (microsoft/Swin-Transformer): ``{"model": ...}``, timm's converter
``convnext``   ConvNeXt (facebookresearch/ConvNeXt): ``{"model": ...}``, timm's converter
=============  ==========================================================================================

:func:`convert` returns the timm-named tensors, the layout's name, the tensors it knowingly dropped and notes
for the user; :func:`vptlab.backbones.checkpoints.apply_state_dict` then checks every name and shape and says
what is missing or unexpected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vptlab.errors import UserError

_MAE_DROP = ("decoder", "mask_token")
_MOCO_PRETRAIN = "module.base_encoder."
_MOCO_DROP = ("module.momentum_encoder.", "module.predictor.")


@dataclass
class Converted:
    state: dict[str, torch.Tensor]
    layout: str
    dropped: list[str] = field(default_factory=list)  # tensors of the file that are not the backbone
    notes: list[str] = field(default_factory=list)


def convert(raw: Any, model: nn.Module, source: str) -> Converted:
    """Recognise the layout of a loaded ``.pth``/``.safetensors`` object and convert it to timm names."""
    if not isinstance(raw, dict):
        raise UserError(
            f"checkpoint {source}: holds a {type(raw).__name__}, expected a state dict of tensors"
        )
    keys = set(raw)
    if "teacher" in keys and isinstance(raw["teacher"], dict):
        return _dino(raw, source)
    inner = raw.get("state_dict") if isinstance(raw.get("state_dict"), dict) else None
    if inner is not None and any(k.startswith(_MOCO_PRETRAIN) for k in inner):
        return _moco_pretrain(inner)
    if inner is not None and _all_prefixed(inner, "module.") and "module.head.weight" in inner:
        return _moco_linear(inner)
    flat = raw.get("model") if isinstance(raw.get("model"), dict) else (inner if inner is not None else raw)
    flat = {k: v for k, v in flat.items() if isinstance(v, torch.Tensor)}
    if not flat:
        raise UserError(
            f"checkpoint {source}: a dict without tensors; expected a state dict (or one under state_dict, model)"
        )
    if any(k.startswith(("visual.", "module.visual.")) for k in flat):
        return _timm_filter(flat, model, "clip", "vision_transformer", "the text tower is not loaded")
    from timm.models.convnext import ConvNeXt
    from timm.models.swin_transformer import SwinTransformer

    if isinstance(model, SwinTransformer):
        return _timm_filter(flat, model, "swin", "swin_transformer")
    if isinstance(model, ConvNeXt) and any(k.startswith(("downsample_layers.", "stages.")) for k in flat):
        return _timm_filter(flat, model, "convnext", "convnext")
    if any(k.startswith("decoder") for k in flat) or ("model" in raw and "fc_norm.weight" in flat):
        dropped = sorted(k for k in flat if k.startswith(_MAE_DROP))
        state = {k: v for k, v in flat.items() if not k.startswith(_MAE_DROP)}
        kind = "pretrain (decoder dropped)" if dropped else "fine-tuned"
        return Converted(state, "mae", dropped, [f"MAE {kind} checkpoint"])
    if "mask_token" in flat or any(k.startswith("register_tokens") or ".ls1.gamma" in k for k in flat):
        return _timm_filter(flat, model, "dinov2", "vision_transformer")
    if "model" in raw:
        return Converted(_strip(flat), "deit" if "cls_token" in flat else "timm")
    return Converted(_strip(flat), "timm")


def _all_prefixed(d: dict, prefix: str) -> bool:
    return bool(d) and all(k.startswith(prefix) for k in d)


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "model.", "backbone.", "encoder."):
        if _all_prefixed(state, prefix):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _moco_pretrain(sd: dict[str, torch.Tensor]) -> Converted:
    n = len(_MOCO_PRETRAIN)
    state = {
        k[n:]: v for k, v in sd.items() if k.startswith(_MOCO_PRETRAIN) and not k[n:].startswith("head.")
    }
    dropped = sorted(k for k in sd if not k.startswith(_MOCO_PRETRAIN) or k[n:].startswith("head."))
    note = (
        "MoCo v3 pretrain checkpoint: the base encoder is loaded; its momentum encoder, predictor and projection "
        "MLP are dropped (the VPT reference loads the linear-probe file linear-vit-b-300ep.pth.tar, whose frozen "
        "backbone is this same encoder)"
    )
    return Converted(state, "moco-v3", dropped, [note])


def _moco_linear(sd: dict[str, torch.Tensor]) -> Converted:
    state = {k[len("module.") :]: v for k, v in sd.items()}
    note = (
        "MoCo v3 linear-probe checkpoint: its frozen backbone (the pretrain file's base encoder) is loaded, its "
        f"{state['head.weight'].shape[0]}-class linear head is not (each task trains its own)"
    )
    return Converted(state, "moco-v3", [], [note])


def _dino(raw: dict, source: str) -> Converted:
    teacher = {k: v for k, v in raw["teacher"].items() if isinstance(v, torch.Tensor)}
    teacher = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in teacher.items()}
    state = {k[len("backbone.") :]: v for k, v in teacher.items() if k.startswith("backbone.")}
    if not state:
        raise UserError(f"checkpoint {source}: a DINO training checkpoint without teacher backbone weights")
    dropped = sorted(k for k in teacher if not k.startswith("backbone."))
    note = "DINO training checkpoint: the teacher's backbone is loaded (as DINO evaluates); its projection head and the student are dropped"
    return Converted(state, "dino", dropped, [note])


def _timm_filter(flat: dict, model: nn.Module, layout: str, module: str, note: str = "") -> Converted:
    """timm's own mapping for this model family (``timm.models.<module>.checkpoint_filter_fn``)."""
    import importlib

    fn = importlib.import_module(f"timm.models.{module}").checkpoint_filter_fn
    try:
        state = fn(dict(flat), model)
    except (KeyError, RuntimeError, ValueError, AttributeError) as err:
        raise UserError(
            f"checkpoint in the {layout} layout could not be converted for {type(model).__name__} "
            f"({type(err).__name__}: {err}); is it the matching architecture?"
        ) from None
    return Converted(dict(state), layout, [], [note] if note else [])
