"""``run_study``: tune -> select -> final seeds, resumable, on any executor.

The loop is small because the decisions live elsewhere: :func:`vptlab.study.state.study_state` says, from the
run folders alone, which runs can train now (tune grid points, successive-halving promotions, final seeds once a
config is selected); the executor trains them; each finished run is recorded; repeat until nothing is left.
A rerun of a finished study trains nothing; a killed one continues where its run folders say it is.

Only one process drives a study folder at a time (:class:`vptlab.store.lock.StudyLock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vptlab._progress import progress
from vptlab.errors import UserError
from vptlab.store.lock import StudyLock
from vptlab.store.study import SPEC_FILE, SUMMARY_FILE, StudyStore
from vptlab.study.estimate import run_cost
from vptlab.study.executors.base import Executor, Outcome, make_executor
from vptlab.study.overview import plan_groups, total_cost
from vptlab.study.plan import run_id_of
from vptlab.study.spec import StudySpec, spec_to_dict
from vptlab.study.state import GroupState, Job, StudyView, study_state
from vptlab.study.summary import summarize, summary_table
from vptlab.study.worker import GridJob, RunFn, WorkerOptions, group_linear_grids
from vptlab.track.study import study_logging
from vptlab.train.card import refresh_study_cards


@dataclass
class StudyRun:
    """What one call of :func:`run_study` did, and the study's summary afterwards."""

    out: Path
    summary: dict[str, Any]
    trained: list[str] = field(default_factory=list)  # run ids trained (or continued) by this call
    pruned: list[str] = field(default_factory=list)
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)  # (task, regime) -> why

    @property
    def table(self) -> str:
        return summary_table(self.summary)


def run_study(spec: StudySpec, out: str | Path, *, options: WorkerOptions | None = None, run_fn: RunFn | None = None,
              executor: Executor | None = None, retry_failed: bool = True,
              echo: Callable[[str], None] = print) -> StudyRun:  # fmt: skip
    """Run (or continue) a study into ``out``; returns what was done and the summary (also ``summary.json``)."""
    out = Path(out)
    with StudyLock(out):
        store = StudyStore(out, writable=True)
        try:
            options = study_logging(spec, options or WorkerOptions(), out)  # vptlab.track: trackers, MLflow
            return _Driver(spec, store, options, run_fn, executor, echo).run(retry_failed)
        finally:
            store.close()


def _members(job: Job) -> list[str]:
    """The run ids a job trains: one, or every run of a linear grid pass."""
    return job.run_ids if isinstance(job, GridJob) else [job.run_id]


def _without_executor(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "executor"}


def check_data(spec: StudySpec) -> None:
    """Fail before anything is written when the data source or one of the study's tasks is not there."""
    from vptlab.data.sources import list_tasks

    present = {info.name for info in list_tasks(spec.data.source)}
    missing = [task for task in spec.data.tasks if task not in present]
    if missing:
        raise UserError(f"data source {spec.data.source}: task(s) {', '.join(missing)} not found there "
                        f"(found: {', '.join(sorted(present)) or 'none'})")  # fmt: skip


def check_backbone(spec: StudySpec) -> None:
    """Fail before anything is written when the backbone cannot be built: bad ``[backbone.kwargs]``, or a
    ``checkpoint`` that is missing, unreadable or of another shape.  (Hub weights are not fetched here.)"""
    from vptlab.backbones import create_backbone
    from vptlab.backbones.create import TINY_NAME

    b = spec.backbone
    create_backbone(b.name, num_classes=2, image_size=b.image_size, checkpoint=b.checkpoint,
                    pretrained=b.pretrained and b.name == TINY_NAME, **dict(b.kwargs))  # fmt: skip


class _Driver:
    def __init__(self, spec: StudySpec, store: StudyStore, options: WorkerOptions, run_fn: RunFn | None,
                 executor: Executor | None, echo: Callable[[str], None]) -> None:  # fmt: skip
        self.spec, self.store, self.options, self.echo = spec, store, options, echo
        self.executor = executor or make_executor(spec.executor, store, options, run_fn, echo)
        self.view = StudyView(store.result_of, store.val_at)
        self.record = StudyRun(store.out, {})
        self.inflight: dict[str, Job] = {}
        self.submitted: set[tuple[str, int | None]] = set()

    # 1. the study: set up, loop, summarise
    def run(self, retry_failed: bool) -> StudyRun:
        self._write_spec()
        if retry_failed:
            self._forget_failed()
        self.echo(f"study {self.spec.name}: executor {self.executor.description}")
        try:
            with self._progress_bar() as self.bar:
                self._loop()
        finally:
            self.executor.close()
        states = study_state(self.spec, self.view)
        self.record.summary = summarize(self.spec, states, self.view, self.record.skipped)
        self.record.summary["executor"] = self.executor.description
        self.store.write_json(SUMMARY_FILE, self.record.summary)
        refresh_study_cards(self.store.out)  # run cards of the finals get their spread over seeds
        return self.record

    def _loop(self) -> None:
        while True:
            states = study_state(self.spec, self.view)
            self._apply_prunes(states)
            self._submit(states)
            if not self.inflight:
                return
            for outcome in self.executor.wait():
                self._take(outcome)

    # 2. what to train next
    def _submit(self, states: list[GroupState]) -> None:
        grids = getattr(self.executor, "shares_linear_grids", False)
        for state in states:
            if (state.group.task, state.group.regime) in self.record.skipped:
                continue
            for job in group_linear_grids(state.jobs) if grids else state.jobs:
                if len({id(j) for j in self.inflight.values()}) >= self.executor.capacity:
                    return
                members = _members(job)
                if any(m in self.inflight for m in members) or self._waits_on_inflight(job):
                    continue
                for run_id in members:
                    key = (run_id, job.until_epoch)
                    if key in self.submitted:
                        raise RuntimeError(
                            f"internal error: run {run_id} was asked for twice (until {key[1]})"
                        )
                    self.submitted.add(key)
                if job.restart:
                    self.store.discard(job.run_id)
                self.inflight.update(dict.fromkeys(members, job))
                self.executor.submit(job)

    def _waits_on_inflight(self, job: Job) -> bool:
        return job.stage1_id is not None and job.stage1_id in self.inflight

    def _apply_prunes(self, states: list[GroupState]) -> None:
        for state in states:
            for run_id, reason in state.prune:
                self.store.prune(run_id, reason)
                self.record.pruned.append(run_id)

    # 3. a run came back
    def _take(self, outcome: Outcome) -> None:
        job = outcome.job
        for run_id in _members(job):
            self.inflight.pop(run_id, None)
        if outcome.user_error is not None:
            self._user_error(job, outcome.user_error)
            return
        cfgs = job.cfgs if isinstance(job, GridJob) else (job.cfg,)
        for cfg in cfgs:  # a linear grid pass finished every run of its grid
            run_id = run_id_of(cfg)
            before = self.store.result_of(run_id)
            result = self.store.record(run_id, outcome.files if run_id == job.run_id else None)
            if result is None:
                raise RuntimeError(
                    f"run {run_id} returned without a result.json in {self.store.run_dir(run_id)}"
                )
            self.record.trained.append(run_id)
            self.bar.update(self._cost(Job(cfg), result) - self._cost(Job(cfg), before))

    def _user_error(self, job: Job, message: str) -> None:
        """A data regime a task cannot give (e.g. size:N beyond its pool) skips that task/regime; else stop."""
        if job.cfg.regime == "standard":
            raise UserError(message)
        self.record.skipped[(job.cfg.task, job.cfg.regime)] = message
        self.echo(f"skipping {job.cfg.task} under {job.cfg.regime}: {message}")

    @staticmethod
    def _cost(job: Job, result: dict | None) -> int:
        if result is None:
            return 0
        return run_cost(job.cfg, epochs=int(result.get("epochs_done") or 0)).total

    # 4. bookkeeping
    def _write_spec(self) -> None:
        spec = spec_to_dict(self.spec)
        previous = self.store.read_json(SPEC_FILE)
        if previous is not None and _without_executor(previous) != _without_executor(spec):
            self.echo(
                f"note: {self.store.out / SPEC_FILE} changes; runs whose configs did not change are kept"
            )
        self.store.write_json(SPEC_FILE, spec)

    def _forget_failed(self) -> None:
        failed = [run_id for run_id, r in self.store.results.items() if r["status"] == "failed"]
        for run_id in failed:
            self.store.discard(run_id)
        if failed:
            self.echo(f"retrying {len(failed)} failed run(s)")

    def _progress_bar(self):
        """A bar over the whole study in image-steps (train + eval images), starting at what is already done."""
        total = total_cost(plan_groups(self.spec, self.view)).total
        already = min(total, self._done_cost())
        return progress(
            total=total, initial=already, desc=f"study {self.spec.name}", unit="img", unit_scale=True
        )

    def _done_cost(self) -> int:
        cost = 0
        for state in study_state(self.spec, self.view):
            for cfg in (*state.tune, *state.finals):
                cost += self._cost(Job(cfg), self.store.result_of(run_id_of(cfg)))
        return cost
