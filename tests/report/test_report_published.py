"""``vptlab report`` on a study folder of VTAB-1k task names: the seed paper's numbers beside ours, labelled.

The run folders are written by the test (result.json only), as a study on the paper's backbone would leave them:
FT, VPT-deep, Mixed and FT-then-PT in the standard regime, FT and VPT-deep one-shot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vptlab.cli import main
from vptlab.report import ReportOptions, build_report

STRUCTURED = {"kitti", "clevr_dist"}
ACC = {"full": 60.0, "vpt-deep": 70.0, "mixed": 58.0, "ft-then-pt": 66.0}


def _run(root: Path, method: str, task: str, seed: int, acc: float, regime: str, backbone: str) -> None:
    run = root / "runs" / f"{method}-{task}-{regime.replace(':', '')}-{seed}"
    run.mkdir(parents=True)
    structured = task in STRUCTURED
    result = {
        "status": "ok",
        "run_id": run.name,
        "config": {
            "method": method,
            "task": task,
            "stage": "final",
            "regime": regime,
            "seed": seed,
            "data": "vtab1k:/data/vtab-1k",
            "backbone": backbone,
            "interpolation": "tf-bilinear",
        },
        "task": {
            "name": task,
            "group": "structured" if structured else "natural",
            "objective": "structured" if structured else "classification",
            "num_classes": 10,
        },
        "metrics": {"test_top1": acc},
        "params": {"trainable": 100 if method != "full" else 1000, "total": 1000},
        "data": {"source": "vtab1k:/data/vtab-1k", "sizes": {"train": 1000}},
    }
    (run / "result.json").write_text(json.dumps(result))


def _study(root: Path, backbone: str = "vit_base_patch16_224.orig_in21k") -> Path:
    for task in ("cifar", "kitti", "clevr_dist"):
        for method, acc in ACC.items():
            for seed, jitter in ((42, -1.0), (44, 0.0), (82, 1.0)):
                _run(root, method, task, seed, acc + jitter, "standard", backbone)
    for method in ("full", "vpt-deep"):
        for seed, jitter in ((42, -0.5), (44, 0.5)):
            _run(root, method, "cifar", seed, 40 + jitter, "kshot:1", backbone)
    return root


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}")[1].split("\n## ")[0]


def test_report_sets_the_seed_papers_tables_beside_ours(tmp_path):
    study = _study(tmp_path / "study")
    md = build_report(study, None, ReportOptions(fid_features="none", attention=False)).markdown.read_text()
    standard = _section(md, "Accuracy per task (the paper's Tables 1 and 2)")
    for label in ("FT", "VPT-deep", "Mixed", "FT-then-PT"):
        assert f"| {label}, published (Han et al. 2024) |" in standard
    # seed paper, cifar: FT 64.5, Mixed 61.5, FT-then-PT 85.9; its uncertain VPT-deep cells carry a "?"
    assert "| Mixed, published (Han et al. 2024) | 61.5 |" in standard
    assert "| FT-then-PT, published (Han et al. 2024) | 85.9 |" in standard
    assert "| 58.2? | 77.7? |" in standard and "uncertain" in standard
    assert "| FT, published (Jia et al. 2022) | 68.9 |" in standard  # the VPT paper, second and labelled
    assert standard.index("(Han et al. 2024) |") < standard.index("(Jia et al. 2022) |")
    # the paper's backbone: ours - published per task, with the seed-spread mark (cifar FT: 60 - 64.5)
    assert "| FT, ours − published (Han et al. 2024) | -4.5 ✗ |" in standard
    assert "| Mixed, ours − published (Han et al. 2024) | -3.5 ✗ |" in standard
    assert "sample std (ddof 1)" in standard and "np.std (ddof 0)" in standard
    one_shot = _section(md, "One-shot (the paper's Tables 3 and 4)")
    assert "| FT, published (Han et al. 2024) | 37.4 |" in one_shot
    assert "| VPT-deep, published (Han et al. 2024) | 54.6 |" in one_shot
    assert "Jia et al." not in one_shot
    summary = _section(md, "Summary")  # quotes the seed paper's own win counts on these tasks
    assert "published (Han et al. 2024): VPT-deep ahead on 2 of these 3" in summary  # clevr_dist: 58.2 = 58.2
    assert "published (Han et al. 2024): VPT-deep ahead on 1 of these 1" in summary  # one-shot cifar


def test_ddof_zero_from_the_cli(tmp_path, capsys):
    study = _study(tmp_path / "study")
    out = tmp_path / "r"
    assert (
        main(
            [
                "report",
                str(study),
                "--out",
                str(out),
                "--fid-features",
                "none",
                "--no-attention",
                "--ddof",
                "0",
            ]
        )
        == 0
    )
    md = (out / "report.md").read_text()
    assert "| FT | 60.0 ± 0.8 |" in md  # np.std of 59, 60, 61
    assert "mean ± np.std (ddof 0, as the seed paper)" in md
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # argparse's usage error: exit 2, one line naming the option
        main(["report", str(study), "--ddof", "2"])
    assert stop.value.code == 2 and "--ddof" in capsys.readouterr().err


def test_no_differences_off_the_papers_backbone(tmp_path):
    study = _study(tmp_path / "study", backbone="vit_base_patch16_224.augreg_in21k")
    md = build_report(study, None, ReportOptions(fid_features="none", attention=False)).markdown.read_text()
    assert "| FT, published (Han et al. 2024) |" in md
    assert ", ours − published" not in md  # no difference rows
    assert "No ours − published rows: the study's backbone (vit_base_patch16_224.augreg_in21k)" in md
