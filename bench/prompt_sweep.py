"""K prompt configurations trained in one pass through one frozen backbone (the K prompt sets batched together).

A benchmark subject, not a library feature: it measured 0.92-1.07x against K separate runs on a CPU
(BENCHMARKS.md) and no study uses it; it moves back into ``vptlab.train`` only behind a measured GPU gain.  It
also shows what the one training loop's learner interface (:mod:`vptlab.train.learners`) is for: the loop does
the epochs, data order, losses, optimisers, divergence, evaluation and run folders; this file only says how K
runs share the modules.

Under VPT the backbone is frozen and in eval mode; only the prompts and the head train.  K configurations of one
method and prompt length (different lr, wd or seed) can therefore share the backbone's forward and backward
passes: each step stacks the K runs' own batches (the loop gives run k the batch it would read alone, in its own
seeded order) into one batch of K x B images, the prompt hook inserts copy k's prompts into copy k's rows, and head
k reads copy k's CLS features.  Attention, LayerNorm and the MLPs act per image, so copy k's loss depends only on
run k's prompts and head: summing the K losses gives each run exactly its own gradients.  Every run starts from
the very init its own ``train_run`` would draw (its model is built with its seed); only prompt dropout draws from
a shared random stream, so results equal separate runs in distribution, to float tolerance without dropout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vptlab.backbones.create import describe_backbone
from vptlab.backbones.prompts import ATTR, VisualPrompts
from vptlab.train import RunConfig
from vptlab.train.engine import TrainOptions, train_pass
from vptlab.train.learners import Learner, PassSetup
from vptlab.train.model import build_model

SWEEP_AXES = ("lr", "wd", "seed")


def sweep_key(cfg: RunConfig) -> dict[str, Any]:
    """What configurations trained together must share: everything but lr, wd and seed."""
    return {k: v for k, v in cfg.resolved().identity().items() if k not in SWEEP_AXES}


def can_sweep(cfgs: Sequence[RunConfig]) -> bool:
    """True for vpt-shallow / vpt-deep configs that differ only in lr, wd and seed."""
    keys = [sweep_key(c) for c in cfgs]
    methods = {c.method for c in cfgs}
    return bool(cfgs) and methods <= {"vpt-shallow", "vpt-deep"} and all(k == keys[0] for k in keys)


def train_prompt_sweep(
    cfgs: Sequence[RunConfig],
    out_dirs: Sequence[str | Path],
    *,
    task_data: Any = None,
    device: str | torch.device | None = None,
    save_weights: bool = True,
) -> list[dict]:
    """Train every config into its folder in one pass; returns the results in order (finished ones as they are)."""
    if not can_sweep(cfgs):
        raise ValueError(
            "a prompt sweep needs vpt-shallow/vpt-deep configs that differ only in lr, wd and seed"
        )
    options = TrainOptions.make(device, progress=False, save_weights=save_weights)
    return train_pass(cfgs, out_dirs, options=options, task_data=task_data, learner=PromptSweepLearner,
                      label="prompt_sweep")  # fmt: skip


class SweepPrompts(VisualPrompts):
    """K runs' prompts in one module: rows ``[i*B, (i+1)*B)`` of a batch get run ``active[i]``'s prompts."""

    def __init__(self, sets: list[nn.Parameter], template: VisualPrompts) -> None:
        nn.Module.__init__(self)
        self.num_tokens, self.deep, self.init_bound = template.num_tokens, template.deep, template.init_bound
        self.num_prefix = template.num_prefix  # the backbone's own prefix tokens (CLS + registers)
        self.sets = nn.ParameterList(sets)
        self.dropout = nn.Dropout(template.dropout.p)
        self.active = list(range(len(sets)))
        self._handles = []

    def tokens(self, layer: int, batch: int) -> torch.Tensor:
        per = batch // len(self.active)
        stacked = torch.stack([self.sets[k][layer] for k in self.active])  # (K, n, D)
        expanded = stacked.unsqueeze(1).expand(-1, per, -1, -1).reshape(batch, self.num_tokens, -1)
        return self.dropout(expanded)


class PromptSweepLearner(Learner):
    """One frozen backbone serving K runs' prompts and heads."""

    def __init__(self, cfgs: list[RunConfig], setup: PassSetup) -> None:
        n = setup.data.info.num_classes
        self.models = [build_model(c, n)[0] for c in cfgs]  # run k's model: its prompts and head train
        _same_backbone(self.models)
        self.shared = build_model(cfgs[0], n)[0].to(setup.device)  # its backbone serves every run
        for m in self.models:
            m.vpt.to(setup.device)
            m.get_classifier().to(setup.device)
        template = self.shared.vpt
        template.remove_hooks()
        self.prompts = SweepPrompts([m.vpt.prompts for m in self.models], template)
        setattr(self.shared, ATTR, self.prompts)
        self.prompts.register(self.shared.blocks)
        self.heads = [m.get_classifier() for m in self.models]
        self.inputs, self.record = dict(setup.splits), {"backbone": describe_backbone(self.models[0])}

    def run_model(self, k: int) -> nn.Module:
        return self.models[k]

    def train_mode(self) -> None:
        self.shared.eval()
        self.prompts.train()  # prompt dropout on, the frozen backbone in eval mode (as VPT's train_mode)

    def eval_mode(self) -> None:
        self.shared.eval()

    def _logits(self, x: torch.Tensor, sizes: list[int], live: Sequence[int]) -> list[torch.Tensor]:
        self.prompts.active = list(live)
        features = self.shared.forward_head(self.shared.forward_features(x), pre_logits=True)
        return [self.heads[k](f) for k, f in zip(live, features.split(sizes))]

    def forward_train(self, xs: Sequence[torch.Tensor], live: Sequence[int]) -> list[torch.Tensor]:
        return self._logits(torch.cat(list(xs)), [len(x) for x in xs], live)

    def forward_eval(self, x: torch.Tensor, live: Sequence[int]) -> list[torch.Tensor]:
        return self._logits(x.repeat(len(live), 1, 1, 1), [len(x)] * len(live), live)


def _same_backbone(models: list[nn.Module]) -> None:
    """The runs must share their frozen weights (pretrained ones do; a random init differs by seed)."""
    frozen = [(n, p) for n, p in models[0].named_parameters() if not p.requires_grad]
    for m in models[1:]:
        own = dict(m.named_parameters())
        if any(not torch.equal(p, own[n]) for n, p in frozen):
            raise ValueError(
                "a prompt sweep needs one frozen backbone for every run; these configs build different ones "
                "(a random init with different seeds?)"
            )
