"""A linear probe's whole lr x wd grid in one pass over features computed once (dinov2 ``eval/linear.py`` style).

Every grid point of a ``linear`` tune stage reads the same frozen features in the same order (the order is a
function of the seed and the epoch), so K heads train side by side: one batch of features, K logits, K losses,
one backward, one optimiser whose param groups carry each head's lr and weight decay.  A head whose loss goes
non-finite (or blows up) ends ``diverged`` alone; the others go on.  Each grid point gets the run folder an
ordinary ``train_run`` would have written (``metrics.jsonl``, ``tuned.safetensors``, ``result.json`` with the
same fields), so the study, the store and the report cannot tell the difference; ``result.json`` also says the
run was trained in a grid (``linear_grid``) and its ``seconds`` are its share of the pass.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vptlab.train.config import RunConfig
from vptlab.train.loop import Diverged, Precision, eval_batch_size, feature_batches
from vptlab.train.model import TUNED_FILE, build_model, save_tuned
from vptlab.train.multirun import MultiRunPass
from vptlab.train.run import _param_counts

GRID_AXES = ("lr", "wd")


def grid_key(cfg: RunConfig) -> dict[str, Any]:
    """What grid points trained together must share: everything but lr and wd."""
    return {k: v for k, v in cfg.resolved().identity().items() if k not in GRID_AXES}


def can_share_pass(cfgs: Sequence[RunConfig]) -> bool:
    """True when ``cfgs`` are ``linear`` runs that differ only in lr and wd."""
    keys = [grid_key(c) for c in cfgs]
    return bool(cfgs) and all(c.method == "linear" for c in cfgs) and all(k == keys[0] for k in keys)


def train_linear_grid(
    cfgs: Sequence[RunConfig],
    out_dirs: Sequence[str | Path],
    *,
    task_data: Any = None,
    device: str | torch.device | None = None,
    save_weights: bool = True,
) -> list[dict]:
    """Train every config into its folder in one pass; returns the results in order (finished ones as they are).

    Unfinished runs start from scratch (the pass is short: no checkpoints, no pausing).
    """
    if not can_share_pass(cfgs):
        raise ValueError("a linear grid pass needs linear configs that differ only in lr and wd")
    return _GridPass.train_into(cfgs, out_dirs, task_data=task_data, device=device, save_weights=save_weights)


class _GridPass(MultiRunPass):
    """K heads over shared features; each ``_Run`` keeps its own folder, history and result."""

    label = "linear_grid"

    def _setup(self) -> None:
        lead, cfg = self.lead, self.lead.cfg
        self.model, method = build_model(cfg, lead.data.info.num_classes)
        self.model.to(lead.opts.device)
        lead.precision = Precision.choose(lead.opts.device, cfg.precision)
        self.inputs, _, _ = lead._inputs(self.model, self.model)
        self.heads = [copy.deepcopy(self.model.get_classifier()) for _ in self.runs]
        optimizer, _ = self._optimizer(self._with_head, method.optimizer)
        self.model.head = self.heads[0]
        params = _param_counts(self.model)
        for run in self.runs:
            run.precision, run.params = lead.precision, params
            run.extra["linear_features"] = lead.extra["linear_features"]
        self._schedule(optimizer, len(self.inputs["train"]))

    def _with_head(self, k: int) -> nn.Module:
        self.model.head = self.heads[k]
        return self.model

    def _train_epoch(self, epoch: int, alive: list[int]) -> tuple[dict[int, float], dict[int, int]]:
        """One epoch for every live head: per head, the very operations its own run performs, in order."""
        cfg = self.lead.cfg
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.inputs["train"]))
        losses, correct = dict.fromkeys(alive, 0.0), dict.fromkeys(alive, 0)
        for step, (x, y) in enumerate(feature_batches(self.inputs["train"], order, cfg.batch_size)):
            live = [k for k in alive if k not in self.diverged]
            if not live:
                break
            self._set_lr(epoch, step)
            outputs = self._forward(epoch, step, x, y, live)
            if not outputs:
                break
            for k, (logits, loss) in outputs.items():
                losses[k] += loss.item() * len(y)
                correct[k] += int((logits.argmax(1) == y).sum())
            self.optimizer.zero_grad(set_to_none=True)
            torch.stack([loss for _, loss in outputs.values()]).sum().backward()
            self.optimizer.step()
        return losses, correct

    def _forward(self, epoch: int, step: int, x: torch.Tensor, y: torch.Tensor,
                 live: list[int]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Each live head's logits and loss; a head whose loss is not finite diverges before its step.

        The heads' graphs are separate, so summing the kept losses gives each head exactly the gradient its own
        backward pass would (a diverged head's NaN never reaches the others)."""
        outputs = {}
        for k in live:
            with self.lead.precision.autocast():
                logits = self.heads[k](x)
            outputs[k] = (logits, F.cross_entropy(logits.float(), y))
        values = torch.stack([loss.detach() for _, loss in outputs.values()]).tolist()
        for k, value in zip(list(outputs), values):
            if not math.isfinite(value):
                self._diverge(k, Diverged(epoch, step, value))
                del outputs[k]
        return outputs

    @torch.inference_mode()
    def _scores(self, split: str, alive: list[int]) -> tuple[list[float], list[float]]:
        """Per head: mean cross-entropy and top-1 (%), computed as ``evaluate`` computes them."""
        data = self.inputs[split]
        losses, top1 = [], []
        order = np.arange(len(data))
        for k in alive:
            total, correct = 0.0, 0
            for x, y in feature_batches(data, order, eval_batch_size(self.lead.precision.device)):
                with self.lead.precision.autocast():
                    logits = self.heads[k](x).float()
                total += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
            losses.append(total / len(data))
            top1.append(100.0 * correct / len(data))
        return losses, top1

    def _save(self, k: int) -> None:
        save_tuned(self._with_head(k), self.runs[k].out / TUNED_FILE)
