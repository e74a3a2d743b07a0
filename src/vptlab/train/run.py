"""One training run, end to end: data, model, schedule, epochs, evaluation, result files, resume.

The run folder holds ``metrics.jsonl`` (a line per epoch), ``checkpoint.pt`` while the run is unfinished,
``tuned.safetensors`` (only the tuned parameters) and, written last and atomically, ``result.json``.
A killed run restarts from its last checkpoint and continues exactly as if it had not stopped: the data order
is a function of (seed, epoch) and the RNG state travels in the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

import vptlab
from vptlab._io import append_jsonl, atomic_path, atomic_write_json, read_jsonl
from vptlab._progress import progress
from vptlab.backbones.checkpoints import load_torch_weights
from vptlab.data.base import TaskData
from vptlab.errors import UserError
from vptlab.store.runs import load_result
from vptlab.train.card import write_run_card
from vptlab.train.config import RunConfig
from vptlab.train.cost import run_cost
from vptlab.train.events import RunEvents, fanout
from vptlab.train.loop import BlowupWatch, Diverged, EpochStats, Precision, evaluate, train_epoch
from vptlab.train.model import TUNED_FILE, build_model, save_tuned
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr

FINISHED = ("ok", "diverged", "pruned")  # "failed" and "partial" runs are retried / continued
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULT = "result.json"


@dataclasses.dataclass
class RunOptions:
    """How to execute a run; none of this changes what it computes, so none of it is in the run id."""

    device: torch.device
    progress: bool | None = None
    until_epoch: int | None = None
    should_stop: Callable[[int, dict], bool] | None = None
    stage1_lookup: Callable[[RunConfig], Path | None] | None = None
    checkpoint_seconds: float = 300.0
    save_weights: bool = True
    compile: bool = False
    linear_features: bool = True
    events: RunEvents = dataclasses.field(default_factory=RunEvents)


def train_run(
    cfg: RunConfig,
    out_dir: str | Path,
    *,
    task_data: TaskData | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    until_epoch: int | None = None,
    should_stop: Callable[[int, dict], bool] | None = None,
    stage1_lookup: Callable[[RunConfig], Path | None] | None = None,
    checkpoint_seconds: float = 300.0,
    save_weights: bool = True,
    compile: bool = False,
    linear_features: bool = True,
    events: RunEvents | list[RunEvents] | None = None,
) -> dict:
    """Train one run into ``out_dir`` and return its result (also written to ``out_dir/result.json``).

    A finished run in ``out_dir`` with the same run id is returned as is; an unfinished one is resumed.
    ``until_epoch`` pauses after that many epochs (status ``partial``); ``should_stop(epoch, row)`` returning
    True ends the run as ``pruned``.  ``stage1_lookup`` lets a study hand ft-then-pt an existing full run.
    ``linear_features``: a ``linear`` run trains its head on the frozen backbone's features, computed once and
    cached on disk (:mod:`vptlab.train.features`); the same batches, schedule and metrics as the ordinary path,
    to float tolerance.  ``False`` forces the ordinary path (the backbone runs every epoch).
    ``events``: observers (:class:`vptlab.train.events.RunEvents`) told of the start, each epoch, each
    checkpoint and the result.
    """
    cfg = cfg.resolved()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = finished_result(cfg, out)
    if done is not None:
        return done
    opts = RunOptions(
        torch.device(device) if device else _default_device(),
        progress,
        until_epoch,
        should_stop,
        stage1_lookup,
        checkpoint_seconds,
        save_weights,
        compile,
        linear_features,
        fanout(events),
    )
    return _Run(cfg, out, opts, task_data).execute()


def finished_result(cfg: RunConfig, out: Path) -> dict | None:
    """The result in ``out`` if it is this run's (same run id) and finished, else None."""
    done = load_result(out)
    if done is not None and done.get("run_id") == cfg.run_id and done["status"] in FINISHED:
        return done
    return None


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _Run:
    def __init__(self, cfg: RunConfig, out: Path, opts: RunOptions, data: TaskData | None) -> None:
        self.cfg, self.out, self.opts, self.data = cfg, out, opts, data
        self.extra: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.seconds_before = 0.0

    # 1. the whole run
    def execute(self) -> dict:
        try:
            self.data = self.data or self._load_data()
            stage1_dir = self._stage1() if _two_stage(self.cfg) else None
            if isinstance(stage1_dir, dict):  # stage 1 ended without weights: this run ends the same way
                return self._finish(stage1_dir["status"], {}, error=f"stage 1 {stage1_dir['status']}")
            return self._train(stage1_dir)
        except Diverged as d:
            self.extra["diverged_at"] = {"epoch": d.epoch, "step": d.step, "loss": d.loss}
            return self._finish("diverged", {})  # never an accuracy; the history stays in metrics.jsonl
        except (KeyboardInterrupt, SystemExit):
            raise
        except UserError:
            raise
        except Exception as err:  # a bug or an OOM: record it, keep the study going
            return self._finish("failed", {}, error=f"{type(err).__name__}: {err}")

    def _load_data(self) -> TaskData:
        from vptlab.data import load_task

        c = self.cfg
        return load_task(
            c.data,
            c.task,
            stage=c.stage,
            regime=c.regime,
            split_seed=c.split_seed,
            image_size=c.image_size,
            interpolation=c.interpolation,
            skip_bad_images=c.skip_bad_images,
        )

    # 2. ft-then-pt: stage 1 is a full fine-tuning run of its own
    def _stage1(self) -> Path | dict:
        s1 = self.cfg.stage1()
        found = self.opts.stage1_lookup(s1) if self.opts.stage1_lookup else None
        s1_dir = Path(found) if found else self.out / "stage1"
        result = load_result(s1_dir) if found else None
        if result is None or result["status"] != "ok" or result["run_id"] != s1.run_id:
            result = train_run(
                s1,
                s1_dir,
                task_data=self.data,
                device=self.opts.device,
                progress=self.opts.progress,
                checkpoint_seconds=self.opts.checkpoint_seconds,
                save_weights=True,
                compile=self.opts.compile,
            )
        self.extra["stage1"] = {
            "run_id": s1.run_id,
            "run_dir": str(s1_dir),
            "reused": bool(found),
            "status": result["status"],
            "seconds": result.get("seconds"),
        }
        if result["status"] != "ok" or not (s1_dir / TUNED_FILE).is_file():
            return {"status": result["status"]}
        return s1_dir

    # 3. the epochs
    def _train(self, stage1_dir: Path | None) -> dict:
        cfg, data, opts = self.cfg, self.data, self.opts
        model, method = build_model(cfg, data.info.num_classes, stage1_dir)
        model.to(opts.device)
        forward = torch.compile(model) if opts.compile else model
        peak = scaled_lr(cfg.lr, cfg.batch_size)
        optimizer, self.extra["optimizer"] = build_optimizer(
            model, method.optimizer, peak, cfg.wd, cfg.reference_optimizer
        )
        steps = math.ceil(len(data.train) / cfg.batch_size)
        schedule = Schedule(optimizer, peak, cfg.schedule, cfg.warmup_epochs, cfg.epochs, steps)
        self.model, self.params = model, _param_counts(model)
        start = self._resume(model, optimizer)
        opts.events.run_start(self.out, cfg.to_dict(), start)
        precision = Precision.choose(opts.device, cfg.precision)
        self.precision = precision
        self.inputs, self.eval_model, forward = self._inputs(model, forward)
        last = opts.until_epoch if opts.until_epoch is not None else cfg.epochs
        bar = progress(
            total=(min(last, cfg.epochs) - start) * steps,
            desc=f"{cfg.method} {cfg.task}",
            unit="step",
            enabled=opts.progress,
            leave=False,
        )
        self._last_checkpoint = time.perf_counter()
        watch = BlowupWatch(data.info.num_classes, last_epoch=cfg.epochs - 1)
        for past in self._rows():
            watch.streak = watch.streak + 1 if past["train_loss"] > watch.level else 0
        with bar:
            for epoch in range(start, min(last, cfg.epochs)):
                method.train_mode(model)
                stats = train_epoch(
                    model,
                    self.inputs["train"],
                    epoch=epoch,
                    seed=cfg.seed,
                    batch_size=cfg.batch_size,
                    optimizer=optimizer,
                    set_lr=schedule.apply,
                    mean=data.mean,
                    std=data.std,
                    precision=precision,
                    forward=forward,
                    on_step=bar.update,
                )
                watch.check(epoch, stats.loss)
                row = self._epoch_row(epoch, stats, schedule.lr(epoch, steps - 1), forward)
                bar.set_postfix({k: f"{row[k]:.1f}" for k in ("val_top1", "test_top1") if k in row})
                if opts.should_stop is not None and epoch + 1 < cfg.epochs and opts.should_stop(epoch, row):
                    return self._finish("pruned", row)
                self._maybe_checkpoint(model, optimizer, epoch + 1, force=epoch + 1 == last)
        if last < cfg.epochs:
            return self._finish("partial", self._last_metrics())
        if opts.save_weights:
            save_tuned(model, self.out / TUNED_FILE)
        return self._finish("ok", self._last_metrics())

    def _inputs(self, model: nn.Module, forward: Callable) -> tuple[dict, nn.Module, Callable]:
        """What the epochs read (images, or a linear probe's cached features), the model to evaluate, forward."""
        data, cfg = self.data, self.cfg
        splits = {"train": data.train, "val": data.val, "test": data.test}
        if cfg.stage == "tune" and not (cfg.eval_test_every and cfg.eval_test_every <= cfg.epochs):
            splits.pop("test")  # never evaluated: no features needed
        splits = {k: v for k, v in splits.items() if v is not None}
        if cfg.method != "linear" or not self.opts.linear_features:
            return splits, model, forward
        from vptlab.train.features import task_features

        sets, self.extra["linear_features"] = task_features(
            model, splits, mean=data.mean, std=data.std, precision=self.precision
        )
        head = model.get_classifier()
        return sets, head, head

    def _epoch_row(self, epoch: int, stats: EpochStats, lr: float, forward: Callable) -> dict:
        cfg, data = self.cfg, self.data
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_top1": stats.top1}
        evals = {"val": self.inputs["val"]} if "val" in self.inputs else {}
        # the tune stage selects on val and never needs test; the final stage always ends with it
        last = epoch + 1 == cfg.epochs and cfg.stage == "final"
        if last or (cfg.eval_test_every and (epoch + 1) % cfg.eval_test_every == 0):
            evals["test"] = self.inputs["test"]
        for split, subset in evals.items():
            s = evaluate(
                self.eval_model,
                subset,
                mean=data.mean,
                std=data.std,
                precision=self.precision,
                forward=forward,
            )
            if not math.isfinite(s.loss):
                raise Diverged(epoch, -1, s.loss)
            row[f"{split}_loss"], row[f"{split}_top1"] = s.loss, s.top1
        row["seconds"] = self._elapsed()
        append_jsonl(self.out / METRICS, row)
        self.opts.events.epoch_end(self.out, row)
        return row

    # 4. checkpoints: resume after a kill, pause for successive halving
    def _resume(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
        path = self.out / CHECKPOINT
        if not path.is_file():
            (self.out / METRICS).unlink(missing_ok=True)
            return 0
        try:
            state = load_torch_weights(path, "run checkpoint")
        except UserError:  # torn, foreign or carrying code: never run it, train from the start instead
            state = None
        if not isinstance(state, dict) or state.get("run_id") != self.cfg.run_id:
            path.unlink()
            (self.out / METRICS).unlink(missing_ok=True)
            return 0
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, tensor in state["params"].items():
                params[name].copy_(tensor)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        self.seconds_before = state["seconds"]
        rows = (
            [r for r in read_jsonl(self.out / METRICS) if r["epoch"] < state["epoch"]]
            if (self.out / METRICS).is_file()
            else []
        )
        with atomic_path(self.out / METRICS) as tmp:
            tmp.write_text("".join(_json_line(r) for r in rows))
        return int(state["epoch"])

    def _maybe_checkpoint(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, epochs_done: int, force: bool
    ) -> None:
        due = time.perf_counter() - self._last_checkpoint >= self.opts.checkpoint_seconds
        if not (force or due) or epochs_done >= self.cfg.epochs:
            return
        state = {
            "run_id": self.cfg.run_id,
            "epoch": epochs_done,
            "params": _trainable(model),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "seconds": self._elapsed(),
        }
        with atomic_path(self.out / CHECKPOINT) as tmp:
            torch.save(state, tmp)
        self._last_checkpoint = time.perf_counter()
        self.opts.events.checkpoint_saved(self.out, self.out / CHECKPOINT, epochs_done)

    # 5. the result
    def _finish(self, status: str, metrics: dict, error: str | None = None) -> dict:
        cfg, data = self.cfg, self.data
        result: dict[str, Any] = {
            "status": status,
            "run_id": cfg.run_id,
            "config": cfg.to_dict(),
            "task": dataclasses.asdict(data.info) if data is not None else None,
            "data": data.record if data is not None else None,
            "metrics": {k: v for k, v in metrics.items() if k not in ("epoch", "lr", "seconds")},
            "epochs_done": len(self._rows()),
            "params": getattr(self, "params", None),
            "seconds": round(self._elapsed(), 3),
            "environment": self._environment(),
            **self.extra,
        }
        if error:
            result["error"] = error
        if status != "partial":
            (self.out / CHECKPOINT).unlink(missing_ok=True)
            # the cost profile (vptlab.train.cost): parameters, bytes, FLOPs, images/s, peak memory, PPT
            result["cost"] = run_cost(
                getattr(self, "model", None), data, cfg, result, self.opts.device, self.out
            )
        atomic_write_json(self.out / RESULT, result)
        write_run_card(self.out, result)  # README.md + labels.json beside the result (vptlab.train.card)
        self.opts.events.run_end(self.out, result)
        result["run_dir"] = str(self.out)
        return result

    def _rows(self) -> list[dict]:
        path = self.out / METRICS
        return read_jsonl(path) if path.is_file() else []

    def _last_metrics(self) -> dict:
        rows = self._rows()
        return rows[-1] if rows else {}

    def _elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def _environment(self) -> dict:
        dev = self.opts.device
        return {
            "vptlab": vptlab.__version__,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
            "precision": self.precision.name if hasattr(self, "precision") else None,
            "threads": torch.get_num_threads(),
        }


def _two_stage(cfg: RunConfig) -> bool:
    from vptlab.methods import get_method

    return get_method(cfg.method).stages == 2


def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def _param_counts(model: nn.Module) -> dict[str, int]:
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }


def _json_line(row: dict) -> str:
    return json.dumps(row, sort_keys=True) + "\n"
