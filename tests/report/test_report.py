"""``vptlab report`` on a tiny finished study (real runs on small image folders) and on hand-made run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.cli import main
from vptlab.report import ReportOptions, build_report

TINY_ARGS = (("depth", 2), ("embed_dim", 32), ("num_heads", 2))
TASKS = {"shapes": "", "counts": "?objective=structured&group=structured"}


def _class_folders(root: Path, seed: int, classes: int = 4, per_class: int = 16) -> Path:
    """Class sub-folders of 16x16 images whose class is a bright quadrant (learnable in a few epochs)."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        for i in range(per_class):
            img = (rng.random((16, 16, 3)) * 60).astype(np.uint8)
            r, q = divmod(c, 2)
            img[r * 8 : (r + 1) * 8, q * 8 : (q + 1) * 8] += 120
            (root / f"class{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / f"class{c}" / f"{i}.png")
    return root


def _train(study: Path, source: str, task: str, method: str, seed: int, regime: str = "standard") -> None:
    from vptlab.train import RunConfig, train_run

    cfg = RunConfig.of(
        method=method,
        task=task,
        data=source,
        stage="final",
        regime=regime,
        seed=seed,
        pretrained=False,
        backbone_args=TINY_ARGS,
        image_size=16,
        epochs=3,
        warmup_epochs=1,
        batch_size=16,
        eval_test_every=1,
        **({"prompt_length": 3} if method != "full" else {}),
    )
    train_run(cfg, study / "runs" / cfg.run_id, device="cpu", progress=False)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory) -> Path:
    """2 tasks (one structured) x FT and VPT-deep x 2 seeds, plus size:N and kshot:1 runs on one task."""
    root = tmp_path_factory.mktemp("tiny-study")
    study = root / "study"
    for i, (task, options) in enumerate(TASKS.items()):
        source = f"folder:{_class_folders(root / 'data' / task, seed=i)}{options}"
        for method in ("full", "vpt-deep"):
            for seed in (42, 44):
                _train(study, source, task, method, seed)
            _train(study, source, task, method, 42, "kshot:1")
            if task == "shapes":
                for n in (8, 24):
                    _train(study, source, task, method, 42, f"size:{n}")
    return study


@pytest.fixture(scope="module")
def fid_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fid") / "fid.csv"
    path.write_text("task,fid\nshapes,12.5\ncounts,40.0\n")
    return path


def _statuses(study: Path) -> list[str]:
    return [json.loads(p.read_text())["status"] for p in study.glob("runs/*/result.json")]


@pytest.mark.slow
def test_report_on_a_tiny_study_writes_both_files_with_figures(tiny_study, fid_csv, tmp_path):
    assert _statuses(tiny_study) and set(_statuses(tiny_study)) == {"ok"}
    files = build_report(
        tiny_study, tmp_path / "out", ReportOptions(fid_csv=str(fid_csv), attention_images=2)
    )
    names = sorted(p.name for p in files.figures)
    assert names == [
        "attention_counts.png",
        "attention_shapes.png",
        "cost_accuracy_vs_params.png",
        "fig3_quadrants.png",
        "fig4_data_size.png",
        "fig5_loss_curves.png",
    ]
    for p in files.figures:
        assert p.read_bytes().startswith(b"\x89PNG")
    md, page = files.markdown.read_text(), files.html.read_text()
    assert md.startswith("# vptlab report") and "## Summary" in md
    for name in names:
        assert f"]({name})" in md
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(names)
    assert "<table>" in page and "<link" not in page and "<script" not in page  # self-contained
    assert "Standard regime: VPT-deep beat FT on" in md
    assert "## One-shot" in md and "Tuned/Total, VPT-deep" in md
    assert "No published numbers shown" in md and "published (Jia" not in md  # folder tasks, not VTAB-1k
    assert (tmp_path / "out" / "fid.csv").is_file()


@pytest.mark.slow
def test_sections_say_why_they_are_empty(tiny_study, tmp_path):
    files = build_report(tiny_study, tmp_path / "o", ReportOptions(fid_features="none", attention=False))
    md = files.markdown.read_text()
    assert "No FID per task: FID computation turned off" in md
    assert "Attention maps turned off" in md
    assert "fig3_quadrants.png" not in md and "fig5_loss_curves.png" in md


def _hand_run(
    root: Path, method: str, task: str, seed: int, acc: float, objective: str = "classification"
) -> None:
    run = root / "runs" / f"{method}-{task}-{seed}"
    run.mkdir(parents=True)
    group = "structured" if objective == "structured" else "natural"
    result = {
        "status": "ok",
        "run_id": run.name,
        "config": {
            "method": method,
            "task": task,
            "stage": "final",
            "regime": "standard",
            "seed": seed,
            "data": "vtab1k:/nowhere",
            "backbone": "vptlab-tiny",
        },
        "task": {"name": task, "group": group, "objective": objective, "num_classes": 10},
        "metrics": {"test_top1": acc},
        "params": {"trainable": 100, "total": 1000},
        "data": {"source": "vtab1k:/nowhere", "sizes": {"train": 1000}},
    }
    (run / "result.json").write_text(json.dumps(result))


def test_report_on_hand_made_vtab_runs(tmp_path):
    study = tmp_path / "study"
    for seed, jitter in ((42, 0.0), (44, 1.0)):
        _hand_run(study, "full", "cifar", seed, 60 + jitter)
        _hand_run(study, "vpt-deep", "cifar", seed, 70 + jitter)
        _hand_run(study, "full", "dmlab", seed, 45 + jitter, "structured")
        _hand_run(study, "vpt-deep", "dmlab", seed, 40 + jitter, "structured")
        _hand_run(study, "mixed", "cifar", seed, 65 + jitter)
    files = build_report(study, None, ReportOptions(fid_features="none"))
    assert files.markdown.parent == study / "report"
    md = files.markdown.read_text()
    assert "published (Jia et al. 2022)" in md  # VTAB-1k task names from a vtab1k source
    assert "No size:N runs of FT and VPT in this study" in md
    assert "No kshot:1 final runs in this study." in md
    assert "No per-epoch test loss" in md
    assert "Needs FT and VPT final runs with saved tuned weights" in md
    assert "VPT-deep beat FT on 1 of 2 tasks (1 clearly)" in md
    assert "Mixed beat FT on 1 of 1 and beat VPT-deep on 0 of 1 tasks" in md
    assert "| Mixed | 65.5 ± 0.7 | 65.5 (1) |" in md


def test_cli_report_and_bad_input(tmp_path, capsys):
    study = tmp_path / "s"
    _hand_run(study, "full", "cifar", 42, 50.0)
    _hand_run(study, "vpt-deep", "cifar", 42, 55.0)
    assert main(["report", str(study), "--out", str(tmp_path / "r"), "--fid-features", "none"]) == 0
    assert (tmp_path / "r" / "report.html").is_file()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such study folder" in err
    assert main(["report", str(tmp_path / "r")]) == 2  # a folder without runs
    assert "no finished runs" in capsys.readouterr().err
    assert main(["report", str(study), "--fid-features", "sift"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_fid_and_advise_bad_input(tmp_path, capsys):
    assert main(["fid", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["fid", str(tmp_path), str(tmp_path), "--features", "sift"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown feature type" in err
    assert main(["fid", str(tmp_path)]) == 2
    assert main(["advise", "synthetic:x", "--objective", "counting"]) == 2
    assert "--objective must be one of" in capsys.readouterr().err
