"""The report's opening summary, written from the study's numbers (``study.facts``), then set against the paper.

Each sentence states a count or a mean computed from this study's runs; the paper's claims are quoted as claims
(what the paper says), and the verdict on each (agrees / partly / does not) is computed from the counts:
at least 75 % of tasks as the paper's rule predicts is *agrees*, at least 50 % *partly agrees*, less *does not
agree*.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from vptlab.analysis.results import GROUP_ORDER, Comparison, method_label
from vptlab.analysis.tables import PUBLISHED_LABEL, published_numbers
from vptlab.report.context import Study
from vptlab.report.render import Section

AGREES, PARTLY = 0.75, 0.5


def verdict(hits: int, total: int) -> str:
    """agrees / partly agrees / does not agree, from the share of tasks that behave as the paper claims."""
    if total == 0:
        return "cannot tell (no task was decided)"
    share = hits / total
    return "agrees" if share >= AGREES else "partly agrees" if share >= PARTLY else "does not agree"


def summary_section(study: Study) -> Section:
    """The opening bullets; call after the other sections have filled ``study.facts``."""
    s = Section("Summary")
    lines = [
        _wins_line(study),
        _no_result_line(study),
        _others_line(study),
        _quadrant_line(study),
        _overfit_line(study),
        _size_line(study),
        _oneshot_line(study),
        _attention_line(study),
        _caveat_line(study),
    ]
    s.ul([line for line in lines if line])
    return s


def _vpt(study: Study) -> str:
    return method_label(study.vpt) if study.vpt else "VPT"


def _no_result_line(study: Study) -> str:
    """Groups without any accuracy (all diverged or failed): named, so an absent row is never silent."""
    if not study.no_result:
        return ""
    named = ", ".join(f"{method_label(m.method)} on {m.task} ({m.regime})" for m in study.no_result[:6])
    more = f" and {len(study.no_result) - 6} more" if len(study.no_result) > 6 else ""
    return f"No accuracy, every run diverged or failed: {named}{more}; the tables show their status."


def _wins_line(study: Study) -> str:
    comps: list[Comparison] = study.facts.get("standard") or []
    if not comps:
        return "No task has final runs of both FT and VPT in the standard regime, so there is no FT-vs-VPT result."
    vpt = _vpt(study)
    won = [c for c in comps if c.winner == "VPT"]
    lost = [c for c in comps if c.winner == "FT"]
    clear_v = sum(1 for c in won if c.clear)
    clear_f = sum(1 for c in lost if c.clear)
    ties = len(comps) - len(won) - len(lost)
    groups = _per_group(comps)
    mean_ft = np.mean([c.ft.mean for c in comps])
    mean_vpt = np.mean([c.vpt.mean for c in comps])
    return (
        f"Standard regime: {vpt} beat FT on {len(won)} of {len(comps)} tasks ({clear_v} clearly) and FT beat {vpt} "
        f"on {len(lost)} ({clear_f} clearly)" + (f", {ties} tied" if ties else "") + f"; by group: {groups}. "
        f"Mean test top-1 over these tasks: FT {mean_ft:.1f}%, {vpt} {mean_vpt:.1f}%. "
        f"(The paper reports VPT ahead on most VTAB-1k tasks{_published_wins(comps)}; this study "
        f"{verdict(len(won), len(won) + len(lost))}"
        + _clear_note(clear_v + clear_f, len(won) + len(lost))
        + ".)"
    )


def _published_wins(comps: list[Comparison], regime: str = "standard") -> str:
    """'; published (seed paper): VPT-deep ahead on k of n of these' for the VTAB-1k tasks among ``comps``."""
    pub = published_numbers(regime)
    tasks = [
        c.task
        for c in comps
        if c.ft.is_vtab and c.task in pub.get("full", {}) and c.task in pub.get("vpt-deep", {})
    ]
    if not tasks:
        return ""
    ahead = sum(1 for t in tasks if pub["vpt-deep"][t] > pub["full"][t])
    return f"; {PUBLISHED_LABEL}: VPT-deep ahead on {ahead} of these {len(tasks)}"


def _clear_note(clear: int, decided: int) -> str:
    if decided == 0 or clear == decided:
        return ""
    if clear == 0:
        return ", but no gap is clear of the seed-to-seed noise"
    return f", though only {clear} of the {decided} gaps are clear of the seed-to-seed noise"


def _others_line(study: Study) -> str:
    """Methods besides FT and the VPT compared (Mixed, FT-then-PT, ...): wins against each, standard regime."""
    cells = [c for c in study.cells if c.regime == "standard"]
    mean = {(c.method, c.task): c.mean for c in cells}
    parts = []
    for method in dict.fromkeys(c.method for c in cells):
        if method in ("full", study.vpt):
            continue
        tasks = [t for (m, t) in mean if m == method]
        vs = [
            f"beat {method_label(o)} on {sum(mean[(method, t)] > mean[(o, t)] for t in tasks if (o, t) in mean)}"
            f" of {sum(1 for t in tasks if (o, t) in mean)}"
            for o in ("full", study.vpt)
            if o
        ]
        parts.append(f"{method_label(method)} " + " and ".join(vs) + " tasks")
    return ("Other methods (standard regime): " + "; ".join(parts) + ".") if parts else ""


def _per_group(comps: list[Comparison]) -> str:
    by = defaultdict(list)
    for c in comps:
        by[c.group].append(c.winner == "VPT")
    order = [g for g in GROUP_ORDER if g in by] + sorted(set(by) - set(GROUP_ORDER))
    return ", ".join(f"{g} {sum(by[g])}/{len(by[g])} for VPT" for g in order)


def _quadrant_line(study: Study) -> str:
    placed = study.facts.get("quadrants")
    if not placed:
        return (
            ""
            if not study.facts.get("standard")
            else "Quadrants: no FID per task, see the Quadrants section."
        )
    rule = study.facts.get("fid_rule")
    if rule is not None and not rule.determined:
        return f"Quadrants: FID threshold {rule.source}; no quadrant verdict."
    decided = [q for q in placed if q.agrees is not None]
    hits = sum(1 for q in decided if q.agrees)
    ft_quad = [q for q in decided if q.expected == "FT"]
    vpt_quads = [q for q in decided if q.expected == "VPT"]
    ft_text = (
        f"FT won {sum(q.agrees for q in ft_quad)} of {len(ft_quad)} tasks in the quadrant where the paper expects FT "
        "(classification, high FID)"
        if ft_quad
        else "no task fell in the quadrant where the paper expects FT"
    )
    return (
        f"Quadrants (FID threshold {study.facts['fid_threshold']:.1f}): {ft_text}; VPT won "
        f"{sum(q.agrees for q in vpt_quads)} of {len(vpt_quads)} tasks in the three quadrants where it expects VPT. "
        f"The winner matched the paper's rule on {hits} of {len(decided)} decided tasks; agreement with the "
        f"paper's quadrant claim: {verdict(hits, len(decided))}."
    )


def _overfit_line(study: Study) -> str:
    rows = [(c, k) for c, k in study.facts.get("overfit") or [] if c.regime == "standard"]
    if not rows:
        return ""
    by = defaultdict(lambda: [0, 0])
    for cell, check in rows:
        by[cell.objective][0] += check.flagged
        by[cell.objective][1] += 1
    parts = [f"{n} of {t} run groups on {obj} tasks" for obj, (n, t) in sorted(by.items())]
    text = "Overfitting (test loss staying above its minimum, standard regime): " + "; ".join(parts) + "."
    (s_hit, s_all), (c_hit, c_all) = by.get("structured", [0, 0]), by.get("classification", [0, 0])
    if s_all and c_all and s_hit + c_hit:
        more = "more" if s_hit / s_all > c_hit / c_all else "not more"
        text += f" Structured tasks overfit {more} often than classification tasks (the paper: mostly structured)."
    elif s_all and c_all:
        text += " No run group overfit, so the paper's finding (overfitting mostly on structured tasks) is not seen."
    return text


def _size_line(study: Study) -> str:
    trend = study.facts.get("size_trend") or []
    if not trend:
        return ""
    narrowed = sum(1 for _, lo, hi, *_ in trend if hi < lo)
    unchanged = sum(1 for _, lo, hi, *_ in trend if hi == lo)
    ft_ahead = sum(1 for _, _, hi, *_ in trend if hi < 0)
    changed = len(trend) - unchanged
    return (
        f"Data size: from the smallest to the largest N, {_vpt(study)}'s advantage over FT shrank on {narrowed} of "
        f"{len(trend)} tasks"
        + (f" ({unchanged} unchanged)" if unchanged else "")
        + f", and FT was ahead at the "
        f"largest N on {ft_ahead}. (The paper: the gap narrows as data grows; this study "
        f"{verdict(narrowed, changed)}.)"
    )


def _oneshot_line(study: Study) -> str:
    comps = study.facts.get("oneshot") or []
    if not comps:
        return ""
    won = sum(1 for c in comps if c.winner == "VPT")
    ties = sum(1 for c in comps if c.winner == "tie")
    return (
        f"One-shot (kshot:1): {_vpt(study)} beat FT on {won} of {len(comps)} tasks"
        + (f" ({ties} tied)" if ties else "")
        + f". (The paper: VPT ahead on most tasks with one image per class{_published_wins(comps, 'kshot:1')}; this "
        f"study {verdict(won, len(comps) - ties)}.)"
    )


def _attention_line(study: Study) -> str:
    rows = [sh for _, name, sh in study.facts.get("attention") or [] if sh["num_prompts"] > 0]
    if not rows:
        return ""
    share = np.mean([sh["prompt_share"] for sh in rows])
    return f"Attention: the prompts took {share:.0%} of the last-layer CLS attention on average ({len(rows)} task(s))."


def _caveat_line(study: Study) -> str:
    cells = study.cells
    if cells and not any(c.is_vtab for c in cells):
        return (
            "These tasks are not VTAB-1k (synthetic or your own data), and the backbone is "
            f"{study.backbone()[0]}: the numbers test the pipeline and this setting, not the paper's ViT-B/16 results."
        )
    if any(c.n < 2 for c in cells):
        return "Some method/task groups have a single seed: their wins cannot be called clear or not."
    return ""
