"""Where a study stands, derived from its run folders alone.

:func:`study_state` is a pure function of the spec and the finished/paused runs: which tune runs exist, which
config each group selected, which final runs are due, which runs can train now.  The runner calls it after
every finished run; ``study plan`` calls it once.  Because nothing else is remembered, a study killed at any
point (mid-run, mid-write, between selection and finals) continues exactly where the run folders say it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vptlab.study.asha import halving_step
from vptlab.study.plan import Group, final_configs, run_id_of, stage1_method, study_groups, tune_configs
from vptlab.study.select import Selection, select_best
from vptlab.study.spec import StudySpec
from vptlab.train.config import RunConfig

ENDED = ("ok", "diverged", "failed", "pruned")  # a run with one of these statuses will not train again


@dataclass(frozen=True)
class Job:
    """One call of ``train_run``: a config, how far to train it, and the run its stage 1 reuses."""

    cfg: RunConfig
    until_epoch: int | None = None  # None: to the end of the schedule
    stage1_id: str | None = None  # ft-then-pt: the finished full run that is its stage 1
    restart: bool = False  # forget an earlier (pruned) outcome and train from scratch

    @property
    def run_id(self) -> str:
        return run_id_of(self.cfg)


@dataclass
class GroupState:
    """One (method, task, regime): its phase and everything decided so far."""

    group: Group
    phase: str = "tuning"  # waiting | tuning | final | done | diverged | failed | blocked
    tune: list[RunConfig] = field(default_factory=list)
    selection: Selection | None = None
    finals: list[RunConfig] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    prune: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


@dataclass
class StudyView:
    """Read access to a study's runs: ``result_of(run_id)`` and ``val_at(run_id, epoch)``."""

    result_of: Callable[[str], dict | None]
    val_at: Callable[[str, int], float | None] = lambda run_id, epoch: None


def study_state(spec: StudySpec, view: StudyView) -> list[GroupState]:
    """Every group's state, in plan order (``full`` before the FT-then-PT that reuses it)."""
    states: dict[Group, GroupState] = {}
    for group in study_groups(spec):
        states[group] = _group_state(spec, view, group, states)
    return list(states.values())


def _group_state(spec: StudySpec, view: StudyView, group: Group, done: dict[Group, GroupState]) -> GroupState:
    state = GroupState(group)
    first = stage1_method(spec, group.method)
    full = done.get(Group(first, group.task, group.regime)) if first else None
    if full is not None and full.selection is None:
        state.phase = "waiting" if full.phase in ("tuning", "waiting") else "blocked"
        state.note = (
            f"needs {first}'s selection" if state.phase == "waiting" else f"{first} {full.phase}: no stage 1"
        )
        return state
    full_cfg = _selected_cfg(full) if full is not None else None
    state.tune = tune_configs(spec, group, full_cfg)
    stage1 = run_id_of(full_cfg) if full_cfg is not None else None
    if not _tune_stage(spec, view, state, stage1):
        return state
    state.finals = final_configs(spec, _selected_cfg(state))
    pending = [c for c in state.finals if not _ended(view.result_of(run_id_of(c)))]
    if not pending:
        state.phase = "done"
        return state
    state.phase = "final"
    full_finals = {c.seed: run_id_of(c) for c in full.finals} if full is not None else {}
    for cfg in pending:
        s1 = full_finals.get(cfg.seed)
        if s1 is None or _ended(view.result_of(s1)):  # ft-then-pt waits for its stage-1 full run
            state.jobs.append(Job(cfg, None, s1, _is_pruned(view.result_of(run_id_of(cfg)))))
    return state


def untuned(spec: StudySpec, tune: list[RunConfig]) -> bool:
    """A one-point grid whose tune run the spec skips: its only config is the selection."""
    return len(tune) == 1 and spec.tune.single_point == "skip"


def _tune_stage(spec: StudySpec, view: StudyView, state: GroupState, stage1: str | None) -> bool:
    """Fill the tune jobs (or the selection); True once a config is selected."""
    if untuned(spec, state.tune):
        only = state.tune[0]
        state.selection = Selection(
            "selected", {"config": only.to_dict(), "run_id": None, "status": "untuned"}, 1
        )
        return True
    if spec.tune.early_stopping == "sha":
        step = halving_step(
            state.tune,
            view.result_of,
            view.val_at,
            spec.tune.rungs,
            spec.training.epochs,
        )
        state.prune = step.prune
        state.jobs = [Job(c, until, stage1) for c, until in step.train]
        state.jobs += [Job(c, until, stage1, restart=True) for c, until in step.restart]
        candidates = step.survivors if step.done else None
    else:
        pending = [c for c in state.tune if not _ended(view.result_of(run_id_of(c)), allow_pruned=False)]
        state.jobs = [Job(c, None, stage1, _is_pruned(view.result_of(run_id_of(c)))) for c in pending]
        candidates = None if pending else state.tune
    if candidates is None:
        return False
    results = [r for c in state.tune if (r := view.result_of(run_id_of(c))) is not None]
    survivors = {run_id_of(c) for c in candidates}
    state.selection = select_best([r for r in results if r["run_id"] in survivors] or results)
    if state.selection.status != "selected":
        state.phase = state.selection.status
        state.note = f"no tune run ended ok ({dict(state.selection.counts)})"
        return False
    return True


def _selected_cfg(state: GroupState) -> RunConfig:
    return RunConfig.from_dict(state.selection.config).resolved()


def _ended(result: dict | None, allow_pruned: bool = True) -> bool:
    if result is None:
        return False
    return result["status"] in ENDED and (allow_pruned or result["status"] != "pruned")


def _is_pruned(result: dict | None) -> bool:
    return result is not None and result["status"] == "pruned"
