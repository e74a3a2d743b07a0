"""The end-of-study summary: per method/task the selected config and final test top-1 over seeds.

A diverged or failed method/task is shown as such, never as an accuracy.  The compute section compares the tune
stage's image-steps with what the full grid would have cost (the saving of early stopping).
"""

from __future__ import annotations

import statistics
from typing import Any

from vptlab.analysis.results import mean_std
from vptlab.study.estimate import Cost, fmt_count, run_cost
from vptlab.study.overview import plan_groups
from vptlab.study.plan import run_id_of
from vptlab.study.select import tie_axes
from vptlab.study.spec import StudySpec
from vptlab.study.state import GroupState, StudyView


def summarize(spec: StudySpec, states: list[GroupState], view: StudyView,
              skipped: dict[tuple[str, str], str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Plain-data summary (what ``summary.json`` holds)."""
    skipped = skipped or {}
    groups = [_group_summary(s, view, skipped.get((s.group.task, s.group.regime))) for s in states]
    return {"study": spec.name, "groups": groups, "compute": _compute(spec, states, view)}


def _group_summary(state: GroupState, view: StudyView, skip_reason: str | None) -> dict[str, Any]:
    g = state.group
    out: dict[str, Any] = {"method": g.method, "task": g.task, "regime": g.regime, "phase": state.phase}
    if skip_reason:
        out.update(phase="skipped", note=skip_reason)
        return out
    if state.note:
        out["note"] = state.note
    if state.selection is not None and state.selection.result is not None:
        cfg = state.selection.config
        out["selected"] = {k: cfg.get(k) for k in tie_axes(g.method) if cfg.get(k) is not None}
        out["selected_val_top1"] = (state.selection.result.get("metrics") or {}).get(
            "val_top1"
        )  # None: untuned
    finals = [view.result_of(run_id_of(c)) for c in state.finals]
    finals = [r for r in finals if r is not None]
    tests = [r["metrics"]["test_top1"] for r in finals if r["status"] == "ok" and "test_top1" in r["metrics"]]
    out["finals"] = {
        "ok": len(tests),
        "diverged": sum(r["status"] == "diverged" for r in finals),
        "failed": sum(r["status"] == "failed" for r in finals),
        "seeds": len(state.finals),
    }
    if tests:
        out["test_top1_mean"] = statistics.fmean(tests)
        out["test_top1_std"] = statistics.stdev(tests) if len(tests) > 1 else 0.0
    return out


def _compute(spec: StudySpec, states: list[GroupState], view: StudyView) -> dict[str, Any]:
    """Image-steps the tune stage used vs the full grid to the end (the saving of early stopping)."""
    used, finals = Cost(), Cost()
    full_grid = sum((p.tune_cost_full_grid for p in plan_groups(spec, view)), Cost())
    for state in states:
        for cfg in state.tune:
            result = view.result_of(run_id_of(cfg))
            if result is not None:
                used += run_cost(cfg, epochs=int(result.get("epochs_done") or 0))
        for cfg in state.finals:
            result = view.result_of(run_id_of(cfg))
            if result is not None:
                finals += run_cost(cfg, epochs=int(result.get("epochs_done") or 0))
    return {
        "early_stopping": spec.tune.early_stopping,
        "tune_image_steps": used.train,
        "tune_eval_images": used.eval,
        "tune_full_grid_image_steps": full_grid.train,
        "tune_full_grid_eval_images": full_grid.eval,
        "tune_fraction_of_full_grid": (used.total / full_grid.total) if full_grid.total else None,
        "final_image_steps": finals.train,
        "final_eval_images": finals.eval,
    }


def summary_table(summary: dict[str, Any]) -> str:
    """Method x task tables of final test top-1 (mean ± std over seeds), one per regime."""
    lines: list[str] = []
    regimes = list(dict.fromkeys(g["regime"] for g in summary["groups"]))
    for regime in regimes:
        groups = [g for g in summary["groups"] if g["regime"] == regime]
        tasks = list(dict.fromkeys(g["task"] for g in groups))
        methods = list(dict.fromkeys(g["method"] for g in groups))
        cells = {(g["method"], g["task"]): _cell(g) for g in groups}
        width = max([len(m) for m in methods] + [6])
        col = max([len(t) for t in tasks] + [len(c) for c in cells.values()] + [8])
        lines.append(f"final test top-1 (%), mean ± std over seeds, regime {regime}")
        lines.append(" " * width + "  " + "  ".join(t.rjust(col) for t in tasks))
        for m in methods:
            lines.append(m.ljust(width) + "  " + "  ".join(cells[(m, t)].rjust(col) for t in tasks))
        lines.append("")
    lines.append(_compute_line(summary["compute"]))
    return "\n".join(lines)


def _cell(g: dict[str, Any]) -> str:
    if "test_top1_mean" in g:
        partial = (
            ""
            if g["finals"]["ok"] == g["finals"]["seeds"]
            else f" ({g['finals']['ok']}/{g['finals']['seeds']})"
        )
        return f"{mean_std(g['test_top1_mean'], g['test_top1_std'], g['finals']['ok'])}{partial}"
    if g["phase"] in ("diverged", "failed", "skipped", "blocked"):
        return g["phase"]
    if g.get("finals", {}).get("diverged"):
        return "diverged"
    return "-" if g["phase"] == "done" else g["phase"]


def _compute_line(c: dict[str, Any]) -> str:
    text = (f"compute: tune {fmt_count(c['tune_image_steps'])} image-steps + {fmt_count(c['tune_eval_images'])} "
            f"eval images; final {fmt_count(c['final_image_steps'])} + {fmt_count(c['final_eval_images'])}")  # fmt: skip
    if c["early_stopping"] != "none" and c["tune_fraction_of_full_grid"] is not None:
        text += (f"; early stopping used {100 * c['tune_fraction_of_full_grid']:.0f}% of the full grid's tune "
                 f"compute ({fmt_count(c['tune_full_grid_image_steps'])} image-steps)")  # fmt: skip
    return text
