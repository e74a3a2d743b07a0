"""Backbones: timm ViTs by name or local file, the bundled vptlab-tiny, and the visual-prompt hook."""

from vptlab.backbones.checkpoints import load_checkpoint
from vptlab.backbones.create import (
    TINY_NAME,
    backbone_normalization,
    create_backbone,
    default_image_size,
    tiny_weights_path,
)
from vptlab.backbones.prompts import VisualPrompts, attach_prompts, get_prompts

__all__ = [
    "TINY_NAME",
    "VisualPrompts",
    "attach_prompts",
    "backbone_normalization",
    "create_backbone",
    "default_image_size",
    "get_prompts",
    "load_checkpoint",
    "tiny_weights_path",
]
