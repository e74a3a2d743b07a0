"""Successive halving: rungs, budget, and decisions as a pure function of the run folders."""

from __future__ import annotations

from dataclasses import dataclass

from vptlab.study.asha import early_rungs, geometric_rungs, halving_epochs, halving_step, keep_count, rungs


def test_rungs_grow_by_eta_and_end_at_the_schedule():
    assert rungs(100, 10, 3) == (10, 30, 100)
    assert rungs(100, 4, 3) == (4, 12, 36, 100)
    assert rungs(2, 1, 2) == (1, 2)
    assert rungs(9, 1, 3) == (1, 3, 9)
    assert rungs(5, 3, 3) == (5,)  # no rung leaves at least half the schedule


def test_the_default_plan_cuts_early_and_keeps_half_at_the_second_rung():
    assert early_rungs(100) == ((10, 3), (20, 2))
    assert early_rungs(10) == ((1, 3), (2, 2))
    assert early_rungs(20, eta=4) == ((2, 4), (4, 2))
    assert early_rungs(3) == ((1, 3),)  # too short for two rungs
    assert geometric_rungs(100, 10, 3) == ((10, 3), (30, 3))


def test_budget_of_halving_is_a_fraction_of_the_full_grid():
    assert keep_count(40, 3) == 14 and keep_count(1, 3) == 1
    # 40 configs: 40 x 10 + 14 x 20 + 5 x 70 epochs instead of 40 x 100
    assert halving_epochs(40, ((10, 3), (30, 3)), 100) == 400 + 280 + 350
    assert halving_epochs(40, (), 100) == 4000
    # the default plan: 40 x 10 + 14 x 10 + 7 x 80 = 1100 epochs, 27.5% of the grid's
    assert halving_epochs(40, early_rungs(100), 100) == 400 + 140 + 560
    # the synthetic benchmark's grids at 10 epochs stay under a third (BENCHMARKS.md)
    assert halving_epochs(16, early_rungs(10), 10) / 160 <= 1 / 3
    assert halving_epochs(10, early_rungs(10), 10) / 100 <= 1 / 3


@dataclass(frozen=True)
class Cfg:
    lr: float
    wd: float = 0.0

    @property
    def run_id(self) -> str:
        return f"lr{self.lr}"

    def identity(self) -> dict:
        return {"lr": self.lr, "wd": self.wd}


def test_halving_step_walks_the_rungs():
    cfgs = [Cfg(lr) for lr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    results: dict[str, dict] = {}

    def result_of(run_id):
        return results.get(run_id)

    def val_at(run_id, epoch):  # larger lr better; no value after a run stopped (e.g. diverged)
        done = (results.get(run_id) or {}).get("epochs_done", 0)
        return float(run_id[2:]) * 100 + epoch if epoch <= done else None

    r = ((1, 3), (3, 3))
    step = halving_step(cfgs, result_of, val_at, r, 9)
    assert [(c.lr, until) for c, until in step.train] == [(c.lr, 1) for c in cfgs] and not step.done
    for c in cfgs:
        results[c.run_id] = {"status": "partial", "epochs_done": 1}
    step = halving_step(cfgs, result_of, val_at, r, 9)
    assert sorted(c.lr for c, _ in step.train) == [0.5, 0.6] and {u for _, u in step.train} == {3}
    assert sorted(run_id for run_id, _ in step.prune) == ["lr0.1", "lr0.2", "lr0.3", "lr0.4"]
    for run_id, _ in step.prune:
        results[run_id]["status"] = "pruned"
    results["lr0.5"] = {"status": "partial", "epochs_done": 3}
    results["lr0.6"] = {"status": "diverged", "epochs_done": 2}
    step = halving_step(cfgs, result_of, val_at, r, 9)
    assert [(c.lr, u) for c, u in step.train] == [(0.5, None)]  # the diverged one never continues
    results["lr0.5"] = {"status": "ok", "epochs_done": 9}
    step = halving_step(cfgs, result_of, val_at, r, 9)
    assert step.done and [c.lr for c in step.survivors] == [0.5] and not step.train and not step.prune


def test_a_promoted_run_that_was_pruned_before_restarts():
    cfgs = [Cfg(0.1), Cfg(0.2)]
    results = {
        "lr0.1": {"status": "pruned", "epochs_done": 1},
        "lr0.2": {"status": "pruned", "epochs_done": 1},
    }
    step = halving_step(cfgs, results.get, lambda run_id, e: float(run_id[2:]), ((1, 2),), 4)
    assert [(c.lr, u) for c, u in step.restart] == [(0.2, None)] and not step.train


def test_each_rung_keeps_its_own_fraction():
    cfgs = [Cfg(lr) for lr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    results = {c.run_id: {"status": "partial", "epochs_done": 2} for c in cfgs}

    def val_at(run_id, epoch):
        return float(run_id[2:])

    # 6 -> 2 at epoch 1 (eta 3), then 2 -> 1 at epoch 2 (eta 2): one survivor trains on
    step = halving_step(cfgs, results.get, val_at, ((1, 3), (2, 2)), 10)
    assert [(c.lr, u) for c, u in step.train] == [(0.6, None)]
    reasons = dict(step.prune)
    assert sorted(reasons) == ["lr0.1", "lr0.2", "lr0.3", "lr0.4", "lr0.5"]
    assert "best 2 of 6 at epoch 1 (eta 3)" in reasons["lr0.1"]
    assert "best 1 of 2 at epoch 2 (eta 2)" in reasons["lr0.5"]
