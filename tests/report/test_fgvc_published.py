"""The report's FGVC table shows the bundled published numbers beside this study's, labelled as published."""

from __future__ import annotations

import json
import re
from pathlib import Path

from vptlab.analysis.results import method_label
from vptlab.report import ReportOptions, build_report
from vptlab.report.benchmarks import FGVC_ORDER, fgvc_published

FGVC_SECTION = "FGVC (the VPT paper's fine-grained benchmark)"


def _fgvc_run(root: Path, method: str, task: str, seed: int, acc: float) -> None:
    run = root / "runs" / f"{method}-{task}-{seed}"
    run.mkdir(parents=True)
    result = {
        "status": "ok",
        "run_id": run.name,
        "config": {
            "method": method,
            "task": task,
            "stage": "final",
            "regime": "standard",
            "seed": seed,
            "data": "fgvc:/nowhere",
            "backbone": "vptlab-tiny",
        },
        "task": {"name": task, "group": "fgvc", "objective": "classification", "num_classes": 200},
        "metrics": {"test_top1": acc},
        "params": {"trainable": 100, "total": 1000},
        "data": {"source": "fgvc:/nowhere", "sizes": {"train": 1000}},
    }
    (run / "result.json").write_text(json.dumps(result))


def test_bundled_fgvc_numbers_cover_the_five_tasks_and_match_the_sources_printed_means() -> None:
    published, source = fgvc_published()
    assert "VPT paper" in source and "2203.12119" in source
    methods = {m for m, _ in published}
    assert methods == {"full", "adapter", "vpt-deep"}
    assert {t for _, t in published} == set(FGVC_ORDER)
    # the source's printed means are recorded in the resource's header; each row's five values must give them
    from importlib import resources

    text = resources.files("vptlab.resources").joinpath("fgvc_vitb16_in21k_published.csv").read_text()
    printed = dict(
        re.findall(r"([a-z-]+)=([0-9.]+)", next(x for x in text.splitlines() if "Printed means" in x))
    )
    assert set(printed) == methods
    for m in methods:
        mean = sum(published[(m, t)] for t in FGVC_ORDER) / len(FGVC_ORDER)
        decimals = len(printed[m].split(".")[1])
        assert abs(mean - float(printed[m])) <= 0.5 * 10**-decimals + 1e-9, (m, mean, printed[m])


def test_report_fgvc_table_shows_published_rows_beside_ours(tmp_path: Path) -> None:
    study = tmp_path / "study"
    for seed, jitter in ((42, 0.0), (44, 2.0)):
        for task in FGVC_ORDER:
            _fgvc_run(study, "full", task, seed, 50 + jitter)
            _fgvc_run(study, "vpt-deep", task, seed, 60 + jitter)
            _fgvc_run(study, "linear", task, seed, 40 + jitter)
    md = build_report(study, None, ReportOptions(fid_features="none", attention=False)).markdown.read_text()
    section = md.split(FGVC_SECTION)[1].split("\n## ")[0]
    # our runs: mean ± std over the two seeds, then the published rows, labelled as such
    assert f"| {method_label('full')} | " + " | ".join(["51.0 ± 1.4"] * 5) + " | 51.0 |" in section
    assert f"| {method_label('full')} (published) | 87.3 | 82.7 | 98.8 | 89.4 | 84.5 | - |" in section
    assert f"| {method_label('vpt-deep')} (published) | 88.5 | 84.2 | 99.0 | 90.2 | 83.6 | - |" in section
    # no published row for a method vptlab carries no number for, nor for a method not in the study
    assert f"{method_label('linear')} (published)" not in section
    assert f"{method_label('adapter')} (published)" not in section
    assert 'Rows marked "(published)" are FGVC test top-1 (%)' in section
    assert "VPT paper" in section and "not results of this study" in section
    assert "No published FGVC numbers are shown" not in section


def test_report_fgvc_published_row_follows_the_studys_tasks(tmp_path: Path) -> None:
    study = tmp_path / "study"
    _fgvc_run(study, "adapter", "stanford_cars", 42, 30.0)
    _fgvc_run(study, "adapter", "cub", 42, 35.0)
    md = build_report(study, None, ReportOptions(fid_features="none", attention=False)).markdown.read_text()
    section = md.split(FGVC_SECTION)[1].split("\n## ")[0]
    assert "| method | cub | stanford_cars | mean |" in section  # the paper's task order
    assert f"| {method_label('adapter')} (published) | 87.1 | 68.6 | - |" in section
