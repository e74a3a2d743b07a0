"""SIGINT/SIGTERM during a run: the epoch finishes, a checkpoint is written, the run stops, and the same call
continues to exactly the result of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vptlab.train import train_run
from vptlab.train.events import RunEvents
from vptlab.train.interrupt import RunInterrupted, graceful_stop, request, requested, stop_if_requested


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


class _SignalAt(RunEvents):
    """Sends this process a real signal at the end of an epoch (a deterministic moment to be interrupted)."""

    def __init__(self, epoch: int, signum: int) -> None:
        self.epoch, self.signum = epoch, signum

    def epoch_end(self, run_dir: Path, row: dict) -> None:
        if row["epoch"] == self.epoch:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_and_the_rerun_equals_an_uninterrupted_run(signum, tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("vpt-deep", epochs=4)
    whole = train_run(cfg, tmp_path / "whole", task_data=toy_task)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with graceful_stop():
        cut = train_run(cfg, tmp_path / "cut", task_data=toy_task, events=_SignalAt(1, signum),
                        should_interrupt=requested)  # fmt: skip
        with pytest.raises(RunInterrupted) as info:
            stop_if_requested(cut)
    # the signal came after epoch 1: the next optimiser step finished, then the checkpoint, mid-epoch 2
    assert cut["status"] == "partial" and info.value.epochs_done == 2 and info.value.signum == signum
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert len(_rows(tmp_path / "cut")) == 2
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before and not requested()
    rest = train_run(cfg, tmp_path / "cut", task_data=toy_task)
    assert rest["status"] == "ok" and rest["metrics"] == whole["metrics"]
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "whole")
    a, b = (
        load_file(tmp_path / "cut" / "tuned.safetensors"),
        load_file(tmp_path / "whole" / "tuned.safetensors"),
    )
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_stop_asked_before_a_run_starts_none():
    with graceful_stop():
        stop_if_requested()  # nothing asked: nothing happens
        request()
        with pytest.raises(RunInterrupted):
            stop_if_requested()
    assert not requested()


_CHILD = """
import os, signal, sys
import torch
torch.set_num_threads(1)  # as the tests' own process: the same float summation order
import vptlab.train.runfolder as run
real = run.append_jsonl
def append(path, row):  # a SIGTERM from outside, as a scheduler sends it, right after epoch 0's metrics
    real(path, row)
    if row.get("epoch") == 0:
        os.kill(os.getpid(), signal.SIGTERM)
run.append_jsonl = append
from vptlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_to_the_train_command_then_the_same_command_continues(tmp_path):
    args = ["train", "--method", "vpt-deep", "--task", "count", "--epochs", "3", "--warmup-epochs", "1",
            "--image-size", "16", "--batch-size", "64", "--no-pretrained", "--backbone-arg", "depth=1",
            "--backbone-arg", "embed_dim=16", "--backbone-arg", "num_heads=2", "--no-progress",
            "--regime", "kshot:4"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cut = subprocess.run([sys.executable, "-c", _CHILD, *args, "--out", str(tmp_path / "cut")],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert cut.returncode == 128 + signal.SIGTERM, cut.stderr
    assert "SIGTERM received" in cut.stderr and "stopped in epoch 2 of 3" in cut.stderr
    assert "rerun the same command" in cut.stderr and (tmp_path / "cut" / "checkpoint.pt").is_file()
    from vptlab.cli import main

    assert main([*args, "--out", str(tmp_path / "cut")]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "whole")
    result = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert result["status"] == "ok" and result["epochs_done"] == 3
