"""``vptlab advise`` end to end, offline: image folders, a local backbone checkpoint, a stats file, a study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vptlab.analysis.advisor import advise
from vptlab.cli import main

BRIGHTNESS = {"t0": 0, "t1": 30, "t2": 60, "t3": 90, "t4": 120, "t5": 150}
# (FT, VPT) accuracy per task: VPT wins on the dark (close to the "pretraining" set) tasks, FT on bright ones.
ACC = {"t0": (50, 60), "t1": (50, 58), "t2": (55, 57), "t3": (60, 55), "t4": (62, 50), "t5": (65, 52)}


def _folder(root: Path, bright: int, seed: int, classes: int = 2, per_class: int = 10) -> Path:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.clip(rng.integers(0, 100, (16, 16, 3)) + bright, 0, 255).astype(np.uint8)
            img[: 8 * (c + 1) // 2] //= 2
            Image.fromarray(img).save(root / f"c{c}" / f"{i}.png")
    return root


def _result(run: Path, method: str, task: str, source: str, seed: int, acc: float) -> None:
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
            "data": source,
        },
        "task": {"name": task, "group": "natural", "objective": "classification", "num_classes": 2},
        "metrics": {"test_top1": acc},
        "data": {"source": source, "sizes": {"train": 16}},
    }
    (run / "result.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from safetensors.torch import save_file

    from vptlab.analysis.fid import save_stats, set_stats
    from vptlab.analysis.fid_features import BackboneFeatures
    from vptlab.backbones import create_backbone

    root = tmp_path_factory.mktemp("advise")
    model = create_backbone("vptlab-tiny", num_classes=2, pretrained=False)
    ckpt = root / "tiny.safetensors"
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("head")}, str(ckpt)
    )
    pretrain = root / "pretrain.npz"
    save_stats(
        pretrain,
        set_stats(_folder(root / "pretrain", 0, 99, per_class=40), BackboneFeatures(checkpoint=ckpt)),
    )
    study = root / "study"
    for i, (task, bright) in enumerate(BRIGHTNESS.items()):
        source = f"folder:{_folder(root / 'tasks' / task, bright, i)}"
        for seed, jitter in ((1, 0.0), (2, 0.5)):
            ft, vpt = ACC[task]
            _result(study / "runs" / f"full-{task}-{seed}", "full", task, source, seed, ft + jitter)
            _result(study / "runs" / f"vpt-{task}-{seed}", "vpt-deep", task, source, seed, vpt + jitter)
    data = _folder(root / "mine", 20, 7)
    return {"ckpt": str(ckpt), "pretrain": str(pretrain), "study": str(study), "data": str(data)}


def test_advise_with_a_study_model(setup):
    advice = advise(
        setup["data"],
        "classification",
        checkpoint=setup["ckpt"],
        pretrain_stats=setup["pretrain"],
        study=setup["study"],
    )
    assert np.isfinite(advice.fid) and advice.train_size == 16  # 20 images, 20 % held out for test
    assert advice.threshold_source == "median FID of the study's 6 tasks"
    assert advice.model is not None and advice.model.n_tasks == 6
    assert 0.0 <= advice.model_p <= 1.0
    assert advice.recommendation in ("VPT", "FT", "not enough evidence")
    text = advice.to_markdown()
    assert text.startswith("Recommendation: ") and "logistic regression on 6 comparisons over 6 tasks" in text
    # the verdict rests on the signal measured best on the study, and says how often it was right
    names = [s["signal"] for s in advice.signals]
    assert {"rule", "winmodel", "logme", "h_score", "knn", "linear_probe", "majority"} <= set(names)
    if advice.recommendation == "not enough evidence":
        assert "no signal beat always" in advice.basis
    else:
        assert "this signal picked the winner in" in advice.basis and "held-out comparisons" in advice.basis
    assert "held-out comparisons" in text
    # every method the study ran is ranked (here FT and VPT-deep over the 6 classification tasks)
    assert {r["method"] for r in advice.ranking} == {"full", "vpt-deep"}
    assert advice.ranking[0]["tasks"] == 6 and "methods ranked" in text
    assert (
        "- backbone: vptlab-tiny (vit, token pooling, pre-logit features, weights " in text
    )  # which backbone


def test_advise_without_threshold_is_honest_about_it(setup):
    advice = advise(
        setup["data"], "classification", checkpoint=setup["ckpt"], pretrain_stats=setup["pretrain"]
    )
    assert advice.threshold is None and advice.recommendation == "undetermined"
    structured = advise(
        setup["data"], "structured", checkpoint=setup["ckpt"], pretrain_stats=setup["pretrain"]
    )
    assert structured.recommendation == "VPT" and "paper's rule" in structured.basis


@pytest.mark.slow
def test_cli_advise_quick_reports_both_runs(setup, tmp_path, capsys):
    code = main(
        [
            "advise",
            setup["data"],
            "--objective",
            "classification",
            "--checkpoint",
            setup["ckpt"],
            "--pretrain-stats",
            setup["pretrain"],
            "--fid-threshold",
            "1e9",
            "--quick",
            "--quick-epochs",
            "1",
            "--quick-dir",
            str(tmp_path / "quick"),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["recommendation"] == "VPT" and out["threshold_source"] == "given with --fid-threshold"
    assert set(out["quick"]) == {"full", "vpt-deep"}
    for run in out["quick"].values():
        assert run["status"] == "ok" and 0 <= run["test_top1"] <= 100 and run["epochs"] == 1


def test_cli_advise_bad_input(setup, tmp_path, capsys):
    assert main(["advise", str(tmp_path / "missing"), "--objective", "classification"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    args = ["advise", setup["data"], "--objective", "classification", "--checkpoint", setup["ckpt"]]
    assert (
        main(["advise", setup["data"], "--objective", "classification", "--backbone", "vit_base_patch16_224"])
        == 2
    )
    assert "--pretrain-stats" in capsys.readouterr().err
    assert main([*args, "--pretrain-stats", str(tmp_path / "none.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main([*args, "--pretrain-stats", setup["pretrain"], "--study", str(tmp_path)]) == 2
    assert "no finished runs" in capsys.readouterr().err
