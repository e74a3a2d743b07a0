"""``vptlab report``: every table and figure a study's runs support, as report.md and a self-contained report.html.

Each section is built from the study's own result files; a section that cannot be filled says why.  Published
numbers appear only in rows labelled as published.  The summary at the top is generated from the numbers in the
sections below (see :mod:`vptlab.report.summary`).
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from vptlab._io import atomic_write_bytes, atomic_write_text
from vptlab.analysis._plot import png_bytes
from vptlab.analysis.curves import OVERFIT_TOLERANCE
from vptlab.analysis.results import (
    Cell,
    NoResult,
    final_cells,
    no_result_cells,
    pick_vpt_method,
    regime_order,
)
from vptlab.errors import UserError
from vptlab.report.render import Figure, Section, to_html, to_markdown

log = logging.getLogger(__name__)


@dataclass
class ReportOptions:
    """What the report computes beyond reading results: FID and attention maps."""

    fid_features: str = "backbone"  # "backbone", "inception" or "none"
    fid_backbone: str | None = None  # default: the study's backbone
    pretrain_stats: str | None = None
    inception_weights: str | None = None
    fid_csv: str | None = None  # precomputed task,fid
    fid_threshold: float | None = None
    attention: bool = True
    attention_images: int = 4
    attention_tasks: int = 3
    overfit_tolerance: float = OVERFIT_TOLERANCE
    device: str = "cpu"
    ddof: int = 1  # std over seeds in the tables: 1 sample std; 0 np.std, as the seed paper reports

    def __post_init__(self) -> None:
        if self.ddof not in (0, 1):
            raise UserError(f"ddof must be 0 or 1, got {self.ddof!r}")


@dataclass
class Study:
    """A study's results, grouped once for every section."""

    root: Path
    results: list[dict]
    cells: list[Cell] = field(init=False)
    no_result: list[NoResult] = field(init=False)  # groups whose runs all diverged or failed
    vpt: str | None = field(init=False)
    facts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cells = final_cells(self.results)
        self.no_result = no_result_cells(self.results)
        self.vpt = pick_vpt_method(self.cells)

    @property
    def regimes(self) -> list[str]:
        return sorted({c.regime for c in self.cells}, key=regime_order)

    @property
    def paper_backbone(self) -> bool:
        """Whether the study used the paper's backbone (then tables show ours - published)."""
        from vptlab.analysis.published import is_paper_backbone

        return is_paper_backbone(*self.backbone())

    def backbone(self) -> tuple[str, str | None]:
        cfgs = [r["config"] for r in self.results if r.get("config")]
        counts = Counter((c.get("backbone", "vptlab-tiny"), c.get("checkpoint")) for c in cfgs)
        return counts.most_common(1)[0][0] if counts else ("vptlab-tiny", None)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def build_report(
    study_dir: str | Path, out_dir: str | Path | None = None, options: ReportOptions | None = None
) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and the figures (PNG) for the study in ``study_dir``."""
    from vptlab.report import sections, summary
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
    parts = [summary.summary_section(study), *body]
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


def figure(name: str, fig, caption: str) -> Figure:
    """A matplotlib figure as a report figure (PNG bytes)."""
    return Figure(name, png_bytes(fig), caption)
