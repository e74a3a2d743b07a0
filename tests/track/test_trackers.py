"""``--log tensorboard`` and ``--log mlflow``: what they write, read back with each tool's own reader."""

from __future__ import annotations

import json

import pytest

from vptlab.cli import main
from vptlab.track import LogOptions, make_trackers
from vptlab.train import train_run


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _scalars(log_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_hold_the_curves_and_the_cost(tiny_cfg, toy_task, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    result = train_run(tiny_cfg("vpt-deep", epochs=3, prompt_length=2), tmp_path, task_data=toy_task,
                       events=make_trackers(LogOptions(("tensorboard",))))  # fmt: skip
    scalars = _scalars(tmp_path / "tensorboard")
    rows = _rows(tmp_path)
    assert [step for step, _ in scalars["loss/train"]] == [0, 1, 2]
    assert [v for _, v in scalars["top1/val"]] == pytest.approx([r["val_top1"] for r in rows])
    assert [v for _, v in scalars["lr"]] == pytest.approx([r["lr"] for r in rows])
    assert scalars["cost/trainable_params"][0][1] == result["cost"]["trainable_params"]
    assert scalars["cost/flops_per_image"][0][1] == pytest.approx(result["cost"]["flops_per_image"])


def test_tensorboard_resumed_run_has_each_epoch_once(tiny_cfg, toy_task, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    cfg = tiny_cfg("linear", epochs=3)
    train_run(
        cfg, tmp_path, task_data=toy_task, until_epoch=2, events=make_trackers(LogOptions(("tensorboard",)))
    )
    train_run(cfg, tmp_path, task_data=toy_task, events=make_trackers(LogOptions(("tensorboard",))))
    assert [step for step, _ in _scalars(tmp_path / "tensorboard")["loss/train"]] == [0, 1, 2]


def test_mlflow_run_has_the_config_as_params_and_the_curves(tiny_cfg, toy_task, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    from vptlab.track.mlflow import local_store

    run_dir = tmp_path / "run"
    result = train_run(tiny_cfg("lora", epochs=2), run_dir, task_data=toy_task,
                       events=make_trackers(LogOptions(("mlflow",)), default_store=run_dir))  # fmt: skip
    client = MlflowClient(local_store(run_dir))
    [run] = client.search_runs([client.get_experiment_by_name("vptlab").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["method"] == "lora" and run.data.params["lr"] == str(result["config"]["lr"])
    assert run.data.params["lora_rank"] == str(result["config"]["lora_rank"])
    history = client.get_metric_history(run.info.run_id, "top1_val")
    rows = _rows(run_dir)
    assert [m.step for m in history] == [r["epoch"] for r in rows]
    assert [m.value for m in history] == pytest.approx([r["val_top1"] for r in rows])
    assert run.data.metrics["cost.trainable_params"] == result["cost"]["trainable_params"]
    assert run.data.tags["vptlab.run_id"] == result["run_id"]


def test_cli_train_log_unknown_tracker(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "--method", "linear", "--task", "count", "--out", str(tmp_path), "--log", "wandb"])
    assert err.value.code == 2 and "invalid choice: 'wandb'" in capsys.readouterr().err
