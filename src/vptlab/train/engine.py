"""The one training loop: K runs (K >= 1) trained side by side in one pass over their data.

``train_run`` is a pass of one run; a linear probe's lr x wd grid is a pass of K heads on shared features.  The
loop owns what every run does the same way, once:

1. the run folders (:mod:`vptlab.train.runfolder`): a finished run is returned as it is, an unfinished one
   resumes from its checkpoint (the exact step, for a run stopped mid-epoch), ``metrics.jsonl`` gets a line per
   epoch and ``result.json`` is written last;
2. the data (loaded once), FT-then-PT's stage 1, the learner (:mod:`vptlab.train.learners`: the modules);
3. per run: its optimiser (``build_optimizer`` on its own model, as a lone run builds it), its schedule, its
   divergence watch; the shared data order (a function of (seed, epoch): runs with the same seed read the same
   batches, each seed its own stream);
4. the epochs: every optimiser step sets each run's lr, one forward through the learner, each run's loss; a run
   whose loss is not finite ends ``diverged`` alone (no step), the others step; after every step the stop
   request (``should_interrupt``) is checked;
5. each epoch's evaluation (val; test at the run's cadence and at the final stage's last epoch), the blow-up
   check, ``should_stop`` (pruning), ``until_epoch`` (pausing) and periodic checkpoints;
6. the end: tuned weights, the extra evaluation sets, ``result.json``, the observers (``RunEvents``).

A diverged run gets no metrics line for the epoch it diverged in and no accuracy in its result.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

import vptlab
from vptlab._progress import progress
from vptlab.data.base import ImageSet, TaskData
from vptlab.data.ragged import is_ragged
from vptlab.errors import UserError
from vptlab.store.runs import load_result
from vptlab.train.card import write_run_card
from vptlab.train.config import RunConfig
from vptlab.train.cost import run_cost
from vptlab.train.evalsets import with_config_eval_sets
from vptlab.train.events import RunEvents, fanout
from vptlab.train.learners import Learner, LearnerFactory, PassSetup, default_learner
from vptlab.train.loop import (
    BlowupWatch,
    Diverged,
    EpochStats,
    FeatureSet,
    Precision,
    Tally,
    TrainTransform,
    eval_batches,
    score,
    train_batches,
)
from vptlab.train.model import TUNED_FILE, save_tuned
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr
from vptlab.train.runfolder import RunFolder, finished_result

# What the loop reads from every run of a pass alike (the learner decides what else they must share).
PASS_FIELDS = ("batch_size", "epochs", "warmup_epochs", "schedule", "stage", "eval_test_every", "precision")


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """An extra evaluation set: its images, and optionally the classes its logits compete among.

    ``classes`` is a logit mask for a set labelled with a subset of the head's classes (e.g. the 200 classes of
    ImageNet-R under a 1000-class head): the other logits are set to -inf before the loss and the arg-max."""

    images: ImageSet
    classes: tuple[int, ...] | None = None


@dataclasses.dataclass
class TrainOptions:
    """How to execute runs.  None of this is in a run's id: only ``train_transform`` changes what a run
    computes, so a caller that passes one must make the config say so (e.g. an augmentation option)."""

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
    should_interrupt: Callable[[], bool] | None = None
    train_transform: TrainTransform | None = None
    eval_sets: Mapping[str, ImageSet | EvalSet] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, device: str | torch.device | None = None, events: Any = None, **kw: Any) -> TrainOptions:
        """Options with ``device`` defaulted (CUDA if available) and ``events`` one observer or a list."""
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(dev, events=fanout(events), **kw)


def train_pass(
    cfgs: Sequence[RunConfig],
    out_dirs: Sequence[str | Path],
    *,
    options: TrainOptions | None = None,
    task_data: TaskData | None = None,
    learner: LearnerFactory | None = None,
    label: str | None = None,
) -> list[dict]:
    """Train every config into its folder in one pass; the results in order (finished runs as they are).

    The runs must share their task data and ``PASS_FIELDS``; ``learner`` builds the modules (default: one model
    for one run, or linear heads on features).  ``label`` names the pass in each result (``{label: {size,
    seconds}}``), e.g. ``linear_grid``."""
    if len(cfgs) != len(out_dirs):
        raise ValueError(f"{len(cfgs)} configs but {len(out_dirs)} folders")
    if not cfgs:
        return []
    cfgs = [c.resolved() for c in cfgs]
    _check_shared(cfgs)
    dirs = [Path(d) for d in out_dirs]
    results: list[dict | None] = [finished_result(c, d) for c, d in zip(cfgs, dirs)]
    todo = [i for i, r in enumerate(results) if r is None]
    if todo:
        opts = options or TrainOptions.make()
        runs = [_Member(k, cfgs[i], dirs[i], opts.events) for k, i in enumerate(todo)]
        trained = _Pass(runs, opts, task_data, learner or default_learner, label).execute()
        for i, result in zip(todo, trained):
            results[i] = result
    return results  # type: ignore[return-value]


def _check_shared(cfgs: list[RunConfig]) -> None:
    lead = cfgs[0]
    for cfg in cfgs[1:]:
        for name in PASS_FIELDS + ("data", "task", "regime", "split_seed", "image_size", "interpolation"):
            if getattr(cfg, name) != getattr(lead, name):
                raise ValueError(f"runs in one pass must share {name}: {getattr(lead, name)!r} vs "
                                 f"{getattr(cfg, name)!r}")  # fmt: skip


class _Member:
    """One run of the pass: its folder, status, optimiser, schedule, divergence watch and running sums."""

    def __init__(self, k: int, cfg: RunConfig, out: Path, events: RunEvents) -> None:
        self.k, self.cfg, self.out = k, cfg, out
        self.folder = RunFolder(out, cfg.run_id)
        self.events = events
        self.extra: dict[str, Any] = {}
        self.status: str | None = None  # set when the run ends
        self.metrics: dict[str, Any] = {}
        self.error: str | None = None
        self.stage1_dir: Path | None = None
        self.seconds_before = 0.0
        self.tally = Tally()  # this epoch's running sums (they travel in a mid-epoch checkpoint)
        self.epoch_stats: EpochStats | None = None
        # set by the pass once the learner exists
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: Schedule | None = None
        self.watch: BlowupWatch | None = None

    def end(self, status: str, metrics: dict | None = None, error: str | None = None) -> None:
        if self.status is None:
            self.status, self.metrics, self.error = status, dict(metrics or {}), error

    def diverge(self, d: Diverged) -> None:
        if self.status is None:
            self.extra["diverged_at"] = {"epoch": d.epoch, "step": d.step, "loss": d.loss}
            self.end("diverged")  # never an accuracy; the history stays in metrics.jsonl


class _Interrupted(Exception):
    """A stop request after an optimiser step: checkpoint at this exact position, end ``partial``."""


class _Pass:
    def __init__(self, runs: list[_Member], opts: TrainOptions, data: TaskData | None,
                 factory: LearnerFactory, label: str | None) -> None:  # fmt: skip
        self.runs, self.opts, self.data, self.factory, self.label = runs, opts, data, factory, label
        self.lead = runs[0].cfg
        self.started = time.perf_counter()
        self.precision: Precision | None = None
        self.params: list[dict | None] = [None] * len(runs)

    # 1. the whole pass
    def execute(self) -> list[dict]:
        try:
            self.data = self.data or _load_data(self.lead)
            self.opts = with_config_eval_sets(
                self.opts, self.lead, self.data
            )  # domain shift (train/evalsets.py)
            for run in self.runs:
                if _two_stage(run.cfg):
                    self._stage1(run)
            if self._live():
                self._train()
        except (KeyboardInterrupt, SystemExit, UserError):
            raise
        except Exception as err:  # a bug or an OOM: every unfinished run records it, the study goes on
            for run in self._live():
                run.end("failed", error=f"{type(err).__name__}: {err}")
        return [self._finish(run) for run in self.runs]

    def _live(self) -> list[_Member]:
        return [r for r in self.runs if r.status is None]

    # 2. ft-then-pt: stage 1 is a full fine-tuning run of its own
    def _stage1(self, run: _Member) -> None:
        s1 = run.cfg.stage1()
        found = self.opts.stage1_lookup(s1) if self.opts.stage1_lookup else None
        s1_dir = Path(found) if found else run.out / "stage1"
        result = load_result(s1_dir) if found else None
        if result is None or result["status"] != "ok" or result["run_id"] != s1.run_id:
            stage1_opts = dataclasses.replace(self.opts, until_epoch=None, should_stop=None, stage1_lookup=None,
                                              save_weights=True, events=RunEvents(), train_transform=None,
                                              eval_sets={})  # fmt: skip
            result = train_pass([s1], [s1_dir], options=stage1_opts, task_data=self.data)[0]
        run.extra["stage1"] = {"run_id": s1.run_id, "run_dir": str(s1_dir), "reused": bool(found),
                               "status": result["status"], "seconds": result.get("seconds")}  # fmt: skip
        if result["status"] != "ok" or not (s1_dir / TUNED_FILE).is_file():
            run.end(result["status"], error=f"stage 1 {result['status']}")
        else:
            run.stage1_dir = s1_dir

    # 3. set-up, resume, epochs
    def _train(self) -> None:
        runs, cfg, opts = self._live(), self.lead, self.opts
        self.precision = Precision.choose(opts.device, cfg.precision)
        self.learner = self._learner(runs)
        self.steps = math.ceil(len(self.learner.inputs["train"]) / cfg.batch_size)
        for i, run in enumerate(runs):
            self._optimiser(run, self.learner.run_model(i))
            run.extra.update(self.learner.record)
            self.params[run.k] = _param_counts(self.learner.run_model(i))
        self.slot = {run.k: i for i, run in enumerate(runs)}  # run -> its index in the learner
        start, start_step = self._resume(runs)
        for run in runs:
            run.events.run_start(run.out, run.cfg.to_dict(), start)
        last = min(opts.until_epoch if opts.until_epoch is not None else cfg.epochs, cfg.epochs)
        name = f"{cfg.method} {cfg.task}" + (f" x{len(runs)}" if len(runs) > 1 else "")
        remaining = max(0, (last - start) * self.steps - start_step)
        self._last_checkpoint = time.perf_counter()
        with progress(total=remaining, desc=name, unit="step", enabled=opts.progress, leave=False) as bar:
            try:
                for epoch in range(start, last):
                    self._epoch(epoch, start_step if epoch == start else 0, bar, force=epoch + 1 == last)
                    if not self._live():
                        return
            except _Interrupted:
                return
        self._end(last)

    def _learner(self, runs: list[_Member]) -> Learner:
        data, cfg = self.data, self.lead
        splits = {"train": data.train, "val": data.val, "test": data.test}
        if cfg.stage == "tune" and not (cfg.eval_test_every and cfg.eval_test_every <= cfg.epochs):
            splits.pop("test")  # never evaluated: no features needed
        for name, extra in self.opts.eval_sets.items():
            splits[f"eval:{name}"] = _checked_eval_set(name, extra, data.info.num_classes)
        setup = PassSetup(
            data,
            {k: v for k, v in splits.items() if v is not None},
            self.precision,
            [r.stage1_dir for r in runs],
            compile=self.opts.compile,
            linear_features=self.opts.linear_features
            and self.opts.train_transform is None
            and not is_ragged(data.train),  # FGVC: random crops every epoch, no features computed once
        )
        return self.factory([r.cfg for r in runs], setup)

    def _optimiser(self, run: _Member, model: nn.Module) -> None:
        from vptlab.methods import get_method

        c = run.cfg
        peak = scaled_lr(c.lr, c.batch_size)
        kind = get_method(c.method).optimizer
        run.optimizer, run.extra["optimizer"] = build_optimizer(
            model, kind, peak, c.wd, c.reference_optimizer
        )
        run.schedule = Schedule(run.optimizer, peak, c.schedule, c.warmup_epochs, c.epochs, self.steps)
        run.watch = BlowupWatch(self.data.info.num_classes, last_epoch=c.epochs - 1)

    # 4. one epoch: steps, then evaluation, pruning, checkpoint
    def _epoch(self, epoch: int, start_step: int, bar: Any, force: bool) -> None:
        self.learner.train_mode()
        streams = self._streams(epoch, start_step)
        for step in range(start_step, self.steps):
            live = self._live()
            if not live:
                return
            batch = {seed: next(stream) for seed, stream in streams.items()}
            self._step(epoch, step, live, [batch[r.cfg.seed] for r in live])
            bar.update()
            if self.opts.should_interrupt is not None and self.opts.should_interrupt():
                self._checkpoint(epoch, step + 1)
                for run in self._live():
                    run.end("partial", run.folder.last_row())
                raise _Interrupted
        for run in self._live():
            stats = run.tally.stats()
            run.tally = Tally()
            try:
                run.watch.check(epoch, stats.loss)
            except Diverged as d:
                run.diverge(d)
                continue
            run.epoch_stats = stats
        self._evaluate(epoch, bar)
        self._maybe_checkpoint(epoch + 1, force)

    def _streams(self, epoch: int, start_step: int) -> dict[int, Any]:
        """One batch stream per seed among the live runs (runs with one seed read one stream)."""
        data = self.learner.inputs["train"]
        seeds = dict.fromkeys(r.cfg.seed for r in self._live())
        return {seed: train_batches(data, seed=seed, epoch=epoch, batch_size=self.lead.batch_size,
                                    mean=self.data.mean, std=self.data.std, device=self.precision.device,
                                    start_step=start_step, transform=self.opts.train_transform)
                for seed in seeds}  # fmt: skip

    def _step(self, epoch: int, step: int, live: list[_Member], batches: list[tuple]) -> None:
        """Every live run's loss on its batch; runs with a finite loss take their optimiser step."""
        for run in live:
            run.schedule.apply(epoch, step)
        with self.precision.autocast():
            logits = self.learner.forward_train([x for x, _ in batches], [self.slot[r.k] for r in live])
        losses = [F.cross_entropy(out.float(), y) for out, (_, y) in zip(logits, batches)]
        values = torch.stack([loss.detach() for loss in losses]).tolist()
        kept = []
        for run, value, loss, out, (_, y) in zip(live, values, losses, logits, batches):
            if not math.isfinite(value):
                run.diverge(Diverged(epoch, step, value))
                continue
            kept.append((run, loss))
            run.tally.add(value * len(y), out, y)
        for run in live:
            run.optimizer.zero_grad(set_to_none=True)
        if kept:
            (kept[0][1] if len(kept) == 1 else torch.stack([loss for _, loss in kept]).sum()).backward()
            for run, _ in kept:
                run.optimizer.step()

    def _evaluate(self, epoch: int, bar: Any) -> None:
        """Val (and test at the run's cadence) for every live run: one metrics line each."""
        live, cfg = self._live(), self.lead
        splits = ["val"] if "val" in self.learner.inputs else []
        # the tune stage selects on val and never needs test; the final stage always ends with it
        if (epoch + 1 == cfg.epochs and cfg.stage == "final") or (
            cfg.eval_test_every and (epoch + 1) % cfg.eval_test_every == 0
        ):
            splits.append("test")
        scores = {s: self._scores(self.learner.inputs[s], live) for s in splits} if live else {}
        for i, run in enumerate(live):
            stats = run.epoch_stats
            row: dict[str, Any] = {"epoch": epoch, "lr": run.schedule.lr(epoch, self.steps - 1),
                                   "train_loss": stats.loss, "train_top1": stats.top1}  # fmt: skip
            for split, tallies in scores.items():
                s = tallies[i].stats()
                if not math.isfinite(s.loss):
                    run.diverge(Diverged(epoch, -1, s.loss))
                    break
                row[f"{split}_loss"], row[f"{split}_top1"] = s.loss, s.top1
            if run.status is not None:
                continue
            row["seconds"] = self._seconds(run)
            run.folder.append_row(row)
            run.events.epoch_end(run.out, row)
            if len(live) == 1:
                bar.set_postfix({k: f"{row[k]:.1f}" for k in ("val_top1", "test_top1") if k in row})
            should_stop = self.opts.should_stop
            if should_stop is not None and epoch + 1 < cfg.epochs and should_stop(epoch, row):
                run.end("pruned", row)

    @torch.inference_mode()
    def _scores(self, data: ImageSet | FeatureSet, live: list[_Member],
                classes: tuple[int, ...] | None = None) -> list[Tally]:  # fmt: skip
        """Per live run: the summed loss and hits over ``data`` (``classes``: the logit mask)."""
        self.learner.eval_mode()
        slots = [self.slot[r.k] for r in live]
        tallies = [Tally() for _ in live]
        mask = None
        if classes is not None:
            mask = torch.zeros(self.data.info.num_classes, dtype=torch.bool, device=self.precision.device)
            mask[list(classes)] = True
        for x, y in eval_batches(data, self.data.mean, self.data.std, self.precision.device):
            with self.precision.autocast():
                outs = self.learner.forward_eval(x, slots)
            for tally, logits in zip(tallies, outs):
                score(logits, y, tally, mask)
        return tallies

    # 5. checkpoints: resume after a kill, pause for successive halving, stop on request
    def _maybe_checkpoint(self, epochs_done: int, force: bool) -> None:
        due = time.perf_counter() - self._last_checkpoint >= self.opts.checkpoint_seconds
        if (force or due) and epochs_done < self.lead.epochs:
            self._checkpoint(epochs_done, 0)

    def _checkpoint(self, epoch: int, step: int) -> None:
        """Every live run's state at (``epoch``, ``step``): ``step`` optimiser steps into ``epoch``."""
        rng = {"rng": torch.get_rng_state()}
        if self.precision.device.type == "cuda":
            rng["cuda_rng"] = torch.cuda.get_rng_state(self.precision.device)
        for run in self._live():
            state = {"epoch": epoch, "step": step, "params": _trainable(self.learner.run_model(self.slot[run.k])),
                     "optimizer": run.optimizer.state_dict(), "seconds": self._seconds(run), **rng,
                     "tally": dataclasses.astuple(run.tally)}  # fmt: skip
            path = run.folder.write_checkpoint(state)
            run.events.checkpoint_saved(run.out, path, epoch)
        self._last_checkpoint = time.perf_counter()

    def _resume(self, runs: list[_Member]) -> tuple[int, int]:
        """The (epoch, step) the pass starts at; every run resumes there or, if they disagree, all start over."""
        states = [run.folder.read_checkpoint() for run in runs]
        where = {(int(s["epoch"]), int(s.get("step", 0))) for s in states if s is not None}
        if any(s is None for s in states) or len(where) != 1:
            for run in runs:
                run.folder.start_over()
            return 0, 0
        (epoch, step), state = where.pop(), states[0]
        for i, (run, s) in enumerate(zip(runs, states)):
            params = dict(self.learner.run_model(i).named_parameters())
            with torch.no_grad():
                for name, tensor in s["params"].items():
                    params[name].copy_(tensor)
            run.optimizer.load_state_dict(s["optimizer"])
            run.seconds_before = s["seconds"]
            run.tally = Tally(*s["tally"]) if "tally" in s else Tally()
            run.folder.keep_rows_before(epoch)
            for past in run.folder.rows():
                run.watch.streak = run.watch.streak + 1 if past["train_loss"] > run.watch.level else 0
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.precision.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.precision.device)
        return epoch, step

    # 6. the end
    def _end(self, last: int) -> None:
        live = self._live()
        if last < self.lead.epochs:
            for run in live:
                run.end("partial", run.folder.last_row())
            return
        evals = self._extra_evals(live)
        for i, run in enumerate(live):
            if self.opts.save_weights:
                save_tuned(self.learner.run_model(self.slot[run.k]), run.out / TUNED_FILE)
            metrics = run.folder.last_row()
            if evals:
                metrics["eval"] = {name: scores[i] for name, scores in evals.items()}
            run.end("ok", metrics)

    def _extra_evals(self, live: list[_Member]) -> dict[str, list[dict]]:
        """The final models on the extra evaluation sets: per set, per run ``{loss, top1}``."""
        out = {}
        for name, extra in self.opts.eval_sets.items():
            classes = extra.classes if isinstance(extra, EvalSet) else None
            tallies = self._scores(self.learner.inputs[f"eval:{name}"], live, classes)
            out[name] = [_finite({"loss": t.stats().loss, "top1": t.stats().top1}) for t in tallies]
        return out

    def _seconds(self, run: _Member) -> float:
        """A run's time so far: before a resume, plus its share of this pass."""
        return run.seconds_before + (time.perf_counter() - self.started) / len(self.runs)

    def _finish(self, run: _Member) -> dict:
        if self.label is not None:
            run.extra[self.label] = {
                "size": len(self.runs),
                "seconds": round(time.perf_counter() - self.started, 3),
            }
        data = self.data
        result: dict[str, Any] = {
            "status": run.status or "failed",
            "run_id": run.cfg.run_id,
            "config": run.cfg.to_dict(),
            "task": dataclasses.asdict(data.info) if data is not None else None,
            "data": data.record if data is not None else None,
            "metrics": {k: v for k, v in run.metrics.items() if k not in ("epoch", "lr", "seconds")},
            "epochs_done": len(run.folder.rows()),
            "params": self.params[run.k],
            "seconds": round(self._seconds(run), 3),
            "environment": self._environment(),
            **run.extra,
        }
        if run.error:
            result["error"] = run.error
        # the cost profile (vptlab.train.cost): params, FLOPs, images/s, memory, PPT
        if result["status"] != "partial":
            result["cost"] = run_cost(self._model_of(run), data, run.cfg, result, self.opts.device, run.out)
        run.folder.write_result(result)
        write_run_card(run.out, result)  # README.md + labels.json beside the result (vptlab.train.card)
        run.events.run_end(run.out, result)
        result["run_dir"] = str(run.out)
        return result

    def _model_of(self, run: _Member) -> nn.Module | None:
        """The model run ``run`` trained, if the pass built it (a run that failed first has none)."""
        slot = getattr(self, "slot", {})
        return self.learner.run_model(slot[run.k]) if run.k in slot else None

    def _environment(self) -> dict:
        dev = self.opts.device
        return {
            "vptlab": vptlab.__version__,
            "torch": torch.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
            "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
            "precision": self.precision.name if self.precision is not None else None,
            "threads": torch.get_num_threads(),
        }


def _load_data(cfg: RunConfig) -> TaskData:
    from vptlab.data import load_task

    return load_task(cfg.data, cfg.task, stage=cfg.stage, regime=cfg.regime, split_seed=cfg.split_seed,
                     image_size=cfg.image_size, interpolation=cfg.interpolation,
                     skip_bad_images=cfg.skip_bad_images)  # fmt: skip


def _checked_eval_set(name: str, extra: ImageSet | EvalSet, num_classes: int) -> ImageSet:
    """The images of an extra evaluation set whose labels (and logit mask) fit the head."""
    images = extra.images if isinstance(extra, EvalSet) else extra
    classes = (
        extra.classes if isinstance(extra, EvalSet) and extra.classes is not None else range(num_classes)
    )
    if not set(classes) <= set(range(num_classes)):
        raise UserError(f"eval set {name!r}: classes must be in [0, {num_classes}), got {sorted(classes)}")
    outside = np.setdiff1d(np.unique(images.labels), np.asarray(list(classes)))
    if len(outside):
        raise UserError(f"eval set {name!r}: label {int(outside[0])} is not among its {len(classes)} classes")
    return images


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


def _finite(scores: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in scores.items()}
