"""Creating a backbone: any timm ViT by name, the bundled ``vptlab-tiny``, or a local checkpoint file."""

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
) -> VisionTransformer:
    """A timm VisionTransformer with a fresh ``num_classes`` head on the CLS token.

    ``name`` is a timm model name (``vit_base_patch16_224.augreg_in21k``) or ``vptlab-tiny``.  Weights come from
    ``checkpoint`` (a local ``.npz``/``.safetensors``/``.pth``) if given, else from the model hub (timm) or the
    package (vptlab-tiny) when ``pretrained``.  ``dropout`` is the backbone's MLP and embedding (position) dropout,
    as in the reference ViT (0.1 under full fine-tuning); attention and attention-output dropout stay 0.  ``timm_kwargs`` override
    the architecture (e.g. ``depth=2`` for tests).
    """
    kwargs = dict(timm_kwargs, num_classes=num_classes, pos_drop_rate=dropout, proj_drop_rate=dropout)
    if image_size is not None:
        kwargs["img_size"] = image_size
    with _architecture_errors(name, timm_kwargs):
        if name == TINY_NAME:
            model = VisionTransformer(**{**TINY_ARCH, **kwargs})
            model.pretrained_cfg = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": (3, 32, 32)}
        else:
            model = _create_timm(name, pretrained=pretrained and checkpoint is None, **kwargs)
    if name == TINY_NAME and pretrained and checkpoint is None:
        checkpoint = _bundled_tiny_weights()
    _require_class_token(model, name)
    _attention_output_dropout_off(model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    model.reset_classifier(num_classes, global_pool="token")
    return model


def _attention_output_dropout_off(model: VisionTransformer) -> None:
    """timm's ``proj_drop_rate`` also drops the attention output; the reference ViT's attention dropout is 0."""
    for block in model.blocks:
        drop = getattr(block.attn, "proj_drop", None)
        if isinstance(drop, torch.nn.Dropout):
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


def _create_timm(name: str, pretrained: bool, **kwargs: Any) -> VisionTransformer:
    if not _known_timm(name):
        close = difflib.get_close_matches(name, timm.list_models("*vit*") + [TINY_NAME], n=3)
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


def _require_class_token(model: torch.nn.Module, name: str) -> None:
    if not isinstance(model, VisionTransformer):
        raise UserError(
            f"backbone {name!r} is a {type(model).__name__}; vptlab needs a timm VisionTransformer"
        )
    if model.cls_token is None:
        raise UserError(
            f"backbone {name!r} has no class token; VPT inserts prompts after [CLS] and classifies "
            "from it (use a ViT, DeiT or AugReg model with a class token)"
        )


@cache
def _bundled_tiny_weights() -> Path:
    path = tiny_weights_path()
    if not path.is_file():
        raise UserError(
            f"the bundled {TINY_NAME} weights are missing ({path}); run `vptlab pretrain` or pass "
            "pretrained=False"
        )
    return path
