"""Full fine-tuning at lr 50 diverges inside a study: the study goes on, and every table says 'diverged'.

Both ways a diverged method reaches the tables: its whole tune grid diverges (no final runs), or a one-point grid
skips tuning and its final runs diverge.  Checked in each output a user reads: the table ``study run`` prints,
``summary.json``, ``vptlab study results`` (table and CSV) and ``vptlab report`` (report.md and report.html).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hardhelpers import run_in_process, tiny_study, write_class_folders

from vptlab.store.runs import study_results

METHODS = """
[methods.full]
lr = [50.0]
wd = [0.0]
batch_size = 16
[methods.vpt-deep]
lr = [1.0]
wd = [0.0]
prompt_length = 2
batch_size = 16
[tune]
single_point = "{single_point}"
"""
NUMBER = re.compile(r"\d")


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("diverge") / "colours")


@pytest.fixture(scope="module", params=["run", "skip"], ids=["tune-diverges", "finals-diverge"])
def study(request, colours, tmp_path_factory) -> tuple[Path, str]:
    """A study whose full fine-tuning runs at lr 50; returns its folder and what ``study run`` printed."""
    root = tmp_path_factory.mktemp(f"study-{request.param}")
    spec = root / "diverging.toml"
    spec.write_text(tiny_study(f"folder:{colours}", METHODS.format(single_point=request.param), epochs=2,
                               seeds="[1, 2]"))  # fmt: skip
    done = run_in_process(["study", "run", spec, "--out", root / "out", "--device", "cpu"])
    assert done.code == 0, done.stderr[-2000:]
    return root / "out", done.stdout


def row_of(table: str, label: str, sep: str | None = None) -> list[str]:
    """The non-empty cells after ``label`` on the table line whose first cell is ``label``."""
    for line in table.splitlines():
        cells = [c.strip() for c in (line.strip(" |").split(sep) if sep else line.split())]
        if cells and cells[0] == label:
            return [c for c in cells[1:] if c]
    raise AssertionError(f"no row {label!r} in:\n{table}")


def test_full_ft_at_lr_50_diverges_and_the_other_method_still_gets_its_finals(study):
    out, _ = study
    results = list(study_results(out).values())
    full = [r for r in results if r["config"]["method"] == "full"]
    assert full and all(r["status"] == "diverged" and r["diverged_at"] for r in full)
    assert all("test_top1" not in r["metrics"] and "val_top1" not in r["metrics"] for r in full)
    vpt_finals = [
        r for r in results if r["config"]["method"] == "vpt-deep" and r["config"]["stage"] == "final"
    ]
    assert sorted(r["config"]["seed"] for r in vpt_finals) == [1, 2]
    assert all(r["status"] == "ok" for r in vpt_finals)


def test_the_study_summary_says_diverged_never_a_number(study):
    out, printed = study
    assert row_of(printed, "full") == ["diverged"]
    assert NUMBER.search(row_of(printed, "vpt-deep")[0])
    group = next(g for g in json.loads((out / "summary.json").read_text())["groups"] if g["method"] == "full")
    assert "test_top1_mean" not in group and "test_top1_std" not in group


def test_study_results_show_diverged_and_leave_accuracy_blank(study):
    out, _ = study
    shown = run_in_process(["study", "results", out, "--csv", "-"])
    assert shown.code == 0, shown.stderr
    assert row_of(shown.stdout, "full") == ["diverged"]
    text = shown.stdout[: shown.stdout.index("\n\n")] if "\n\n" in shown.stdout else shown.stdout
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["method"] == "full"]
    assert rows and all(r["status"] == "diverged" for r in rows)
    assert all(r[k] == "" for r in rows for k in ("val_top1", "test_top1", "test_loss"))


def test_the_report_tables_show_diverged_in_place_of_an_accuracy(study, tmp_path):
    out, _ = study
    made = run_in_process(["report", out, "--out", tmp_path, "--fid-features", "none", "--no-attention"])
    assert made.code == 0, made.stderr[-2000:]
    md = (tmp_path / "report.md").read_text()
    assert row_of(md, "FT", "|") == ["diverged", "–"]  # the task cell and the group mean: no number
    assert NUMBER.search(row_of(md, "VPT-deep", "|")[0])
    assert "FT on colours (standard)" in md.split("## ", 2)[1]  # the summary names it
    html = (tmp_path / "report.html").read_text()
    assert re.search(r"<td[^>]*>FT</td><td[^>]*>diverged</td>", html)
