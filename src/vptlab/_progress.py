"""Progress bars with ETA for long work (tqdm on stderr).

Set ``VPTLAB_NO_PROGRESS=1`` to silence them (CI and tests do).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_enabled() -> bool:
    return os.environ.get("VPTLAB_NO_PROGRESS", "") in ("", "0")


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    leave: bool = True,
    enabled: bool | None = None,
    **kwargs: Any,
) -> tqdm:
    """A tqdm bar (counts, rate, ETA) that respects ``VPTLAB_NO_PROGRESS``."""
    disable = not (progress_enabled() if enabled is None else enabled)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        disable=disable,
        dynamic_ncols=True,
        **kwargs,
    )
