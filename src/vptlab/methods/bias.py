"""BitFit (Zaken et al. 2022): only the bias terms (attention, MLP, norms, patch embedding) and the head train.

Weight decay: the default optimiser exempts every 1-D tensor from decay, which for BitFit would leave its wd
grid acting on the head weight alone.  With ``bias_decay = true`` (the default) the biases BitFit tunes are
decayed by ``wd`` as the grid intends; the head bias never is (as in the reference).  ``bias_decay = false`` is
the behaviour before this option existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from vptlab.methods.base import ALL_FAMILIES, Method, MethodConfig, freeze, option, register, unfreeze_head
from vptlab.train.optim import DECAY_ATTR


@dataclass(frozen=True)
class BiasConfig(MethodConfig):
    bias_decay: bool = option(True, help="decay the tuned biases by wd (the head bias never)", legacy=False)


def prepare(model: nn.Module, options: BiasConfig) -> None:
    freeze(model)
    from vptlab.backbones.create import classifier_name

    where = classifier_name(model)
    head = {f"{where}.{n}" for n, _ in model.get_classifier().named_parameters()}
    tuned = [n for n, p in model.named_parameters() if n.endswith(".bias") and n not in head]
    for name, p in model.named_parameters():
        if name in tuned:
            p.requires_grad_(True)
    unfreeze_head(model)
    if options.bias_decay:
        setattr(model, DECAY_ATTR, frozenset(tuned))


BIAS = register(
    Method(
        name="bias",
        summary="BitFit: bias terms only, frozen weights",
        trainable="every bias term + head",
        prepare=prepare,
        config=BiasConfig,
        label="Bias",
        color="#666666",
        order=6,
        families=ALL_FAMILIES,
    )
)
