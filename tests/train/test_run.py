"""One run: schedule, optimiser policy, resume, divergence, result files, cadence, identity."""

from __future__ import annotations

import json

import pytest
import torch

from vptlab.errors import UserError
from vptlab.train import RunConfig, build_model, train_run
from vptlab.train.optim import Schedule, build_optimizer, scaled_lr, warmup_cosine


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_lr_is_scaled_by_batch_over_256():
    assert scaled_lr(0.1, 64) == pytest.approx(0.025)
    assert scaled_lr(0.001, 128) == pytest.approx(0.0005)


def test_step_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, 1.0, "step", warmup_epochs=2, epochs=10, steps_per_epoch=5)
    lrs = [s.lr(e, i) for e in range(10) for i in range(5)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # 10 warm-up steps, none at 0
    assert max(lrs) == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine is monotone
    assert lrs[-1] < 0.002


def test_epoch_schedule_reproduces_the_reference_epoch_zero_at_lr_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, 2.0, "epoch", warmup_epochs=10, epochs=100, steps_per_epoch=7)
    assert s.lr(0, 0) == 0.0 and s.lr(0, 6) == 0.0
    assert s.lr(5, 3) == pytest.approx(1.0)
    assert s.lr(10, 0) == pytest.approx(2.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)


def test_weight_decay_is_honoured_as_given(tiny_cfg):
    model, method = build_model(tiny_cfg("full").resolved(), 4)
    opt, note = build_optimizer(model, "adamw", 1e-3, 0.0)
    assert isinstance(opt, torch.optim.AdamW)  # wd 0 keeps AdamW
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0}
    opt, _ = build_optimizer(model, "adamw", 1e-3, 0.05)
    decayed = [g for g in opt.param_groups if g["weight_decay"] == 0.05][0]
    assert all(p.ndim >= 2 for p in decayed["params"])  # biases, norms: no decay


def test_reference_optimizer_quirks_are_explicit(tiny_cfg):
    model, _ = build_model(tiny_cfg("full").resolved(), 4)
    opt, note = build_optimizer(model, "adamw", 1e-3, 0.0001, reference=True)
    assert isinstance(opt, torch.optim.AdamW) and "0.01" in note
    assert max(g["weight_decay"] for g in opt.param_groups) == 0.01
    opt, note = build_optimizer(model, "adamw", 1e-3, 0.0, reference=True)
    assert isinstance(opt, torch.optim.SGD) and "became SGD" in note


def test_result_files_and_metrics(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("vpt-deep", epochs=4, eval_test_every=2)
    result = train_run(cfg, tmp_path, task_data=toy_task)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "ok" and saved["run_id"] == cfg.run_id
    assert saved["config"]["method"] == "vpt-deep" and saved["config"]["lr"] == 0.25  # resolved
    assert set(saved["params"]) == {"trainable", "total"}
    assert saved["task"]["num_classes"] == 4
    rows = _rows(tmp_path)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert ["test_top1" in r for r in rows] == [False, True, False, True]
    assert all("val_top1" in r and "train_loss" in r for r in rows)
    assert result["metrics"]["test_top1"] == rows[-1]["test_top1"]
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_finished_run_is_not_run_again(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("linear")
    first = train_run(cfg, tmp_path, task_data=toy_task)
    mtime = (tmp_path / "result.json").stat().st_mtime_ns
    again = train_run(cfg, tmp_path, task_data=toy_task)
    assert again["seconds"] == first["seconds"]
    assert (tmp_path / "result.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("method", ["vpt-deep", "full"])
def test_paused_and_resumed_run_equals_an_uninterrupted_one(method, tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg(method, epochs=4, backbone_dropout=0.1 if method == "full" else None)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    part = train_run(cfg, tmp_path / "split", task_data=toy_task, until_epoch=2)
    assert part["status"] == "partial" and (tmp_path / "split" / "checkpoint.pt").exists()
    rest = train_run(cfg, tmp_path / "split", task_data=toy_task)
    assert rest["status"] == "ok"
    assert _strip(_rows(tmp_path / "split")) == _strip(_rows(tmp_path / "whole"))
    assert rest["metrics"] == whole["metrics"]


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_should_stop_prunes(tiny_cfg, toy_task, tmp_path):
    result = train_run(
        tiny_cfg("linear", epochs=4), tmp_path, task_data=toy_task, should_stop=lambda epoch, row: epoch == 1
    )
    assert result["status"] == "pruned" and result["epochs_done"] == 2


def test_huge_learning_rate_ends_as_diverged_not_a_crash(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("full", lr=50.0, epochs=3), tmp_path, task_data=toy_task)
    assert result["status"] == "diverged"
    assert "diverged_at" in result and "test_top1" not in result["metrics"]


def test_ft_then_pt_reuses_a_given_stage_one(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("ft-then-pt", ft_lr=0.001, ft_wd=0.0)
    stage1 = train_run(cfg.stage1(), tmp_path / "full", task_data=toy_task)
    asked = []
    result = train_run(
        cfg,
        tmp_path / "ftpt",
        task_data=toy_task,
        stage1_lookup=lambda c: asked.append(c.run_id) or tmp_path / "full",
    )
    assert asked == [stage1["run_id"]]
    assert result["stage1"]["reused"] and result["stage1"]["run_id"] == stage1["run_id"]
    assert not (tmp_path / "ftpt" / "stage1").exists()


def test_ft_then_pt_from_one_command_trains_stage_one_itself(tiny_cfg, toy_task, tmp_path):
    result = train_run(tiny_cfg("ft-then-pt"), tmp_path, task_data=toy_task)
    assert result["status"] == "ok" and not result["stage1"]["reused"]
    assert (tmp_path / "stage1" / "result.json").exists()


def test_identity_ignores_blank_options_of_other_methods_and_refuses_given_ones():
    # the old flat form blanks the options a method does not read: it loads, and they are not part of the id
    flat = RunConfig(method="full", task="t").resolved().to_dict()
    assert flat["prompt_length"] is None and flat["lora_rank"] is None
    assert RunConfig.from_dict(flat).run_id == RunConfig(method="full", task="t").run_id
    with pytest.raises(UserError, match="method full has no option 'prompt_length'"):
        RunConfig.of(method="full", task="t", prompt_length=5)
    assert (
        RunConfig.of(method="vpt-deep", task="t", prompt_length=5).run_id
        != RunConfig.of(method="vpt-deep", task="t", prompt_length=50).run_id
    )
    assert (
        RunConfig(method="vpt-deep", task="t").run_id
        == RunConfig(method="vpt-deep", task="t", lr=0.25).run_id
    )


def test_an_unreadable_checkpoint_is_discarded_and_the_run_restarts(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("linear", epochs=3)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    part = train_run(cfg, tmp_path / "torn", task_data=toy_task, until_epoch=1)
    assert part["status"] == "partial"
    ckpt = tmp_path / "torn" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # a torn file
    again = train_run(cfg, tmp_path / "torn", task_data=toy_task)
    assert again["status"] == "ok" and again["metrics"] == whole["metrics"]
