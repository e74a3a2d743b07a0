"""Analyses of a study's runs: FID, quadrants and the advisor, loss and data-size curves, attention maps, tables.

Submodules are imported on use (``from vptlab.analysis.fid import compute_fid``); this package only names them.
"""

__all__ = [
    "advisor",
    "attention",
    "curves",
    "features",
    "fid",
    "imagesets",
    "quadrants",
    "results",
    "tables",
    "task_fid",
]
