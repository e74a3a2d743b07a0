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

The tasks (each task's ``shows``, ``mirrors`` and ``quadrant`` fields say the same at run time):

- ``fractal`` (natural, 20 classes, like cifar/caltech101): 20 IFS fractal classes unseen upstream, upstream style.
- ``shapes`` (natural, 10, like caltech101/svhn): one silhouette on a smooth two-colour clutter background.
- ``textures`` (natural, 10, like dtd): a full-frame procedural texture of one of 10 families.
- ``cells`` (specialized, 4, like patch_camelyon): stained tissue; normal, inflamed, tumour or necrotic.
- ``satellite`` (specialized, 8, like eurosat/resisc45): a land-cover tile from forest to industrial.
- ``count`` (structured, 8, like clevr_count): 1 to 8 fractal objects on a dark background.
- ``dist`` (structured, 6, like clevr_dist/kitti): depth bin of the nearest object on a floor in perspective.
- ``loc`` (structured, 16, like dsprites_loc): 4x4 grid cell of a fractal sprite's centre.
- ``ori`` (structured, 16, like dsprites_ori): orientation of a bright bar over an upstream-style fractal.
- ``azi`` (structured, 18, like smallnorb_azi): camera azimuth of a rendered 3-D toy, 20-degree steps.
- ``ele`` (structured, 9, like smallnorb_ele): camera elevation of the same toys, 30 to 70 degrees.
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
