"""``vptlab study`` as a user meets it: plan the paper, bad specs, results, the Ray extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from studyhelpers import FAKE_SPEC, fake_run

from vptlab.cli import main
from vptlab.study.runner import run_study
from vptlab.study.spec import parse_spec

STUDIES = Path(__file__).resolve().parents[2] / "src" / "vptlab" / "studies"


def test_plan_prints_the_papers_run_count(capsys):
    assert main(["study", "plan", str(STUDIES / "paper.toml")]) == 0
    out = capsys.readouterr().out
    assert "runs: 2964 = 2584 tune + 380 final" in out
    assert "19 task(s) x 4 method(s)" in out and "image-steps" in out
    assert "ft-then-pt" in out and "waiting" in out  # its tune configs wait for full's selection


def test_plan_prices_hours_from_a_stated_throughput(capsys):
    assert main(["study", "plan", str(STUDIES / "paper.toml"), "--throughput", "1000"]) == 0
    assert "days) on one device" in capsys.readouterr().out
    assert main(["study", "plan", str(STUDIES / "paper.toml"), "--hardware", "no-such-gpu"]) == 0
    assert "no measured figure" in capsys.readouterr().out


def test_plan_counts_what_is_done_in_the_study_folder(tmp_path, capsys):
    spec_file = tmp_path / "fake.toml"
    spec_file.write_text(FAKE_SPEC)
    run_study(parse_spec(FAKE_SPEC), tmp_path / "out", run_fn=fake_run, echo=lambda _: None)
    assert main(["study", "plan", str(spec_file), "--out", str(tmp_path / "out"), "--runs"]) == 0
    out = capsys.readouterr().out
    assert "runs: 98 = 80 tune + 18 final" in out and "done in" in out and "80 tune + 18 final" in out
    assert out.count(" ok") >= 80  # --runs lists every run with its status


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[methods.full]\nlr = [0.1, -1]\n", "bad.toml: methods.full.lr[1]: must be > 0, got -1"),
        ("[methods.full]\n[training]\nepochs = 'ten'\n", "bad.toml: training.epochs: must be an integer"),
        ("[method.full]\n", "bad.toml: method: unknown key; valid keys here:"),
    ],
)
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    spec_file = tmp_path / "bad.toml"
    spec_file.write_text(text)
    for command in ("plan", "run"):
        argv = ["study", command, str(spec_file)] + (
            ["--out", str(tmp_path / "o")] if command == "run" else []
        )
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("vptlab: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing written that could be read as a result


def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys):
    spec_file = tmp_path / "fake.toml"
    spec_file.write_text(FAKE_SPEC)
    assert main(["study", "run", str(spec_file), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["study", "run", str(spec_file), "--out", str(tmp_path / "o"), "--address", "x:1"]) == 2
    assert "--address is for the ray executor" in capsys.readouterr().err
    assert main(["study", "plan", str(tmp_path / "missing.toml")]) == 2
    assert "study spec not found" in capsys.readouterr().err
    assert main(["study", "results", str(tmp_path / "nowhere")]) == 2


def test_without_ray_the_ray_executor_names_the_extra(tmp_path, capsys, monkeypatch):
    spec_file = tmp_path / "fake.toml"
    spec_file.write_text(FAKE_SPEC)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["study", "run", str(spec_file), "--out", str(tmp_path / "o"), "--executor", "ray"]) == 2
    assert "pip install 'vptlab[ray]'" in capsys.readouterr().err


def test_results_writes_a_tidy_csv(tmp_path, capsys):
    run_study(parse_spec(FAKE_SPEC), tmp_path, run_fn=fake_run, echo=lambda _: None)
    csv_file = tmp_path / "runs.csv"
    assert main(["study", "results", str(tmp_path), "--csv", str(csv_file), "--rebuild-index"]) == 0
    out = capsys.readouterr().out
    assert "wrote 98 rows" in out and "index rebuilt: 98 runs" in out and "mean ± std" in out
    header = csv_file.read_text().splitlines()[0].split(",")
    for column in ("run_id", "status", "stage", "method", "task", "group", "regime", "seed", "lr", "wd",
                   "prompt_length", "val_top1", "test_top1", "test_loss", "seconds", "trainable_params"):  # fmt: skip
        assert column in header
    assert len(csv_file.read_text().splitlines()) == 99


def test_run_checks_the_data_before_writing_anything(tmp_path, capsys):
    spec_file = tmp_path / "fake.toml"
    spec_file.write_text(FAKE_SPEC)
    assert main(["study", "run", str(spec_file), "--out", str(tmp_path / "o")]) == 2
    assert "VTAB-1k root /nonexistent not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    (tmp_path / "vtab").mkdir()
    spec_file.write_text(FAKE_SPEC.replace("/nonexistent", str(tmp_path / "vtab")))
    assert main(["study", "run", str(spec_file), "--out", str(tmp_path / "o")]) == 2
    assert "task(s) cifar, dtd not found there (found: none)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
