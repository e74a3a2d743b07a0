"""The repository stands on its own: no file points a reader at material outside it.

A design brief or a shared reference folder next to a checkout is not part of the project; what a reader needs
from it lives in ``docs/`` and ``src/vptlab/resources/``.  This scans every text file a user or CI gets.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (
    "src",
    "tests",
    "docs",
    "bench",
    "studies",
    "README.md",
    "BENCHMARKS.md",
    "Makefile",
    "pyproject.toml",
)
# Built from pieces so this file does not match itself.
OUTSIDE = re.compile("|".join([re.escape("shared" + "/"), re.escape("DESIGN" + ".md")]))
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}


def _text_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in candidates if not SKIP_PARTS & set(p.parts)]
    return files


def test_no_file_refers_outside_the_repository():
    found = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):  # binary files (weights, images)
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not found, "references to material outside the repository:\n" + "\n".join(found)


def test_the_scan_sees_the_files_it_guards():
    names = {p.relative_to(ROOT).as_posix() for p in _text_files()}
    assert {
        "README.md",
        "docs/protocol.md",
        "src/vptlab/studies/paper.toml",
        "src/vptlab/methods/base.py",
    } <= names
    assert OUTSIDE.search("see ../" + "shared" + "/reference") and OUTSIDE.search("DESIGN" + ".md section 2")
