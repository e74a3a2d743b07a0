"""Helpers for the hardening tests: running the CLI as a user would, and what 'nothing was written' means."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from vptlab.cli import main
from vptlab_testing import tiny_spec

# Files that a reader could take for a result: a run's record, a study's index or summary, a report.
RESULT_FILES = (
    "result.json",
    "metrics.jsonl",
    "tuned.safetensors",
    "summary.json",
    "index.sqlite",
    "report.md",
)
TINY_ARCH = ["--backbone-arg", "depth=1", "--backbone-arg", "embed_dim=32", "--backbone-arg", "num_heads=2",
             "--backbone-arg", "patch_size=8", "--image-size", "16"]  # fmt: skip
TINY_TRAIN = [*TINY_ARCH, "--no-pretrained", "--epochs", "1", "--warmup-epochs", "0", "--no-progress"]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_in_process(argv: list[str]) -> Outcome:
    """``vptlab ARGV`` through :func:`vptlab.cli.main`, as the console script runs it (argparse exits too)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
    return Outcome(int(code), out.getvalue(), err.getvalue())


def run_subprocess(argv: list[str], timeout: float = 300) -> Outcome:
    """``python -m vptlab ARGV`` in a fresh process: what reaches a user's terminal."""
    env = {**os.environ, "VPTLAB_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)  # Python's default warning filters: what a user's terminal shows
    proc = subprocess.run([sys.executable, "-m", "vptlab", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def written_results(folder: Path) -> list[str]:
    """Every file under ``folder`` that could be read as a result."""
    return sorted(str(p) for p in folder.rglob("*") if p.name in RESULT_FILES)


def assert_one_clear_line(outcome: Outcome, expected: tuple[str, ...]) -> str:
    """Exit 2, exactly one stderr line, ``vptlab: error:`` or argparse's form, naming what is expected."""
    lines = outcome.stderr.splitlines()
    assert outcome.code == 2, (outcome.code, outcome.stderr[-3000:])
    assert "Traceback" not in outcome.stderr and len(lines) == 1, outcome.stderr[-3000:]
    line = lines[0]
    assert line.startswith("vptlab"), line
    for fragment in expected:
        assert fragment in line, (fragment, line)
    return line


# --- tiny data on disk ---------------------------------------------------------------------------------------

VTAB_TASK, VTAB_CLASSES = "kitti", 4  # a VTAB-1k task with 4 classes: a handful of images covers them all


def write_png(path: Path, seed: int, size: int = 12, channel: int | None = None) -> Path:
    """A small noise PNG (one bright channel if ``channel`` is given, so classes are learnable)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    if channel is not None:
        img[..., channel] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def write_vtab(root: Path, counts: tuple[int, int, int] = (8, 4, 4)) -> Path:
    """``root/kitti/`` with images and the four split files; labels cycle 0..3. Returns the task folder."""
    folder = root / VTAB_TASK
    lines: dict[str, list[str]] = {}
    for s, (split, n) in enumerate(zip(("train800", "val200", "test"), counts)):
        rels = [f"images/{split}/{i}.png" for i in range(n)]
        for i, rel in enumerate(rels):
            write_png(folder / rel, 100 * s + i)
        lines[split] = [f"{rel} {i % VTAB_CLASSES}\n" for i, rel in enumerate(rels)]
    lines["train800val200"] = lines["train800"] + lines["val200"]
    for split, text in lines.items():
        (folder / f"{split}.txt").write_text("".join(text))
    return folder


def write_class_folders(root: Path, classes: int = 3, per_class: int = 12) -> Path:
    """``root/class<c>/<i>.png``: class c has a bright channel c."""
    for c in range(classes):
        for i in range(per_class):
            write_png(root / f"class{c}" / f"{i}.png", 1000 * c + i, size=16, channel=c % 3)
    return root


def tiny_study(
    source: str, methods: str, *, epochs: int = 1, seeds: str = "[1]", task: str = "colours"
) -> str:
    """A study spec over one folder task with the tiny backbone (a run takes well under a second)."""
    return tiny_spec(source, task, epochs=epochs, seeds=seeds, methods=methods)
