"""Logging runs to the trackers people already watch: TensorBoard and MLflow (optional extras).

Each tracker is a :class:`vptlab.train.events.RunEvents` observer: ``train_run(..., events=make_trackers(...))``
or ``vptlab train --log tensorboard``; a study turns them on with ``[log] trackers = [...]`` or ``--log``.
"""

from __future__ import annotations

from vptlab.track.base import TRACKERS, LogOptions, make_trackers, parse_log, replay

__all__ = ["TRACKERS", "LogOptions", "make_trackers", "parse_log", "replay"]
