"""A study's ``[log]`` section: every run logs to TensorBoard and MLflow, nested under the study's MLflow run;
final runs' cards carry the spread over seeds."""

from __future__ import annotations

import pytest

from vptlab.study import parse_spec, run_study
from vptlab_testing import make_photo_folder, tiny_spec

METHODS = """
[methods.linear]
lr = [0.1, 1.0]
wd = [0.0]
batch_size = 16
[methods.vpt-deep]
lr = [1.0]
wd = [0.0]
prompt_length = 2
batch_size = 16
[log]
trackers = ["tensorboard", "mlflow"]
"""


def test_study_logs_every_run_nested_under_the_study(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    from vptlab.store.runs import load_results
    from vptlab.track.mlflow import local_store

    photos = make_photo_folder(tmp_path / "photos", per_class=8)
    spec = parse_spec(tiny_spec(f"folder:{photos}", "photos", epochs=1, methods=METHODS))
    out = tmp_path / "study"
    run_study(spec, out, echo=lambda _: None)
    results = load_results(out)
    assert (
        len(results) == 2 + 2 * 2
    )  # linear grid (one shared pass; vpt-deep has one point: no tune), 2 finals each
    for r in results:
        assert any((out / "runs" / r["run_id"] / "tensorboard").glob("events.out.tfevents.*")), r["run_id"]

    client = MlflowClient(local_store(out))
    runs = client.search_runs([client.get_experiment_by_name("vptlab").experiment_id])
    [parent] = [r for r in runs if "vptlab.study_dir" in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["vptlab.run_id"] for r in children) == sorted(r["run_id"] for r in results)
    assert all(r.info.status == "FINISHED" for r in children)

    finals = [r for r in results if r["config"]["stage"] == "final"]
    card = (out / "runs" / finals[0]["run_id"] / "README.md").read_text()
    assert "over 2 seeds (1, 2)" in card and "## Cost" in card and "vptlab predict" in card

    run_study(spec, out, echo=lambda _: None)  # a rerun trains nothing and makes no second study run
    runs = client.search_runs([client.get_experiment_by_name("vptlab").experiment_id])
    assert len([r for r in runs if "vptlab.study_dir" in r.data.tags]) == 1 and len(runs) == len(results) + 1
