"""The paper's accuracy tables (Tables 1-4) from a study's own final runs, with published numbers beside them.

Layout as in the paper: one column per task, a mean column after each VTAB group, one row per method; the mean
cell of every method but FT carries "(wins)", the number of the group's tasks on which it beats FT.  The better
of FT and VPT on each task is in bold.  Published numbers (:mod:`vptlab.analysis.published`: the seed paper, Han
et al. 2024, first, then the VPT paper, Jia et al. 2022) are extra rows labelled as published, never in place of
a run's result, and only in the columns of VTAB-1k tasks: synthetic tasks and your own data have none.  A cell
the seed paper's transcription flags as uncertain carries a ``?``.  With ``differences`` (the study used the
paper's backbone), a row per method gives ours - published (seed paper) and whether that is inside our spread
over seeds (``|ours - published| <= std``).  ``ddof`` picks the std shown: 1 (sample std, vptlab's default) or
0 (``np.std``, as the seed paper aggregates).
"""

from __future__ import annotations

import math

import numpy as np

from vptlab.analysis.published import UNCERTAIN_MARK, Reference, reference, references
from vptlab.analysis.results import (
    FT,
    GROUP_ORDER,
    Cell,
    NoResult,
    method_label,
    method_rank,
    pick_vpt_method,
)

PUBLISHED_LABEL = reference().label  # the seed paper's: "published (Han et al. 2024)"
PUBLISHED_SOURCE = reference().source
INSIDE, OUTSIDE = "✓", "✗"


def published_numbers(regime: str = "standard", key: str = "han2024") -> dict[str, dict[str, float]]:
    """method -> task -> published VTAB-1k test top-1 (%) of one reference (default: the seed paper)."""
    ref = reference(key)
    return {m: dict(ref.get(regime, m)) for m in ref.methods(regime)}


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


def _fmt(value: float, std: float | None = None, uncertain: bool = False) -> str:
    """A mean (marked when uncertain), with its std when ``std`` is given (NaN: one seed, shown as ``± n/a``)."""
    if value is None or not math.isfinite(value):
        return "–"
    mark = UNCERTAIN_MARK if uncertain else ""
    if std is None:
        return f"{value:.1f}{mark}"
    return f"{value:.1f} ± {std:.1f}" if math.isfinite(std) else f"{value:.1f} ± n/a"


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
    ddof: int = 1,
    differences: bool = False,
) -> str | None:
    """A markdown table in the layout of the paper's Table 1/2 (``tuned_row``: Tables 3/4's Tuned/Total row).

    ``no_result`` groups (everything diverged or failed) show their status where a number would be, and
    count in no mean.  ``published``: the published rows of ``regime`` (VTAB-1k columns only); ``differences``:
    also ours - published (seed paper) per method, with whether it is inside our seed spread; ``ddof``: the std
    over seeds shown (1: sample std; 0: ``np.std``, the seed paper's).  Returns None when the study has no final
    runs of ``regime`` on tasks of ``groups``.
    """
    cells = [c for c in cells if c.regime == regime and c.group in groups]
    missing = {(m.method, m.task): m.status for m in no_result if m.regime == regime and m.group in groups}
    if not cells and not missing:
        return None
    columns = task_order([*cells, *(m for m in no_result if (m.method, m.task) in missing)])
    by_group = {g: [t for gg, t in columns if gg == g] for g in groups if any(gg == g for gg, _ in columns)}
    methods = sorted({c.method for c in cells} | {m for m, _ in missing}, key=_method_rank)
    means = {m: {c.task: c.mean for c in cells if c.method == m} for m in methods}
    stds = {
        m: {c.task: (c.std_with(ddof) if c.n > 1 else math.nan) for c in cells if c.method == m}
        for m in methods
    }
    vpt = pick_vpt_method(cells)
    lines = [_header(by_group), _rule(by_group)]
    for m in methods:
        status = {t: s for (mm, t), s in missing.items() if mm == m}
        lines.append(_row(method_label(m), m, means, stds.get(m), by_group, vpt, status))
    vtab = {c.task for c in cells if c.is_vtab}
    if published and vtab:
        lines += _published_rows(regime, methods, vtab, by_group)
        if differences:
            lines += _difference_rows(regime, cells, vtab, by_group, ddof)
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
            text = status.get(t) or _fmt(values.get(t, math.nan), stds.get(t, math.nan) if stds else None)
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


def _shown_references(regime: str, methods: list[str]) -> list[tuple[Reference, list[str]]]:
    """(reference, its methods to show): every method of the seed paper; of the others, FT, VPT-deep and the
    methods the study ran."""
    out = []
    for i, ref in enumerate(references()):
        shown = [m for m in ref.methods(regime) if i == 0 or m in (FT, "vpt-deep") or m in methods]
        if shown:
            out.append((ref, sorted(shown, key=_method_rank)))
    return out


def _published_rows(
    regime: str, methods: list[str], vtab: set[str], by_group: dict[str, list[str]]
) -> list[str]:
    """The published rows of ``regime``, in the columns of the VTAB-1k tasks ``vtab``; other columns stay "–"."""
    rows = []
    for ref, shown in _shown_references(regime, methods):
        pub_ft = ref.get(regime, FT)
        for method in shown:
            values = {t: v for t, v in ref.get(regime, method).items() if t in vtab}
            if not values:
                continue
            cells = []
            for tasks in by_group.values():
                flags = [ref.is_uncertain(regime, method, t) for t in tasks if t in values]
                cells += [
                    _fmt(values.get(t, math.nan), None, ref.is_uncertain(regime, method, t)) for t in tasks
                ]
                wins = f" ({_wins(values, pub_ft, tasks)})" if method != FT and pub_ft else ""
                cells.append(_fmt(_group_mean(values, tasks), None, any(flags)) + wins)
            rows.append(f"| {method_label(method)}, {ref.label} | " + " | ".join(cells) + " |")
    return rows


def _difference_rows(
    regime: str, cells: list[Cell], vtab: set[str], by_group: dict[str, list[str]], ddof: int
) -> list[str]:
    """Ours - published (seed paper) per task, marked inside/outside our spread over seeds; per group, the
    difference of the means and how many tasks are inside."""
    ref = reference()
    rows = []
    for method in sorted({c.method for c in cells}, key=_method_rank):
        pub = ref.get(regime, method)
        ours = {c.task: c for c in cells if c.method == method and c.task in vtab and c.task in pub}
        if not ours:
            continue
        out = []
        for tasks in by_group.values():
            inside = 0
            for t in tasks:
                out.append(_difference(ours.get(t), pub.get(t), ddof, ref.is_uncertain(regime, method, t)))
                inside += t in ours and _inside(ours[t], pub[t], ddof)
            shared = [t for t in tasks if t in ours]
            gap = float(np.mean([ours[t].mean - pub[t] for t in shared])) if shared else math.nan
            out.append(f"{gap:+.1f} ({inside}/{len(shared)} {INSIDE})" if shared else "–")
        rows.append(f"| {method_label(method)}, ours − {ref.label} | " + " | ".join(out) + " |")
    return rows


def _difference(cell: Cell | None, published: float | None, ddof: int, uncertain: bool) -> str:
    if cell is None or published is None:
        return "–"
    mark = (INSIDE if _inside(cell, published, ddof) else OUTSIDE) if cell.n > 1 else "(1 seed)"
    return f"{cell.mean - published:+.1f}{UNCERTAIN_MARK if uncertain else ''} {mark}"


def _inside(cell: Cell, published: float, ddof: int) -> bool:
    """Whether the published value is within one std (over our seeds) of our mean; never with one seed."""
    return cell.n > 1 and abs(cell.mean - published) <= cell.std_with(ddof)


def published_notes(cells: list[Cell], regime: str, *, ddof: int = 1, differences: bool = False) -> list[str]:
    """What the published rows of ``regime`` are, how our std is computed, and what ``?`` and the marks mean."""
    vtab = {c.task for c in cells if c.regime == regime and c.is_vtab}
    if not vtab:
        return []
    methods = sorted({c.method for c in cells if c.regime == regime}, key=_method_rank)
    notes = [
        f'Rows marked "{ref.label}" are {ref.citation}: {ref.aggregation}, read from `{ref.source}`, not results '
        "of this study; their group means are means of the shown per-task values (the paper's printed means "
        "use unrounded values)."
        for ref, _ in _shown_references(regime, methods)
    ]
    notes.append(
        f"Our ± is the {'np.std (ddof 0), as the seed paper aggregates' if ddof == 0 else 'sample std (ddof 1)'} "
        "over seeds; the seed paper reports np.std (ddof 0)"
        + ("." if ddof == 0 else "; `vptlab report --ddof 0` shows ours the same way.")
    )
    flagged = [(m, t) for m, t in reference().uncertain_cells(regime) if t in vtab]
    if flagged:
        named = ", ".join(f"{method_label(m)} {t}" for m, t in flagged)
        notes.append(
            f"{UNCERTAIN_MARK} = uncertain: the seed paper's printed table could not be read with certainty at "
            f"{named} (the value kept is the one that reproduces the printed group mean); a group mean that "
            f"includes such a cell carries {UNCERTAIN_MARK} too."
        )
    if differences:
        notes.append(
            f'"ours − published" rows: our mean minus the seed paper\'s, per task; {INSIDE} when the difference '
            f"is within one std of our seeds (the std shown above), {OUTSIDE} when outside; the group cells give "
            f"the difference of the means over the tasks compared and how many of them are within."
        )
    return notes


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


def has_published(cells: list[Cell], regime: str | None = None) -> bool:
    """Whether any VTAB-1k task in ``cells`` (of ``regime``, if given) has published numbers."""
    pub = {
        t for ref in references() for (r, _), vals in ref.values.items() if regime in (None, r) for t in vals
    }
    return any(c.is_vtab and c.task in pub and regime in (None, c.regime) for c in cells)
