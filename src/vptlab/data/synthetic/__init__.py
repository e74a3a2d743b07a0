"""The built-in synthetic benchmark: procedural tasks across the VTAB groups and a FractalDB-style upstream set.

``SYNTHETIC_TASKS`` names the tasks; ``generate(task, split)`` draws a split (train800, val200, train800val200,
test, pool); ``upstream()`` draws the pretraining set of the bundled tiny backbone; ``export_synthetic`` writes a
task as a VTAB-1k folder.  Everything is deterministic by seed and renders at any image size (32 by default).
"""

from vptlab.data.synthetic.export import export_synthetic
from vptlab.data.synthetic.spec import SyntheticTask
from vptlab.data.synthetic.splits import SPLIT_SIZES, SPLITS, generate
from vptlab.data.synthetic.tasks import SYNTHETIC_TASKS, TASKS, get_task
from vptlab.data.synthetic.upstream import upstream, upstream_info
from vptlab.data.synthetic.version import GENERATOR_VERSION

__all__ = [
    "GENERATOR_VERSION",
    "SPLITS",
    "SPLIT_SIZES",
    "SYNTHETIC_TASKS",
    "TASKS",
    "SyntheticTask",
    "export_synthetic",
    "generate",
    "get_task",
    "upstream",
    "upstream_info",
]
