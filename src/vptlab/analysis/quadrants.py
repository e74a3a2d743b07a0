"""The paper's quadrants (§4.3, Figure 3): task disparity x data disparity, and who wins in each.

Task disparity is the task's objective: ``classification`` tasks are close to the pretraining objective (low),
``structured`` tasks (counting, distance, orientation...) far from it (high).  Data disparity is the task's FID
to the pretraining data: *high* when it exceeds a threshold set by the rule of :mod:`vptlab.analysis.fid_threshold`
(given; else the median over >= 5 tasks analysed, so "high" means "more different from the pretraining data than
the typical task of this study"; else a reference set's median; else undetermined; a FID equal to the threshold
counts as low).  The paper's claim: VPT wins in three quadrants (high task disparity; or low task
disparity with low FID), FT in the fourth (classification far from the pretraining data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vptlab.analysis.fid_threshold import FIDThreshold, fid_threshold
from vptlab.analysis.results import GROUP_ORDER, Comparison, task_rank

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: the advisor needs only the rule
    from matplotlib.figure import Figure

DISPARITY = {"classification": "low", "structured": "high"}
LEVELS = ("low", "high")


def paper_expectation(objective: str, fid_level: str) -> str:
    """The winner the paper's rule predicts: FT only for classification far from the pretraining data.

    Structured objectives get VPT at any FID; classification with an undetermined FID level gets "undetermined".
    """
    if fid_level == "undetermined" and DISPARITY.get(objective, "low") == "low":
        return "undetermined"
    return "FT" if DISPARITY.get(objective, "low") == "low" and fid_level == "high" else "VPT"


@dataclass(frozen=True)
class TaskQuadrant:
    """One task placed in its quadrant, with the FT-vs-VPT outcome and what the paper's rule expects."""

    comparison: Comparison
    fid: float
    fid_level: str

    @property
    def task(self) -> str:
        return self.comparison.task

    @property
    def disparity(self) -> str:
        return DISPARITY.get(self.comparison.objective, "low")

    @property
    def quadrant(self) -> str:
        return f"{self.disparity} task disparity, {self.fid_level} FID"

    @property
    def expected(self) -> str:
        return paper_expectation(self.comparison.objective, self.fid_level)

    @property
    def agrees(self) -> bool | None:
        """Whether the winner is the one the paper's rule predicts (None for a tie)."""
        winner = self.comparison.winner
        return None if winner == "tie" or self.expected == "undetermined" else winner == self.expected


def assign_quadrants(
    comparisons: list[Comparison],
    fids: dict[str, float],
    threshold: float | None = None,
    *,
    rule: FIDThreshold | None = None,
) -> tuple[list[TaskQuadrant], float]:
    """Place every compared task that has an FID; returns the placements and the threshold used (NaN when
    undetermined: the levels are then "undetermined").  The threshold follows the shared rule
    (:mod:`vptlab.analysis.fid_threshold`) unless ``rule`` is given."""
    known = [c for c in comparisons if c.task in fids and np.isfinite(fids[c.task])]
    if rule is None:
        rule = fid_threshold(
            {c.task: fids[c.task] for c in known}, given=threshold, what="{n} compared tasks"
        )
    placed = [TaskQuadrant(c, float(fids[c.task]), rule.level(fids[c.task])) for c in known]
    return placed, rule.value if rule.determined else float("nan")


def wins_table(placed: list[TaskQuadrant]) -> dict[tuple[str, str], dict[str, int]]:
    """(task disparity, FID level) -> counts of VPT wins, FT wins, ties, and clear wins of each."""
    table = {
        (d, f): {"VPT": 0, "FT": 0, "tie": 0, "VPT clear": 0, "FT clear": 0} for d in LEVELS for f in LEVELS
    }
    for q in placed:
        if q.fid_level not in LEVELS:
            continue
        cell = table[(q.disparity, q.fid_level)]
        cell[q.comparison.winner] += 1
        if q.comparison.clear and q.comparison.winner != "tie":
            cell[f"{q.comparison.winner} clear"] += 1
    return table


def wins_markdown(placed: list[TaskQuadrant]) -> str:
    """The 2x2 table of wins per quadrant, with the paper's expectation in each cell."""
    table = wins_table(placed)
    lines = [
        "| task disparity (objective) | low FID | high FID |",
        "|---|---|---|",
    ]
    for d, name in (("low", "low (classification)"), ("high", "high (structured)")):
        cells = [_wins_cell(table[(d, f)], paper_expectation(_objective(d), f)) for f in LEVELS]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _objective(disparity: str) -> str:
    return "classification" if disparity == "low" else "structured"


def _wins_cell(counts: dict[str, int], expected: str) -> str:
    n = counts["VPT"] + counts["FT"] + counts["tie"]
    if n == 0:
        return f"no tasks (paper: {expected})"
    ties = f", {counts['tie']} tie" if counts["tie"] else ""
    return (
        f"VPT {counts['VPT']} ({counts['VPT clear']} clear), FT {counts['FT']} ({counts['FT clear']} clear)"
        f"{ties} (paper: {expected})"
    )


def quadrant_rows_markdown(placed: list[TaskQuadrant]) -> str:
    """Per task: group, objective, FID, quadrant, FT and VPT mean ± std, gap, clear, Welch p, winner."""
    lines = [
        "| task | group | objective | FID | quadrant | FT | VPT | gap (VPT-FT) | clear | Welch p | winner | paper's rule |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for q in placed:
        c = q.comparison
        clear = {True: "yes", False: "no", None: "n/a (1 seed)"}[c.clear]
        p = f"{c.welch_p:.3f}" if c.welch_p is not None else "n/a"
        agrees = {True: "agrees", False: "disagrees", None: "tie"}[q.agrees]
        lines.append(
            f"| {c.task} | {c.group} | {c.objective} | {q.fid:.1f} | {q.quadrant} | {c.ft.shown}"
            f" | {c.vpt.shown} | {c.gap:+.1f} | {clear} | {p} | {c.winner} | {q.expected} ({agrees}) |"
        )
    return "\n".join(lines)


def figure3(placed: list[TaskQuadrant], threshold: float, title: str = "") -> Figure:
    """Bars of FID per task, coloured by winner, hatched when the objective is structured, grouped by group."""
    from vptlab.analysis._plot import WINNER_COLORS, new_figure

    ordered = sorted(placed, key=lambda q: (_group_rank(q.comparison.group), task_rank(q.task), q.task))
    fig = new_figure(max(7.0, 0.45 * len(ordered) + 4.5), 4.2)
    ax = fig.add_subplot()
    xs, x, last_group, group_spans = [], 0.0, None, []
    for q in ordered:
        if last_group is not None and q.comparison.group != last_group:
            x += 0.8
        if q.comparison.group != last_group:
            group_spans.append([q.comparison.group, x, x])
        group_spans[-1][2] = x
        xs.append(x)
        last_group = q.comparison.group
        x += 1.0
    for xi, q in zip(xs, ordered):
        ax.bar(
            xi,
            q.fid,
            color=WINNER_COLORS[q.comparison.winner],
            edgecolor="black",
            linewidth=0.6,
            hatch="///" if q.disparity == "high" else None,
        )
    if np.isfinite(threshold):
        ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(xs, [q.task for q in ordered], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("FID to pretraining data")
    for name, start, end in group_spans:
        ax.text(
            (start + end) / 2,
            1.01,
            name,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.legend(handles=_legend_handles(threshold), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _group_rank(group: str) -> int:
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def _legend_handles(threshold: float) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from vptlab.analysis._plot import WINNER_COLORS

    return [
        Patch(facecolor=WINNER_COLORS["VPT"], edgecolor="black", label="VPT wins"),
        Patch(facecolor=WINNER_COLORS["FT"], edgecolor="black", label="FT wins"),
        Patch(facecolor="white", edgecolor="black", label="classification (low task disparity)"),
        Patch(facecolor="white", edgecolor="black", hatch="///", label="structured (high task disparity)"),
        Line2D(
            [0],
            [0],
            color="black",
            linestyle="--",
            label=f"FID threshold {threshold:.1f}"
            if np.isfinite(threshold)
            else "FID threshold undetermined",
        ),
    ]
