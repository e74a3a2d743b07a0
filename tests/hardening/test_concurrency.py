"""Two ``vptlab study run`` on one study folder, as two real processes: the second refuses, clearly.

The first process is held busy (inside its first result write, lock held) by ``kill_at.py``'s pause mode, so
the second one certainly meets a running study, however slow the machine.  The second must exit 2 with one line
naming the holder, write nothing, and leave the first to finish its study undisturbed.  Readers (``study
results``) may run meanwhile; rebuilding the index, which needs the lock, is refused the same way.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hardhelpers import assert_one_clear_line, run_in_process, run_subprocess, tiny_study, write_class_folders

from vptlab.store.runs import study_results

KILL_AT = Path(__file__).with_name("kill_at.py")
METHODS = "[methods.linear]\nlr = [0.1, 0.01]\nwd = [0.0]\nbatch_size = 16\n"


def _files(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*"))}


def _wait_for(flag: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the first study never reached its first result"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_second_study_run_on_a_busy_folder_refuses_and_the_first_finishes(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        tiny_study(f"folder:{write_class_folders(tmp_path / 'colours')}", METHODS, seeds="[1, 2]")
    )
    out, release = tmp_path / "out", tmp_path / "release"
    run = ["study", "run", str(spec), "--out", str(out), "--device", "cpu"]
    first = subprocess.Popen([sys.executable, str(KILL_AT), "result.json", "1", f"pause:{release}", "--", *run],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_for(Path(f"{release}.paused"), first)
        before = _files(out)
        second = run_subprocess(run)
        assert_one_clear_line(
            second, ("another 'vptlab study run' is using this study folder", f"pid {first.pid}")
        )
        assert _files(out) == before  # the refused run wrote nothing, not even its spec
        assert run_in_process(["study", "results", out]).code == 0  # reading is fine meanwhile
        rebuild = run_in_process(["study", "results", out, "--rebuild-index"])
        assert_one_clear_line(rebuild, ("another 'vptlab study run' is using this study folder",))
    finally:
        release.touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert sorted(r["status"] for r in study_results(out).values()) == ["ok"] * 4  # 2 tune + 2 final
