"""SIGTERM during ``vptlab study run``: the in-process run checkpoints and the study stops; the same command
continues and ends with the results of an uninterrupted study."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
from PIL import Image

import vptlab.train.runfolder as run_module
from vptlab.cli import main
from vptlab_testing import tiny_spec

ONE_METHOD = """
[methods.full]
lr = [0.001]
wd = [0.0]
batch_size = 8
"""


def _folder(root):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            img = rng.integers(0, 80, (16, 16, 3)).astype(np.uint8)
            img[..., c] += 150
            Image.fromarray(img).save(root / name / f"{i}.png")


def _finals(out):
    rows = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/result.json"))]
    return {r["run_id"]: (r["status"], r["metrics"]) for r in rows}


def test_sigterm_stops_the_study_after_a_checkpoint_and_the_rerun_matches(tmp_path, monkeypatch, capsys):
    _folder(tmp_path / "imgs")
    spec = tmp_path / "s.toml"
    spec.write_text(
        tiny_spec(f"folder:{tmp_path / 'imgs'}", "imgs", epochs=3, seeds="[1]", methods=ONE_METHOD)
    )
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "whole")]) == 0

    real = run_module.append_jsonl
    sent = []

    def append(path, row):  # SIGTERM to this process right after the first run's first epoch
        real(path, row)
        if not sent:
            sent.append(path)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(run_module, "append_jsonl", append)
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "cut")]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "SIGTERM received" in err and "stopped in epoch 2 of 3" in err
    assert (sent[0].parent / "checkpoint.pt").is_file()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone after the command
    monkeypatch.setattr(run_module, "append_jsonl", real)
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "cut")]) == 0
    assert _finals(tmp_path / "cut") == _finals(tmp_path / "whole")
