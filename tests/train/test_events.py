"""Observers of a run see its start, every epoch, every checkpoint and its result, in order."""

from __future__ import annotations

from pathlib import Path

from vptlab.train import train_run
from vptlab.train.events import RunEvents


class Recorder(RunEvents):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def run_start(self, run_dir: Path, config: dict, start_epoch: int) -> None:
        self.seen.append(("start", config["method"], start_epoch))

    def epoch_end(self, run_dir: Path, row: dict) -> None:
        self.seen.append(("epoch", row["epoch"]))

    def checkpoint_saved(self, run_dir: Path, path: Path, epochs_done: int) -> None:
        self.seen.append(("checkpoint", epochs_done, path.is_file()))

    def run_end(self, run_dir: Path, result: dict) -> None:
        self.seen.append(("end", result["status"], (run_dir / "result.json").is_file()))


def test_events_follow_a_paused_and_resumed_run(tiny_cfg, toy_task, tmp_path):
    cfg = tiny_cfg("vpt-deep", epochs=3, prompt_length=2)
    first, second = Recorder(), Recorder()
    train_run(cfg, tmp_path, task_data=toy_task, until_epoch=2, events=[first])
    assert first.seen == [
        ("start", "vpt-deep", 0),
        ("epoch", 0),
        ("epoch", 1),
        ("checkpoint", 2, True),
        ("end", "partial", True),
    ]
    train_run(cfg, tmp_path, task_data=toy_task, events=second)
    assert second.seen == [("start", "vpt-deep", 2), ("epoch", 2), ("end", "ok", True)]
