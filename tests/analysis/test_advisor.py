"""The advisor: the paper's rule, the study model (fit, refusal, extrapolation) and how the verdict is decided."""

from __future__ import annotations

import pytest

from vptlab.analysis.advisor import LARGE_DATA, Advice, RuleVerdict, decide, paper_rule
from vptlab.analysis.winmodel import Sample, fit_study_model, study_samples
from vptlab.errors import UserError


def test_rule_follows_the_papers_quadrants():
    assert paper_rule("structured", 200.0, 50.0, 1000).recommend == "VPT"
    assert paper_rule("classification", 20.0, 50.0, 1000).recommend == "VPT"
    assert paper_rule("classification", 80.0, 50.0, 1000).recommend == "FT"
    assert paper_rule("classification", 50.0, 50.0, 1000).recommend == "VPT"  # at the threshold counts as low


def test_rule_data_size_pushes_toward_ft():
    big = paper_rule("classification", 20.0, 50.0, LARGE_DATA)
    assert big.recommend == "FT" and big.confidence == "size overrides"
    assert paper_rule("structured", 20.0, 50.0, 5000).confidence == "weaker (more data)"


def test_rule_without_threshold_decides_structured_only():
    assert paper_rule("structured", 20.0, None, 1000).recommend == "VPT"
    assert paper_rule("classification", 20.0, None, 1000).recommend == "undetermined"
    with pytest.raises(UserError, match="--objective"):
        paper_rule("counting", 1.0, 1.0, 10)


def _samples() -> list[Sample]:
    """VPT wins at low FID or structured; FT wins for classification at high FID."""
    out = []
    for i, fid in enumerate([10, 20, 30, 40, 60, 70, 80, 90]):
        out.append(Sample(f"c{i}", "standard", fid, "classification", 1000, fid < 50))
        out.append(Sample(f"s{i}", "standard", fid + 5, "structured", 1000, True))
    return out


def test_model_learns_the_direction_and_reports_itself():
    model, note = fit_study_model(_samples())
    assert note == "" and model.n_tasks == 16
    assert model.used == ("FID", "structured objective")
    assert model.constant == {"log10 train size": 3.0}
    coefs = dict(model.coefficients())
    assert coefs["FID (per sd)"] < 0 and coefs["structured objective (per sd)"] > 0
    assert model.predict(15, "classification", 1000) > 0.5 > model.predict(85, "classification", 1000)


def test_model_refuses_too_little_or_one_sided_evidence():
    assert fit_study_model(_samples()[:3]) == (None, "only 3 FT-vs-VPT comparisons with an FID (need 4)")
    one_sided = [Sample(f"t{i}", "standard", 10.0 * i, "structured", 1000, True) for i in range(6)]
    model, note = fit_study_model(one_sided)
    assert model is None and "VPT won all 6" in note


def test_model_flags_extrapolation():
    model, _ = fit_study_model(_samples())
    assert model.extrapolations(50, "classification", 1500) == []
    out = model.extrapolations(500, "classification", 50_000)
    assert any("FID 500.0 outside" in e for e in out) and any("50000 training images" in e for e in out)
    only_cls, _ = fit_study_model([s for s in _samples() if s.objective == "classification"])
    assert any(
        "objective structured not in the study" in e for e in only_cls.extrapolations(30, "structured", 1000)
    )


def _advice(**kw) -> Advice:
    rule = kw.pop("rule", RuleVerdict("VPT", ("r",), "paper's regime"))
    return Advice("d", "classification", 1000, 30.0, "backbone", "up", 50.0, "given", rule, **kw)


def test_verdict_uses_the_model_only_inside_its_range():
    model, _ = fit_study_model(_samples())
    inside = decide(_advice(model=model, model_p=0.2))
    assert inside.recommendation == "FT" and "fitted model" in inside.basis
    outside = decide(_advice(model=model, model_p=0.2, extrapolations=["FID far"]))
    assert outside.recommendation == "VPT" and "paper's rule" in outside.basis
    text = outside.to_markdown()
    assert "NOT used for the verdict" in text and "16 tasks" in text
    unsure = decide(_advice(rule=RuleVerdict("undetermined", ("x",), "no FID threshold")))
    assert unsure.recommendation == "undetermined"


def test_samples_from_results_include_every_regime():
    def row(method, task, acc, regime, objective):
        return {
            "status": "ok",
            "config": {"method": method, "task": task, "stage": "final", "regime": regime, "seed": 1},
            "task": {"group": "natural", "objective": objective},
            "metrics": {"test_top1": acc},
            "data": {"sizes": {"train": 500 if regime != "standard" else 1000}},
            "run_dir": "x",
        }

    rows = [
        row("full", "a", 50, "standard", "classification"),
        row("vpt-deep", "a", 60, "standard", "classification"),
    ]
    rows += [
        row("full", "a", 70, "size:400", "classification"),
        row("vpt-deep", "a", 65, "size:400", "classification"),
    ]
    rows += [
        row("full", "b", 50, "standard", "structured"),
        row("vpt-deep", "b", 60, "standard", "structured"),
    ]
    samples = study_samples(rows, {"a": 12.0})
    assert [(s.task, s.regime, s.train_size, s.vpt_wins) for s in samples] == [
        ("a", "standard", 1000, True),
        ("a", "size:400", 500, False),
    ]
