"""Extra evaluation sets named in a run's config (domain shift), handed to the training loop.

A run names its sets in ``cfg.extra["eval_sets"]`` (``{name: source}``, see :mod:`vptlab.data.evalsets`): a
label, not part of the run's identity, so adding evaluation sets to a study does not retrain anything already
trained with the same config (an already finished run is returned as it was, without the new sets).  The loop
(:mod:`vptlab.train.engine`) scores the finished model on each, with the logits masked to the set's classes when
it holds a subset, into ``result.json`` ``metrics.eval[name] = {loss, top1}``; what each set is (images, classes,
masked) goes into the run's data record under ``eval_sets``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vptlab.data.base import TaskData
from vptlab.data.evalsets import load_eval_set

EXTRA_KEY = "eval_sets"


def eval_sets_of(extra: dict[str, Any]) -> dict[str, str]:
    """``{name: source}`` from a config's ``extra`` labels."""
    sets = extra.get(EXTRA_KEY) or {}
    return {str(k): str(v) for k, v in dict(sets).items()}


def with_config_eval_sets(opts: Any, cfg: Any, data: TaskData) -> Any:
    """``opts`` (:class:`vptlab.train.engine.TrainOptions`) with the evaluation sets ``cfg`` names loaded in
    ``data``'s label space (and decoded as its test set is); unchanged when it names none."""
    sets = {k: v for k, v in eval_sets_of(cfg.extra).items() if k not in opts.eval_sets}
    if not sets:
        return opts
    from vptlab.train.engine import EvalSet

    loaded, records = {}, {}
    for name, source in sets.items():
        es = load_eval_set(name, source, data, image_size=cfg.image_size, interpolation=cfg.interpolation)
        classes = None if es.mask is None else tuple(int(i) for i in np.flatnonzero(es.mask))
        loaded[name] = EvalSet(es.images, classes)
        records[name] = es.record
    data.record["eval_sets"] = {**data.record.get("eval_sets", {}), **records}
    return dataclasses.replace(opts, eval_sets={**opts.eval_sets, **loaded})
