"""The report's cost section: what each method costs (``result.json``'s ``cost``, :mod:`vptlab.train.cost`)
and the field's standard figure, accuracy against trainable parameters on a log axis."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from matplotlib.ticker import NullFormatter

from vptlab.analysis._plot import method_color, new_figure
from vptlab.analysis.results import method_label
from vptlab.report.render import Section

COLUMNS = (
    ("trainable_params", "trainable params", "{:,.0f}"),
    ("trainable_params_without_head", "without head", "{:,.0f}"),
    ("tuned_bytes", "tuned KiB", None),
    ("flops_per_image", "GFLOPs/image", None),
    ("train_images_per_s", "train img/s", "{:,.1f}"),
    ("inference_images_per_s", "infer img/s", "{:,.1f}"),
    ("peak_memory_bytes", "peak MiB", None),
    ("ppt", "PPT", "{:.2f}"),
)


def method_costs(results: list[dict]) -> dict[str, dict[str, Any]]:
    """Per method, over its finished final runs of the standard regime: the mean of each cost field, the mean
    test top-1 over tasks (each task's mean over seeds first), and the peak memory kind and device."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if _counts(r):
            runs[r["config"]["method"]].append(r)
    out: dict[str, dict[str, Any]] = {}
    for method, members in runs.items():
        row: dict[str, Any] = {"runs": len(members)}
        for key, _, _ in COLUMNS:
            values = [m["cost"][key] for m in members if isinstance(m["cost"].get(key), (int, float))]
            row[key] = statistics.fmean(values) if values else None
        by_task: dict[str, list[float]] = defaultdict(list)
        for m in members:
            if "test_top1" in (m.get("metrics") or {}):
                by_task[m["config"]["task"]].append(m["metrics"]["test_top1"])
        row["tasks"] = {t: statistics.fmean(v) for t, v in by_task.items()}
        row["accuracy"] = statistics.fmean(row["tasks"].values()) if by_task else None
        row["memory_kind"] = sorted({m["cost"].get("peak_memory_kind") for m in members} - {None})
        row["device"] = sorted({m["cost"].get("device") for m in members} - {None})
        out[method] = row
    return out


def _counts(r: dict) -> bool:
    cfg, cost = r.get("config") or {}, r.get("cost")
    final = cfg.get("stage") == "final" and cfg.get("regime", "standard") == "standard"
    return r.get("status") == "ok" and final and isinstance(cost, dict) and "trainable_params" in cost


def _cell(key: str, value: float | None, fmt: str | None) -> str:
    if value is None:
        return "n/a"
    if key == "tuned_bytes":
        return f"{value / 1024:,.1f}"
    if key == "flops_per_image":
        return f"{value / 1e9:.3g}"
    if key == "peak_memory_bytes":
        return f"{value / 2**20:,.0f}"
    return fmt.format(value)


def cost_table(costs: dict[str, dict[str, Any]]) -> str:
    head = ["method", "test top-1 (%)", *[title for _, title, _ in COLUMNS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, row in sorted(costs.items(), key=lambda kv: kv[1]["trainable_params"] or 0):
        acc = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.2f}"
        cells = [_cell(k, row[k], fmt) for k, _, fmt in COLUMNS]
        lines.append("| " + " | ".join([method_label(method), acc, *cells]) + " |")
    return "\n".join(lines)


def accuracy_params_figure(costs: dict[str, dict[str, Any]]):
    """Mean test top-1 against trainable parameters (log axis), one point per method, its tasks faint."""
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for method, row in costs.items():
        if row["accuracy"] is None or not row["trainable_params"]:
            continue
        colour = method_color(method)
        x = row["trainable_params"]
        ax.scatter([x] * len(row["tasks"]), list(row["tasks"].values()), color=colour, alpha=0.25, s=14)
        ax.scatter([x], [row["accuracy"]], color=colour, s=60, edgecolor="black", zorder=3)
        ax.annotate(
            method_label(method), (x, row["accuracy"]), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels crowd a narrow range
    ax.set_xlabel("trainable parameters (log scale, head included)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def cost_section(results: list[dict]) -> Section:
    """Accuracy against trainable parameters, and each method's cost profile."""
    from vptlab.report.context import figure

    s = Section("What each method costs")
    costs = method_costs(results)
    if not costs:
        return s.p(
            "No final run of the standard regime records a cost profile (runs made before vptlab recorded one)."
        )
    s.p(
        "Each method's final runs of the standard regime: mean test top-1 over tasks (each task's mean over seeds), "
        "and the mean of each run's cost profile (`cost` in result.json). FLOPs are counted for one image, prompt "
        "tokens included (2 per multiply-add); images/s and peak memory were measured after training by a short "
        "probe on the run's device; PPT is V-PETL Bench's accuracy x exp(-log10(P / 1e7 + 1))."
    )
    s.figure(
        figure(
            "cost_accuracy_vs_params.png",
            accuracy_params_figure(costs),
            "Test top-1 against trainable parameters (log scale): large points are the mean over tasks, faint "
            "points single tasks.",
        )
    )
    s.table(cost_table(costs), "Cost profile per method")
    kinds = sorted({k for row in costs.values() for k in row["memory_kind"]})
    devices = sorted({d for row in costs.values() for d in row["device"]})
    s.p(f"Peak memory is {', '.join(kinds)} (see `vptlab.train.cost`); measured on {', '.join(devices)}.")
    return s
