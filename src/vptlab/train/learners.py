"""The model side of a training pass: what K runs train, and how a batch goes through them.

The loop (:mod:`vptlab.train.engine`) owns the epochs, the data order, the losses, the optimisers, the schedule,
divergence, evaluation, checkpoints and the run folders; a :class:`Learner` owns only the modules.  It is built by
a factory ``(cfgs, setup) -> Learner`` and answers:

- ``inputs``: what the pass reads per split (the image sets, or a linear probe's features computed once);
- ``run_model(k)``: run k's model as its own run would hold it: its trainable parameters are exactly run k's
  (the loop builds run k's optimiser on it, checkpoints and saves those parameters under those names);
- ``forward_train(xs, live)`` / ``forward_eval(x, live)``: the logits of each live run (``xs[i]`` is the batch of
  run ``live[i]``; runs with the same seed get the same batch object);
- ``train_mode()`` / ``eval_mode()``.

Two learners cover vptlab's runs: :class:`ModelLearner` (one run, any method) and :class:`HeadsLearner` (K linear
heads on features computed once: a ``linear`` run, or a whole lr x wd grid in one pass).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vptlab.backbones.create import classifier_name, describe_backbone, set_classifier
from vptlab.data.base import ImageSet, TaskData
from vptlab.train.config import RunConfig
from vptlab.train.loop import FeatureSet, Precision
from vptlab.train.model import build_model


@dataclass
class PassSetup:
    """What a learner factory is given besides the configs."""

    data: TaskData
    splits: dict[str, ImageSet]  # every image set the pass reads: train, val, test as needed, extra eval sets
    precision: Precision
    stage1_dirs: list[Path | None]  # per run: ft-then-pt's stage-1 weights
    compile: bool = False
    linear_features: bool = True  # a linear probe may train on features computed once

    @property
    def device(self) -> torch.device:
        return self.precision.device


class Learner:
    """Base class: the model side of a pass of K runs (see the module docstring)."""

    inputs: dict[str, ImageSet | FeatureSet]
    record: dict[str, Any]  # extra result.json fields for every run of the pass

    def run_model(self, k: int) -> nn.Module:
        raise NotImplementedError

    def train_mode(self) -> None:
        raise NotImplementedError

    def eval_mode(self) -> None:
        raise NotImplementedError

    def forward_train(self, xs: Sequence[torch.Tensor], live: Sequence[int]) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward_eval(self, x: torch.Tensor, live: Sequence[int]) -> list[torch.Tensor]:
        raise NotImplementedError


LearnerFactory = Callable[[list[RunConfig], PassSetup], Learner]


class ModelLearner(Learner):
    """One run: the backbone with its method applied (optionally ``torch.compile``d)."""

    def __init__(self, cfgs: list[RunConfig], setup: PassSetup) -> None:
        if len(cfgs) != 1:
            raise ValueError(f"one model trains one run, got {len(cfgs)} configs")
        self.model, self.method = build_model(cfgs[0], setup.data.info.num_classes, setup.stage1_dirs[0])
        self.model.to(setup.device)
        self.forward = torch.compile(self.model) if setup.compile else self.model
        self.inputs, self.record = dict(setup.splits), {"backbone": describe_backbone(self.model)}

    def run_model(self, k: int) -> nn.Module:
        return self.model

    def train_mode(self) -> None:
        self.method.train_mode(self.model)

    def eval_mode(self) -> None:
        self.model.eval()

    def forward_train(self, xs: Sequence[torch.Tensor], live: Sequence[int]) -> list[torch.Tensor]:
        return [self.forward(xs[0])]

    def forward_eval(self, x: torch.Tensor, live: Sequence[int]) -> list[torch.Tensor]:
        return [self.forward(x)]


class HeadsLearner(Learner):
    """K linear heads on the frozen backbone's pre-logit features, computed once (and cached on disk).

    Under ``linear`` the backbone is frozen, in eval mode and sees no augmentation, so every epoch, grid point
    and seed reads the same features (:mod:`vptlab.train.features`).  Head k starts as the head run k's own
    model would have; each head's operations are exactly those of a lone run, so a grid is bit-identical to its
    runs trained one by one."""

    def __init__(self, cfgs: list[RunConfig], setup: PassSetup) -> None:
        from vptlab.train.features import task_features

        if any(c.method != "linear" for c in cfgs):
            raise ValueError("heads on features train linear runs only")
        self.model, _ = build_model(cfgs[0], setup.data.info.num_classes)
        self.model.to(setup.device)
        mean, std = setup.data.mean, setup.data.std
        self.inputs, features = task_features(self.model, setup.splits, mean=mean, std=std,
                                              precision=setup.precision)  # fmt: skip
        self.record = {"linear_features": features, "backbone": describe_backbone(self.model)}
        self.head_name = classifier_name(self.model)  # head, head.fc (Swin, ConvNeXt), fc (ResNet)
        self.heads = [copy.deepcopy(self.model.get_classifier()) for _ in cfgs]

    def run_model(self, k: int) -> nn.Module:
        # the model as run k holds it: its head, under the classifier's own name
        set_classifier(self.model, self.head_name, self.heads[k])
        return self.model

    def train_mode(self) -> None:
        for head in self.heads:
            head.train()

    def eval_mode(self) -> None:
        for head in self.heads:
            head.eval()

    def forward_train(self, xs: Sequence[torch.Tensor], live: Sequence[int]) -> list[torch.Tensor]:
        return [self.heads[k](xs[i]) for i, k in enumerate(live)]

    def forward_eval(self, x: torch.Tensor, live: Sequence[int]) -> list[torch.Tensor]:
        return [self.heads[k](x) for k in live]


def default_learner(cfgs: list[RunConfig], setup: PassSetup) -> Learner:
    """Linear runs on features when allowed (one or a whole grid), else one model for one run."""
    if setup.linear_features and all(c.method == "linear" for c in cfgs):
        return HeadsLearner(cfgs, setup)
    if len(cfgs) == 1:
        return ModelLearner(cfgs, setup)
    raise ValueError(
        f"{len(cfgs)} runs in one pass need a learner that shares the pass (linear runs on features, or a "
        "learner given to train_pass)"
    )
