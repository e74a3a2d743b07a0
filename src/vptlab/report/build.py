"""``vptlab report``: every table and figure a study's runs support, as report.md and a self-contained report.html.

Each section is built from the study's own result files; a section that cannot be filled says why.  Published
numbers appear only in rows labelled as published.  The summary at the top is generated from the numbers in the
sections below (see :mod:`vptlab.report.headline`).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from vptlab._io import atomic_write_bytes, atomic_write_text
from vptlab.errors import UserError
from vptlab.report import headline, sections
from vptlab.report.context import ReportOptions, Study
from vptlab.report.render import Section, to_html, to_markdown

log = logging.getLogger(__name__)
__all__ = ["ReportFiles", "ReportOptions", "Study", "build_report"]


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def build_report(
    study_dir: str | Path, out_dir: str | Path | None = None, options: ReportOptions | None = None
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and the figures (PNG) for the study in ``study_dir``."""
    from vptlab.store import load_results

    root = Path(study_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such study folder")
    results = load_results(root)
    if not results:
        raise UserError(f"{root}: no finished runs (no result.json under it); run the study first")
    opts = options or ReportOptions()
    study = Study(root, results)
    body = sections.build_sections(study, opts)
    parts = [headline.summary_section(study), *body]
    title = f"vptlab report: {root.resolve().name}"
    return _write(Path(out_dir) if out_dir else root / "report", title, parts, study)


def _write(out: Path, title: str, parts: list[Section], study: Study) -> ReportFiles:
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for section in parts:
        for fig in section.figures():
            atomic_write_bytes(out / fig.name, fig.png)
            figures.append(out / fig.name)
    if study.facts.get("fids"):
        atomic_write_text(out / "fid.csv", _fid_csv(study.facts["fids"], study.facts.get("fid_features", "")))
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, to_markdown(title, parts))
    atomic_write_text(page, to_html(title, parts))
    return ReportFiles(md, page, tuple(figures))


def _fid_csv(fids: dict[str, float], features: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["task", "fid", "features"])
    for task, value in fids.items():
        writer.writerow([task, f"{value:.4f}", features])
    return buf.getvalue()
