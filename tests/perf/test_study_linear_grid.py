"""A study's linear tune grid trains in one pass and gives the same study as training each grid point alone."""

from __future__ import annotations

from vptlab.store.runs import study_results
from vptlab.study.runner import run_study
from vptlab.study.spec import spec_from_dict
from vptlab.study.state import Job
from vptlab.study.worker import GridJob, WorkerOptions, group_linear_grids, run_job
from vptlab.train import RunConfig

SPEC = {
    "name": "linear-grid",
    "backbone": {"name": "vptlab-tiny", "image_size": 32, "pretrained": False,
                 "kwargs": {"depth": 1, "embed_dim": 32, "num_heads": 2}},
    "data": {"source": "synthetic", "tasks": ["shapes"]},
    "training": {"epochs": 2, "warmup_epochs": 1, "seeds": [42]},
    "methods": {"linear": {"lr": [5.0, 0.5], "wd": [0.01, 0.0]}},
}  # fmt: skip


def _one_by_one(job, run_dir, stage1_dir, options):
    """run_job without the grid capability: the executor hands it single runs."""
    return run_job(job, run_dir, stage1_dir, options)


def _tune(out) -> dict[str, dict]:
    return {k: r for k, r in study_results(out).items() if r["config"]["stage"] == "tune"}


def test_study_with_linear_grid_pass_equals_one_run_at_a_time(tmp_path):
    spec = spec_from_dict(SPEC, name="linear-grid.toml")
    opts = WorkerOptions(device="cpu")
    grid = run_study(spec, tmp_path / "grid", options=opts, echo=lambda s: None)
    alone = run_study(spec, tmp_path / "alone", options=opts, run_fn=_one_by_one, echo=lambda s: None)
    a, b = _tune(tmp_path / "grid"), _tune(tmp_path / "alone")
    assert a.keys() == b.keys() and len(a) == 4
    assert all(r["linear_grid"]["size"] == 4 for r in a.values())
    assert not any("linear_grid" in r for r in b.values())
    assert {k: r["metrics"] for k, r in a.items()} == {k: r["metrics"] for k, r in b.items()}
    assert grid.summary["groups"] == alone.summary["groups"]
    assert sorted(grid.trained) == sorted(alone.trained)
    assert run_study(spec, tmp_path / "grid", options=opts, echo=lambda s: None).trained == []


def test_only_plain_linear_tune_jobs_are_grouped():
    def cfg(**kw):
        return RunConfig(**{"method": "linear", "task": "t", "epochs": 2, "warmup_epochs": 1, **kw})

    jobs = [Job(cfg(lr=1.0)), Job(cfg(method="full")), Job(cfg(lr=2.0)), Job(cfg(lr=3.0), until_epoch=1),
            Job(cfg(lr=1.0, stage="final")), Job(cfg(lr=4.0, seed=7))]  # fmt: skip
    out = group_linear_grids(jobs)
    assert isinstance(out[0], GridJob) and [c.lr for c in out[0].cfgs] == [1.0, 2.0]
    assert out[1:] == jobs[1:2] + jobs[3:]
