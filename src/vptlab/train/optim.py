"""Optimiser and learning-rate schedule.

Defaults (``reference_optimizer=False``): the method's optimiser (SGD momentum 0.9 for prompt-type methods,
AdamW for FT-type), weight decay exactly as given on weight matrices and prompts, none on biases, norms, position
embeddings and the CLS token (unless a method names 1-D tensors to decay in ``model.<DECAY_ATTR>``, as BitFit
does for its biases); ``wd = 0`` keeps the optimiser.  ``reference_optimizer=True`` reproduces what the
reference code (KMnP/vpt ``make_optimizer``) does instead, and the run records it:

- AdamW with ``wd > 0`` uses a hard-coded 0.01 on its decayed group, whatever ``wd`` says; the group left
  undecayed is every tensor whose name contains ``bias`` (the reference's other exclusions name
  ``LayerNorm.*``, which its ViT's norms, ``attention_norm``/``ffn_norm``, never match: norm weights ARE
  decayed); its AdamW has eps 1e-6;
- AdamW with ``wd == 0`` silently becomes SGD (momentum 0.9);
- SGD decays every trainable tensor except the head bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn

REFERENCE_ADAMW_WD = 0.01
REFERENCE_ADAMW_EPS = 1e-6
DECAY_ATTR = "vptlab_decay_names"  # a method's set of 1-D parameter names to decay anyway


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule of the reference code: ``lr * batch_size / 256``."""
    return base_lr * batch_size / 256


def build_optimizer(
    model: nn.Module, kind: str, lr: float, wd: float, reference: bool = False
) -> tuple[torch.optim.Optimizer, str]:
    """The optimiser over the trainable parameters, and a line describing the choice (logged in the run)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if reference:
        return _reference_optimizer(model, named, kind, lr, wd)
    skip = _no_decay_names(model)
    forced = set(getattr(model, DECAY_ATTR, ()))
    decayed = {n for n, p in named if (n not in skip and p.ndim >= 2) or n in forced}
    decay = [p for n, p in named if n in decayed]
    rest = [p for n, p in named if n not in decayed]
    groups = [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr), f"AdamW, wd {wd} on weights and prompts"
    return torch.optim.SGD(groups, lr=lr, momentum=0.9), f"SGD momentum 0.9, wd {wd} on weights and prompts"


def _reference_optimizer(
    model: nn.Module, named: list, kind: str, lr: float, wd: float
) -> tuple[torch.optim.Optimizer, str]:
    if kind == "adamw" and wd > 0:
        no_decay = [p for n, p in named if "bias" in n]
        decay = [p for n, p in named if "bias" not in n]
        groups = [
            {"params": decay, "weight_decay": REFERENCE_ADAMW_WD},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return (
            torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, eps=REFERENCE_ADAMW_EPS),
            f"reference quirk: AdamW (eps 1e-6) with wd fixed at {REFERENCE_ADAMW_WD} (asked {wd}), "
            "biases not decayed",
        )
    head_bias = {f"head.{n}" for n, _ in model.get_classifier().named_parameters() if n.endswith("bias")}
    groups = [{"params": [p], "weight_decay": 0.0 if n in head_bias else wd} for n, p in named]
    note = "reference quirk: AdamW with wd 0 became SGD" if kind == "adamw" else "reference SGD"
    return torch.optim.SGD(groups, lr=lr, momentum=0.9), f"{note}, momentum 0.9, wd {wd} except head bias"


def _no_decay_names(model: nn.Module) -> set[str]:
    names = set(getattr(model, "no_weight_decay", lambda: set())())
    return names | {n for n, p in model.named_parameters() if p.ndim < 2}


def warmup_cosine(t: float, warmup: float, total: float) -> float:
    """Multiplier at time ``t`` (in epochs or steps): linear warm-up to 1, then cosine to 0 at ``total``."""
    if t < warmup:
        return t / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (t - warmup) / (total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Schedule:
    """Sets the lr before each optimiser step.

    ``step``: warm-up then cosine over optimiser steps (the first step already has a small non-zero lr).
    ``epoch``: the reference code's schedule, stepped once per epoch, so epoch 0 trains at lr 0.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        peak_lr: float,
        mode: str,
        warmup_epochs: int,
        epochs: int,
        steps_per_epoch: int,
    ) -> None:
        self.optimizer, self.peak_lr, self.mode = optimizer, peak_lr, mode
        self.warmup_epochs, self.epochs, self.steps_per_epoch = warmup_epochs, epochs, steps_per_epoch

    def lr(self, epoch: int, step_in_epoch: int) -> float:
        if self.mode == "epoch":
            return self.peak_lr * warmup_cosine(epoch, self.warmup_epochs, self.epochs)
        step = epoch * self.steps_per_epoch + step_in_epoch
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        total = self.epochs * self.steps_per_epoch
        t = step + 1 if step < warmup_steps else step  # no zero-lr first step
        return self.peak_lr * warmup_cosine(t, warmup_steps, total)

    def apply(self, epoch: int, step_in_epoch: int) -> float:
        lr = self.lr(epoch, step_in_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr
