"""The PETL methods in a real (tiny) study: options as grid axes, selection, final seeds, and the report's tables
and figures naming them."""

from __future__ import annotations

import pytest

from vptlab_testing import TINY_BACKBONE

SPEC = (
    'name = "petl-tiny"\n'
    + TINY_BACKBONE
    + """
[data]
source = "synthetic"
tasks = ["shapes"]
[training]
epochs = 2
warmup_epochs = 0
seeds = [1, 2]
[regimes]
standard = false
size = [40]
[methods.full]
lr = [0.001]
wd = [0.0]
batch_size = 16
[methods.adapter]
lr = [0.005]
wd = [0.0]
bottleneck = [2, 4]
batch_size = 16
[methods.ssf]
lr = [0.005]
wd = [0.0]
batch_size = 16
[methods.mlp-head]
lr = [0.5]
wd = [0.0]
layers = 2
batch_size = 16
"""
)


@pytest.mark.slow
def test_a_study_selects_over_an_option_axis_and_reports_the_petl_methods(tmp_path):
    from vptlab.report import ReportOptions, build_report
    from vptlab.store import load_results
    from vptlab.study.runner import run_study
    from vptlab.study.spec import parse_spec

    out = tmp_path / "study"
    run_study(parse_spec(SPEC), out, echo=lambda line: None)
    rows = load_results(out)
    assert {r["status"] for r in rows} == {"ok"}
    adapter = [r["config"] for r in rows if r["config"]["method"] == "adapter"]
    tuned = sorted(c["bottleneck"] for c in adapter if c["stage"] == "tune")
    assert tuned == [2, 4]
    finals = [c for c in adapter if c["stage"] == "final"]
    assert len(finals) == 2 and len({c["bottleneck"] for c in finals}) == 1
    mlp = [r for r in rows if r["config"]["method"] == "mlp-head" and r["config"]["stage"] == "final"]
    assert {r["config"]["layers"] for r in mlp} == {2}

    md = build_report(out, None, ReportOptions(attention_images=0)).markdown.read_text()
    for label in ("Adapter", "SSF", "Mlp-k"):
        assert label in md
