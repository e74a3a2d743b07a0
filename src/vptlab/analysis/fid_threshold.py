"""One rule for the FID threshold between "low" and "high" FID, shared by ``vptlab advise`` and the report.

FID (Fréchet Inception Distance) measures how far a set of images is from another: the distance between the two
sets' feature statistics (means and covariances) under a fixed network.  0 means the same distribution; larger is
more different.  Its absolute value depends on the feature network, the image size and the number of images, so
"high" only means something relative to other data sets measured the same way.  The rule, in order:

1. a threshold given by the user (``--fid-threshold``) is used as is;
2. else, the median FID of the tasks being compared (the study's tasks), when there are at least
   :data:`MIN_TASKS` of them: "high" then means "farther from the pretraining data than the typical task";
3. else, the median FID of a reference set of tasks measured with the same features (the 11 built-in synthetic
   tasks, for the bundled ``vptlab-tiny`` backbone and its own pretraining data), when one is available;
4. else the threshold is **undetermined**: with fewer tasks a median would put one of them on each side by
   construction (a single task would always be "low FID"), so no quadrant is claimed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MIN_TASKS = 5
RULE_TEXT = (
    f"given with --fid-threshold; else the median FID of the compared tasks when there are >= {MIN_TASKS}; else "
    "the median of the built-in reference tasks under the same features (vptlab-tiny only); else undetermined"
)


@dataclass(frozen=True)
class FIDThreshold:
    """The threshold (``None``: undetermined) and, in words, where it came from."""

    value: float | None
    source: str

    @property
    def determined(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    def level(self, fid: float) -> str:
        """ "high", "low" (a FID equal to the threshold is low), or "undetermined"."""
        if not self.determined:
            return "undetermined"
        return "high" if fid > self.value else "low"


def fid_threshold(
    task_fids: dict[str, float],
    *,
    given: float | None = None,
    reference: Callable[[], dict[str, float]] | None = None,
    what: str = "{n} tasks",
) -> FIDThreshold:
    """Apply the rule (module docstring) to ``task_fids``; ``reference`` is called only when it is needed.

    ``what`` names the tasks in the explanation, ``{n}`` standing for their number (``"study's {n} tasks"``).
    """
    if given is not None:
        return FIDThreshold(float(given), "given with --fid-threshold")
    finite = [f for f in task_fids.values() if math.isfinite(f)]
    if len(finite) >= MIN_TASKS:
        return FIDThreshold(float(np.median(finite)), f"median FID of the {what.format(n=len(finite))}")
    ref = reference() if reference is not None else {}
    ref_values = [f for f in ref.values() if math.isfinite(f)]
    if len(ref_values) >= MIN_TASKS:
        return FIDThreshold(
            float(np.median(ref_values)), f"median FID of the {len(ref_values)} built-in reference tasks"
        )
    return FIDThreshold(
        None,
        f"undetermined: {what.format(n=len(finite))} with an FID, and a median needs >= {MIN_TASKS} (fewer would place "
        "the tasks on each side by construction); pass --fid-threshold to set one",
    )
