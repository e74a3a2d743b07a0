"""Report sections for the benchmarks beyond VTAB-1k: the FGVC table, few-shot curves, robustness to shift."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from importlib import resources

from vptlab.analysis._plot import new_figure
from vptlab.analysis.results import Cell, method_label
from vptlab.report.context import Study, figure
from vptlab.report.render import Section

FGVC_ORDER = ("cub", "nabirds", "oxford_flowers", "stanford_dogs", "stanford_cars")
FGVC_PUBLISHED = "fgvc_vitb16_in21k_published.csv"


def benchmark_sections(study: Study) -> list[Section]:
    return [fgvc_section(study), few_shot_section(study), robustness_section(study)]


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.mean:.1f} ± {cell.std:.1f}" if cell.n > 1 else f"{cell.mean:.1f}"


# --- FGVC ----------------------------------------------------------------------------------------------------


def fgvc_published() -> tuple[dict[tuple[str, str], float], str]:
    """Published FGVC accuracies ``(method, task) -> top-1`` and their source, from the bundled resource (empty
    when vptlab carries none: only numbers checked against the paper are bundled)."""
    try:
        text = resources.files("vptlab.resources").joinpath(FGVC_PUBLISHED).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}, ""
    lines = [line for line in text.splitlines() if line.strip()]
    source = next((line[1:].strip() for line in lines if line.startswith("#")), "")
    rows = csv.DictReader(line for line in lines if not line.startswith("#"))
    return {(r["method"], r["task"]): float(r["top1"]) for r in rows}, source


def fgvc_section(study: Study) -> Section:
    s = Section("FGVC (the VPT paper's fine-grained benchmark)")
    cells = [c for c in study.cells if c.source.startswith("fgvc") and c.regime == "standard"]
    if not cells:
        return s.p("No final FGVC runs (source fgvc:ROOT, standard regime) in this study.")
    tasks = [t for t in FGVC_ORDER if any(c.task == t for c in cells)]
    by = {(c.method, c.task): c for c in cells}
    methods = sorted({c.method for c in cells})
    header = "| method | " + " | ".join(tasks) + " | mean |\n|---|" + "---|" * (len(tasks) + 1) + "\n"
    rows = []
    for m in methods:
        means = [by[(m, t)].mean for t in tasks if (m, t) in by]
        mean = f"{sum(means) / len(means):.1f}" if len(means) == len(tasks) else "-"
        rows.append(
            f"| {method_label(m)} | " + " | ".join(_fmt(by.get((m, t))) for t in tasks) + f" | {mean} |"
        )
    published, source = fgvc_published()
    for m in methods:
        values = [published.get((m, t)) for t in tasks]
        if any(v is not None for v in values):
            shown = " | ".join("-" if v is None else f"{v:.1f}" for v in values)
            rows.append(f"| {method_label(m)} (published) | {shown} | - |")
    s.p(
        "Test top-1 (%) of the final runs (train + val -> test), mean ± sample std over seeds, with the reference's "
        "transforms (random crop + flip from the shorter-side resize; centre crop for evaluation)."
    )
    s.table(header + "\n".join(rows), "FGVC test top-1 (%)")
    if published:
        s.p(f'Rows marked "(published)" are {source}, not results of this study.')
    else:
        s.p(
            "No published FGVC numbers are shown: vptlab bundles only numbers it could check against the paper, "
            "and none are bundled for FGVC."
        )
    return s


# --- few-shot --------------------------------------------------------------------------------------------------


def few_shot_section(study: Study) -> Section:
    s = Section("Few-shot: accuracy against shots")  # kshot:K (paper) and fewshot:K (NOAH) runs
    cells = [c for c in study.cells if c.regime.startswith(("kshot:", "fewshot:"))]
    shots = sorted({int(c.regime.split(":")[1]) for c in cells})
    if len(shots) < 2:
        return s.p("No k-shot final runs at two or more K in this study.")
    tasks = sorted({c.task for c in cells})
    fig = new_figure(4.0 * len(tasks), 3.2)
    for k, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), k + 1)
        series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        for c in cells:
            if c.task == task:
                series[_series(c, cells)].append((int(c.regime.split(":")[1]), c.mean, c.std))
        for label, pts in sorted(series.items()):
            pts.sort()
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                        capsize=3, label=label)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots, [str(k) for k in shots])
        ax.set_xlabel("shots per class (K)")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(task)
        ax.legend(fontsize=7)
    s.figure(figure("few_shot.png", fig, "Test top-1 against K shots per class, mean ± std over seeds."))
    header = (
        "| task | method | " + " | ".join(f"K={k}" for k in shots) + " |\n|---|---|" + "---|" * len(shots)
    )
    by = {(c.task, _series(c, cells), int(c.regime.split(":")[1])): c for c in cells}
    rows = [
        f"| {t} | {m} | " + " | ".join(_fmt(by.get((t, m, k))) for k in shots) + " |"
        for t in tasks
        for m in sorted({_series(c, cells) for c in cells if c.task == t})
    ]
    s.table(
        header + "\n" + "\n".join(rows), "Test top-1 (%) per K, mean ± std over seeds (split seeds included)"
    )
    return s


def _series(cell: Cell, cells: list[Cell]) -> str:
    """A line's label: the method, with its regime kind when the study has both kshot:K and fewshot:K."""
    kinds = {c.regime.split(":")[0] for c in cells}
    kind = cell.regime.split(":")[0]
    return method_label(cell.method) + (f" ({kind})" if len(kinds) > 1 else "")


# --- robustness ------------------------------------------------------------------------------------------------


def robustness_section(study: Study) -> Section:
    s = Section("Robustness: evaluation on shifted sets")
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for row in study.results:
        cfg = row.get("config") or {}
        evals = (row.get("metrics") or {}).get("eval") or {}
        if cfg.get("stage") != "final" or row.get("status") != "ok" or not evals:
            continue
        values[(cfg.get("method"), cfg.get("task"), "(own test)")].append(float(row["metrics"]["test_top1"]))
        for name, m in evals.items():
            if isinstance(m, dict) and m.get("top1") is not None:
                values[(cfg.get("method"), cfg.get("task"), name)].append(float(m["top1"]))
    if not values:
        return s.p("No final runs with extra evaluation sets (metrics.eval) in this study.")
    sets = ["(own test)"] + sorted({k[2] for k in values} - {"(own test)"})
    keys = sorted({(k[0], k[1]) for k in values})
    header = "| method | task | " + " | ".join(sets) + " |\n|---|---|" + "---|" * len(sets)
    rows = []
    for method, task in keys:
        cells = []
        for name in sets:
            v = values.get((method, task, name), [])
            mean = sum(v) / len(v) if v else math.nan
            cells.append("-" if not v else f"{mean:.1f} (n={len(v)})")
        rows.append(f"| {method_label(method)} | {task} | " + " | ".join(cells) + " |")
    s.p(
        "Top-1 (%) of the final runs on their own test set and on each evaluation set named in the spec "
        "(a class subset such as ImageNet-A/-R is scored with the logits masked to its classes), mean over seeds."
    )
    s.table(header + "\n" + "\n".join(rows), "Accuracy under distribution shift")
    return s
