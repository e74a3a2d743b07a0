"""A study's logging: the spec's ``[log]`` (or the command line's ``--log``) and, for MLflow, the study's own
MLflow run that every run of the study is nested under."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def study_logging(spec: Any, options: Any, out: Path) -> Any:
    """``options`` (a worker ``RunOptions``) with the study's trackers, and its MLflow parent run made."""
    log = options.log if options.log is not None else spec.log
    if not log.trackers:
        return options
    if "mlflow" in log.trackers:
        from vptlab.track.mlflow import local_store, study_parent

        uri = log.tracking_uri or local_store(out)
        parent = study_parent(uri, log.experiment, out, spec.name)
        log = dataclasses.replace(log, tracking_uri=uri, parent_run_id=parent)
    return dataclasses.replace(options, log=log)
