"""Final-run results grouped over seeds, and FT-vs-VPT comparisons per task: what every analysis starts from.

Input rows are :func:`vptlab.store.load_results` dicts.  A *cell* is one (method, task, regime) of final runs
(``config.stage == "final"``) with status ``ok``; its accuracy is the mean and sample standard deviation over
seeds of the last-epoch ``test_top1``.  Runs that diverged or failed are left out of the mean and counted, so a
report can say so.

A comparison decides the FT-vs-VPT winner by the higher mean, and calls the gap *clear* when it exceeds the sum
of the two standard deviations (``|gap| > std_FT + std_VPT``; needs at least two seeds per method).  This is the
stricter of the usual rules of thumb, chosen because five seeds are too few for a t-test's assumptions to hold;
Welch's t-test p-value is reported beside it for readers who want it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

FT = "full"
VPT_METHODS = ("vpt-deep", "vpt-shallow")
GROUP_ORDER = ("natural", "specialized", "structured")


def method_label(method: str) -> str:
    """The method's label (``Method.label``; its name when this installation does not have it)."""
    from vptlab.methods.base import method_label as label

    return label(method)


def method_rank(method: str) -> tuple[int, str]:
    """Table order: ``Method.order`` (the paper's methods first), then name."""
    from vptlab.methods.base import method_rank as rank

    return rank(method)


@dataclass(frozen=True)
class Cell:
    """One (method, task, regime): final test top-1 (%) over seeds, with the task's group and objective."""

    method: str
    task: str
    regime: str
    group: str
    objective: str
    values: tuple[float, ...]
    seeds: tuple[int, ...]
    run_dirs: tuple[str, ...]
    trainable: float = math.nan
    total: float = math.nan
    train_size: int | None = None
    excluded: tuple[str, ...] = field(default=())
    source: str = ""

    @property
    def is_vtab(self) -> bool:
        """Whether the task came from a VTAB-1k folder (only those have published numbers)."""
        if self.source.startswith("vtab1k"):
            return True
        if self.source.startswith(("synthetic", "folder")):
            return False
        from vptlab.data.tasks import vtab1k_tasks

        return self.task in vtab1k_tasks()  # a bare path holding VTAB-1k task folders

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def shown(self) -> str:
        """``mean ± std`` as the report prints it; one seed has no spread: ``mean ± n/a``."""
        return mean_std(self.mean, self.std, self.n)

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed)."""
        return self.std_with(1)

    def std_with(self, ddof: int) -> float:
        """Standard deviation over seeds with ``ddof`` (1: sample std; 0: ``np.std``, as the seed paper reports)."""
        return float(np.std(self.values, ddof=ddof)) if self.n > ddof and self.n > 1 else 0.0

    @property
    def tuned_percent(self) -> float:
        """Trainable parameters as a percentage of the total (the paper's Tuned/Total)."""
        return 100.0 * self.trainable / self.total if self.total else math.nan


def _task_info(row: dict) -> tuple[str, str]:
    """(group, objective) of a run's task, from its result or the packaged task tables."""
    info = row.get("task") or {}
    if info.get("group") and info.get("objective"):
        return info["group"], info["objective"]
    from vptlab.data.tasks import vtab1k_tasks

    known = vtab1k_tasks().get(row["config"].get("task", ""))
    return (known.group, known.objective) if known else ("natural", "classification")


def train_size_of(row: dict) -> int | None:
    """How many labelled images the run trained on, from its data record (None when not recorded)."""
    data = row.get("data") or {}
    for key in ("train_size", "n_train"):
        if isinstance(data.get(key), int):
            return data[key]
    sizes = data.get("sizes") or {}
    if isinstance(sizes.get("train"), int):
        return sizes["train"]
    train = data.get("train")  # {"train": {"size": N, ...}} records
    if isinstance(train, dict) and isinstance(train.get("size"), int):
        return train["size"]
    return None


def final_cells(results: list[dict], metric: str = "test_top1") -> list[Cell]:
    """Group final runs by (method, task, regime); sorted by regime, group, task and method order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    excluded: dict[tuple, list[str]] = defaultdict(list)
    for row in _unique_runs(results):
        cfg = row.get("config") or {}
        if cfg.get("stage") != "final":
            continue
        key = (cfg.get("method"), cfg.get("task"), cfg.get("regime", "standard"))
        value = (row.get("metrics") or {}).get(metric)
        if row.get("status") == "ok" and value is not None:
            groups[key].append(row)
        else:
            excluded[key].append(str(row.get("status")))
    cells = [_cell(key, rows, tuple(excluded.get(key, ())), metric) for key, rows in groups.items()]
    return sorted(cells, key=_cell_order)


@dataclass(frozen=True)
class NoResult:
    """A (method, task, regime) that ran but has no accuracy: its finals, or its whole tune grid, ended
    ``diverged`` (or ``failed``).  Tables show the status in its place, never a number."""

    method: str
    task: str
    regime: str
    group: str
    objective: str
    status: str


def no_result_cells(results: list[dict]) -> list[NoResult]:
    """Groups with finished runs but no ``ok`` final run and nothing left to select (see :func:`final_cells`).

    Final runs that all ended badly give their status; with no final runs, a tune grid with no ``ok`` run is
    ``diverged`` when every unpruned run diverged, else ``failed`` (the selection rule).  A group whose tune
    runs are fine but whose finals have not run yet is pending, not listed.
    """
    statuses: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows: dict[tuple, dict] = {}
    for row in _unique_runs(results):
        cfg = row.get("config") or {}
        key = (cfg.get("method"), cfg.get("task"), cfg.get("regime", "standard"))
        statuses[key][str(cfg.get("stage"))].append(str(row.get("status")))
        rows.setdefault(key, row)
    out = []
    for key, by_stage in statuses.items():
        decisive = by_stage.get("final") or by_stage.get("tune") or []
        if decisive and "ok" not in decisive and "partial" not in decisive:
            bad = [s for s in decisive if s != "pruned"]
            status = "diverged" if "diverged" in bad and set(bad) <= {"diverged"} else (bad or ["failed"])[0]
            out.append(NoResult(*key, *_task_info(rows[key]), status))
    return sorted(out, key=_cell_order)


def _unique_runs(results: list[dict]) -> list[dict]:
    """One row per run id: a run can appear twice (e.g. an FT-then-PT run's own ``stage1/`` full run)."""
    seen, out = set(), []
    for row in results:
        rid = row.get("run_id")
        if rid is None or rid not in seen:
            out.append(row)
            seen.add(rid)
    return out


def _cell(key: tuple, rows: list[dict], excluded: tuple[str, ...], metric: str = "test_top1") -> Cell:
    rows = sorted(rows, key=lambda r: r["config"].get("seed", 0))
    group, objective = _task_info(rows[0])
    params = [r.get("params") or {} for r in rows]
    sizes = {train_size_of(r) for r in rows} - {None}
    return Cell(
        method=key[0],
        task=key[1],
        regime=key[2],
        group=group,
        objective=objective,
        values=tuple(float(r["metrics"][metric]) for r in rows),
        seeds=tuple(int(r["config"].get("seed", 0)) for r in rows),
        run_dirs=tuple(r["run_dir"] for r in rows),
        trainable=_mean_param(params, "trainable"),
        total=_mean_param(params, "total"),
        train_size=max(sizes) if sizes else None,
        excluded=excluded,
        source=str((rows[0].get("data") or {}).get("source") or rows[0]["config"].get("data", "")),
    )


def _mean_param(params: list[dict], name: str) -> float:
    values = [p[name] for p in params if isinstance(p.get(name), (int, float))]
    return float(np.mean(values)) if values else math.nan


def task_rank(task: str) -> int:
    """A task's place in the paper's (VTAB-1k) order; other tasks come after, ordered by name by the caller."""
    from vptlab.data.tasks import vtab1k_tasks

    order = list(vtab1k_tasks())
    return order.index(task) if task in order else len(order)


def _cell_order(cell: Cell | NoResult) -> tuple:
    return (
        regime_order(cell.regime),
        GROUP_ORDER.index(cell.group) if cell.group in GROUP_ORDER else 9,
        task_rank(cell.task),
        cell.task,
        method_rank(cell.method),
    )


def regime_order(regime: str) -> tuple:
    """standard first, then k-shot by K, then data sizes by N."""
    kind, _, arg = regime.partition(":")
    rank = {"standard": 0, "kshot": 1, "fewshot": 1.5, "size": 2}.get(kind, 3)
    return (rank, int(arg) if arg.isdigit() else 0, regime)


def regime_size(regime: str) -> int | None:
    """N of a ``size:N`` regime, else None."""
    kind, _, arg = regime.partition(":")
    return int(arg) if kind == "size" and arg.isdigit() else None


def pick_vpt_method(cells: list[Cell]) -> str | None:
    """The VPT variant to compare FT against: VPT-deep (the paper's) if the study has it, else VPT-shallow."""
    methods = {c.method for c in cells}
    return next((m for m in VPT_METHODS if m in methods), None)


@dataclass(frozen=True)
class Comparison:
    """FT vs VPT on one task and regime."""

    ft: Cell
    vpt: Cell

    @property
    def task(self) -> str:
        return self.ft.task

    @property
    def group(self) -> str:
        return self.ft.group

    @property
    def objective(self) -> str:
        return self.ft.objective

    @property
    def regime(self) -> str:
        return self.ft.regime

    @property
    def gap(self) -> float:
        """VPT mean minus FT mean, in accuracy points."""
        return self.vpt.mean - self.ft.mean

    @property
    def winner(self) -> str:
        return "VPT" if self.gap > 0 else "FT" if self.gap < 0 else "tie"

    @property
    def clear(self) -> bool | None:
        """Whether |gap| exceeds std_FT + std_VPT; None when a side has fewer than two seeds."""
        if self.ft.n < 2 or self.vpt.n < 2:
            return None
        return abs(self.gap) > self.ft.std + self.vpt.std

    @property
    def welch_p(self) -> float | None:
        """Two-sided Welch's t-test p-value (None with fewer than two seeds, or no variance at all)."""
        if self.ft.n < 2 or self.vpt.n < 2 or (self.ft.std == 0 and self.vpt.std == 0):
            return None
        import warnings

        from scipy import stats

        with warnings.catch_warnings():  # one side constant: scipy warns about precision, the p-value stands
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ttest_ind(self.vpt.values, self.ft.values, equal_var=False).pvalue)


def compare(cells: list[Cell], regime: str = "standard", vpt_method: str | None = None) -> list[Comparison]:
    """FT vs VPT per task under ``regime``, for tasks where both have final runs."""
    vpt_method = vpt_method or pick_vpt_method(cells)
    by_key = {(c.method, c.task): c for c in cells if c.regime == regime}
    tasks = [c.task for c in cells if c.regime == regime and c.method == FT]
    return [Comparison(by_key[(FT, t)], by_key[(vpt_method, t)]) for t in tasks if (vpt_method, t) in by_key]


def mean_std(mean: float, std: float | None, n: int) -> str:
    """``71.2 ± 0.4``; with fewer than two seeds there is no sample std: ``71.2 ± n/a`` (never ``± 0.0``)."""
    if std is None or n < 2:
        return f"{mean:.1f} ± n/a"
    return f"{mean:.1f} ± {std:.1f}"
