"""Leave-one-task-out evaluation of the advisor's signals, on comparisons whose outcome is known by hand."""

from __future__ import annotations

import json
import math

import pytest

from vptlab.analysis.signals import Row, evaluate, load_rows, save_rows, study_rows
from vptlab.errors import UserError

# task: (FID, winner, clear, quick gap at epoch 1).  The rule's threshold is the median FID of the other tasks.
KNOWN = {
    "t0": (10.0, "VPT", True, 3.0),  # threshold 35 -> VPT: right;  quick right
    "t1": (20.0, "VPT", True, -1.0),  # threshold 35 -> VPT: right;  quick wrong
    "t2": (30.0, "VPT", False, 2.0),  # gap within the seed spread: not scored
    "t3": (40.0, "FT", True, -2.0),  # threshold 25 -> FT: right;   quick right
    "t4": (50.0, "FT", True, -4.0),  # threshold 25 -> FT: right;   quick right
    "t5": (60.0, "FT", True, 1.0),  # threshold 25 -> FT: right;   quick wrong
    "t6": (15.0, "FT", True, 5.0),  # threshold 35 -> VPT: wrong;  quick wrong
}


def _rows() -> list[Row]:
    return [
        Row(t, "standard", "classification", 1000, w, c, 1.0 if w == "VPT" else -1.0, fid, quick={1: q})
        for t, (fid, w, c, q) in KNOWN.items()
    ]


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_loto_accuracy_ci_and_baseline_by_hand():
    ev = evaluate(_rows(), "hand")
    by = {r.signal.name: r for r in ev.results}
    rule = by["rule"].overall
    assert (rule.k, rule.n) == (5, 6)
    low, high = _wilson(5, 6)
    assert rule.low == pytest.approx(low, abs=1e-9) and rule.high == pytest.approx(high, abs=1e-9)
    quick = by["quick@1"].overall
    assert (quick.k, quick.n) == (3, 6)
    # baseline: 4 of the 6 clear comparisons went to FT
    assert ev.baseline_winner == "FT" and (ev.baseline.k, ev.baseline.n) == (4, 6)
    assert ev.beats_baseline(by["rule"]) and not ev.beats_baseline(by["quick@1"])
    assert ev.best().signal.name in {r.signal.name for r in ev.results if r.overall.rate == 5 / 6}
    text = ev.to_markdown()
    assert "5/6 = 83%" in text and "always FT" in text and "Wilson" in text


def test_held_out_task_never_informs_its_own_prediction():
    # every other task says VPT for classification at any FID; t9 (the only FT win) must be predicted VPT
    rows = [Row(f"v{i}", "standard", "classification", 1000, "VPT", True, 2.0, 10.0 * i) for i in range(6)]
    rows.append(Row("t9", "standard", "classification", 1000, "FT", True, -2.0, 25.0))
    rows.append(Row("t9", "kshot:1", "classification", 10, "FT", True, -2.0, 25.0))
    ev = evaluate(rows, "loto")
    model = next(r for r in ev.results if r.signal.name == "winmodel")
    held = [(r.task, w) for r, w, _ in model.predictions if r.task == "t9"]
    assert held == [("t9", "VPT"), ("t9", "VPT")]
    assert model.by_regime["kshot:1"].n == 1 and model.by_regime["kshot:1"].k == 0


def test_no_signal_better_than_majority_says_so():
    rows = [
        Row(f"t{i}", "standard", "classification", 1000, "FT" if i % 3 else "VPT", True, 1.0, 10.0 * i)
        for i in range(6)
    ]
    for r in rows:
        r.quick = {1: 1.0}  # always says VPT: right 2 of 6
    ev = evaluate(rows, "flat")
    assert ev.baseline.k == 4
    quick = next(r for r in ev.results if r.signal.name == "quick@1")
    assert quick.overall.k == 2 and not ev.beats_baseline(quick)


def test_calibration_table_counts_probabilities():
    ev = evaluate(_rows(), "hand")
    model = next(r for r in ev.results if r.signal.name == "winmodel")
    table = model.calibration
    assert sum(n for _, n, _, _ in table) == 6
    for _, _n, mean_p, observed in table:
        assert 0 <= mean_p <= 1 and 0 <= observed <= 1
    assert 0 <= model.brier <= 1 and "Brier" in ev.to_markdown()


def test_rows_round_trip_and_bad_file(tmp_path):
    rows = _rows()
    rows[0].scores = {"logme": -0.5, "h_score": 1.0, "knn": 50.0, "linear_probe": 60.0}
    rows[0].seconds = {"features": 0.5, "logme": 0.01}
    rows[0].quick_seconds = {1: 3.0}
    save_rows(rows, tmp_path / "c.csv")
    back = load_rows(tmp_path / "c.csv")
    assert [(r.task, r.winner, r.clear, r.fid, r.quick) for r in back] == [
        (r.task, r.winner, r.clear, r.fid, r.quick) for r in rows
    ]
    assert back[0].scores["logme"] == -0.5 and back[0].quick_seconds == {1: 3.0}
    (tmp_path / "bad.csv").write_text("task,regime\nx,y\n")
    with pytest.raises(UserError, match="missing column"):
        load_rows(tmp_path / "bad.csv")
    text = (tmp_path / "c.csv").read_text().splitlines()
    text[2] = text[2].replace("VPT", "maybe", 1)
    (tmp_path / "bad2.csv").write_text("\n".join(text))
    with pytest.raises(UserError, match="bad2.csv:3"):
        load_rows(tmp_path / "bad2.csv")


def _run(root, name, method, task, stage, acc, seed, regime="standard", curve=None, objective="structured"):
    d = root / name
    d.mkdir()
    result = {
        "run_id": name,
        "status": "ok",
        "config": {
            "method": method,
            "task": task,
            "stage": stage,
            "regime": regime,
            "seed": seed,
            "epochs": 5,
        },
        "task": {"group": "structured", "objective": objective},
        "metrics": {"test_top1": acc, "val_top1": acc},
        "data": {"sizes": {"train": 800}},
        "seconds": 10.0,
    }
    (d / "result.json").write_text(json.dumps(result))
    if curve:
        lines = [{"epoch": e, "val_top1": v, "seconds": 2.0 * (e + 1)} for e, v in enumerate(curve)]
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_study_rows_read_winners_clear_gaps_and_quick_budgets(tmp_path):
    # task a: VPT 60,61,62 vs FT 50,51,52 (clear); task b: FT 55,58,52 vs VPT 54,56,54 (not clear)
    for i, (ft, vpt) in enumerate(zip((50, 51, 52), (60, 61, 62))):
        _run(tmp_path, f"fa{i}", "full", "a", "final", ft, i)
        _run(tmp_path, f"va{i}", "vpt-deep", "a", "final", vpt, i)
    for i, (ft, vpt) in enumerate(zip((55, 58, 52), (54, 56, 54))):
        _run(tmp_path, f"fb{i}", "full", "b", "final", ft, i)
        _run(tmp_path, f"vb{i}", "vpt-deep", "b", "final", vpt, i)
    # tune grids of task a: FT best val at epoch 1 = 30, VPT's = 25 (at epoch 2: 40 vs 45)
    _run(tmp_path, "ta1", "full", "a", "tune", 0, 42, curve=[30, 40, 50, 55, 60])
    _run(tmp_path, "ta2", "full", "a", "tune", 0, 42, curve=[20, 35, 45, 50, 52])
    _run(tmp_path, "tv1", "vpt-deep", "a", "tune", 0, 42, curve=[25, 45, 50, 50, 61])
    _run(tmp_path, "tv2", "vpt-deep", "a", "tune", 0, 42, curve=[10, 20, 30, 40, 50])
    rows = {r.task: r for r in study_rows(tmp_path, features=False)}
    a, b = rows["a"], rows["b"]
    assert (a.winner, a.clear, a.gap, a.train_size) == ("VPT", True, 10.0, 800)
    assert (b.winner, b.clear) == ("FT", False)
    assert a.quick == {1: -5.0, 2: 5.0, 3: 0.0}  # budgets 20/40/60% of 5 epochs
    assert a.quick_seconds[1] == 8.0  # four runs, 2 s each to the end of epoch 1
    assert b.quick == {}
    with pytest.raises(UserError, match="no such folder"):
        study_rows(tmp_path / "missing", features=False)


def test_cli_evaluate_prints_every_signal_with_ci_and_cost(tmp_path, capsys):
    from vptlab.cli import main

    rows = _rows()
    for r in rows:
        r.seconds = {"fid": 1.5}
        r.quick_seconds = {1: 4.0}
    save_rows(rows, tmp_path / "c.csv")
    assert main(["advise", "--evaluate", str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert "| paper's rule (FID threshold x objective) (beats baseline) | 5/6 = 83% [44, 97] |" in out
    assert "| quick head-to-head, 1 epoch(s) | 3/6 = 50%" in out and "| 4.00 |" in out
    assert "majority baseline: always FT | 4/6 = 67%" in out
    assert main(["advise", "--evaluate", str(tmp_path / "c.csv"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rule = next(s for s in data["signals"] if s["name"] == "rule")
    assert rule["accuracy"]["k"] == 5 and rule["accuracy"]["ci_method"] == "wilson"
    assert main(["advise", "--evaluate", str(tmp_path / "nothing")]) == 2
    assert main(["advise"]) == 2
    assert "give DATA and --objective" in capsys.readouterr().err


def test_prior_ships_with_the_package():
    from vptlab.analysis.signals import prior_rows

    rows = prior_rows()
    assert len({r.task for r in rows}) == 11 and all(r.scores for r in rows)
    ev = evaluate(rows, "prior")
    assert ev.scored > 0 and all(r.overall.n <= ev.scored for r in ev.results)


def test_fitted_on_another_study_tests_every_row():
    other = [Row(f"o{i}", "standard", "classification", 1000, w, True, 1.0, f) for i, (f, w) in
             enumerate([(10.0, "VPT"), (20.0, "VPT"), (50.0, "FT"), (60.0, "FT")])]  # fmt: skip
    ev = evaluate(_rows(), "hand", fit_rows=other)  # threshold: the other study's median FID, 35
    rule = next(r for r in ev.results if r.signal.name == "rule")
    # t0 10 VPT ok, t1 20 VPT ok, t3 40 FT ok, t4 ok, t5 ok, t6 15 -> VPT wrong (t2 not clear)
    assert (rule.overall.k, rule.overall.n) == (5, 6)
    assert "fitted on other and tested" in ev.to_markdown()


def test_bootstrap_interval_of_a_probability():
    from vptlab.analysis.signals import bootstrap_p, signals_for

    rows = _rows()
    sigs = {s.name: s for s in signals_for(rows)}
    query = Row("q", "query", "classification", 1000, "tie", False, fid=12.0)
    low, high = bootstrap_p(sigs["winmodel"], rows, query, reps=50)
    point = sigs["winmodel"].fit([r for r in rows if r.winner != "tie"])(query)[1]
    assert 0.0 <= low <= high <= 1.0 and low <= point + 0.2 and point > 0.5  # low FID: VPT side
    assert bootstrap_p(sigs["rule"], rows, query) is None  # no probability to bound


def test_every_method_the_study_ran_is_ranked():
    from vptlab.analysis.advisor import rank_methods

    def row(method, task, acc, seed):
        return {
            "status": "ok",
            "run_id": f"{method}-{task}-{seed}",
            "config": {"method": method, "task": task, "stage": "final", "regime": "standard", "seed": seed},
            "task": {"group": "natural", "objective": "classification"},
            "metrics": {"test_top1": acc},
            "run_dir": "x",
        }

    accs = {"a": {"full": 50, "vpt-deep": 60, "ssf": 55}, "b": {"full": 70, "vpt-deep": 65, "ssf": 68}}
    rows = [row(m, t, a + s, s) for t, ms in accs.items() for m, a in ms.items() for s in (0, 1)]
    ranked = rank_methods(rows, "classification")
    # mean ranks 2, 2, 2 -> ties broken by mean top-1: vpt-deep 63, ssf 62, full 60.5
    assert [r["method"] for r in ranked] == ["vpt-deep", "ssf", "full"]
    assert [r["mean_rank"] for r in ranked] == [2.0, 2.0, 2.0] and ranked[0]["tasks"] == 2
    assert {r["method"]: r["wins"] for r in ranked} == {"ssf": 0, "vpt-deep": 1, "full": 1}
    assert rank_methods(rows, "structured") == []


def test_report_section_shows_the_saved_evaluation(tmp_path):
    from types import SimpleNamespace

    from vptlab.analysis.signals import CACHE
    from vptlab.report.render import to_markdown
    from vptlab.report.sections import advisor_section

    study = SimpleNamespace(root=tmp_path)
    assert "vptlab advise --evaluate" in to_markdown("r", [advisor_section(study)])
    save_rows(_rows(), tmp_path / CACHE.replace(".csv", "-backbone-x.csv"))
    text = to_markdown("r", [advisor_section(study)])
    assert "5/6 = 83%" in text and "majority baseline: always FT" in text
