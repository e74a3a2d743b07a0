"""The 19 VTAB-1k tasks (names as in the common image-folder release), stored in the package."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from vptlab.data.base import TaskInfo


@cache
def vtab1k_tasks() -> dict[str, TaskInfo]:
    """Task name -> :class:`TaskInfo`, in the paper's order (natural, specialized, structured)."""
    text = resources.files("vptlab.resources").joinpath("vtab1k_tasks.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return {r["task"]: TaskInfo(r["task"], r["group"], r["objective"], int(r["num_classes"])) for r in rows}
