"""A linear probe's whole lr x wd grid in one pass over features computed once (dinov2 ``eval/linear.py`` style).

Every grid point of a ``linear`` tune stage reads the same frozen features in the same order (the order is a
function of the seed and the epoch), so K heads train side by side in the one training loop
(:func:`vptlab.train.engine.train_pass` with :class:`vptlab.train.learners.HeadsLearner`): one batch of features,
K logits, K losses, one backward, each head's own optimiser.  A head whose loss goes non-finite (or blows up) ends
``diverged`` alone; the others go on.  Each grid point gets the run folder an ordinary ``train_run`` writes
(bit for bit the same metrics and weights), so the study, the store and the report cannot tell the difference;
``result.json`` also says the run was trained in a grid (``linear_grid``) and its ``seconds`` are its share of
the pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vptlab.train.config import RunConfig
from vptlab.train.engine import TrainOptions, train_pass
from vptlab.train.learners import HeadsLearner

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
    options: TrainOptions | None = None,
) -> list[dict]:
    """Train every config into its folder in one pass; returns the results in order (finished ones as they are).

    An unfinished pass resumes from its runs' checkpoints when they agree on where they stopped (``options``:
    e.g. ``should_interrupt``, ``checkpoint_seconds``), else it starts over."""
    if not can_share_pass(cfgs):
        raise ValueError("a linear grid pass needs linear configs that differ only in lr and wd")
    opts = options or TrainOptions.make(device, progress=False, save_weights=save_weights)
    if opts.train_transform is not None or not opts.linear_features:
        raise ValueError("a linear grid pass trains on features computed once: no train_transform")
    return train_pass(
        cfgs, out_dirs, options=opts, task_data=task_data, learner=HeadsLearner, label="linear_grid"
    )
