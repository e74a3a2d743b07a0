"""Loss curves with an overfitting flag (the paper's Figure 5, §5.1) and accuracy against data size (Figure 4).

Overfitting flag, precisely: take a run group's per-epoch test loss ``L`` (mean over seeds at each recorded
epoch), let ``m`` be the first epoch of its minimum and ``R`` the values after it.  The group *overfits* when
``R`` is not empty and ``mean(R) > (1 + tol) * L[m]``: over the remaining epochs the test loss stays, on average,
more than ``tol`` (default 5 %, relative) above its minimum.  A decreasing curve has no values after its minimum;
a flat noisy one stays within the tolerance.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vptlab._io import read_jsonl
from vptlab.analysis._plot import method_color, new_figure
from vptlab.analysis.results import (
    FT,
    GROUP_ORDER,
    Cell,
    mean_std,
    method_label,
    pick_vpt_method,
    regime_size,
)

OVERFIT_TOLERANCE = 0.05


@dataclass(frozen=True)
class Curve:
    """Per-epoch mean train and test loss of one run group (NaN where an epoch has no value)."""

    epochs: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray


def read_curve(run_dir: str | Path) -> dict[int, dict]:
    """epoch -> the metrics row of that epoch, from a run's ``metrics.jsonl`` (empty if absent)."""
    path = Path(run_dir) / "metrics.jsonl"
    return {int(r["epoch"]): r for r in read_jsonl(path) if "epoch" in r} if path.is_file() else {}


def mean_curve(cell: Cell) -> Curve | None:
    """The seeds' curves averaged epoch by epoch (NaNs ignored); None if no run left per-epoch metrics."""
    runs = [read_curve(d) for d in cell.run_dirs]
    epochs = sorted({e for r in runs for e in r})
    if not epochs:
        return None

    def column(name: str) -> np.ndarray:
        table = np.array([[_num(r.get(e, {}).get(name)) for e in epochs] for r in runs])
        with warnings.catch_warnings():  # an epoch no seed evaluated (test) is NaN, not a warning on stderr
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(table, axis=0) if np.isfinite(table).any() else np.full(len(epochs), np.nan)

    return Curve(np.array(epochs), column("train_loss"), column("test_loss"))


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


@dataclass(frozen=True)
class OverfitCheck:
    """The overfitting flag of one curve, with the numbers behind it."""

    flagged: bool
    min_epoch: int | None
    min_loss: float
    mean_after: float
    final_loss: float

    @property
    def rise(self) -> float:
        """Relative rise of the mean test loss after the minimum over the minimum (0 when none)."""
        return (
            (self.mean_after / self.min_loss - 1.0)
            if self.min_loss > 0 and math.isfinite(self.mean_after)
            else 0.0
        )


def overfit_check(
    losses: np.ndarray, epochs: np.ndarray | None = None, tol: float = OVERFIT_TOLERANCE
) -> OverfitCheck:
    """Apply the module's overfitting definition to one test-loss curve (NaN epochs are skipped)."""
    losses = np.asarray(losses, dtype=float)
    epochs = np.arange(len(losses)) if epochs is None else np.asarray(epochs)
    keep = np.isfinite(losses)
    losses, epochs = losses[keep], epochs[keep]
    if len(losses) == 0:
        return OverfitCheck(False, None, math.nan, math.nan, math.nan)
    m = int(np.argmin(losses))
    after = losses[m + 1 :]
    mean_after = float(after.mean()) if len(after) else math.nan
    flagged = bool(len(after) and mean_after > (1.0 + tol) * losses[m])
    return OverfitCheck(flagged, int(epochs[m]), float(losses[m]), mean_after, float(losses[-1]))


def overfits(losses: np.ndarray, tol: float = OVERFIT_TOLERANCE) -> bool:
    """Whether a test-loss curve overfits (see the module docstring for the definition)."""
    return overfit_check(losses, tol=tol).flagged


def overfit_rows(cells: list[Cell], tol: float = OVERFIT_TOLERANCE) -> list[tuple[Cell, OverfitCheck]]:
    """The overfitting check of every run group that recorded a per-epoch test loss."""
    rows = []
    for cell in cells:
        curve = mean_curve(cell)
        if curve is not None and np.isfinite(curve.test_loss).any():
            rows.append((cell, overfit_check(curve.test_loss, curve.epochs, tol)))
    return rows


def overfit_markdown(rows: list[tuple[Cell, OverfitCheck]], tol: float = OVERFIT_TOLERANCE) -> str:
    """Per task and method: minimum test loss and its epoch, mean after it, final, and the flag."""
    lines = [
        f"| task | group | regime | method | min test loss (epoch) | mean after min | final | overfits (> {tol:.0%}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell, check in rows:
        after = (
            f"{check.mean_after:.3f} ({check.rise:+.0%})"
            if math.isfinite(check.mean_after)
            else "– (min at end)"
        )
        lines.append(
            f"| {cell.task} | {cell.group} | {cell.regime} | {method_label(cell.method)} | {check.min_loss:.3f}"
            f" ({check.min_epoch}) | {after} | {check.final_loss:.3f} | {'yes' if check.flagged else 'no'} |"
        )
    return "\n".join(lines)


def loss_figure(cells: list[Cell], regime: str = "standard", ncols: int = 3) -> Figure | None:
    """Figure 5: train (solid) and test (dashed) loss per epoch, one panel per task, one colour per method."""
    cells = [c for c in cells if c.regime == regime]
    tasks = list(dict.fromkeys((c.group, c.task) for c in cells))
    curves = {(c.task, c.method): mean_curve(c) for c in cells}
    tasks = [t for t in tasks if any(curves.get((t[1], c.method)) for c in cells)]
    if not tasks:
        return None
    nrows = math.ceil(len(tasks) / ncols)
    fig = new_figure(3.4 * min(ncols, len(tasks)), 2.6 * nrows)
    for i, (group, task) in enumerate(sorted(tasks, key=lambda t: (_group_rank(t[0]), t[1]))):
        ax = fig.add_subplot(nrows, min(ncols, len(tasks)), i + 1)
        for cell in (c for c in cells if c.task == task):
            _plot_losses(ax, cell, curves.get((task, cell.method)))
        ax.set_title(f"{task} ({group})", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6)
    return fig


def _plot_losses(ax, cell: Cell, curve: Curve | None) -> None:
    if curve is None:
        return
    color = method_color(cell.method)
    label = method_label(cell.method)
    ax.plot(curve.epochs, curve.train_loss, color=color, linestyle="-", linewidth=1, label=f"{label} train")
    if np.isfinite(curve.test_loss).any():
        keep = np.isfinite(curve.test_loss)
        ax.plot(
            curve.epochs[keep],
            curve.test_loss[keep],
            color=color,
            linestyle="--",
            linewidth=1,
            label=f"{label} test",
        )


def _group_rank(group: str) -> int:
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def size_points(cells: list[Cell]) -> dict[tuple[str, str], list[tuple[int, float, float, int]]]:
    """(task, method) -> [(N, mean, std, seeds)] over the study's ``size:N`` regimes, sorted by N."""
    points: dict[tuple[str, str], list] = {}
    for c in cells:
        n = regime_size(c.regime)
        if n is not None:
            points.setdefault((c.task, c.method), []).append((n, c.mean, c.std, c.n))
    return {k: sorted(v) for k, v in points.items()}


def size_markdown(cells: list[Cell]) -> str | None:
    """Accuracy (mean ± std) of FT and VPT per task and train size N: the numbers behind Figure 4."""
    vpt = pick_vpt_method(cells)
    points = size_points([c for c in cells if c.method in (FT, vpt)])
    if not points:
        return None
    sizes = sorted({n for pts in points.values() for n, *_ in pts})
    lines = [
        "| task | method | " + " | ".join(f"N={n}" for n in sizes) + " |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    for (task, method), pts in sorted(points.items()):
        by_n = {n: (m, s, k) for n, m, s, k in pts}
        row = [mean_std(*by_n[n]) if n in by_n else "–" for n in sizes]
        lines.append(f"| {task} | {method_label(method)} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def size_figure(cells: list[Cell]) -> Figure | None:
    """Figure 4: accuracy against log train size, FT solid and VPT dotted, one colour per task, a panel per group."""
    vpt = pick_vpt_method(cells)
    points = size_points([c for c in cells if c.method in (FT, vpt)])
    if not points:
        return None
    group_of = {c.task: c.group for c in cells}
    groups = [g for g in GROUP_ORDER if any(group_of.get(t) == g for t, _ in points)]
    fig = new_figure(3.6 * len(groups), 3.0)
    for i, group in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), i + 1)
        tasks = sorted({t for t, _ in points if group_of.get(t) == group})
        for j, task in enumerate(tasks):
            color = f"C{j % 10}"
            for method, style in ((FT, "-"), (vpt, ":")):
                pts = points.get((task, method))
                if pts:
                    ax.plot(
                        [p[0] for p in pts],
                        [p[1] for p in pts],
                        linestyle=style,
                        marker="o",
                        markersize=3,
                        color=color,
                        label=f"{task} {method_label(method)}",
                    )
        ax.set_xscale("log")
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("train size N (log)", fontsize=8)
        ax.set_ylabel("test top-1 (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return fig


def gap_trend(cells: list[Cell]) -> list[tuple[str, float, float, int, int]]:
    """Per task with at least two sizes: (task, VPT-FT gap at the smallest N, at the largest N, N_min, N_max)."""
    vpt = pick_vpt_method(cells)
    points = size_points([c for c in cells if c.method in (FT, vpt)])
    out = []
    for task in sorted({t for t, _ in points}):
        ft = {n: m for n, m, *_ in points.get((task, FT), [])}
        vp = {n: m for n, m, *_ in points.get((task, vpt), [])}
        shared = sorted(set(ft) & set(vp))
        if len(shared) >= 2:
            lo, hi = shared[0], shared[-1]
            out.append((task, vp[lo] - ft[lo], vp[hi] - ft[hi], lo, hi))
    return out
