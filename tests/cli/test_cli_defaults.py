"""Defaults that fit: --help shows them, errors name the flag, --out keeps its run, one source syntax, presets
by name from anywhere with --data/--checkpoint, placeholder paths named."""

from __future__ import annotations

import json

import pytest

from vptlab.cli import build_parser, main
from vptlab.data.sources import resolve_task_source
from vptlab.errors import UserError
from vptlab.train import RunConfig

TINY = ["--task", "count", "--no-pretrained", "--backbone-arg", "depth=1", "--backbone-arg", "embed_dim=16",
        "--backbone-arg", "num_heads=2", "--image-size", "16", "--no-progress", "--regime", "kshot:2",
        "--epochs", "1", "--warmup-epochs", "0"]  # fmt: skip


def _help(*argv: str) -> str:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--help"])
    return ""


def test_help_shows_defaults(capsys):
    for argv, expected in (
        (["train"], ["(default: 100)", "(default: final)", "(default: vptlab-tiny)"]),
        (["data", "prepare"], ["(default 32)", "(default: bilinear)"]),
        (["fid"], ["(default cpu)", "(default backbone)"]),
        (["study", "run"], ["(default 300)"]),
    ):
        _help(*argv)
        out = " ".join(capsys.readouterr().out.split())
        assert all(e in out for e in expected), (argv, [e for e in expected if e not in out])


def test_config_errors_name_the_flag(tmp_path, capsys):
    assert main(["train", "--method", "linear", "--task", "count", "--epochs", "5", "--warmup-epochs", "10",
                 "--out", str(tmp_path / "r")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("vptlab: error: --warmup-epochs must be in [0, ") and err.count("\n") == 1


def test_out_holding_another_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "linear", "--out", str(out), *TINY]) == 0
    first = json.loads((out / "result.json").read_text())
    assert first["config"]["stage"] == "final"  # the default: test numbers
    assert main(["train", "--method", "linear", "--out", str(out), *TINY]) == 0  # the same run: kept
    capsys.readouterr()
    assert main(["train", "--method", "vpt-deep", "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert "already holds another run (linear count, ok" in err and "--overwrite" in err
    assert json.loads((out / "result.json").read_text())["run_id"] == first["run_id"]  # untouched
    assert main(["train", "--method", "vpt-deep", "--out", str(out), "--overwrite", *TINY]) == 0
    assert json.loads((out / "result.json").read_text())["config"]["method"] == "vpt-deep"


def test_one_source_syntax(tmp_path):
    task = tmp_path / "vtab" / "widgets"
    task.mkdir(parents=True)
    for split in ("train800", "val200", "train800val200", "test"):
        (task / f"{split}.txt").write_text("a.png 0\nb.png 1\n")
    root = tmp_path / "vtab"
    expected = (f"vtab1k:{root}", "widgets")
    assert resolve_task_source(f"vtab1k:{root}", "widgets") == expected
    assert resolve_task_source(f"vtab1k:{task}") == expected
    assert resolve_task_source(str(task)) == expected
    assert resolve_task_source(str(root), "widgets") == expected
    assert resolve_task_source("synthetic:count") == ("synthetic", "count")
    with pytest.raises(UserError, match="--task"):
        resolve_task_source(f"vtab1k:{root}")
    with pytest.raises(UserError, match="names task 'widgets' but --task is 'other'"):
        resolve_task_source(f"vtab1k:{task}", "other")
    a = RunConfig(method="linear", task=expected[1], data=expected[0])
    b = RunConfig(method="linear", task="widgets", data=f"vtab1k:{root}")
    assert a.run_id == b.run_id  # both spellings name the same run


def test_presets_by_name_from_anywhere_with_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no ./studies here
    assert main(["study", "plan", "demo"]) == 0
    capsys.readouterr()
    assert main(["study", "run", "paper", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "paper.toml: [data] source is the placeholder" in err and "--data vtab1k:" in err
    assert main(["study", "run", "paper", "--data", "vtab1k:/nowhere", "--checkpoint", "ViT-B_16.npz",
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "--checkpoint ViT-B_16.npz: no such file" in capsys.readouterr().err
    assert main(["study", "plan", "nope"]) == 2
    from vptlab.study.presets import load_study, preset_names

    assert {"paper", "demo", "one-shot", "data-size"} <= set(preset_names())
    assert f"preset name ({', '.join(preset_names())})" in capsys.readouterr().err

    spec = load_study("demo", data="synthetic", skip_bad_images=True)
    assert spec.data.source == "synthetic" and spec.data.skip_bad_images


def test_report_explains_and_shows_tune_stage_runs(tmp_path, capsys):
    out = tmp_path / "tune-run"
    assert main(["train", "--method", "linear", "--stage", "tune", "--out", str(out), *TINY]) == 0
    val = json.loads((out / "result.json").read_text())["metrics"]["val_top1"]
    assert main(["report", str(out), "--fid-features", "none", "--no-attention"]) == 0
    text = (out / "report" / "report.md").read_text()
    assert "1 tune-stage run(s)" in text and "no test accuracy" in text and "--stage final" in text
    assert f"| {val:.1f} |" in text  # its validation accuracy, as measured
