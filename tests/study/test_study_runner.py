"""The runner's protocol and bookkeeping, with a fake run function (milliseconds per run)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from studyhelpers import FAKE_SPEC, fake_run

from vptlab.errors import UserError
from vptlab.store.lock import StudyLock
from vptlab.store.runs import study_results
from vptlab.study.overview import plan_groups, totals
from vptlab.study.runner import run_study
from vptlab.study.spec import parse_spec


def quiet(_text: str) -> None:
    pass


def run(spec, out, **kw):
    return run_study(spec, out, run_fn=kw.pop("run_fn", fake_run), echo=quiet, **kw)


def finals(out) -> dict[str, tuple]:
    return {
        run_id: (
            r["config"]["method"],
            r["config"]["task"],
            r["config"]["seed"],
            r["config"]["lr"],
            r["metrics"],
        )
        for run_id, r in study_results(out).items()
        if r["config"]["stage"] == "final"
    }


@pytest.fixture
def spec():
    return parse_spec(FAKE_SPEC, "fake.toml")


def test_a_study_runs_tune_select_final_and_a_rerun_trains_nothing(spec, tmp_path):
    record = run(spec, tmp_path)
    count = totals(plan_groups(spec))
    assert len(record.trained) == count["tune"] + count["final"] == 2 * (16 + 16 + 8) + 2 * 3 * 3
    groups = {(g["method"], g["task"]): g for g in record.summary["groups"]}
    assert groups[("full", "cifar")]["selected"]["lr"] == 0.005  # the fake favours large lr, small wd
    assert groups[("vpt-deep", "cifar")]["selected"]["lr"] == 10.0  # lr 50 diverged: never selected
    assert all(g["phase"] == "done" and g["finals"]["ok"] == 3 for g in groups.values())
    assert {p.name for p in tmp_path.iterdir()} >= {"runs", "index.sqlite", "study.json", "summary.json"}
    assert run(spec, tmp_path).trained == []


def test_ft_then_pt_reuses_the_selected_full_runs_as_stage_1(spec, tmp_path):
    run(spec, tmp_path)
    results = study_results(tmp_path)
    for r in results.values():
        if r["config"]["method"] != "ft-then-pt":
            continue
        stage1 = results[r["stage1"]["run_id"]]
        assert stage1["config"]["method"] == "full" and r["stage1"]["reused"]
        assert (
            stage1["config"]["stage"] == r["config"]["stage"]
            and stage1["config"]["seed"] == r["config"]["seed"]
        )
        assert (r["config"]["ft_lr"], r["config"]["ft_wd"]) == (
            stage1["config"]["lr"],
            stage1["config"]["wd"],
        )


def test_a_method_whose_every_run_diverged_gets_no_finals_and_shows_as_diverged(tmp_path):
    spec = parse_spec(FAKE_SPEC.replace("lr = [50.0, 10.0, 1.0, 0.1]", "lr = [50.0, 30.0]"), "fake.toml")
    record = run(spec, tmp_path)
    vpt = [g for g in record.summary["groups"] if g["method"] == "vpt-deep"]
    assert all(g["phase"] == "diverged" and g["finals"]["seeds"] == 0 for g in vpt)
    assert "diverged" in record.table and not any(
        r["config"]["method"] == "vpt-deep" and r["config"]["stage"] == "final"
        for r in study_results(tmp_path).values()
    )


class Interrupt:
    """A run function that is 'killed' (KeyboardInterrupt) when it starts its n-th run."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, job, run_dir, stage1_dir, options):
        self.n -= 1
        if self.n < 0:
            raise KeyboardInterrupt
        return fake_run(job, run_dir, stage1_dir, options)


@pytest.mark.parametrize("stop_after", [1, 17, 30, 41])
def test_an_interrupted_study_resumes_to_the_same_results(spec, tmp_path, stop_after):
    run(spec, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "cut", run_fn=Interrupt(stop_after))
    assert len(study_results(tmp_path / "cut")) == stop_after
    rest = run(spec, tmp_path / "cut")
    assert len(rest.trained) == len(study_results(tmp_path / "whole")) - stop_after
    assert finals(tmp_path / "cut") == finals(tmp_path / "whole")


def sha(spec):
    from vptlab.study.asha import geometric_rungs

    plan = geometric_rungs(spec.training.epochs, 1, 3)
    return dataclasses.replace(
        spec, tune=dataclasses.replace(spec.tune, early_stopping="sha", eta=3, min_epochs=1, rungs=plan)
    )


def test_successive_halving_prunes_and_saves_compute(spec, tmp_path):
    full_grid = run(spec, tmp_path / "grid")
    halving = run(sha(spec), tmp_path / "sha")
    compute = halving.summary["compute"]
    assert 0 < compute["tune_fraction_of_full_grid"] < 0.5
    assert compute["tune_full_grid_image_steps"] >= full_grid.summary["compute"]["tune_image_steps"]
    statuses = [r["status"] for r in study_results(tmp_path / "sha").values()]
    assert statuses.count("pruned") == len(halving.pruned) > 0 and "partial" not in statuses
    # the fake's ranking never changes over epochs, so halving keeps the grid's winner
    pick = {(g["method"], g["task"]): g.get("selected") for g in full_grid.summary["groups"]}
    assert pick == {(g["method"], g["task"]): g.get("selected") for g in halving.summary["groups"]}
    assert "early stopping used" in halving.table
    assert run(sha(spec), tmp_path / "sha").trained == []


@pytest.mark.parametrize("stop_after", [5, 60, 90])
def test_an_interrupted_halving_study_resumes_to_the_same_results(spec, tmp_path, stop_after):
    run(sha(spec), tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        run(sha(spec), tmp_path / "cut", run_fn=Interrupt(stop_after))
    run(sha(spec), tmp_path / "cut")
    assert finals(tmp_path / "cut") == finals(tmp_path / "whole")
    a, b = study_results(tmp_path / "whole"), study_results(tmp_path / "cut")
    assert {k: r["status"] for k, r in a.items()} == {k: r["status"] for k, r in b.items()}


def test_a_second_driver_on_the_same_folder_is_refused(spec, tmp_path):
    with StudyLock(tmp_path), pytest.raises(UserError, match="another 'vptlab study run' is using"):
        run(spec, tmp_path)
    assert not (tmp_path / "runs").exists()


def test_failed_runs_are_kept_within_a_call_and_retried_by_the_next(spec, tmp_path):
    calls = []

    def flaky(job, run_dir, stage1_dir, options):
        result = fake_run(job, run_dir, stage1_dir, options)
        if job.cfg.method == "full" and job.cfg.lr == 0.001 and not calls:
            calls.append(job.run_id)
            result["status"] = "failed"
            (run_dir / "result.json").write_text(
                json.dumps({k: v for k, v in result.items() if k != "run_dir"})
            )
        return result

    first = run(spec, tmp_path, run_fn=flaky)
    assert first.summary["groups"][0]["phase"] == "done"
    assert study_results(tmp_path)[calls[0]]["status"] == "failed"
    again = run(spec, tmp_path)
    assert again.trained == calls and study_results(tmp_path)[calls[0]]["status"] == "ok"


def test_a_regime_a_task_cannot_give_is_skipped_and_a_broken_source_stops_the_study(tmp_path):
    spec = parse_spec(FAKE_SPEC + "[regimes]\nstandard = true\nkshot = [5]\n", "fake.toml")

    def no_kshot_on_dtd(job, run_dir, stage1_dir, options):
        if job.cfg.regime == "kshot:5" and job.cfg.task == "dtd":
            raise UserError("kshot:5 on dtd: class 3 has 2 images in the train pool")
        return fake_run(job, run_dir, stage1_dir, options)

    record = run(spec, tmp_path / "a", run_fn=no_kshot_on_dtd)
    assert list(record.skipped) == [("dtd", "kshot:5")]
    cells = {(g["method"], g["task"], g["regime"]): g["phase"] for g in record.summary["groups"]}
    assert cells[("full", "dtd", "kshot:5")] == "skipped" and cells[("full", "cifar", "kshot:5")] == "done"

    def broken(job, run_dir, stage1_dir, options):
        raise UserError("VTAB-1k root /nonexistent not found")

    with pytest.raises(UserError, match="not found"):
        run(spec, tmp_path / "b", run_fn=broken)


@pytest.mark.slow
def test_worker_processes_run_the_same_study_and_stop_on_a_user_error(spec, tmp_path):
    pooled = dataclasses.replace(spec, executor=dataclasses.replace(spec.executor, workers=2))
    record = run(pooled, tmp_path / "pool")
    assert "2 worker processes" in record.summary["executor"]
    run(spec, tmp_path / "seq")
    assert finals(tmp_path / "pool") == finals(tmp_path / "seq")
    with pytest.raises(UserError, match="not found"):
        run(pooled, tmp_path / "broken", run_fn=broken_source)


def broken_source(job, run_dir, stage1_dir, options):
    raise UserError("VTAB-1k root /nonexistent not found")


ONE_POINT = """
name = "one-point"
[data]
source = "vtab1k:/nonexistent"
tasks = ["cifar"]
[training]
epochs = 3
warmup_epochs = 1
seeds = [1, 2]
[methods.full]
lr = [0.001, 0.0001]
wd = [0.0]
[methods.vpt-deep]
lr = 0.5
wd = 0.0
[methods.ft-then-pt]
lr = 0.5
wd = 0.0
"""


@pytest.mark.parametrize("single_point", ["skip", "run"])
def test_a_one_point_grid_goes_straight_to_the_final_seeds_unless_asked(single_point, tmp_path):
    spec = parse_spec(ONE_POINT + f'[tune]\nsingle_point = "{single_point}"\n', "one.toml")
    record = run(spec, tmp_path)
    stages = [(r["config"]["method"], r["config"]["stage"]) for r in study_results(tmp_path).values()]
    tuned = {m for m, stage in stages if stage == "tune"}
    assert tuned == ({"full"} if single_point == "skip" else {"full", "vpt-deep", "ft-then-pt"})
    counts = totals(plan_groups(spec))
    assert counts["tune"] == (2 if single_point == "skip" else 4)
    groups = {g["method"]: g for g in record.summary["groups"]}
    assert groups["vpt-deep"]["phase"] == "done" and groups["vpt-deep"]["finals"]["ok"] == 2
    assert groups["vpt-deep"]["selected"]["lr"] == 0.5
    assert groups["ft-then-pt"]["finals"]["ok"] == 2
