"""One training run: configuration and identity, optimiser and schedule, loop, evaluation, result files.

Names are imported on first use, so the CLI can describe ``RunConfig`` without importing torch.
"""

from __future__ import annotations

from vptlab._lazy import lazy_getattr

_EXPORTS = {
    "RunConfig": "vptlab.train.config",
    "build_model": "vptlab.train.model",
    "load_run_model": "vptlab.train.model",
    "load_tuned": "vptlab.train.model",
    "save_tuned": "vptlab.train.model",
    "train_linear_grid": "vptlab.train.linear_grid",
    "train_pass": "vptlab.train.engine",
    "train_run": "vptlab.train.run",
    "EvalSet": "vptlab.train.engine",
    "RunEvents": "vptlab.train.events",
    "TrainOptions": "vptlab.train.engine",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr("vptlab.train", _EXPORTS)
