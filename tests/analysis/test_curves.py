"""The overfitting flag on hand-made curves, mean curves from metrics.jsonl, data-size points and figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vptlab.analysis.curves import (
    gap_trend,
    loss_figure,
    mean_curve,
    overfit_check,
    overfits,
    size_figure,
    size_markdown,
    size_points,
)
from vptlab.analysis.results import Cell

EPOCHS = np.arange(50)


def test_rising_after_the_minimum_is_flagged():
    curve = np.concatenate([np.linspace(2.0, 1.0, 20), np.linspace(1.0, 1.6, 30)])
    check = overfit_check(curve)
    assert check.flagged and check.min_epoch == 19 and check.min_loss == pytest.approx(1.0)
    assert check.rise > 0.05


def test_decreasing_and_flat_curves_are_not_flagged():
    assert not overfits(np.linspace(2.0, 0.5, 50))  # minimum at the end: nothing after it
    assert not overfits(np.full(50, 1.3))
    rng = np.random.default_rng(0)
    assert not overfits(1.0 + 0.01 * rng.standard_normal(50))  # noise well inside the 5 % tolerance


def test_tolerance_and_missing_epochs():
    curve = np.concatenate([np.linspace(2.0, 1.0, 10), np.full(10, 1.04)])
    assert not overfits(curve, tol=0.05) and overfits(curve, tol=0.03)
    with_gaps = np.array([2.0, np.nan, 1.0, np.nan, 1.5, 1.6])
    check = overfit_check(with_gaps, np.arange(6))
    assert check.flagged and check.min_epoch == 2
    assert not overfit_check(np.full(4, np.nan)).flagged


def _run(tmp_path, name, test_losses):
    """A run folder whose metrics.jsonl has the given test losses (None: not evaluated) and train = 1/e."""
    run = tmp_path / name
    run.mkdir()
    lines = []
    for e, t in enumerate(test_losses):
        r = {"epoch": e, "train_loss": 1.0 / (e + 1), "train_top1": 50.0}
        if t is not None:
            r["test_loss"] = t
        lines.append(json.dumps(r))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return str(run)


def _cell(method, task, run_dirs, regime="standard", values=(50.0,), group="natural"):
    return Cell(
        method,
        task,
        regime,
        group,
        "classification",
        tuple(values),
        tuple(range(len(values))),
        tuple(run_dirs),
    )


def test_mean_curve_averages_seeds_epoch_by_epoch(tmp_path):
    a = _run(tmp_path, "a", [2.0, 1.0, 1.5])
    b = _run(tmp_path, "b", [4.0, None, 2.5])
    curve = mean_curve(_cell("full", "t", [a, b], values=(1.0, 2.0)))
    np.testing.assert_allclose(curve.test_loss, [3.0, 1.0, 2.0])
    np.testing.assert_allclose(curve.train_loss, [1.0, 0.5, 1 / 3])
    assert mean_curve(_cell("full", "t", [str(tmp_path / "nothing")])) is None


def test_loss_figure_has_a_panel_per_task(tmp_path):
    cells = [
        _cell(m, t, [_run(tmp_path, f"{m}-{t}", [2.0, 1.5, 1.7])])
        for m in ("full", "vpt-deep")
        for t in ("x", "y")
    ]
    fig = loss_figure(cells)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4  # train + test per method


def test_size_points_table_trend_and_figure():
    cells = []
    for n, ft, vpt in ((400, 40.0, 50.0), (2000, 60.0, 62.0), (10000, 80.0, 75.0)):
        cells += [_cell("full", "x", [], f"size:{n}", (ft,)), _cell("vpt-deep", "x", [], f"size:{n}", (vpt,))]
    cells.append(_cell("full", "x", [], "standard", (1.0,)))
    pts = size_points(cells)
    assert [p[0] for p in pts[("x", "full")]] == [400, 2000, 10000]
    assert gap_trend(cells) == [("x", 10.0, -5.0, 400, 10000)]
    assert "| x | FT | 40.0 ± n/a | 60.0 ± n/a | 80.0 ± n/a |" in size_markdown(cells)  # one seed: no std
    assert size_figure(cells).axes[0].get_xscale() == "log"
    assert size_markdown([c for c in cells if c.regime == "standard"]) is None
