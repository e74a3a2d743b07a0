"""A study's run list and cost before (or while) it runs: what ``vptlab study plan`` prints.

Counts are known before any run: a group's tune stage is its grid, its final stage one selected config times
the seeds.  The *done* counts and the concrete configs of later stages come from the study folder, through the
same :func:`vptlab.study.state.study_state` the runner uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from vptlab.study.asha import halving_epochs, keep_count
from vptlab.study.estimate import Cost, run_cost
from vptlab.study.plan import Group, final_configs, run_id_of, study_groups, tune_configs
from vptlab.study.spec import StudySpec
from vptlab.study.state import ENDED, GroupState, StudyView, study_state, untuned
from vptlab.train.config import RunConfig


@dataclass(frozen=True)
class GroupPlan:
    """Planned and finished runs of one group, and their planned cost."""

    group: Group
    tune_runs: int
    final_runs: int
    tune_done: int
    final_done: int
    tune_cost: Cost
    tune_cost_full_grid: Cost
    final_cost: Cost
    phase: str


def plan_groups(spec: StudySpec, view: StudyView | None = None) -> list[GroupPlan]:
    """One :class:`GroupPlan` per group; ``view`` (a study folder) fills in what is already done."""
    view = view or StudyView(lambda run_id: None)
    states = {s.group: s for s in study_state(spec, view)}
    return [_group_plan(spec, group, states[group], view) for group in study_groups(spec)]


def _group_plan(spec: StudySpec, group: Group, state: GroupState, view: StudyView) -> GroupPlan:
    # Costs do not depend on the values FT-then-PT takes from full's selection, so a stand-in config prices it.
    tune = state.tune or tune_configs(spec, group)
    finals = state.finals or final_configs(spec, tune[0])
    n_tune = 0 if untuned(spec, tune) else len(tune)
    per_run_full = run_cost(tune[0])
    full_grid = Cost(per_run_full.train * n_tune, per_run_full.eval * n_tune, per_run_full.eval_known)
    tune_cost = full_grid
    if spec.tune.early_stopping == "sha" and n_tune:
        tune_cost = _halving_cost(spec, tune[0], n_tune)
    final_cost = sum((run_cost(c) for c in finals), Cost())
    return GroupPlan(
        group,
        n_tune,
        len(finals),
        _count_ended(state.tune, view),
        _count_ended(state.finals, view),
        tune_cost,
        full_grid,
        final_cost,
        state.phase,
    )


def _halving_cost(spec: StudySpec, cfg: RunConfig, n: int) -> Cost:
    """Successive halving's planned cost: epochs by rung; the test set is seen only by runs that finish."""
    epochs = halving_epochs(n, spec.tune.rungs, spec.training.epochs)
    per_epoch = run_cost(cfg, epochs=1, test_every=0)  # one epoch of training + validation
    whole = run_cost(cfg)
    test_once = whole.eval - cfg.epochs * per_epoch.eval
    finishing = n
    for _, eta in spec.tune.rungs:
        finishing = keep_count(finishing, eta)
    evals = per_epoch.eval * epochs + test_once * finishing
    return Cost(per_epoch.train * epochs, evals, whole.eval_known)


def _count_ended(configs: list, view: StudyView) -> int:
    return sum(1 for c in configs if (r := view.result_of(run_id_of(c))) is not None and r["status"] in ENDED)


def totals(plans: list[GroupPlan]) -> dict[str, int]:
    """Whole-study run counts."""
    return {
        "tune": sum(p.tune_runs for p in plans),
        "final": sum(p.final_runs for p in plans),
        "tune_done": sum(p.tune_done for p in plans),
        "final_done": sum(p.final_done for p in plans),
    }


def total_cost(plans: list[GroupPlan]) -> Cost:
    return sum((p.tune_cost + p.final_cost for p in plans), Cost())
