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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vptlab._io import append_jsonl
from vptlab.store.runs import load_result
from vptlab.train.config import RunConfig
from vptlab.train.loop import BlowupWatch, Diverged, FeatureSet, Precision, eval_batch_size, feature_batches
from vptlab.train.model import TUNED_FILE, build_model, save_tuned
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr
from vptlab.train.run import CHECKPOINT, FINISHED, METRICS, RunOptions, _param_counts, _Run

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
    if len(cfgs) != len(out_dirs):
        raise ValueError(f"{len(cfgs)} configs but {len(out_dirs)} folders")
    if not can_share_pass(cfgs):
        raise ValueError("a linear grid pass needs linear configs that differ only in lr and wd")
    cfgs = [c.resolved() for c in cfgs]
    dirs = [Path(d) for d in out_dirs]
    results: list[dict | None] = [_finished(c, d) for c, d in zip(cfgs, dirs)]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        opts = RunOptions(dev, progress=False, save_weights=save_weights)
        runs = [_Run(cfgs[i], dirs[i], opts, task_data) for i in todo]
        for run, result in zip(runs, _GridPass(runs).execute()):
            results[todo[runs.index(run)]] = result
    return results  # type: ignore[return-value]


def _finished(cfg: RunConfig, out: Path) -> dict | None:
    done = load_result(out)
    if done is not None and done.get("run_id") == cfg.run_id and done["status"] in FINISHED:
        done["run_dir"] = str(out)
        return done
    return None


class _GridPass:
    """K heads over shared features; each ``_Run`` keeps its own folder, history and result."""

    def __init__(self, runs: list[_Run]) -> None:
        self.runs = runs
        self.lead = runs[0]
        self.start = time.perf_counter()

    # 1. the pass
    def execute(self) -> list[dict]:
        try:
            self._setup()
            self._epochs()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # a bug or an OOM: every run of the pass records it
            error = f"{type(err).__name__}: {err}"
            return [self._finish(k, "failed", error=error) for k in range(len(self.runs))]
        return [self._finish(k, "diverged" if k in self.diverged else "ok") for k in range(len(self.runs))]

    def _setup(self) -> None:
        lead = self.lead
        for run in self.runs:
            run.out.mkdir(parents=True, exist_ok=True)
            (run.out / METRICS).unlink(missing_ok=True)
            (run.out / CHECKPOINT).unlink(missing_ok=True)
        lead.data = lead.data or lead._load_data()
        for run in self.runs:
            run.data = lead.data
        cfg = lead.cfg
        self.model, self.method = build_model(cfg, lead.data.info.num_classes)
        self.model.to(lead.opts.device)
        lead.precision = Precision.choose(lead.opts.device, cfg.precision)
        self.inputs, _, _ = lead._inputs(self.model, self.model)
        self.heads = [copy.deepcopy(self.model.get_classifier()) for _ in self.runs]
        self.optimizer, self.peaks, notes = self._optimizer()
        params = _param_counts(self.model)
        for run, note in zip(self.runs, notes):
            run.precision, run.params = lead.precision, params
            run.extra.update(optimizer=note, linear_features=lead.extra["linear_features"])
        self.steps = math.ceil(len(self.inputs["train"]) / cfg.batch_size)
        self.schedule = Schedule(self.optimizer, 1.0, cfg.schedule, cfg.warmup_epochs, cfg.epochs, self.steps)
        self.watches = [BlowupWatch(lead.data.info.num_classes, last_epoch=cfg.epochs - 1) for _ in self.runs]
        self.diverged: dict[int, dict] = {}

    def _optimizer(self) -> tuple[torch.optim.Optimizer, list[float], list[str]]:
        """One optimiser, each head's param groups built exactly as its own run would build them."""
        groups, peaks, notes, kind = [], [], [], None
        original = self.model.head
        for k, run in enumerate(self.runs):
            peak = scaled_lr(run.cfg.lr, run.cfg.batch_size)
            self.model.head = self.heads[k]
            opt, note = build_optimizer(self.model, self.method.optimizer, peak, run.cfg.wd,
                                        run.cfg.reference_optimizer)  # fmt: skip
            kind = type(opt)
            for group in opt.param_groups:
                groups.append({**group, "head": k})
            peaks.append(peak)
            notes.append(note)
        self.model.head = original
        return kind(groups), peaks, notes

    # 2. the epochs
    def _epochs(self) -> None:
        cfg = self.lead.cfg
        for epoch in range(cfg.epochs):
            alive = [k for k in range(len(self.runs)) if k not in self.diverged]
            if not alive:
                return
            losses, correct = self._train_epoch(epoch, alive)
            n = len(self.inputs["train"])
            for k in alive:
                if k in self.diverged:
                    continue
                row = {"epoch": epoch, "lr": self.peaks[k] * self.schedule.lr(epoch, self.steps - 1),
                       "train_loss": losses[k] / n, "train_top1": 100.0 * correct[k] / n}  # fmt: skip
                try:
                    self.watches[k].check(epoch, row["train_loss"])
                except Diverged as d:
                    self._diverge(k, d)
            self._evaluate(epoch, [k for k in alive if k not in self.diverged], losses, correct)

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

    def _set_lr(self, epoch: int, step: int) -> None:
        multiplier = self.schedule.lr(epoch, step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.peaks[group["head"]] * multiplier

    @torch.inference_mode()
    def _evaluate(self, epoch: int, alive: list[int], losses: dict, correct: dict) -> None:
        """Val (and test at the run's cadence) for every live head; one metrics line per head."""
        cfg, n = self.lead.cfg, len(self.inputs["train"])
        splits = ["val"] if "val" in self.inputs else []
        last = epoch + 1 == cfg.epochs and cfg.stage == "final"
        if last or (cfg.eval_test_every and (epoch + 1) % cfg.eval_test_every == 0):
            splits.append("test")
        scores = {s: self._scores(self.inputs[s], alive) for s in splits} if alive else {}
        for i, k in enumerate(alive):
            row: dict[str, Any] = {"epoch": epoch, "lr": self.peaks[k] * self.schedule.lr(epoch, self.steps - 1),
                                   "train_loss": losses[k] / n, "train_top1": 100.0 * correct[k] / n}  # fmt: skip
            for split, (loss, top1) in scores.items():
                row[f"{split}_loss"], row[f"{split}_top1"] = float(loss[i]), float(top1[i])
            bad = [row[f"{s}_loss"] for s in scores if not math.isfinite(row[f"{s}_loss"])]
            if bad:  # as in train_run: no line for the epoch it diverged in
                self._diverge(k, Diverged(epoch, -1, bad[0]))
                continue
            row["seconds"] = self._share()
            append_jsonl(self.runs[k].out / METRICS, row)

    def _scores(self, data: FeatureSet, heads: list[int]) -> tuple[list[float], list[float]]:
        """Per head: mean cross-entropy and top-1 (%) over ``data``, computed as ``evaluate`` computes them."""
        losses, top1 = [], []
        order = np.arange(len(data))
        for k in heads:
            head = self.heads[k]
            head.eval()
            total, correct = 0.0, 0
            for x, y in feature_batches(data, order, eval_batch_size(self.lead.precision.device)):
                with self.lead.precision.autocast():
                    logits = head(x).float()
                total += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
            losses.append(total / len(data))
            top1.append(100.0 * correct / len(data))
        return losses, top1

    # 3. endings
    def _diverge(self, k: int, d: Diverged) -> None:
        if k not in self.diverged:
            self.diverged[k] = {"epoch": d.epoch, "step": d.step, "loss": d.loss}

    def _share(self) -> float:
        return (time.perf_counter() - self.start) / len(self.runs)

    def _finish(self, k: int, status: str, error: str | None = None) -> dict:
        run = self.runs[k]
        run.started, run.seconds_before = time.perf_counter(), self._share()
        run.extra["linear_grid"] = {
            "size": len(self.runs),
            "seconds": round(time.perf_counter() - self.start, 3),
        }
        if status == "diverged":
            run.extra["diverged_at"] = self.diverged[k]
            return run._finish("diverged", {})
        if status == "failed":
            return run._finish("failed", {}, error=error)
        if run.opts.save_weights:
            self._save(k)
        return run._finish("ok", run._last_metrics())

    def _save(self, k: int) -> None:
        original: nn.Module = self.model.head
        self.model.head = self.heads[k]
        try:
            save_tuned(self.model, self.runs[k].out / TUNED_FILE)
        finally:
            self.model.head = original
