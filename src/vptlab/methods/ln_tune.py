"""LN-tune: only the LayerNorm scales and biases (every block's two norms and the final norm) and the head train.

A baseline of V-PETL Bench (after Basu et al. 2023, "Strong baselines for parameter-efficient few-shot
fine-tuning").  Trainable: ``2 D (2 L + 1)`` + head: 38,400 on ViT-B/16 (0.04M).
"""

from __future__ import annotations

from torch import nn

from vptlab.methods.base import ALL_FAMILIES, PETL_RECIPE, Method, NoOptions, freeze, register, unfreeze_head


def unfreeze_layernorms(model: nn.Module) -> None:
    """Every normalisation layer's affine parameters: LayerNorm (also timm's LayerNorm2d in ConvNeXt) and, on a
    ResNet, BatchNorm (norm-tuning; its running statistics stay frozen with the backbone in eval mode)."""
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)):
            for p in module.parameters():
                p.requires_grad_(True)


def prepare(model: nn.Module, options: NoOptions) -> None:
    freeze(model)
    unfreeze_layernorms(model)
    unfreeze_head(model)


LN_TUNE = register(
    Method(
        name="ln-tune",
        summary="LN-tune: LayerNorm scales and biases only, frozen weights",
        trainable="every LayerNorm 2 D (2 L + 1) + head",
        **PETL_RECIPE,
        prepare=prepare,
        order=17,
        label="LN-tune",
        color="#b2df8a",
        families=ALL_FAMILIES,
    )
)
