"""Selection follows the protocol on hand-made result rows: best last-epoch val, ties to the smaller lr."""

from __future__ import annotations

import math

from vptlab.study.select import select_best


def row(lr, wd, val, status="ok", run_id=None, **cfg):
    return {
        "run_id": run_id or f"{lr}-{wd}-{cfg}",
        "status": status,
        "config": {"lr": lr, "wd": wd, **cfg},
        "metrics": {"val_top1": val, "test_top1": 100.0 - val},  # test never matters
    }


def test_best_last_epoch_val_wins_and_test_is_ignored():
    sel = select_best([row(0.1, 0.0, 70.0), row(1.0, 0.0, 80.0), row(10.0, 0.0, 75.0)])
    assert sel.status == "selected" and sel.config["lr"] == 1.0 and sel.candidates == 3


def test_ties_go_to_the_smaller_lr_then_the_smaller_wd():
    sel = select_best([row(1.0, 0.0, 80.0), row(0.5, 0.01, 80.0), row(0.5, 0.001, 80.0), row(5.0, 0.0, 80.0)])
    assert (sel.config["lr"], sel.config["wd"]) == (0.5, 0.001)


def test_ties_then_go_to_the_shorter_prompt():
    rows = [row(1.0, 0.0, 80.0, method="vpt-deep", prompt_length=n, run_id=f"r{100 - n}") for n in (10, 50)]
    sel = select_best(rows[::-1])
    assert sel.config["prompt_length"] == 10


def test_selection_does_not_depend_on_row_order():
    rows = [row(lr, wd, 60.0 + (lr == 2.5) * 5) for lr in (5.0, 2.5, 1.0) for wd in (0.01, 0.0)]
    picks = {select_best(rows[i:] + rows[:i]).result["run_id"] for i in range(len(rows))}
    assert picks == {"2.5-0.0-{}"}


def test_diverged_failed_pruned_and_partial_runs_are_never_selected():
    rows = [
        row(50.0, 0.0, 99.0, status="diverged"),
        row(25.0, 0.0, 98.0, status="failed"),
        row(10.0, 0.0, 97.0, status="pruned"),
        row(5.0, 0.0, 96.0, status="partial"),
        row(0.1, 0.0, 40.0),
    ]
    assert select_best(rows).config["lr"] == 0.1


def test_a_non_finite_val_is_not_selectable():
    assert select_best([row(1.0, 0.0, math.nan), row(0.1, 0.0, 10.0)]).config["lr"] == 0.1


def test_all_diverged_is_reported_as_diverged_with_no_selection():
    sel = select_best([row(50.0, 0.0, 10.0, status="diverged"), row(25.0, 0.0, 10.0, status="diverged")])
    assert sel.status == "diverged" and sel.result is None and dict(sel.counts) == {"diverged": 2}
    sel = select_best([row(50.0, 0.0, 10.0, status="diverged"), row(25.0, 0.0, 10.0, status="pruned")])
    assert sel.status == "diverged"


def test_nothing_ok_with_failures_is_failed():
    sel = select_best([row(50.0, 0.0, 10.0, status="diverged"), row(1.0, 0.0, 10.0, status="failed")])
    assert sel.status == "failed"
    assert select_best([]).status == "failed"
