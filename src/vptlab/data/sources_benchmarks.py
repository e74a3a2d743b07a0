"""What a study spec needs to know about the benchmark sources (``fgvc:ROOT``, ``fewshot:ROOT``) before loading."""

from __future__ import annotations

import functools
from pathlib import Path

from vptlab.data.base import TaskInfo
from vptlab.errors import UserError

BENCHMARK_PREFIXES = ("fgvc:", "fewshot:")


@functools.cache
def benchmark_task_infos(source: str) -> dict[str, TaskInfo]:
    """name -> TaskInfo of a benchmark source: the tasks under its root if it exists; else, for FGVC, the five
    datasets with their released class counts (so a preset plans before the data is there)."""
    kind, _, rest = source.partition(":")
    root = Path(rest.partition("?")[0]).expanduser()
    if root.is_dir():
        from vptlab.data.sources import list_tasks

        try:
            return {info.name: info for info in list_tasks(source)}
        except UserError:
            return {}
    if kind == "fgvc":
        from vptlab.data.fgvc import FGVC_TASKS

        return {
            t.name: TaskInfo(t.name, "natural", "classification", t.num_classes) for t in FGVC_TASKS.values()
        }
    return {}
