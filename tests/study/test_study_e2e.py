"""A tiny study end to end with the real ``train_run``: local, worker processes, killed and resumed, Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from studyhelpers import make_folder_task

from vptlab.cli import main
from vptlab.store.runs import study_results
from vptlab.study.runner import run_study
from vptlab.study.spec import load_spec
from vptlab.study.worker import WorkerOptions
from vptlab_testing import tiny_spec


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    make_folder_task(root / "colours")
    path = root / "tiny.toml"
    path.write_text(tiny_spec(f"folder:{root / 'colours'}", "colours", epochs=3))
    return path


def finals(out: Path) -> dict[str, tuple]:
    """Final runs by id: status, test top-1 and test loss (what the tables report)."""
    return {
        run_id: (r["status"], r["metrics"].get("test_top1"), round(r["metrics"].get("test_loss", 0.0), 5))
        for run_id, r in study_results(out).items()
        if r["config"]["stage"] == "final"
    }


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory) -> Path:
    """The uninterrupted study, run once in-process."""
    out = tmp_path_factory.mktemp("reference")
    run_study(
        load_spec(spec_file),
        out,
        options=WorkerOptions(device="cpu", checkpoint_seconds=0),
        echo=lambda _: None,
    )
    return out


def test_a_tiny_study_runs_end_to_end_and_a_rerun_trains_nothing(spec_file, reference, capsys):
    results = study_results(reference)
    # tune: full 2 + vpt-deep 2 (ft-then-pt's one-point grid has no tune run); final: 3 methods x 2 seeds
    assert len(results) == 4 + 6
    assert all(r["status"] == "ok" for r in results.values())
    ftpt = [r for r in results.values() if r["config"]["method"] == "ft-then-pt"]
    assert all(r["stage1"]["reused"] and r["stage1"]["run_id"] in results for r in ftpt)
    assert all(not (Path(r["run_dir"]) / "checkpoint.pt").exists() for r in results.values())
    assert main(["study", "run", str(spec_file), "--out", str(reference), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "trained 0 run(s) this time" in out and "mean ± std over seeds" in out


def test_results_table_of_a_real_study(reference, tmp_path, capsys):
    assert main(["study", "results", str(reference), "--csv", str(tmp_path / "r.csv")]) == 0
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 1 + 10
    header = rows[0].split(",")
    final = [dict(zip(header, r.split(","))) for r in rows[1:] if ",final," in r]
    assert final and all(float(r["test_top1"]) >= 0 and int(r["train_size"]) > 0 for r in final)


@pytest.mark.slow
def test_worker_processes_give_the_same_results(spec_file, reference, tmp_path):
    assert (
        main(["study", "run", str(spec_file), "--out", str(tmp_path), "--workers", "2", "--device", "cpu"])
        == 0
    )
    assert finals(tmp_path) == finals(reference)


KILL_AT = Path(__file__).parents[1] / "hardening" / "kill_at.py"


def _run_cli(spec_file: Path, out: Path, kill_at: tuple[str, int, str] | None = None) -> subprocess.Popen:
    """``vptlab study run`` in a subprocess; with ``kill_at`` (file name, Nth rename, when) under kill_at.py."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VPTLAB_NO_PROGRESS": "1"}
    args = ["study", "run", str(spec_file), "--out", str(out), "--device", "cpu", "--checkpoint-seconds", "0"]
    head = [sys.executable, "-m", "vptlab"]
    if kill_at is not None:
        name, nth, when = kill_at
        head = [sys.executable, str(KILL_AT), name, str(nth), when, "--"]
    return subprocess.Popen(head + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finished(out: Path, stage: str | None = None) -> int:
    return sum(1 for r in study_results(out).values() if stage is None or r["config"]["stage"] == stage)


def _mid_run(out: Path) -> bool:
    return any((out / "runs").glob("*/checkpoint.pt")) if (out / "runs").is_dir() else False


# The in-process executor trains one run at a time in a fixed order (full: 2 tune, 2 final; vpt-deep: 2 tune,
# 2 final; ft-then-pt: 2 final), each 3-epoch run checkpointing after epochs 1 and 2.  "pause" holds the
# process just before the Nth rename onto that file (the run's previous checkpoint is on disk), then the test
# SIGKILLs it; "after" kills it right after the rename.
KILL_POINTS = {
    "mid-run": (("checkpoint.pt", 2, "pause"), lambda out: _mid_run(out) and _finished(out) == 0),
    "after-selection": (("result.json", 3, "after"), lambda out: _finished(out, "final") == 1),
    "mid-final": (("checkpoint.pt", 16, "pause"), lambda out: _mid_run(out) and _finished(out, "final") == 3),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_study_killed_with_sigkill_and_rerun_gives_the_same_results(spec_file, reference, tmp_path, point):
    out = tmp_path / "study"
    (name, nth, when), reached = KILL_POINTS[point]
    release = tmp_path / "release"
    proc = _run_cli(spec_file, out, (name, nth, f"pause:{release}" if when == "pause" else when))
    try:
        if when == "pause":
            deadline = time.monotonic() + 240
            while not Path(f"{release}.paused").exists():
                assert proc.poll() is None, (
                    f"the kill point never came: {proc.stderr.read().decode()[-2000:]}"
                )
                assert time.monotonic() < deadline, "kill point not reached"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=600)  # "after": it kills itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert reached(out), f"killed at the wrong point: {sorted(study_results(out))}"
    done_before = set(study_results(out))
    proc = _run_cli(spec_file, out)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    assert done_before <= set(study_results(out))  # no finished run was lost
    assert finals(out) == finals(reference)


@pytest.mark.ray
@pytest.mark.slow
def test_the_ray_executor_gives_the_same_results(spec_file, reference, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # vptlab starts its own instance, never joins another
    argv = ["study", "run", str(spec_file), "--out", str(tmp_path), "--executor", "ray", "--device", "cpu",
            "--workers", "2"]  # fmt: skip
    assert main(argv) == 0
    assert finals(tmp_path) == finals(reference)
    results = study_results(tmp_path)
    assert all(
        r["status"] == "ok" and (Path(r["run_dir"]) / "metrics.jsonl").is_file() for r in results.values()
    )


HALVING = "\n[tune]\nearly_stopping = 'sha'\neta = 2\nmin_epochs = 1\n"
HALVING_METHODS = """
[methods.vpt-deep]
lr = [2.0, 1.0, 0.5, 0.1]
wd = [0.0]
prompt_length = 2
batch_size = 16
"""


@pytest.fixture(scope="module")
def halving_file(spec_file) -> Path:
    path = spec_file.parent / "halving.toml"
    source = f"folder:{spec_file.parent / 'colours'}"
    path.write_text(tiny_spec(source, "colours", epochs=4, methods=HALVING_METHODS, extra=HALVING))
    return path


def statuses(out: Path) -> dict[str, str]:
    return {run_id: r["status"] for run_id, r in study_results(out).items()}


@pytest.mark.slow
def test_successive_halving_with_real_runs_pauses_prunes_and_resumes(halving_file, tmp_path, capsys):
    assert main(["study", "run", str(halving_file), "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "early stopping used" in out
    tune = [r for r in study_results(tmp_path).values() if r["config"]["stage"] == "tune"]
    assert sorted(r["status"] for r in tune) == [
        "ok",
        "pruned",
        "pruned",
        "pruned",
    ]  # rungs 1, 2 then 4 epochs
    assert sorted(r["epochs_done"] for r in tune) == [1, 1, 2, 4]
    assert not list(tmp_path.glob("runs/*/checkpoint.pt"))  # pruned runs drop their checkpoints


@pytest.mark.ray
@pytest.mark.slow
def test_successive_halving_on_ray_matches_local(halving_file, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # vptlab starts its own instance, never joins another
    assert main(["study", "run", str(halving_file), "--out", str(tmp_path / "local"), "--device", "cpu"]) == 0
    argv = ["study", "run", str(halving_file), "--out", str(tmp_path / "ray"), "--executor", "ray", "--device",
            "cpu", "--workers", "2"]  # fmt: skip
    assert main(argv) == 0
    assert statuses(tmp_path / "ray") == statuses(tmp_path / "local")
    assert finals(tmp_path / "ray") == finals(tmp_path / "local")


DIVERGING = """
[methods.full]
lr = [50.0, 0.001]
wd = [0.0]
batch_size = 16
[methods.mixed]
lr = [50.0]
wd = [0.0]
prompt_length = 2
batch_size = 16
"""


def test_diverged_runs_are_never_selected_and_show_as_diverged(spec_file, tmp_path, capsys):
    path = tmp_path / "diverging.toml"
    extra = '[tune]\nsingle_point = "run"\n'  # mixed's one-point grid trains (and diverges) in the tune stage
    path.write_text(
        tiny_spec(f"folder:{spec_file.parent / 'colours'}", "colours", methods=DIVERGING, extra=extra)
    )
    assert main(["study", "run", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    results = study_results(tmp_path / "out")
    tune = {(r["config"]["method"], r["config"]["lr"]): r["status"] for r in results.values()
            if r["config"]["stage"] == "tune"}  # fmt: skip
    assert tune == {("full", 50.0): "diverged", ("full", 0.001): "ok", ("mixed", 50.0): "diverged"}
    full_finals = [r for r in results.values() if r["config"]["stage"] == "final"]
    assert {r["config"]["lr"] for r in full_finals} == {0.001} and len(full_finals) == 2
    mixed_row = next(line for line in table.splitlines() if line.startswith("mixed"))
    assert "diverged" in mixed_row and "±" not in mixed_row
