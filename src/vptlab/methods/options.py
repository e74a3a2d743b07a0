"""Options a method declares (bottleneck size, scale, rank, k...): default, type and valid range.

A run carries the values in ``RunConfig.method_options``; a study spec sets them under ``[methods.NAME]`` like any
other grid axis (``bottleneck = [8, 16]``); ``vptlab train --option bottleneck=16`` sets one for a single run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option of a method; ``default`` fixes its type (int or float)."""

    name: str
    default: int | float
    help: str
    minimum: float | None = None  # inclusive lower bound
    positive: bool = False  # strictly > 0
    maximum: float | None = None  # inclusive upper bound

    @property
    def kind(self) -> str:
        return "int" if isinstance(self.default, int) else "float"

    def check(self, value: Any) -> str | None:
        """None when ``value`` is valid, else the rule it breaks (``"must be >= 1"``)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {'an integer' if self.kind == 'int' else 'a number'}"
        if self.kind == "int" and not float(value).is_integer():
            return "must be an integer"
        if self.positive and not value > 0:
            return "must be > 0"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}"
        return None

    def coerce(self, value: Any) -> int | float:
        return int(value) if self.kind == "int" else float(value)
