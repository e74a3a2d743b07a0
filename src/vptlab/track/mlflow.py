"""MLflow: one MLflow run per vptlab run (params = the resolved config, per-epoch metrics, the cost profile),
nested under the study's MLflow run when a study logs.

Without a tracking URI the store is local: an SQLite file ``mlflow.db`` in the run folder (``vptlab train``) or
in the study folder (``vptlab study run``), with artifacts beside it in ``mlartifacts/`` (MLflow 3 keeps its plain
``mlruns/`` file store in maintenance mode and refuses it by default); ``mlflow ui --backend-store-uri
sqlite:///PATH/mlflow.db`` opens it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vptlab.track.base import cost_scalars, missing_extra, scalars
from vptlab.train.events import RunEvents

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
RUN_DIR_TAG = "vptlab.run_dir"
STUDY_TAG = "vptlab.study_dir"


def local_store(folder: Path) -> str:
    """The local store in ``folder``, as a tracking URI."""
    return f"sqlite:///{Path(folder).resolve() / STORE_FILE}"


def _client(uri: str | None) -> Any:
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise missing_extra("mlflow", "mlflow") from None
    return MlflowClient(tracking_uri=uri)


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    artifacts = None
    if client.tracking_uri.startswith("sqlite:///"):  # artifacts beside a local store, not in the cwd
        artifacts = (Path(client.tracking_uri[len("sqlite:///") :]).parent / ARTIFACTS_DIR).as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def _find(client: Any, experiment_id: str, tag: str, value: str) -> Any:
    escaped = value.replace("'", "\\'")
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{tag}` = '{escaped}'", max_results=1)
    return runs[0] if runs else None


def study_parent(uri: str | None, experiment: str, study_dir: Path, name: str) -> str:
    """The study's MLflow run (found again by its folder when a study is continued); returns its id."""
    client = _client(uri)
    exp = _experiment(client, experiment)
    key = str(Path(study_dir).resolve())
    found = _find(client, exp, STUDY_TAG, key)
    if found is not None:
        return found.info.run_id
    run = client.create_run(exp, run_name=f"study {name}", tags={STUDY_TAG: key})
    return run.info.run_id


def flat_params(config: dict[str, Any]) -> dict[str, str]:
    """The resolved config as MLflow params (strings, one per key; nested values as their text)."""
    return {k: str(v)[:6000] for k, v in config.items() if v is not None}


class MlflowEvents(RunEvents):
    """Logs each run to MLflow; a resumed run continues its MLflow run."""

    def __init__(
        self, tracking_uri: str | None, experiment: str = "vptlab", parent_run_id: str | None = None
    ):
        self.uri, self.experiment, self.parent = tracking_uri, experiment, parent_run_id
        self.runs: dict[Path, str] = {}
        self.client: Any = None

    def run_start(self, run_dir: Path, config: dict[str, Any], start_epoch: int) -> None:
        self.client = self.client or _client(self.uri or local_store(Path(run_dir)))
        exp = _experiment(self.client, self.experiment)
        key = str(Path(run_dir).resolve())
        found = _find(self.client, exp, RUN_DIR_TAG, key)
        if found is not None:
            run_id = found.info.run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            tags = {
                RUN_DIR_TAG: key,
                "vptlab.method": config.get("method"),
                "vptlab.task": config.get("task"),
            }
            if self.parent:
                tags["mlflow.parentRunId"] = self.parent
            name = f"{config.get('method')} {config.get('task')} seed {config.get('seed')}"
            run_id = self.client.create_run(exp, run_name=name, tags=tags).info.run_id
            for k, v in flat_params(config).items():
                self.client.log_param(run_id, k, v)
        self.runs[Path(run_dir)] = run_id

    def epoch_end(self, run_dir: Path, row: dict[str, Any]) -> None:
        run_id = self.runs[Path(run_dir)]
        for tag, value in scalars(row).items():
            self.client.log_metric(run_id, tag.replace("/", "_"), value, step=int(row["epoch"]))

    def run_end(self, run_dir: Path, result: dict[str, Any]) -> None:
        run_id = self.runs.pop(Path(run_dir), None)
        if run_id is None:
            return
        for tag, value in cost_scalars(result).items():
            self.client.log_metric(run_id, tag.replace("/", "."), value)
        self.client.set_tag(run_id, "vptlab.status", result["status"])
        self.client.set_tag(run_id, "vptlab.run_id", result.get("run_id", ""))
        status = {"ok": "FINISHED", "failed": "FAILED", "partial": "RUNNING"}.get(result["status"], "KILLED")
        if status != "RUNNING":
            self.client.set_terminated(run_id, status=status)
