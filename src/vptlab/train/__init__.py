"""One training run: configuration and identity, optimiser and schedule, loop, evaluation, result files."""

from vptlab.train.config import RunConfig
from vptlab.train.model import build_model, load_run_model, load_tuned, save_tuned
from vptlab.train.run import train_run

__all__ = ["RunConfig", "build_model", "load_run_model", "load_tuned", "save_tuned", "train_run"]
