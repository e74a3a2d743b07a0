"""A study killed with SIGKILL at the worst moments continues to the results of an uninterrupted one.

tests/study/test_study_e2e.py kills ``vptlab study run`` between writes (mid-run, after selection, mid-final).
Here the kill lands *inside* writes: ``kill_at.py`` runs the real CLI and SIGKILLs itself at the Nth rename onto
a given file, after tearing the temporary file (a crash mid-write) or just after the rename (a study that has
recorded a group's last tune result and is about to select).  One study folder is killed four times in a row,
then finished; every result must equal the uninterrupted study's, and no torn file is ever read as a result.
A damaged result file is an unfinished run; damaged bookkeeping (index, summary, spec copy) is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hardhelpers import run_in_process, tiny_study, write_class_folders

from vptlab.store.runs import load_result, study_results
from vptlab.study.runner import run_study
from vptlab.study.spec import load_spec
from vptlab.study.worker import WorkerOptions
from vptlab_testing import TINY_METHODS

KILL_AT = Path(__file__).with_name("kill_at.py")
METHODS = TINY_METHODS
# (file, n, when): counted afresh in each process; the comments say where the kill lands in this study.
KILLS = [
    ("result.json", 1, "torn"),  # the first tune result, half written
    ("result.json", 2, "after"),  # full's last tune result just recorded: selection comes next
    ("checkpoint.pt", 3, "torn"),  # a final run's resumable checkpoint, half written
    ("result.json", 4, "torn"),  # a later result, half written
]


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("interrupt")
    path = root / "tiny.toml"
    path.write_text(
        tiny_study(f"folder:{write_class_folders(root / 'colours')}", METHODS, epochs=3, seeds="[1, 2]")
    )
    return path


def outcomes(out: Path) -> dict[str, tuple]:
    """Every run's status and final metrics (what selection and the tables read)."""
    return {
        run_id: (r["status"], r["epochs_done"], {k: round(v, 4) for k, v in r["metrics"].items()})
        for run_id, r in study_results(out).items()
    }


def kill_during_write(spec_file: Path, out: Path, name: str, nth: int, when: str) -> None:
    argv = [sys.executable, str(KILL_AT), name, str(nth), when, "--", "study", "run", str(spec_file),
            "--out", str(out), "--device", "cpu", "--checkpoint-seconds", "0"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, f"kill point {name}#{nth} not reached: {proc.stderr[-2000:]}"


def assert_nothing_torn_is_read(out: Path) -> None:
    """Every result.json is a whole record; torn bytes exist only under temporary names nobody reads."""
    for path in out.glob("runs/*/result.json"):
        assert json.loads(path.read_text())["status"] in ("ok", "diverged", "pruned", "failed", "partial")
    for torn in out.glob("runs/*/.result.json.*.tmp"):
        if not (torn.parent / "result.json").exists():
            assert torn.parent.name not in study_results(out)
    assert run_in_process(["study", "results", out]).code == 0


@pytest.mark.slow
def test_a_study_killed_inside_its_writes_ends_with_the_uninterrupted_results(spec_file, tmp_path):
    reference = tmp_path / "reference"
    run_study(load_spec(spec_file), reference, options=WorkerOptions(device="cpu"), echo=lambda _: None)
    out, finished = tmp_path / "killed", []
    for name, nth, when in KILLS:
        kill_during_write(spec_file, out, name, nth, when)
        assert_nothing_torn_is_read(out)
        if when == "torn":
            assert list(out.glob(f"runs/*/.{name}.*.tmp")), "the kill did not leave the torn file it should"
        finished.append(sorted(r["config"]["stage"] for r in study_results(out).values()))
    assert finished[0] == [] and finished[1] == ["tune", "tune"]  # the 2nd kill: a group tuned, none selected
    assert all(len(a) <= len(b) for a, b in zip(finished, finished[1:]))  # no finished run is ever lost
    done = run_in_process(["study", "run", spec_file, "--out", out, "--device", "cpu"])
    assert done.code == 0, done.stderr[-2000:]
    assert outcomes(out) == outcomes(reference)
    assert all(status == "ok" for status, _, _ in outcomes(out).values())


@pytest.mark.parametrize(
    "content",
    [b"", b'{"status": "ok", "run_id": ', b"\xff\xfe garbage", b"[1, 2]", b'{"run_id": "x"}', b"null"],
    ids=["empty", "cut", "not-utf8", "a-list", "no-status", "null"],
)
def test_a_damaged_result_file_is_an_unfinished_run_never_a_result(tmp_path, content):
    (tmp_path / "result.json").write_bytes(content)
    assert load_result(tmp_path) is None


# --- a study folder's bookkeeping, damaged ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A finished one-run study: its spec and its folder."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "tiny.toml"
    spec.write_text(tiny_study(f"folder:{write_class_folders(root / 'colours', 2, 6)}", "[methods.linear]\n"
                               "lr = [0.1]\nwd = [0.0]\nbatch_size = 16\n"))  # fmt: skip
    assert run_in_process(["study", "run", spec, "--out", root / "out", "--device", "cpu"]).code == 0
    return spec, root / "out"


@pytest.mark.parametrize(
    ("name", "content"),
    [("index.sqlite", b"not a database" * 50), ("summary.json", b'{"groups": ['), ("summary.json", b'"text"'),
     ("study.json", b"\xff\xfe"), ("study.json", b"[1, 2]")],
    ids=["index-garbage", "summary-cut", "summary-not-a-table", "spec-not-utf8", "spec-a-list"],
)  # fmt: skip
def test_damaged_bookkeeping_is_rebuilt_from_the_run_folders(finished, tmp_path, name, content):
    spec, study = finished
    out = shutil.copytree(study, tmp_path / "out")
    for wal in out.glob("index.sqlite-*"):
        wal.unlink()
    (out / name).write_bytes(content)
    assert run_in_process(["study", "results", out]).code == 0
    again = run_in_process(["study", "run", spec, "--out", out, "--device", "cpu"])
    assert again.code == 0 and "trained 0 run(s)" in again.stdout, again.stderr[-2000:]
    assert outcomes(out) == outcomes(study)
    assert json.loads((out / "summary.json").read_text())["groups"]
    with sqlite3.connect(out / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(outcomes(study))
