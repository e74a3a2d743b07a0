"""Expanding a study spec into plain lists of run configs, the way big_vision builds sweeps.

A study is a list of *groups*, one per (method, task, regime).  A group's tune stage is the product of its
option axes (lr x wd x ... ; one value is a constant); its final stage is the selected tune config re-run on
train+val with every seed.  FT-then-PT's stage 1 is the ``full`` run of the same group, so its tune configs are
known only once ``full`` is selected (its ``ft_lr``/``ft_wd`` are the ones selected for ``full``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any

from vptlab.study.spec import MethodSpec, StudySpec
from vptlab.train.config import RunConfig

# Tune runs report validation curves only; the test set is looked at once, after the last epoch.
TUNE_EVAL_TEST_EVERY = 0


@dataclass(frozen=True)
class Group:
    """One method on one task under one data regime: a tune grid, a selection, final seeds."""

    method: str
    task: str
    regime: str

    @property
    def key(self) -> str:
        return f"{self.method}/{self.task}/{self.regime}"


def study_groups(spec: StudySpec) -> list[Group]:
    """Every group, regime-major, each task's ``full`` before any method that reuses it."""
    order = sorted(spec.method_names, key=lambda name: stage1_method(spec, name) is not None)
    return [
        Group(m, t, r)
        for r in spec.regimes.names
        for t in spec.data.tasks
        for m in order
        if spec.regimes.covers(r, m, t)
    ]


def base_fields(spec: StudySpec, group: Group) -> dict[str, Any]:
    """The RunConfig fields every run of a group shares."""
    b, t = spec.backbone, spec.training
    return {
        "method": group.method,
        "task": group.task,
        "data": spec.data.source,
        "backbone": b.name,
        "checkpoint": b.checkpoint,
        "backbone_args": b.kwargs,
        "pretrained": b.pretrained,
        "image_size": b.image_size,
        "interpolation": b.interpolation,
        "regime": group.regime,
        "epochs": t.epochs,
        "warmup_epochs": t.warmup_epochs,
        "schedule": t.schedule,
        "reference_optimizer": t.reference_optimizer,
        "head_init": t.head_init,
        "precision": t.precision,
        "skip_bad_images": spec.data.skip_bad_images,
    }


def grid_points(method: MethodSpec, task: str) -> list[dict[str, Any]]:
    """The product of the method's option axes for ``task``, in the order the spec lists values."""
    axes = method.axes(task)
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def run_id_of(cfg: RunConfig) -> str:
    """``cfg.run_id``, remembered: a study asks for the ids of the same configs after every finished run."""
    try:
        return _run_id(cfg)
    except TypeError:  # an unhashable config (a dict-valued backbone argument): compute it each time
        return cfg.run_id


@functools.lru_cache(maxsize=1 << 16)
def _run_id(cfg: RunConfig) -> str:
    return cfg.run_id


def tune_configs(spec: StudySpec, group: Group, full_selected: RunConfig | None = None) -> list[RunConfig]:
    """The group's tune grid (resolved).  FT-then-PT needs ``full_selected``: the selected full tune config."""
    try:
        return list(_tune_configs(spec, group, full_selected))
    except TypeError:  # unhashable spec values
        return list(_tune_configs.__wrapped__(spec, group, full_selected))


@functools.lru_cache(maxsize=1024)
def _tune_configs(spec: StudySpec, group: Group, full_selected: RunConfig | None) -> tuple[RunConfig, ...]:
    method = spec.method(group.method)
    if method is None:
        raise ValueError(f"{group.method} is not in the study")
    fields = base_fields(spec, group) | {
        "stage": "tune",
        "seed": spec.training.tune_seed,
        "split_seed": spec.data.split_seed_for(spec.training.tune_seed),
        "eval_test_every": TUNE_EVAL_TEST_EVERY,
    }
    if full_selected is not None and stage1_method(spec, group.method):
        fields |= stage1_fields(group.method, full_selected)
    return tuple(RunConfig.of(**(fields | point)).resolved() for point in grid_points(method, group.task))


def stage1_method(spec: StudySpec, method: str) -> str | None:
    """The method whose selected runs are ``method``'s stage 1 in this study (FT-then-PT: ``full``), or None."""
    from vptlab.methods import get_method

    first = get_method(method).first_stage
    return first.method if first is not None and first.method in spec.method_names else None


def stage1_fields(method: str, selected: RunConfig) -> dict[str, Any]:
    """A two-stage method's options that make its stage 1 exactly the given selected run."""
    from vptlab.methods import get_method

    return get_method(method).first_stage.from_selected(selected)


def final_configs(spec: StudySpec, selected: RunConfig) -> list[RunConfig]:
    """The selected tune config on train+val, once per seed, with the study's test-evaluation cadence."""
    try:
        return list(_final_configs(spec, selected))
    except TypeError:  # unhashable spec values
        return list(_final_configs.__wrapped__(spec, selected))


@functools.lru_cache(maxsize=4096)
def _final_configs(spec: StudySpec, selected: RunConfig) -> tuple[RunConfig, ...]:
    return tuple(
        dataclasses.replace(
            selected,
            stage="final",
            seed=seed,
            split_seed=spec.data.split_seed_for(seed),
            eval_test_every=_test_cadence(spec, selected.regime),
            extra={**selected.extra, **_eval_extra(spec)},
        ).resolved()
        for seed in spec.training.seeds
    )


def _eval_extra(spec: StudySpec) -> dict[str, Any]:
    """Domain shift: the spec's evaluation sets, as a label of each final run (vptlab.train.evalsets)."""
    return {"eval_sets": dict(spec.data.eval_sets)} if spec.data.eval_sets else {}


def _test_cadence(spec: StudySpec, regime: str) -> int:
    """``eval_test_every`` for the regimes that record test curves; the others test once, after the last epoch."""
    return spec.training.eval_test_every if regime.split(":")[0] in spec.training.curve_regimes else 0


def grid_size(spec: StudySpec, group: Group) -> int:
    method = spec.method(group.method)
    return method.grid_size(group.task) if method else 0
