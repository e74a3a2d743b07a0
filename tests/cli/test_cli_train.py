"""`vptlab train`, `vptlab methods`: what a user types, what they get, and one line when they get it wrong."""

from __future__ import annotations

import json

import pytest

from vptlab.cli import main

TINY = [
    "--backbone-arg",
    "depth=1",
    "--backbone-arg",
    "embed_dim=16",
    "--backbone-arg",
    "num_heads=2",
    "--no-pretrained",
    "--image-size",
    "16",
    "--epochs",
    "1",
    "--warmup-epochs",
    "0",
    "--no-progress",
]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_methods_lists_every_method_with_optimiser_and_grid(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("linear", "full", "vpt-shallow", "vpt-deep", "mixed", "ft-then-pt", "bias", "lora"):
        assert f"\n{name}\n" in f"\n{out}"
    assert "lr {50, 25, 10, 5, 2.5, 1, 0.5, 0.25, 0.1, 0.05} x wd {0.01, 0.001, 0.0001, 0} = 40" in out
    assert "lr {0.001, 0.0001, 0.0005, 0.005} x wd {0.01, 0.001, 0.0001, 0} = 16" in out
    # every method option is listed with its default, from the method's config class
    assert "--lora-targets 'qv' {qv, qkv+proj}" in out and "--stage2-head 'fresh' {fresh, keep}" in out


def test_train_takes_each_method_option_as_a_flag(tmp_path, capsys):
    argv = ["train", "--method", "lora", "--task", "shapes", "--lora-rank", "2", "--lora-targets", "qkv+proj"]
    assert main([*argv, *TINY, "--out", str(tmp_path / "run")]) == 0
    config = json.loads((tmp_path / "run" / "result.json").read_text())["config"]
    assert config["lora_rank"] == 2 and config["lora_targets"] == "qkv+proj" and config["warmup_epochs"] == 0


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--method", "prompt-magic", "--task", "t"], "unknown method 'prompt-magic'"),
        (["--method", "full", "--task", "t", "--lr", "-1"], "lr must be > 0, got -1.0"),
        (["--method", "full", "--task", "t", "--epochs", "0"], "epochs must be >= 1, got 0"),
        (["--method", "full", "--task", "t", "--schedule", "weekly"], "schedule must be one of"),
        (
            ["--method", "full", "--task", "t", "--backbone-arg", "depth"],
            "--backbone-arg: expected KEY=VALUE",
        ),
        (
            ["--method", "full", "--task", "t", "--epochs", "5", "--warmup-epochs", "10"],
            "--warmup-epochs must be in [0, epochs=5), got 10",
        ),
        (["--method", "lora", "--task", "t", "--lora-rank", "0"], "--lora-rank must be >= 1, got 0"),
        (
            ["--method", "full", "--task", "t", "--prompt-length", "5"],
            "method full has no option --prompt-length",
        ),
    ],
)
def test_train_mistakes_exit_2_with_one_line(argv, expected, capsys, tmp_path):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    assert expected in _one_error_line(capsys)
    assert not (tmp_path / "run" / "result.json").exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--method", "full", "--task", "t", "--lr", "fast", "--out", "x"])
    assert info.value.code == 2
    assert "invalid float value" in _one_error_line(capsys)


def test_train_on_a_vtab_format_folder(tmp_path, capsys):
    from vptlab.data.synthetic import export_synthetic

    export_synthetic("loc", tmp_path / "vtab", image_size=16)
    code = main(
        [
            "train",
            "--method",
            "vpt-deep",
            "--data",
            f"vtab1k:{tmp_path / 'vtab'}",
            "--task",
            "loc",
            "--out",
            str(tmp_path / "run"),
            *TINY,
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    # vptlab train is a final run by default: train800val200, with test numbers
    assert result["status"] == "ok" and result["data"]["sizes"]["train"] == 1000
    assert result["config"]["stage"] == "final" and "test_top1" in result["metrics"]
    assert "vpt-deep on loc: ok" in capsys.readouterr().out
