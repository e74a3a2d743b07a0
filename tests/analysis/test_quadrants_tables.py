"""Result cells, FT-vs-VPT winners, quadrant assignment and win counts, and the paper's table layout."""

from __future__ import annotations

import math

import pytest

from vptlab.analysis.quadrants import assign_quadrants, figure3, paper_expectation, wins_markdown, wins_table
from vptlab.analysis.results import compare, final_cells, pick_vpt_method
from vptlab.analysis.tables import PUBLISHED_LABEL, accuracy_table, published_numbers, table_groups

GROUPS = {
    "cifar": ("natural", "classification"),
    "dtd": ("natural", "classification"),
    "eurosat": ("specialized", "classification"),
    "resisc45": ("specialized", "classification"),
    "clevr_count": ("structured", "structured"),
    "dmlab": ("structured", "structured"),
}


def row(method, task, acc, seed=42, regime="standard", stage="final", status="ok", source="vtab1k:/data"):
    group, objective = GROUPS.get(task, ("natural", "classification"))
    return {
        "status": status,
        "config": {
            "method": method,
            "task": task,
            "stage": stage,
            "regime": regime,
            "seed": seed,
            "data": source,
        },
        "task": {"name": task, "group": group, "objective": objective, "num_classes": 10},
        "metrics": {"test_top1": acc},
        "params": {"trainable": 10 if method != "full" else 1000, "total": 1000},
        "data": {"source": source, "sizes": {"train": 1000, "val": None, "test": 500}},
        "run_dir": f"/runs/{method}-{task}-{seed}",
    }


def study(table: dict[str, tuple[list[float], list[float]]]) -> list[dict]:
    """task -> (FT accuracies over seeds, VPT accuracies over seeds)."""
    rows = []
    for task, (ft, vpt) in table.items():
        rows += [row("full", task, a, seed=s) for s, a in zip((42, 44, 82), ft)]
        rows += [row("vpt-deep", task, a, seed=s) for s, a in zip((42, 44, 82), vpt)]
    return rows


HAND = {
    "cifar": ([60, 61, 62], [70, 71, 72]),  # VPT, clearly
    "dtd": ([65, 66, 67], [64, 66, 68]),  # equal means: a tie
    "eurosat": ([90, 91, 92], [80, 81, 82]),  # FT, clearly
    "resisc45": ([80, 85, 90], [81, 86, 91]),  # VPT, not clearly
    "clevr_count": ([50, 51, 52], [60, 61, 62]),  # VPT, clearly
    "dmlab": ([40, 41, 42], [38, 39, 40]),  # FT, not clearly (gap 2 = 1 + 1)
}
FIDS = {"cifar": 10.0, "dtd": 20.0, "eurosat": 80.0, "resisc45": 70.0, "clevr_count": 30.0, "dmlab": 90.0}


def test_cells_group_final_ok_runs_over_seeds():
    rows = study(HAND) + [
        row("full", "cifar", 0.0, seed=800, status="diverged"),
        row("full", "cifar", 99, stage="tune"),
    ]
    cells = final_cells(rows)
    ft_cifar = next(c for c in cells if c.method == "full" and c.task == "cifar")
    assert (
        ft_cifar.values == (60, 61, 62)
        and ft_cifar.mean == pytest.approx(61)
        and ft_cifar.std == pytest.approx(1)
    )
    assert ft_cifar.excluded == ("diverged",)
    assert ft_cifar.train_size == 1000 and ft_cifar.is_vtab
    assert pick_vpt_method(cells) == "vpt-deep"


def test_winners_and_clear_gaps():
    comps = {c.task: c for c in compare(final_cells(study(HAND)))}
    assert [comps[t].winner for t in HAND] == ["VPT", "tie", "FT", "VPT", "VPT", "FT"]
    assert [comps[t].clear for t in HAND] == [True, False, True, False, True, False]
    assert comps["cifar"].welch_p < 0.01 and comps["resisc45"].welch_p > 0.5


def test_one_seed_cannot_be_called_clear():
    comps = compare(final_cells([row("full", "cifar", 50), row("vpt-deep", "cifar", 60)]))
    assert comps[0].winner == "VPT" and comps[0].clear is None and comps[0].welch_p is None


def test_quadrants_with_the_median_threshold():
    placed, cut = assign_quadrants(compare(final_cells(study(HAND))), FIDS)
    assert cut == pytest.approx(50.0)  # median of 10, 20, 30, 70, 80, 90
    by = {q.task: q for q in placed}
    assert by["cifar"].quadrant == "low task disparity, low FID" and by["cifar"].expected == "VPT"
    assert by["eurosat"].quadrant == "low task disparity, high FID" and by["eurosat"].expected == "FT"
    assert by["dmlab"].quadrant == "high task disparity, high FID" and by["dmlab"].expected == "VPT"
    assert [by[t].agrees for t in HAND] == [True, None, True, False, True, False]


def test_win_counts_per_quadrant():
    placed, _ = assign_quadrants(compare(final_cells(study(HAND))), FIDS)
    table = wins_table(placed)
    assert table[("low", "low")] == {"VPT": 1, "FT": 0, "tie": 1, "VPT clear": 1, "FT clear": 0}
    assert table[("low", "high")] == {"VPT": 1, "FT": 1, "tie": 0, "VPT clear": 0, "FT clear": 1}
    assert table[("high", "low")] == {"VPT": 1, "FT": 0, "tie": 0, "VPT clear": 1, "FT clear": 0}
    assert table[("high", "high")] == {"VPT": 0, "FT": 1, "tie": 0, "VPT clear": 0, "FT clear": 0}
    text = wins_markdown(placed)
    assert "(paper: FT)" in text and text.count("(paper: VPT)") == 3


def test_explicit_threshold_and_tasks_without_fid():
    comps = compare(final_cells(study(HAND)))
    placed, cut = assign_quadrants(comps, {"cifar": 10.0, "eurosat": 80.0}, threshold=85.0)
    assert cut == 85.0 and {q.task for q in placed} == {"cifar", "eurosat"}
    assert all(q.fid_level == "low" for q in placed)


def test_paper_rule():
    assert paper_expectation("classification", "high") == "FT"
    assert paper_expectation("classification", "low") == "VPT"
    assert paper_expectation("structured", "high") == "VPT"
    assert paper_expectation("structured", "low") == "VPT"


def test_figure3_draws_a_bar_per_task():
    placed, cut = assign_quadrants(compare(final_cells(study(HAND))), FIDS)
    fig = figure3(placed, cut)
    bars = [p for p in fig.axes[0].patches if p.get_height() > 0]
    assert len(bars) == len(HAND)
    assert sum(1 for p in bars if p.get_hatch()) == 2  # the two structured tasks


def test_table_layout_with_wins_and_published_rows():
    cells = final_cells(study(HAND))
    groups = table_groups(cells, "standard")
    assert [g for g, _ in groups] == ["Natural and Specialized", "Structured"]
    text = accuracy_table(cells, "standard", groups[0][1])
    lines = text.splitlines()
    assert lines[0].startswith(
        "| method | cifar | dtd | natural mean (2) | eurosat | resisc45 | specialized mean (2)"
    )
    vpt = next(ln for ln in lines if ln.startswith("| VPT-deep |"))
    assert "68.5 (1)" in vpt  # natural mean (71 + 66) / 2, beats FT on cifar only
    assert "**71.0 ± 1.0**" in vpt
    published = [ln for ln in lines if PUBLISHED_LABEL in ln]  # the seed paper's four methods
    assert [ln.split(",")[0] for ln in published] == ["| FT", "| VPT-deep", "| Mixed", "| FT-then-PT"]
    pub = published_numbers()
    assert (
        f"| {pub['full']['cifar']:.1f} |" in published[0]
        and f"| {pub['vpt-deep']['cifar']:.1f} |" in published[1]
    )
    second = [ln for ln in lines if "published (Jia et al. 2022)" in ln]  # the VPT paper's, labelled apart
    assert [ln.split(",")[0] for ln in second] == ["| FT", "| VPT-deep"]
    assert lines.index(second[0]) > lines.index(published[-1])


def test_no_published_rows_for_synthetic_tasks():
    rows = [row("full", "cifar", 50, source="synthetic"), row("vpt-deep", "cifar", 60, source="synthetic")]
    text = accuracy_table(final_cells(rows), "standard")
    assert PUBLISHED_LABEL not in text


def test_one_shot_table_has_tuned_over_total():
    rows = [row(m, t, 30, regime="kshot:1") for m in ("full", "vpt-deep") for t in ("cifar", "dtd")]
    text = accuracy_table(final_cells(rows), "kshot:1", published=False, tuned_row=True)
    assert "| Tuned/Total, VPT-deep | 1.00% | 1.00% | 1.00% |" in text
    assert accuracy_table(final_cells(rows), "standard") is None


def test_few_tasks_leave_the_threshold_undetermined_not_low_by_construction():
    one = {"eurosat": HAND["eurosat"]}
    placed, cut = assign_quadrants(compare(final_cells(study(one))), {"eurosat": 80.0})
    assert math.isnan(cut) and placed[0].fid_level == "undetermined"
    assert placed[0].expected == "undetermined" and placed[0].agrees is None  # no agreement by construction
    four = {t: HAND[t] for t in ("cifar", "eurosat", "resisc45", "clevr_count")}
    placed, cut = assign_quadrants(compare(final_cells(study(four))), FIDS)
    assert math.isnan(cut)
    by = {q.task: q for q in placed}
    assert by["clevr_count"].expected == "VPT"  # structured: VPT at any FID
    assert sum(wins_table(placed)[k]["VPT"] for k in wins_table(placed)) == 0  # nothing counted in a quadrant


def test_the_rule_is_given_then_median_of_enough_tasks_then_reference_then_undetermined():
    from vptlab.analysis.fid_threshold import MIN_TASKS, fid_threshold

    five = {f"t{i}": float(10 * i) for i in range(MIN_TASKS)}
    assert fid_threshold(five).value == pytest.approx(20.0)
    assert fid_threshold(five, given=7.0).value == 7.0
    calls = []
    ref = lambda: calls.append(1) or {f"r{i}": float(i) for i in range(11)}  # noqa: E731
    assert fid_threshold(five, reference=ref).value == pytest.approx(20.0) and not calls  # not computed
    two = {"a": 1.0, "b": 100.0}
    assert fid_threshold(two, reference=ref).value == pytest.approx(5.0) and calls
    rule = fid_threshold(two)
    assert not rule.determined and "undetermined" in rule.source and "--fid-threshold" in rule.source
    assert rule.level(1e9) == "undetermined"


def test_a_single_seed_shows_no_std():
    rows = [row("full", "cifar", 50), row("vpt-deep", "cifar", 60)]
    cells = final_cells(rows)
    table = accuracy_table(cells, "standard", ["natural"])
    assert "± n/a" in table and "± 0.0" not in table
    comps = compare(cells)
    placed, _ = assign_quadrants(comps, {"cifar": 1.0}, threshold=5.0)
    from vptlab.analysis.quadrants import quadrant_rows_markdown

    text = quadrant_rows_markdown(placed)
    assert "50.0 ± n/a" in text and "± 0.0" not in text
