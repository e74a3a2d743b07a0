"""Which trackers a run logs to, and building their observers (the tracker packages imported on use)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vptlab.errors import UserError
from vptlab.train.events import RunEvents

TRACKERS = ("tensorboard", "mlflow")
# metrics.jsonl keys -> tracker tags, grouped so TensorBoard draws train/val/test on one chart per quantity
SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "test_loss": "loss/test",
    "train_top1": "top1/train",
    "val_top1": "top1/val",
    "test_top1": "top1/test",
    "lr": "lr",
}
COST_SCALARS = (
    "trainable_params",
    "trainable_params_without_head",
    "total_params",
    "tuned_bytes",
    "flops_per_image",
    "train_images_per_s",
    "inference_images_per_s",
    "peak_memory_bytes",
    "ppt",
)


@dataclass(frozen=True)
class LogOptions:
    """Trackers to log to; ``tracking_uri`` for MLflow (default: a local SQLite store ``mlflow.db`` in the run or
    study folder); ``parent_run_id`` nests each run under a study's MLflow run."""

    trackers: tuple[str, ...] = ()
    tracking_uri: str | None = None
    experiment: str = "vptlab"
    parent_run_id: str | None = None

    def __post_init__(self) -> None:
        for name in self.trackers:
            if name not in TRACKERS:
                raise UserError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")


def parse_log(table: Any) -> LogOptions:
    """A study spec's ``[log]`` section: ``trackers`` (list), ``tracking_uri``, ``experiment``."""
    from vptlab.study._schema import one_of

    options = LogOptions(
        trackers=tuple(
            table.get_list("trackers", "str", (), check=one_of(*TRACKERS), scalar_ok=True, allow_empty=True)
        ),  # fmt: skip
        tracking_uri=table.get("tracking_uri", "str", "") or None,
        experiment=table.get("experiment", "str", "vptlab"),
    )
    table.done()
    return options


def make_trackers(options: LogOptions, default_store: Path | None = None) -> list[RunEvents]:
    """The observers for ``options``; ``default_store``: where a local MLflow store goes without a URI."""
    out: list[RunEvents] = []
    for name in dict.fromkeys(options.trackers):
        if name == "tensorboard":
            from vptlab.track.tensorboard import TensorBoardEvents

            out.append(TensorBoardEvents())
        elif name == "mlflow":
            from vptlab.track.mlflow import MlflowEvents, local_store

            uri = options.tracking_uri or (local_store(default_store) if default_store else None)
            out.append(MlflowEvents(uri, options.experiment, options.parent_run_id))
    return out


def replay(run_dir: str | Path, events: list[RunEvents]) -> None:
    """Tell ``events`` about a run that has already finished, from its files (a run trained in a shared pass)."""
    from vptlab._io import read_jsonl
    from vptlab.store.runs import load_result

    run_dir = Path(run_dir)
    result = load_result(run_dir)
    if result is None or not events:
        return
    for e in events:
        e.run_start(run_dir, result["config"], 0)
    rows = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    for row in rows:
        for e in events:
            e.epoch_end(run_dir, row)
    for e in events:
        e.run_end(run_dir, result)


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """A metrics line as tracker tags."""
    return {tag: float(row[key]) for key, tag in SCALARS.items() if isinstance(row.get(key), (int, float))}


def cost_scalars(result: dict[str, Any]) -> dict[str, float]:
    cost = result.get("cost") or {}
    return {f"cost/{k}": float(cost[k]) for k in COST_SCALARS if isinstance(cost.get(k), (int, float))}


def missing_extra(package: str, extra: str) -> UserError:
    return UserError(f"--log {extra} needs the {package} package: pip install 'vptlab[{extra}]'")
