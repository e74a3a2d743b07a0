"""One training run, end to end: a pass of one run through the one training loop (:mod:`vptlab.train.engine`).

The run folder holds ``metrics.jsonl`` (a line per epoch), ``checkpoint.pt`` while the run is unfinished,
``tuned.safetensors`` (only the tuned parameters) and, written last and atomically, ``result.json``.
A killed run restarts from its last checkpoint and continues exactly as if it had not stopped: the data order
is a function of (seed, epoch) and the RNG state travels in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from vptlab.data.base import ImageSet, TaskData
from vptlab.train.config import RunConfig
from vptlab.train.engine import EvalSet, TrainOptions, train_pass
from vptlab.train.events import RunEvents
from vptlab.train.loop import TrainTransform
from vptlab.train.runfolder import CHECKPOINT, FINISHED, METRICS, RESULT, finished_result

__all__ = ["CHECKPOINT", "FINISHED", "METRICS", "RESULT", "finished_result", "train_run"]


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
    should_interrupt: Callable[[], bool] | None = None,
    train_transform: TrainTransform | None = None,
    eval_sets: Mapping[str, ImageSet | EvalSet] | None = None,
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
    ``should_interrupt()`` is asked after every optimiser step; True checkpoints the run at that very step and
    ends it ``partial`` (a later call continues from there, as if never stopped).
    ``train_transform(raw_uint8_nhwc, generator)`` augments each training batch before normalisation, drawing
    from a generator seeded by (seed, epoch, step); it changes what the run computes, so let the config say so.
    ``eval_sets``: name -> ImageSet (or :class:`EvalSet` with a logit mask); the finished model is evaluated on
    each, into ``metrics.eval[name] = {loss, top1}``.
    """
    cfg = cfg.resolved()
    done = finished_result(cfg, Path(out_dir))
    if done is not None:
        return done
    options = TrainOptions.make(
        device,
        events,
        progress=progress,
        until_epoch=until_epoch,
        should_stop=should_stop,
        stage1_lookup=stage1_lookup,
        checkpoint_seconds=checkpoint_seconds,
        save_weights=save_weights,
        compile=compile,
        linear_features=linear_features,
        should_interrupt=should_interrupt,
        train_transform=train_transform,
        eval_sets=dict(eval_sets or {}),
    )
    return train_pass([cfg], [out_dir], options=options, task_data=task_data)[0]
