"""What every report section reads: the options, and the study's results grouped once.

Its own module so that :mod:`vptlab.report.build` (which runs the sections) and the section modules
(:mod:`vptlab.report.sections`, :mod:`vptlab.report.headline`) do not import each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

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
from vptlab.report.render import Figure


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


def figure(name: str, fig, caption: str) -> Figure:
    """A matplotlib figure as a report figure (PNG bytes)."""
    return Figure(name, png_bytes(fig), caption)
