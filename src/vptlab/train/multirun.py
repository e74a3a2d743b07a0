"""Several runs trained in one pass: the bookkeeping they share (folders, schedule, divergence, result files).

A pass trains K runs side by side (K linear heads on shared features, or K prompt sets through one frozen
backbone).  Each run keeps the run folder an ordinary ``train_run`` writes (``metrics.jsonl``,
``tuned.safetensors``, ``result.json`` with the same fields, through the same ``_Run`` object), so the study,
the store and the report cannot tell the difference.  One optimiser holds every run's param groups, each
tagged with its run and built exactly as its own run would build it; the lr multiplier of the shared schedule
is applied to each run's own peak lr.  A run whose loss goes non-finite or blows up ends ``diverged`` alone.
A pass does not pause or checkpoint: unfinished runs start from scratch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vptlab._io import append_jsonl
from vptlab.train.config import RunConfig
from vptlab.train.loop import BlowupWatch, Diverged
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr
from vptlab.train.run import CHECKPOINT, METRICS, RunOptions, _default_device, _Run, finished_result


class MultiRunPass:
    """The shared skeleton; subclasses set up their model and implement one epoch, scoring and saving."""

    label = "multi_run"  # the key under which result.json records the pass

    def __init__(self, runs: list[_Run]) -> None:
        self.runs = runs
        self.lead = runs[0]
        self.start = time.perf_counter()
        self.diverged: dict[int, dict] = {}

    @classmethod
    def train_into(
        cls,
        cfgs: Sequence[RunConfig],
        out_dirs: Sequence[str | Path],
        *,
        task_data: Any = None,
        device: str | torch.device | None = None,
        save_weights: bool = True,
    ) -> list[dict]:
        """Train every config into its folder in one pass; returns the results in order (finished runs are
        returned as they are, without training them again)."""
        if len(cfgs) != len(out_dirs):
            raise ValueError(f"{len(cfgs)} configs but {len(out_dirs)} folders")
        cfgs = [c.resolved() for c in cfgs]
        dirs = [Path(d) for d in out_dirs]
        results: list[dict | None] = [finished_result(c, d) for c, d in zip(cfgs, dirs)]
        for result, d in zip(results, dirs):
            if result is not None:
                result["run_dir"] = str(d)
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            dev = torch.device(device) if device else _default_device()
            opts = RunOptions(dev, progress=False, save_weights=save_weights)
            runs = [_Run(cfgs[i], dirs[i], opts, task_data) for i in todo]
            for i, result in zip(todo, cls(runs).execute()):
                results[i] = result
        return results  # type: ignore[return-value]

    # 1. the pass
    def execute(self) -> list[dict]:
        try:
            self._prepare()
            self._setup()
            self._epochs()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # a bug or an OOM: every run of the pass records it
            error = f"{type(err).__name__}: {err}"
            return [self._finish(k, "failed", error=error) for k in range(len(self.runs))]
        return [self._finish(k, "diverged" if k in self.diverged else "ok") for k in range(len(self.runs))]

    def _prepare(self) -> None:
        """Fresh run folders, and the data loaded once for every run."""
        for run in self.runs:
            run.out.mkdir(parents=True, exist_ok=True)
            (run.out / METRICS).unlink(missing_ok=True)
            (run.out / CHECKPOINT).unlink(missing_ok=True)
        self.lead.data = self.lead.data or self.lead._load_data()
        for run in self.runs:
            run.data = self.lead.data

    def _setup(self) -> None:
        raise NotImplementedError

    def _schedule(self, optimizer: torch.optim.Optimizer, train_size: int) -> None:
        cfg = self.lead.cfg
        self.steps = math.ceil(train_size / cfg.batch_size)
        self.train_size = train_size
        self.schedule = Schedule(optimizer, 1.0, cfg.schedule, cfg.warmup_epochs, cfg.epochs, self.steps)
        classes = self.lead.data.info.num_classes
        self.watches = [BlowupWatch(classes, last_epoch=cfg.epochs - 1) for _ in self.runs]

    def _optimizer(
        self, model_for: Callable[[int], nn.Module], kind: str
    ) -> tuple[torch.optim.Optimizer, list[float]]:
        """One optimiser over every run's param groups, each built by ``build_optimizer`` on that run's model."""
        groups, peaks, cls = [], [], None
        for k, run in enumerate(self.runs):
            peak = scaled_lr(run.cfg.lr, run.cfg.batch_size)
            opt, note = build_optimizer(model_for(k), kind, peak, run.cfg.wd, run.cfg.reference_optimizer)
            cls = type(opt)
            groups += [{**group, "run": k} for group in opt.param_groups]
            peaks.append(peak)
            run.extra["optimizer"] = note
        self.optimizer, self.peaks = cls(groups), peaks
        return self.optimizer, peaks

    def _set_lr(self, epoch: int, step: int) -> None:
        multiplier = self.schedule.lr(epoch, step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.peaks[group["run"]] * multiplier

    # 2. the epochs
    def _epochs(self) -> None:
        for epoch in range(self.lead.cfg.epochs):
            alive = self._alive()
            if not alive:
                return
            losses, correct = self._train_epoch(epoch, alive)
            for k in self._alive():
                try:
                    self.watches[k].check(epoch, losses[k] / self.train_size)
                except Diverged as d:
                    self._diverge(k, d)
            self._evaluate(epoch, self._alive(), losses, correct)

    def _alive(self) -> list[int]:
        return [k for k in range(len(self.runs)) if k not in self.diverged]

    def _train_epoch(self, epoch: int, alive: list[int]) -> tuple[dict[int, float], dict[int, int]]:
        raise NotImplementedError

    def _scores(self, split: str, alive: list[int]) -> tuple[list[float], list[float]]:
        """Per live run: mean cross-entropy and top-1 (%) over ``split``."""
        raise NotImplementedError

    def _evaluate(self, epoch: int, alive: list[int], losses: dict, correct: dict) -> None:
        """Val (and test at the run's cadence) for every live run; one metrics line each, as ``train_run``."""
        cfg, n = self.lead.cfg, self.train_size
        splits = ["val"] if self.lead.data.val is not None else []
        last = epoch + 1 == cfg.epochs and cfg.stage == "final"
        if last or (cfg.eval_test_every and (epoch + 1) % cfg.eval_test_every == 0):
            splits.append("test")
        scores = {s: self._scores(s, alive) for s in splits} if alive else {}
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

    # 3. endings
    def _diverge(self, k: int, d: Diverged) -> None:
        if k not in self.diverged:
            self.diverged[k] = {"epoch": d.epoch, "step": d.step, "loss": d.loss}

    def _share(self) -> float:
        return (time.perf_counter() - self.start) / len(self.runs)

    def _finish(self, k: int, status: str, error: str | None = None) -> dict:
        run = self.runs[k]
        run.started, run.seconds_before = time.perf_counter(), self._share()
        run.extra[self.label] = {
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
        raise NotImplementedError
