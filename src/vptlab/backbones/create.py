"""Creating a backbone: a timm ViT, Swin or ConvNet by name, the bundled ``vptlab-tiny``, or a local checkpoint.

Every backbone keeps its own head design (timm's ``global_pool`` and ``fc_norm`` for it: CLS token for a
classic ViT, average pooling + ``fc_norm`` for MAE fine-tuning, ...) unless the run asks for another through
the backbone's arguments (``--backbone-arg global_pool=avg``, ``[backbone.kwargs]``); :func:`describe_backbone`
says which was used, and every run records it in ``result.json`` (``backbone``).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from vptlab.backbones.checkpoints import load_checkpoint
from vptlab.data.base import IMAGENET_MEAN, IMAGENET_STD
from vptlab.errors import UserError

TINY_NAME = "vptlab-tiny"
# The bundled backbone: small enough to train dozens of runs a minute on a laptop CPU, deep enough for
# deep prompts to matter.  32x32 input, 4x4 patch grid.
TINY_ARCH: dict[str, Any] = dict(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4, mlp_ratio=4.0)


def tiny_weights_path() -> Path:
    return Path(str(resources.files("vptlab.backbones").joinpath("weights", f"{TINY_NAME}.safetensors")))


def create_backbone(
    name: str,
    *,
    num_classes: int,
    image_size: int | None = None,
    pretrained: bool = True,
    checkpoint: str | Path | None = None,
    dropout: float = 0.0,
    **timm_kwargs: Any,
) -> torch.nn.Module:
    """A timm backbone (ViT, Swin, ResNet, ConvNeXt) with a fresh ``num_classes`` head of its own design.

    ``name`` is a timm model name (``vit_base_patch16_224.augreg_in21k``) or ``vptlab-tiny``.  Weights come from
    ``checkpoint`` (a local ``.npz``/``.safetensors``/``.pth``) if given, else from the model hub (timm) or the
    package (vptlab-tiny) when ``pretrained``.  ``dropout`` is the backbone's MLP and embedding (position) dropout,
    as in the reference ViT (0.1 under full fine-tuning); attention and attention-output dropout stay 0.  ``timm_kwargs`` override
    the architecture (e.g. ``depth=2`` for tests).
    """
    kwargs = dict(timm_kwargs, num_classes=num_classes)
    guess = family_of_name(name)
    if dropout > 0:
        if guess == "convnet":
            raise UserError(f"backbone_dropout applies to transformer backbones; {name!r} is a ConvNet")
        kwargs["proj_drop_rate"] = dropout
        if guess != "swin":
            kwargs["pos_drop_rate"] = dropout
    if image_size is not None and guess != "convnet":
        kwargs["img_size"] = image_size
    with _architecture_errors(name, timm_kwargs):
        if name == TINY_NAME:
            model = VisionTransformer(**{**TINY_ARCH, **kwargs})
            model.pretrained_cfg = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, 32, 32)}
        else:
            model = _create_timm(name, pretrained=pretrained and checkpoint is None, **kwargs)
    if name == TINY_NAME and pretrained and checkpoint is None:
        checkpoint = _bundled_tiny_weights()
    _require_supported(model, name)
    _attention_output_dropout_off(model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    model.reset_classifier(num_classes)  # the backbone's own pooling, unless global_pool was asked for
    return model


FAMILIES = ("vit", "vit-registers", "swin", "convnet")
FAMILY_HELP = {
    "vit": "timm VisionTransformer (class token or average pooling, CLIP-style pre-norm, DeiT, MAE, DINO)",
    "vit-registers": "timm VisionTransformer with register tokens (DINOv2-reg)",
    "swin": "timm SwinTransformer (hierarchical, windowed attention)",
    "convnet": "timm ResNet / ConvNeXt",
}


def backbone_family(model: torch.nn.Module) -> str:
    """``vit``, ``vit-registers``, ``swin`` or ``convnet``: what decides which methods apply."""
    from timm.models.convnext import ConvNeXt
    from timm.models.resnet import ResNet
    from timm.models.swin_transformer import SwinTransformer

    if isinstance(model, VisionTransformer):
        return "vit-registers" if getattr(model, "num_reg_tokens", 0) else "vit"
    if isinstance(model, SwinTransformer):
        return "swin"
    if isinstance(model, (ResNet, ConvNeXt)):
        return "convnet"
    raise UserError(f"backbone {type(model).__name__} is not supported (ViT, Swin, ResNet, ConvNeXt)")


def family_of_name(name: str) -> str | None:
    """The family of a backbone name, known without building it (None for a name timm does not know)."""
    if name == TINY_NAME:
        return "vit"
    arch = name.split(".")[0]
    if not timm.is_model(arch):
        return None
    module = timm.models.model_entrypoint(arch).__module__.rsplit(".", 1)[-1]
    if module in ("swin_transformer",):
        return "swin"
    if module in ("resnet", "convnext"):
        return "convnet"
    if module == "vision_transformer":
        return "vit-registers" if "_reg" in arch else "vit"
    return None


def describe_backbone(model: torch.nn.Module) -> dict[str, Any]:
    """The backbone's family and head design, as recorded in ``result.json``."""
    family = backbone_family(model)
    out: dict[str, Any] = {"family": family, "class": type(model).__name__}
    if isinstance(model, VisionTransformer):
        prompts = getattr(model, "vpt", None)
        prefix = getattr(prompts, "num_prefix", model.num_prefix_tokens)
        out.update(global_pool=model.global_pool, fc_norm=not isinstance(model.fc_norm, torch.nn.Identity),
                   class_token=model.cls_token is not None, register_tokens=int(model.num_reg_tokens),
                   prefix_tokens=int(prefix), pre_norm=not isinstance(model.norm_pre, torch.nn.Identity))  # fmt: skip
    else:
        head = getattr(model, "head", None)
        pool = getattr(getattr(head, "global_pool", None), "pool_type", None)
        out["global_pool"] = pool if pool is not None else getattr(model, "global_pool", "avg")
        if not isinstance(out["global_pool"], str):
            out["global_pool"] = "avg"
    report = getattr(model, "vptlab_checkpoint", None)  # set by load_checkpoint
    if report is not None:
        out["checkpoint"] = report
    return out


def classifier_name(model: torch.nn.Module) -> str:
    """The qualified name of the model's classifier module (``head``, ``head.fc``, ``fc``)."""
    target = model.get_classifier()
    return next(n for n, m in model.named_modules() if m is target)


def set_classifier(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    """Put ``module`` where the classifier ``name`` sits (``head.fc`` inside Swin's head, ...)."""
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _attention_output_dropout_off(model: torch.nn.Module) -> None:
    """timm's ``proj_drop_rate`` also drops the attention output; the reference ViT's attention dropout is 0."""
    for name, module in model.named_modules():
        drop = getattr(module, "proj_drop", None)
        if name.endswith("attn") and isinstance(drop, torch.nn.Dropout):
            drop.p = 0.0


def default_image_size(name: str) -> int:
    """The backbone's native input size, known without building it."""
    if name == TINY_NAME:
        return int(TINY_ARCH["img_size"])
    cfg = timm.models.get_pretrained_cfg(name) if _known_timm(name) else None
    return int(cfg.input_size[-1]) if cfg is not None else 224


def backbone_normalization(model: torch.nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) the backbone was pretrained with; ImageNet's when the model does not say."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def _create_timm(name: str, pretrained: bool, **kwargs: Any) -> torch.nn.Module:
    if not _known_timm(name):
        names = timm.list_models("*vit*") + timm.list_models("swin*") + timm.list_models("convnext*")
        close = difflib.get_close_matches(name, names + [TINY_NAME], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models('vit*')"
        raise UserError(f"unknown backbone {name!r}{hint}")
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:  # the hub download: network, proxy, missing file, gated repo...
        raise UserError(
            f"could not fetch pretrained weights for {name!r} ({type(err).__name__}); without "
            "network, pass a local weights file with --checkpoint PATH (.npz, .safetensors, .pth)"
        ) from err


@contextlib.contextmanager
def _architecture_errors(name: str, overrides: dict[str, Any]) -> Iterator[None]:
    """A constructor that rejects the user's architecture overrides is their mistake, not a crashed run."""
    try:
        yield
    except (TypeError, ValueError, RuntimeError, AssertionError) as err:
        if not overrides:
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(overrides.items()))
        raise UserError(
            f"backbone {name!r} cannot be built with the overrides {given} ({type(err).__name__}: {err}); "
            "check --backbone-arg / [backbone.kwargs]"
        ) from None


def _known_timm(name: str) -> bool:
    arch = name.split(".")[0]
    return timm.is_model(arch)


def _require_supported(model: torch.nn.Module, name: str) -> None:
    try:
        backbone_family(model)
    except UserError:
        raise UserError(
            f"backbone {name!r} is a {type(model).__name__}; vptlab supports timm VisionTransformer, "
            "SwinTransformer, ResNet and ConvNeXt"
        ) from None


@cache
def _bundled_tiny_weights() -> Path:
    path = tiny_weights_path()
    if not path.is_file():
        raise UserError(
            f"the bundled {TINY_NAME} weights are missing ({path}); run `vptlab pretrain` or pass "
            "pretrained=False"
        )
    return path
