"""Backbones: timm ViTs by name or local file, the bundled vptlab-tiny, and the visual-prompt hook.

Names are imported on first use (timm is slow to import and the CLI should start fast).
"""

from __future__ import annotations

from vptlab._lazy import lazy_getattr

_EXPORTS = {
    "TINY_NAME": "vptlab.backbones.create",
    "backbone_normalization": "vptlab.backbones.create",
    "create_backbone": "vptlab.backbones.create",
    "default_image_size": "vptlab.backbones.create",
    "tiny_weights_path": "vptlab.backbones.create",
    "load_checkpoint": "vptlab.backbones.checkpoints",
    "VisualPrompts": "vptlab.backbones.prompts",
    "attach_prompts": "vptlab.backbones.prompts",
    "get_prompts": "vptlab.backbones.prompts",
    "detach_prompts": "vptlab.backbones.prompts",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr("vptlab.backbones", _EXPORTS)
