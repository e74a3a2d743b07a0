"""The registry of synthetic tasks: name -> :class:`SyntheticTask`, in VTAB order (natural, specialized,
structured).

Quadrants (the paper's section 4.3: task objective x FID to the pretraining data), as designed; the FID
actually measured is in ``BENCHMARKS.md`` and in every demo report:

=================  ==========================================  ============================================
                   low FID (upstream-style images)             high FID (other images)
=================  ==========================================  ============================================
classification     fractal                                     shapes, textures, cells, satellite
structured         count, loc, ori                             dist, azi, ele
=================  ==========================================  ============================================
"""

from __future__ import annotations

from vptlab.data.base import TaskInfo
from vptlab.data.synthetic.natural import NATURAL
from vptlab.data.synthetic.spec import SyntheticTask
from vptlab.data.synthetic.specialized import SPECIALIZED
from vptlab.data.synthetic.structured import STRUCTURED
from vptlab.errors import UserError

TASKS: dict[str, SyntheticTask] = {t.info.name: t for t in (*NATURAL, *SPECIALIZED, *STRUCTURED)}
SYNTHETIC_TASKS: dict[str, TaskInfo] = {name: t.info for name, t in TASKS.items()}


def get_task(name: str) -> SyntheticTask:
    """The task called ``name``; a :class:`UserError` listing the known tasks otherwise."""
    if name not in TASKS:
        raise UserError(f"unknown synthetic task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
