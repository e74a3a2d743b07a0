"""K prompt configurations trained in one pass through one frozen backbone (the K prompt sets batched together).

Under VPT the backbone is frozen and in eval mode; only the prompts and the head train.  K configurations of one
method and prompt length (different lr, wd or seed) can therefore share the backbone's forward and backward
passes: each step stacks the K runs' own batches (copy k is the batch run k would read, in its own seeded
order) into one batch of K x B images, the prompt hook inserts copy k's prompts into copy k's rows, and head k
reads copy k's CLS features.  Attention, LayerNorm and the MLPs act per image, so copy k's loss depends only on
run k's prompts and head: summing the K losses gives each run exactly its own gradients.  One optimiser holds
each run's param groups (its lr and wd).  Every run starts from the very init its own ``train_run`` would draw
(the model is built with its seed and its prompts and head are taken from it) and writes its own run folder
(:mod:`vptlab.train.multirun`); only prompt dropout draws from a shared random stream, so results equal
separate runs in distribution, to float tolerance without dropout.

What it buys is larger batches for the same work: worth it where a small batch leaves an accelerator idle
(ViT-B with batch 64 on a large GPU), not on a CPU, where K x B images cost what K batches of B cost
(``bench/bench_prompt_sweep.py``, BENCHMARKS.md).  It is a Python API, off in studies.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vptlab.backbones.prompts import ATTR, VisualPrompts
from vptlab.methods import get_method
from vptlab.train.config import RunConfig
from vptlab.train.loop import Diverged, Precision, batches, eval_batch_size, normalise
from vptlab.train.model import TUNED_FILE, build_model
from vptlab.train.multirun import MultiRunPass
from vptlab.train.run import _param_counts

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
    """Train every config into its folder in one pass; returns the results in order (finished ones as they are).

    Unfinished runs start from scratch (no checkpoints, no pausing)."""
    if not can_sweep(cfgs):
        raise ValueError(
            "a prompt sweep needs vpt-shallow/vpt-deep configs that differ only in lr, wd and seed"
        )
    return _SweepPass.train_into(
        cfgs, out_dirs, task_data=task_data, device=device, save_weights=save_weights
    )


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


class SweepPrompts(VisualPrompts):
    """K runs' prompts in one module: rows ``[k*B, (k+1)*B)`` of a batch get run ``active[k]``'s prompts."""

    def __init__(self, sets: list[nn.Parameter], template: VisualPrompts) -> None:
        nn.Module.__init__(self)
        self.num_tokens, self.deep, self.init_bound = template.num_tokens, template.deep, template.init_bound
        self.sets = nn.ParameterList(sets)
        self.dropout = nn.Dropout(template.dropout.p)
        self.active = list(range(len(sets)))
        self._handles = []

    def tokens(self, layer: int, batch: int) -> torch.Tensor:
        per = batch // len(self.active)
        stacked = torch.stack([self.sets[k][layer] for k in self.active])  # (K, n, D)
        expanded = stacked.unsqueeze(1).expand(-1, per, -1, -1).reshape(batch, self.num_tokens, -1)
        return self.dropout(expanded)


class _SweepPass(MultiRunPass):
    """One frozen backbone, K prompt sets and K heads."""

    label = "prompt_sweep"

    def _setup(self) -> None:
        lead, cfg = self.lead, self.lead.cfg
        device = lead.opts.device
        lead.precision = Precision.choose(device, cfg.precision)
        method = get_method(cfg.method)
        models = [build_model(run.cfg, lead.data.info.num_classes)[0] for run in self.runs]
        _same_backbone(models)
        self.model = models[0].to(device)  # its backbone serves every run; the others' backbones are dropped
        for m in models[1:]:
            m.vpt.to(device)
            m.get_classifier().to(device)
        optimizer, _ = self._optimizer(lambda k: models[k], method.optimizer)
        params = _param_counts(models[0])
        for run in self.runs:
            run.precision, run.params = lead.precision, params
        template = self.model.vpt
        template.remove_hooks()
        self.prompts = SweepPrompts([m.vpt.prompts for m in models], template)
        setattr(self.model, ATTR, self.prompts)
        self.prompts.register(self.model.blocks)
        self.heads = [m.get_classifier() for m in models]
        self._schedule(optimizer, len(lead.data.train))

    # the epochs
    def _train_epoch(self, epoch: int, alive: list[int]) -> tuple[dict[int, float], dict[int, int]]:
        streams = {k: self._stream(k, epoch) for k in alive}
        losses, correct = dict.fromkeys(alive, 0.0), dict.fromkeys(alive, 0)
        self.model.eval()
        self.prompts.train()  # prompt dropout on, the frozen backbone in eval mode (as VPT's train_mode)
        for step in range(self.steps):
            live = [k for k in alive if k not in self.diverged]
            if not live:
                break
            parts = [next(streams[k]) for k in live]
            x = torch.cat([p[0] for p in parts])
            self._set_lr(epoch, step)
            out = self._step(epoch, step, x, [p[1] for p in parts], live)
            for k, (loss, hits) in out.items():
                losses[k] += loss * len(parts[live.index(k)][1])
                correct[k] += hits
        return losses, correct

    def _stream(self, k: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Run k's own batches for this epoch: its seeded order, sorted within a batch, as ``train_epoch``."""
        data, cfg, device = self.lead.data, self.runs[k].cfg, self.lead.opts.device
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.train))
        for start in range(0, len(order), cfg.batch_size):
            idx = np.sort(order[start : start + cfg.batch_size])
            raw = torch.from_numpy(np.ascontiguousarray(data.train.images[idx]))
            y = torch.from_numpy(np.ascontiguousarray(data.train.labels[idx])).to(device)
            yield normalise(raw, data.mean, data.std, device), y

    def _step(self, epoch: int, step: int, x: torch.Tensor, ys: list[torch.Tensor],
              live: list[int]) -> dict[int, tuple[float, int]]:  # fmt: skip
        """Forward the K copies, drop runs whose loss is not finite, one backward and optimiser step."""
        self.prompts.active = live
        with self.lead.precision.autocast():
            features = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        chunks = features.split([len(y) for y in ys])
        out, kept = {}, []
        for k, f, y in zip(live, chunks, ys):
            with self.lead.precision.autocast():
                logits = self.heads[k](f)
            loss = F.cross_entropy(logits.float(), y)
            value = loss.item()
            if not math.isfinite(value):
                self._diverge(k, Diverged(epoch, step, value))
                continue
            kept.append(loss)
            out[k] = (value, int((logits.argmax(1) == y).sum()))
        self.optimizer.zero_grad(set_to_none=True)
        if kept:
            torch.stack(kept).sum().backward()
            self._drop_grads(k for k in live if k in self.diverged)
            self.optimizer.step()
        return out

    def _drop_grads(self, runs) -> None:
        """A run that diverged at this step takes no step (its rows may carry NaN gradients)."""
        for k in runs:
            for p in (self.prompts.sets[k], *self.heads[k].parameters()):
                p.grad = None

    # evaluation
    @torch.inference_mode()
    def _scores(self, split: str, alive: list[int]) -> tuple[list[float], list[float]]:
        data = self.lead.data
        subset = data.val if split == "val" else data.test
        self.model.eval()
        self.prompts.eval()
        self.prompts.active = alive
        chunk = max(1, eval_batch_size(self.lead.opts.device) // len(alive))
        total, hits = np.zeros(len(alive)), np.zeros(len(alive), dtype=np.int64)
        order = np.arange(len(subset))
        for x, y in batches(
            subset.images, subset.labels, order, chunk, data.mean, data.std, self.lead.opts.device
        ):
            with self.lead.precision.autocast():
                f = self.model.forward_head(self.model.forward_features(x.repeat(len(alive), 1, 1, 1)),
                                            pre_logits=True)  # fmt: skip
            for i, (k, fk) in enumerate(zip(alive, f.split(len(y)))):
                with self.lead.precision.autocast():
                    logits = self.heads[k](fk).float()
                total[i] += float(F.cross_entropy(logits, y, reduction="sum"))
                hits[i] += int((logits.argmax(1) == y).sum())
        return list(total / len(subset)), list(100.0 * hits / len(subset))

    def _save(self, k: int) -> None:
        """Only run k's tuned tensors, under the names its own run would save (``vpt.prompts``, ``head.*``)."""
        from safetensors.torch import save_file

        from vptlab._io import atomic_path

        state = {"vpt.prompts": self.prompts.sets[k]}
        state.update({f"head.{n}": p for n, p in self.heads[k].named_parameters()})
        with atomic_path(self.runs[k].out / TUNED_FILE) as tmp:
            save_file({n: t.detach().cpu().contiguous() for n, t in state.items()}, str(tmp))
