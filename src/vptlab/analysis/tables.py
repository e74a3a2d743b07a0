"""The paper's accuracy tables (Tables 1-4) from a study's own final runs, with published numbers beside them.

Layout as in the paper: one column per task, a mean column after each VTAB group, one row per method; the mean
cell of every method but FT carries "(wins)", the number of the group's tasks on which it beats FT.  The better
of FT and VPT on each task is in bold.  Published numbers (Jia et al. 2022, ViT-B/16 IN-21k, from the packaged
``vtab1k_vitb16_in21k_published.csv``) are extra rows labelled as published, never in place of a run's result,
and only for VTAB-1k tasks: synthetic tasks have none.
"""

from __future__ import annotations

import csv
import math
from functools import cache
from importlib import resources

import numpy as np

from vptlab.analysis.results import (
    FT,
    GROUP_ORDER,
    Cell,
    NoResult,
    method_label,
    method_rank,
    pick_vpt_method,
)

PUBLISHED_LABEL = "published (Jia et al. 2022)"
PUBLISHED_SOURCE = "vptlab/resources/vtab1k_vitb16_in21k_published.csv"


@cache
def published_numbers() -> dict[str, dict[str, float]]:
    """method -> task -> published VTAB-1k test top-1 (%), read from the packaged file."""
    text = resources.files("vptlab.resources").joinpath("vtab1k_vitb16_in21k_published.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return {r.pop("method"): {task: float(v) for task, v in r.items()} for r in rows}


def task_order(cells: list[Cell]) -> list[tuple[str, str]]:
    """(group, task) in the paper's order: by group, then the VTAB-1k order (other tasks by name)."""
    from vptlab.data.tasks import vtab1k_tasks

    vtab = list(vtab1k_tasks())
    pairs = {(c.group, c.task) for c in cells}

    def rank(pair: tuple[str, str]) -> tuple:
        group, task = pair
        g = GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)
        return (g, vtab.index(task) if task in vtab else len(vtab), task)

    return sorted(pairs, key=rank)


def _fmt(value: float, std: float | None = None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1f}" if std is None else f"{value:.1f} ± {std:.1f}"


def _group_mean(values: dict[str, float], tasks: list[str]) -> float:
    got = [values[t] for t in tasks if t in values]
    return float(np.mean(got)) if got else math.nan


def _wins(values: dict[str, float], ft: dict[str, float], tasks: list[str]) -> int:
    return sum(1 for t in tasks if t in values and t in ft and values[t] > ft[t])


def accuracy_table(
    cells: list[Cell],
    regime: str = "standard",
    groups: tuple[str, ...] = GROUP_ORDER,
    *,
    published: bool = True,
    tuned_row: bool = False,
    no_result: list[NoResult] = (),
) -> str | None:
    """A markdown table in the layout of the paper's Table 1/2 (``tuned_row``: Tables 3/4's Tuned/Total row).

    ``no_result`` groups (everything diverged or failed) show their status where a number would be, and
    count in no mean.  Returns None when the study has no final runs of ``regime`` on tasks of ``groups``.
    """
    cells = [c for c in cells if c.regime == regime and c.group in groups]
    missing = {(m.method, m.task): m.status for m in no_result if m.regime == regime and m.group in groups}
    if not cells and not missing:
        return None
    columns = task_order([*cells, *(m for m in no_result if (m.method, m.task) in missing)])
    by_group = {g: [t for gg, t in columns if gg == g] for g in groups if any(gg == g for gg, _ in columns)}
    methods = sorted({c.method for c in cells} | {m for m, _ in missing}, key=_method_rank)
    means = {m: {c.task: c.mean for c in cells if c.method == m} for m in methods}
    stds = {m: {c.task: c.std for c in cells if c.method == m} for m in methods}
    vpt = pick_vpt_method(cells)
    lines = [_header(by_group), _rule(by_group)]
    for m in methods:
        status = {t: s for (mm, t), s in missing.items() if mm == m}
        lines.append(_row(method_label(m), m, means, stds.get(m), by_group, vpt, status))
    if published and regime == "standard":
        vtab = {c.task for c in cells if c.is_vtab}
        lines += _published_rows({g: [t for t in ts if t in vtab] for g, ts in by_group.items()}, by_group)
    if tuned_row:
        lines += [_tuned_row(m, [c for c in cells if c.method == m], by_group) for m in methods if m != FT]
    return "\n".join(lines)


def _header(by_group: dict[str, list[str]]) -> str:
    cols = []
    for g, tasks in by_group.items():
        cols += tasks + [f"{g} mean ({len(tasks)})"]
    return "| method | " + " | ".join(cols) + " |"


def _rule(by_group: dict[str, list[str]]) -> str:
    n = sum(len(t) + 1 for t in by_group.values())
    return "|---|" + "---:|" * n


def _method_rank(method: str) -> tuple:
    return method_rank(method)


def _row(label: str, method: str, means: dict, stds: dict | None, by_group: dict, vpt: str | None,
         status: dict[str, str]) -> str:  # fmt: skip
    values, ft = means[method], means.get(FT, {})
    cells = []
    for tasks in by_group.values():
        for t in tasks:
            text = status.get(t) or _fmt(values.get(t, math.nan), stds.get(t) if stds else None)
            if method in (FT, vpt) and _is_better_of_pair(method, t, means, vpt):
                text = f"**{text}**"
            cells.append(text)
        wins = f" ({_wins(values, ft, tasks)})" if method != FT and ft else ""
        cells.append(_fmt(_group_mean(values, tasks)) + wins)
    return f"| {label} | " + " | ".join(cells) + " |"


def _is_better_of_pair(method: str, task: str, means: dict, vpt: str | None) -> bool:
    """Whether ``method`` is the better of FT and VPT on ``task`` (both must have a result)."""
    if vpt is None or task not in means.get(FT, {}) or task not in means.get(vpt, {}):
        return False
    other = vpt if method == FT else FT
    return means[method][task] > means[other][task]


def _published_rows(vtab: dict[str, list[str]], by_group: dict[str, list[str]]) -> list[str]:
    """FT and VPT-deep as published, in the columns of the VTAB-1k tasks ``vtab``; other columns stay empty."""
    pub = published_numbers()
    if not any(t in pub.get(FT, {}) for tasks in vtab.values() for t in tasks):
        return []
    rows = []
    for method in (FT, "vpt-deep"):
        values = {t: v for t, v in pub.get(method, {}).items() if any(t in ts for ts in vtab.values())}
        cells = []
        for tasks in by_group.values():
            cells += [_fmt(values.get(t, math.nan)) for t in tasks]
            wins = f" ({_wins(values, pub[FT], tasks)})" if method != FT else ""
            cells.append(_fmt(_group_mean(values, tasks)) + wins)
        rows.append(f"| {method_label(method)}, {PUBLISHED_LABEL} | " + " | ".join(cells) + " |")
    return rows


def _tuned_row(method: str, cells: list[Cell], by_group: dict[str, list[str]]) -> str:
    """Tuned/Total parameters (%) per task and its group average, as in the paper's Tables 3 and 4."""
    pct = {c.task: c.tuned_percent for c in cells}
    out = []
    for tasks in by_group.values():
        out += [f"{pct[t]:.2f}%" if math.isfinite(pct.get(t, math.nan)) else "–" for t in tasks]
        mean = _group_mean({t: v for t, v in pct.items() if math.isfinite(v)}, tasks)
        out.append(f"{mean:.2f}%" if math.isfinite(mean) else "–")
    return f"| Tuned/Total, {method_label(method)} | " + " | ".join(out) + " |"


def table_groups(cells: list[Cell], regime: str) -> list[tuple[str, tuple[str, ...]]]:
    """The paper's split into tables: natural + specialized (Table 1/3), structured (Table 2/4), where present."""
    present = {c.group for c in cells if c.regime == regime}
    parts = [("Natural and Specialized", ("natural", "specialized")), ("Structured", ("structured",))]
    return [(title, groups) for title, groups in parts if present & set(groups)]


def has_published(cells: list[Cell]) -> bool:
    """Whether any task in ``cells`` has published numbers (only VTAB-1k tasks do)."""
    pub = published_numbers().get(FT, {})
    return any(c.is_vtab and c.task in pub for c in cells)
