"""Extra evaluation sets at the end of a run (domain shift): each scored with the run's model, logits masked to
the set's classes when it holds a subset; recorded in ``result.json`` as ``metrics.eval[name]``.

A run names its sets in ``cfg.extra["eval_sets"]`` (``{name: source}``, see :mod:`vptlab.data.evalsets`): a
label, not part of the run's identity, so adding evaluation sets to a study does not retrain anything already
trained with the same config (an already finished run is returned as it was, without the new sets).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vptlab.data.base import TaskData
from vptlab.data.evalsets import EvalSet, load_eval_set
from vptlab.train.loop import Precision, evaluate

EXTRA_KEY = "eval_sets"


def eval_sets_of(extra: dict[str, Any]) -> dict[str, str]:
    sets = extra.get(EXTRA_KEY) or {}
    return {str(k): str(v) for k, v in dict(sets).items()}


def masked(forward: Any, mask: torch.Tensor | None) -> Any:
    """``forward`` whose logits outside ``mask`` are -inf (argmax and softmax over the set's classes only)."""
    if mask is None:
        return forward
    return lambda x: forward(x).float().masked_fill(~mask, float("-inf"))


def score(model: nn.Module, data: TaskData, evalset: EvalSet, precision: Precision) -> dict[str, Any]:
    mask = None if evalset.mask is None else torch.as_tensor(evalset.mask, device=precision.device)
    stats = evaluate(model, evalset.images, mean=data.mean, std=data.std, precision=precision,
                     forward=masked(model, mask))  # fmt: skip
    return {"top1": stats.top1, "loss": stats.loss, **evalset.record}


def evaluate_eval_sets(
    model: nn.Module, data: TaskData, sets: dict[str, str], *, image_size: int, interpolation: str,
    precision: Precision,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """``{name: {"top1", "loss", "images", "classes", "masked_to_classes", ...}}`` for each named set."""
    out = {}
    for name, source in sets.items():
        evalset = load_eval_set(name, source, data, image_size=image_size, interpolation=interpolation)
        out[name] = score(model, data, evalset, precision)
    return out
